// Hostfile parsing: DeepSpeed's `host slots=N` plus user=, port=, key=, addr=.
#include "hostfile.h"

#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "error.h"

namespace moe::remote {

std::string HostEntry::label() const {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on `user + "@" + host`.
  std::string s;
  if (!user.empty()) s.append(user).append("@");
  s.append(host);
  if (port != 0) s.append(":").append(std::to_string(port));
  return s;
}

namespace {

// The value as one printable line for a message: control bytes as \xNN, the rest unchanged.
std::string shown(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int parse_int(std::string_view value, int lo, int hi, const std::string& where) {
  int v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < lo || v > hi)
    throw moe::Error(where + ": '" + shown(value) + "' is not an integer in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Length of the UTF-8 sequence at s[i] encoding a code point >= U+00A0 (a non-ASCII character that
// is not a C1 control), or 0.
size_t utf8_letter(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
  for (size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  const uint32_t min = n == 2 ? 0xa0 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool ip_literal(std::string_view v) {
  if (v.size() >= 2 && v.front() == '[' && v.back() == ']') v = v.substr(1, v.size() - 2);
  if (v.find(':') == std::string_view::npos) return false;
  for (char c : v)
    if (!(ascii_alnum(c) && (c <= '9' || (c | 0x20) <= 'f')) && c != ':' && c != '.') return false;
  return true;
}

}  // namespace

std::string host_field_problem(std::string_view host) {
  if (host.empty()) return "is empty";
  if (host[0] == '-') return "must not start with '-'";
  if (host.size() > 253) return "is longer than 253 characters";
  if (ip_literal(host)) return "";
  if (host.find('@') != std::string_view::npos) return "must not contain '@' (give the user with user=)";
  size_t label = 0;  // start of the current dot-separated label
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (i == label && !(i == host.size() && i > 0)) return "has an empty part between dots";
      if (i > label && (host[label] == '-' || host[i - 1] == '-')) return "has a part that starts or ends with '-'";
      label = i + 1;
    } else if (!ascii_alnum(host[i]) && host[i] != '-') {
      if (static_cast<unsigned char>(host[i]) >= 0x80)
        return "is not a host name or address: non-ASCII names must be given in their xn-- (IDNA) form";
      return "is not a host name or address: only letters, digits, '-' and '.' (an ssh config alias too), "
             "or an IP address";
    }
  }
  return "";
}

std::string user_field_problem(std::string_view user) {
  if (user.empty()) return "is empty";
  if (user[0] == '-') return "must not start with '-'";
  for (size_t i = 0; i < user.size();) {
    const char c = user[i];
    if (ascii_alnum(c) || c == '.' || c == '_' || c == '-' || c == '@' || c == '+') {
      ++i;
    } else if (size_t n = utf8_letter(user, i)) {
      i += n;
    } else {
      return "may hold only letters, digits, '.', '_', '-', '@' and '+'";
    }
  }
  return "";
}

std::string key_field_problem(std::string_view key) {
  if (key.empty()) return "is empty";
  for (unsigned char c : key)
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  return "";
}

void check_host_entry(const HostEntry& h, const std::string& where) {
  auto check = [&](const char* field, const std::string& value, const std::string& problem) {
    if (!problem.empty()) throw moe::Error(where + ": " + field + " '" + shown(value) + "' " + problem);
  };
  check("host", h.host, host_field_problem(h.host));
  if (!h.user.empty()) check("user", h.user, user_field_problem(h.user));
  if (!h.key.empty()) check("key", h.key, key_field_problem(h.key));
  if (!h.addr.empty()) check("addr", h.addr, host_field_problem(h.addr));
}

std::vector<HostEntry> parse_hostfile(std::string_view text, const std::string& source) {
  std::vector<HostEntry> hosts;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    // A comment starts with a '#' that begins a word; one inside a word (key=/keys/#1) is data.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t' || line[i - 1] == '\r')) {
        line = line.substr(0, i);
        break;
      }
    }
    auto words = split_ws(line);
    if (words.empty()) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    HostEntry h;
    h.line = line_no;
    h.host = std::string(words[0]);
    if (h.host.find('=') != std::string::npos && h.host[0] != '-')
      throw moe::Error(where + ": a line must start with a host name, found '" + shown(h.host) + "'");
    if (std::string why = host_field_problem(h.host); !why.empty())
      throw moe::Error(where + ": host '" + shown(h.host) + "' " + why);
    bool seen_slots = false, seen_user = false, seen_port = false, seen_key = false, seen_addr = false, seen_role = false;
    for (size_t w = 1; w < words.size(); ++w) {
      std::string_view word = words[w];
      size_t eq = word.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == word.size())
        throw moe::Error(where + ": expected key=value after the host, found '" + shown(word) + "'");
      std::string_view k = word.substr(0, eq), v = word.substr(eq + 1);
      auto once = [&](bool& seen) {
        if (seen) throw moe::Error(where + ": '" + std::string(k) + "' given twice");
        seen = true;
      };
      if (k == "slots") { once(seen_slots); h.slots = parse_int(v, 1, 4096, where + ": slots"); }
      else if (k == "port") { once(seen_port); h.port = parse_int(v, 1, 65535, where + ": port"); }
      else if (k == "user") { once(seen_user); h.user = std::string(v); }
      else if (k == "key") { once(seen_key); h.key = std::string(v); }
      else if (k == "addr") { once(seen_addr); h.addr = std::string(v); }
      else if (k == "role") {
        once(seen_role);
        if (v != "node" && v != "slurm-login")
          throw moe::Error(where + ": role '" + shown(v) + "' is not one of node, slurm-login");
        h.slurm_login = v == "slurm-login";
      }
      else
        throw moe::Error(where + ": unknown option '" + shown(k) +
                         "' (known: slots, user, port, key, addr, role)");
    }
    check_host_entry(h, where);
    for (const HostEntry& other : hosts)
      if (other.host == h.host && other.port == h.port && other.user == h.user)
        throw moe::Error(where + ": host '" + h.label() + "' already listed on line " +
                         std::to_string(other.line));
    hosts.push_back(std::move(h));
  }
  if (hosts.empty()) throw moe::Error(source + ": no hosts listed");
  return hosts;
}

std::vector<HostEntry> load_hostfile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw moe::Error(path + ": cannot open hostfile");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_hostfile(ss.str(), path);
}

std::string format_hostfile(const std::vector<HostEntry>& hosts) {
  std::string out;
  for (const HostEntry& h : hosts) {
    out += h.host + " slots=" + std::to_string(h.slots);
    if (!h.user.empty()) out += " user=" + h.user;
    if (h.port != 0) out += " port=" + std::to_string(h.port);
    if (!h.key.empty()) out += " key=" + h.key;
    if (!h.addr.empty()) out += " addr=" + h.addr;
    if (h.slurm_login) out += " role=slurm-login";
    out += "\n";
  }
  return out;
}

}  // namespace moe::remote
