// SpecModel: edits go into the resolved JSON, then through core's spec_from_json and validate_spec.
#include "design/spec_model.h"

#include <QElapsedTimer>

#include "error.h"
#include "hardware_profile.h"

namespace moe::gui {

namespace {
std::string to_pointer(const QString& path) {
  QString p = path;
  p.replace('.', '/');
  p.prepend('/');
  return p.toStdString();
}
}  // namespace

SpecModel::SpecModel(QObject* parent) : QObject(parent) {
  json_ = resolve_spec_json(nlohmann::json::object());
  spec_ = spec_from_json(json_);
  revalidate();
}

QVariant SpecModel::value(const QString& path) const {
  nlohmann::json::json_pointer ptr(to_pointer(path));
  if (!json_.contains(ptr)) return {};
  const auto& v = json_.at(ptr);
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return QVariant::fromValue<qlonglong>(v.get<int64_t>());
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) return QString::fromStdString(v.get<std::string>());
  return QString::fromStdString(v.dump());
}

QString SpecModel::setValue(const QString& path, const QVariant& value) {
  nlohmann::json::json_pointer ptr(to_pointer(path));
  if (!json_.contains(ptr)) return path + ": no such field";
  auto& target = json_.at(ptr);
  nlohmann::json next;
  bool ok = true;
  if (target.is_boolean()) next = value.toBool();
  else if (target.is_number_integer()) next = static_cast<int64_t>(value.toLongLong(&ok));
  else if (target.is_number()) next = value.toDouble(&ok);
  else next = value.toString().toStdString();
  if (!ok) return path + ": expected a number";
  return setJsonValue(path, next);
}

QString SpecModel::setJsonValue(const QString& path, const nlohmann::json& value) {
  nlohmann::json::json_pointer ptr(to_pointer(path));
  if (!json_.contains(ptr)) return path + ": no such field";
  auto& target = json_.at(ptr);
  if (target == value) return {};
  nlohmann::json saved = target;
  target = value;
  try {
    spec_ = spec_from_json(json_);
  } catch (const std::exception& e) {
    target = saved;
    return QString::fromStdString(e.what());
  }
  handleEdit();
  return {};
}

void SpecModel::setNodes(const std::vector<NodeSpec>& nodes) {
  JobSpec next = spec_;
  next.cluster.nodes = nodes;
  json_ = spec_to_json(next);
  spec_ = next;
  handleEdit();
}

void SpecModel::setSpecJson(const nlohmann::json& user_json, const QString& file_path) {
  nlohmann::json resolved = resolve_spec_json(user_json);  // throws with core's message
  JobSpec next = spec_from_json(resolved);
  json_ = spec_to_json(next);
  spec_ = next;
  file_path_ = file_path;
  revalidate();
  modified_ = false;
  Q_EMIT modifiedChanged(false);
  Q_EMIT specReplaced();
  Q_EMIT specChanged();
}

void SpecModel::load(const QString& file) {
  std::string text = read_text_file(file.toStdString());
  setSpecJson(parse_json_text(text, file.toStdString()), file);
}

void SpecModel::save(const QString& file) {
  save_spec(spec_, file.toStdString());
  file_path_ = file;
  modified_ = false;
  Q_EMIT modifiedChanged(false);
}

void SpecModel::handleEdit() {
  revalidate();
  if (!modified_) {
    modified_ = true;
    Q_EMIT modifiedChanged(true);
  }
  Q_EMIT specChanged();
}

std::vector<Diagnostic> SpecModel::diagnosticsOf(const JobSpec& target) const {
  try {
    return validate_spec(target, &find_hardware(builtin_hardware_profiles(), target.cluster.hardware));
  } catch (const std::exception& e) {
    std::vector<Diagnostic> out = validate_spec(target);
    out.push_back({Severity::error, "cluster.hardware", e.what()});
    return out;
  }
}

// Core's rules plus the cost model's memory rule, then the plan whenever the spec's own rules pass:
// a design that does not fit the GPU still gets its estimates, which show by how much.
void SpecModel::revalidate() {
  QElapsedTimer timer;
  timer.start();
  plan_.reset();
  const HardwareProfile* hw = nullptr;
  try {
    hw = &find_hardware(builtin_hardware_profiles(), spec_.cluster.hardware);
  } catch (const std::exception& e) {
    diagnostics_ = validate_spec(spec_);
    diagnostics_.push_back({Severity::error, "cluster.hardware", e.what()});
  }
  if (hw) {
    diagnostics_ = validate_spec(spec_, hw);
    if (!has_errors(diagnostics_) || !has_errors(validate_spec(spec_))) {
      try {
        plan_ = plan_job(spec_, *hw);
      } catch (const std::exception& e) {
        diagnostics_.push_back({Severity::error, "parallel", e.what()});
      }
    }
  }
  recompute_us_ = timer.nsecsElapsed() / 1000.0;
}

}  // namespace moe::gui
