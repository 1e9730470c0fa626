#pragma once
// SpecModel: the one JobSpec the Design workspace edits. It keeps the resolved spec JSON (the
// source of truth for files), re-derives the typed JobSpec and core's diagnostics after every
// edit, and tells the views. It computes nothing itself: validation is core's.
#include <QObject>
#include <QString>
#include <QVariant>

#include <nlohmann/json.hpp>

#include <optional>

#include "cost_model.h"
#include "job_spec.h"
#include "spec_validation.h"

namespace moe::gui {

class SpecModel : public QObject {
  Q_OBJECT
 public:
  explicit SpecModel(QObject* parent = nullptr);

  const JobSpec& spec() const { return spec_; }
  const nlohmann::json& json() const { return json_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  bool hasErrors() const { return has_errors(diagnostics_); }
  // The cost model's plan of the current spec; empty while the spec has errors.
  const std::optional<Plan>& plan() const { return plan_; }
  // What the current design would be where a launch rewrites it: core's rules and the memory rule
  // (the spec's hardware) for `target`, e.g. remote::spec_for_slurm(spec()) (its nodes from the layout).
  std::vector<Diagnostic> diagnosticsOf(const JobSpec& target) const;
  // Microseconds the last validation + plan took (the design bench reads it).
  double lastRecomputeUs() const { return recompute_us_; }
  QString filePath() const { return file_path_; }
  bool isModified() const { return modified_; }

  // The value at a dotted JSON path ("model.moe.top_k"), or an invalid QVariant.
  QVariant value(const QString& path) const;
  // Sets a leaf; the value's type must match the spec's (core rejects the rest with a message).
  // Returns an empty string on success, else the reason.
  QString setValue(const QString& path, const QVariant& value);
  // Sets any field to a JSON value (an array such as placement.map); core checks it as setValue does.
  QString setJsonValue(const QString& path, const nlohmann::json& value);
  // Replaces the cluster's node list (the one array in the spec).
  void setNodes(const std::vector<NodeSpec>& nodes);

  // Whole-spec operations; they throw moe::Error with core's one-line message.
  void setSpecJson(const nlohmann::json& user_json, const QString& file_path = {});
  void load(const QString& file);
  void save(const QString& file);

 Q_SIGNALS:
  void specChanged();     // any edit or load
  void specReplaced();    // a load: forms re-read every field
  void modifiedChanged(bool modified);

 private:
  void handleEdit();
  void revalidate();

  nlohmann::json json_;
  JobSpec spec_;
  std::vector<Diagnostic> diagnostics_;
  std::optional<Plan> plan_;
  double recompute_us_ = 0;
  QString file_path_;
  bool modified_ = false;
};

}  // namespace moe::gui
