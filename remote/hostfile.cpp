// Hostfile parsing: DeepSpeed's `host slots=N` plus user=, port=, key=, addr=.
#include "hostfile.h"

#include <charconv>
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

int parse_int(std::string_view value, int lo, int hi, const std::string& where) {
  int v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < lo || v > hi)
    throw moe::Error(where + ": '" + std::string(value) + "' is not an integer in [" +
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

}  // namespace

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
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto words = split_ws(line);
    if (words.empty()) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    HostEntry h;
    h.line = line_no;
    h.host = std::string(words[0]);
    if (h.host[0] == '-')
      throw moe::Error(where + ": host name '" + h.host + "' must not start with '-'");
    if (h.host.find('=') != std::string::npos)
      throw moe::Error(where + ": a line must start with a host name, found '" + h.host + "'");
    bool seen_slots = false, seen_user = false, seen_port = false, seen_key = false, seen_addr = false;
    for (size_t w = 1; w < words.size(); ++w) {
      std::string_view word = words[w];
      size_t eq = word.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == word.size())
        throw moe::Error(where + ": expected key=value after the host, found '" + std::string(word) + "'");
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
      else
        throw moe::Error(where + ": unknown option '" + std::string(k) +
                         "' (known: slots, user, port, key, addr)");
    }
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
    out += "\n";
  }
  return out;
}

}  // namespace moe::remote
