// A separate client process for the reattach test: launches a 2-node fake-runtime job and appends
// every metrics line to a file (one write per line, so a SIGKILL leaves only whole lines), then
// waits. The test kills it mid-run and reattaches from the file's size.
//   remote_test_client KNOWN_HOSTS JOB_ID STEPS INTERVAL_MS OUT_FILE
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "remote_fixture.h"

using namespace moe::remote;
using namespace moe::remote::test;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: remote_test_client KNOWN_HOSTS JOB_ID STEPS INTERVAL_MS OUT_FILE\n");
    return 2;
  }
  ConnectOptions o;
  o.known_hosts_file = argv[1];
  o.process_config = false;
  o.use_agent = false;
  const int fd = ::open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (fd < 0) return 1;
  JobEvents e;
  e.on_metrics_line = [fd](std::string_view line, uint64_t) {
    std::string l(line);
    l += '\n';
    if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::perror("write");
  };
  e.on_finished = [](JobState s, const std::string& r) { std::fprintf(stderr, "%s %s\n", to_string(s), r.c_str()); };
  try {
    JobController job(fake_plan(argv[2], std::stoi(argv[3]), std::stoi(argv[4]), o), e);
    job.launch();
    while (!job.wait_for(std::chrono::seconds(1))) {
    }
    return job.state() == JobState::completed ? 0 : 1;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "remote_test_client: %s\n", ex.what());
    return 1;
  }
}
