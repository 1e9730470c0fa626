// libFuzzer target: the hostfile parser (remote/hostfile.h). Any input must give hosts or one
// moe::Error naming the source and line; hosts must survive format_hostfile → parse_hostfile
// unchanged (the Hosts panel saves them that way). See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "error.h"
#include "fuzz_util.h"
#include "hostfile.h"

using moe::remote::HostEntry;

namespace {

bool same(const HostEntry& a, const HostEntry& b) {
  return a.host == b.host && a.slots == b.slots && a.user == b.user && a.port == b.port && a.key == b.key &&
         a.addr == b.addr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<HostEntry> hosts;
  try {
    hosts = moe::remote::parse_hostfile(text, "hosts");
  } catch (const moe::Error& e) {
    const std::string m = e.what();
    if (m.rfind("hosts", 0) != 0) moe::fuzz::fail("error does not name the hostfile: " + m);
    return 0;
  }
  for (const HostEntry& h : hosts) (void)h.label();
  const std::string formatted = moe::remote::format_hostfile(hosts);
  std::vector<HostEntry> again;
  try {
    again = moe::remote::parse_hostfile(formatted, "formatted");
  } catch (const moe::Error& e) {
    moe::fuzz::fail(std::string("format_hostfile output does not parse: ") + e.what() + "\n" + formatted);
  }
  if (again.size() != hosts.size()) moe::fuzz::fail("round trip changed the number of hosts:\n" + formatted);
  for (size_t i = 0; i < hosts.size(); ++i)
    if (!same(hosts[i], again[i])) moe::fuzz::fail("round trip changed host " + std::to_string(i) + ":\n" + formatted);
  return 0;
}
