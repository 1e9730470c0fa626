// A helper process for the crash test: ingests a stream file slowly into a run and prints
// "committed N" after every commit, so the test can kill -9 it mid-ingest and know what was committed.
// usage: store_ingest_child DB STREAM_FILE
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "error.h"
#include "ingestor.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: store_ingest_child DB STREAM_FILE\n");
    return 2;
  }
  try {
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string stream = ss.str();
    int64_t run;
    {
      moe::store::RunStore store(argv[1]);
      run = store.create_run("");
    }
    moe::store::IngestOptions opt;
    opt.flush_interval = std::chrono::milliseconds(5);
    opt.batch_rows = 100;
    opt.on_commit = [](const moe::store::BatchResult&, int64_t total) {
      std::printf("committed %lld\n", static_cast<long long>(total));
      std::fflush(stdout);
    };
    moe::store::Ingestor ing(argv[1], run, opt);
    for (size_t i = 0; i < stream.size(); i += 4096) {
      ing.feed(std::string_view(stream).substr(i, 4096));
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    ing.finish();
    std::printf("finished\n");
  } catch (const moe::Error& e) {
    std::fprintf(stderr, "store_ingest_child: %s\n", e.what());
    return 1;
  }
  return 0;
}
