// The file itself: migrations from an older schema, refusal of a newer one, read-only and full
// disks, and names and tags that look like SQL stored verbatim.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "run_reader.h"
#include "store_schema.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

using test::TempDir;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Schema, NewFileIsWalAtTheCurrentVersion) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  RunStore store(db);
  EXPECT_EQ(store.db().pragma_int("user_version"), kSchemaVersion);
  Stmt jm(store.db(), "PRAGMA journal_mode");
  ASSERT_TRUE(jm.step());
  EXPECT_EQ(jm.col_text(0), "wal");
  EXPECT_EQ(store.db().pragma_int("synchronous"), 1);  // NORMAL
  EXPECT_EQ(store.db().pragma_int("foreign_keys"), 1);
}

TEST(Schema, OlderVersionMigratesAndKeepsItsRows) {
  TempDir dir;
  const std::string db = dir.file("old.sqlite");
  {
    // A version-1 file as an older build left it: no run_summary yet.
    Db old(db, Db::Mode::read_write);
    migrate(old, 1);
    old.exec("INSERT INTO runs(id, name, created_at) VALUES(7, 'old run', '2026-01-01T00:00:00Z');"
             "INSERT INTO steps(run_id, step, loss, tokens) VALUES(7, 1, 4.0, 100), (7, 2, 3.5, 100);"
             "INSERT INTO events(run_id, at, kind, message) VALUES(7, 'x', 'malformed', 'line 3: bad');",
             "writing an old file");
    EXPECT_EQ(old.pragma_int("user_version"), 1);
  }
  EXPECT_NE(error_of([&] { RunReader r(db); }).find("open it once read-write"), std::string::npos);
  {
    RunStore store(db);
    EXPECT_EQ(store.db().pragma_int("user_version"), kSchemaVersion);
  }
  RunReader reader(db);
  RunInfo info = reader.run(7);
  EXPECT_EQ(info.name, "old run");
  EXPECT_EQ(info.n_steps, 2);
  EXPECT_EQ(info.last_step, 2);
  EXPECT_DOUBLE_EQ(info.last_loss, 3.5);
  EXPECT_EQ(info.total_tokens, 200);
  EXPECT_EQ(info.malformed_lines, 1);
  Stmt ic(reader.db(), "PRAGMA integrity_check");
  ASSERT_TRUE(ic.step());
  EXPECT_EQ(ic.col_text(0), "ok");
}

TEST(Schema, NewerVersionIsRefusedWithAClearMessage) {
  TempDir dir;
  const std::string db = dir.file("new.sqlite");
  {
    RunStore store(db);
    store.db().exec("PRAGMA user_version=" + std::to_string(kSchemaVersion + 5), "pretending to be newer");
  }
  std::string w = error_of([&] { RunStore s(db); });
  std::string r = error_of([&] { RunReader s(db); });
  for (const std::string& msg : {w, r}) {
    EXPECT_NE(msg.find(db), std::string::npos) << msg;
    EXPECT_NE(msg.find("newer than this build"), std::string::npos) << msg;
  }
}

TEST(Schema, NotADatabaseIsAClearError) {
  TempDir dir;
  const std::string db = dir.file("notes.txt");
  test::write_file(db, std::string(5000, 'z'));
  std::string msg = error_of([&] { RunStore s(db); });
  EXPECT_NE(msg.find(db), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a database"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { RunReader s(dir.file("missing.sqlite")); }).find("cannot open"), std::string::npos);
}

TEST(Faults, ReadOnlyConnectionCannotWrite) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  { RunStore store(db); store.create_run("r"); }
  RunReader reader(db);
  std::string msg = error_of([&] { reader.db().exec("DELETE FROM runs", "deleting"); });
  EXPECT_NE(msg.find(db), std::string::npos);
  EXPECT_NE(msg.find("readonly"), std::string::npos) << msg;
}

TEST(Faults, WriteProtectedFileGivesAClearError) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  { RunStore store(db); store.create_run("r"); }
  ASSERT_EQ(::chmod(db.c_str(), 0444), 0);
  // Root ignores file modes: check as an unprivileged user in a child process.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(3);
    std::string msg = "no error";
    try {
      RunStore store(db);
      store.create_run("must fail");
    } catch (const Error& e) {
      msg = e.what();
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child could not drop privileges";
  EXPECT_NE(msg.find(db), std::string::npos) << msg;
  EXPECT_NE(msg.find("read-only"), std::string::npos) << msg;
}

TEST(Faults, FullDiskStopsIngestWithAClearErrorAndKeepsCommittedBatches) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  int64_t run, pages;
  {
    RunStore store(db);
    run = store.create_run("");
    pages = store.db().pragma_int("page_count");
  }
  IngestOptions opt;
  opt.store.max_page_count = pages + 6;  // ~100 KB more
  // Small transactions, so some commit before the disk is full. batch_rows only wakes the writer;
  // a writer that wakes late (a loaded machine) takes the whole queue as one batch, so the queue
  // is bounded too (the flake hunt saw a first batch over 100 KB: nothing committed).
  opt.batch_rows = 64;
  opt.max_queue_rows = 64;
  int64_t committed = 0;
  opt.on_commit = [&](const BatchResult&, int64_t total) { committed = total; };
  SyntheticShape shape{.steps = 400, .layers = 4, .experts = 64, .ranks = 0};
  std::string msg;
  try {
    Ingestor ing(db, run, opt);
    std::string stream = synthetic_stream(shape);
    for (size_t i = 0; i < stream.size(); i += 8192) ing.feed(std::string_view(stream).substr(i, 8192));
    ing.finish();
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find(db), std::string::npos) << msg;
  EXPECT_NE(msg.find("full"), std::string::npos) << msg;
  ASSERT_GT(committed, 0);
  RunReader reader(db);
  Stmt ic(reader.db(), "PRAGMA integrity_check");
  ASSERT_TRUE(ic.step());
  EXPECT_EQ(ic.col_text(0), "ok");
  Stmt n(reader.db(), "SELECT (SELECT count(*) FROM steps) + (SELECT count(*) FROM expert_load) + "
                      "(SELECT has_run_start FROM runs WHERE id = ?1)");
  n.bind(1, run);
  ASSERT_TRUE(n.step());
  EXPECT_EQ(n.col_int(0), committed);
}

TEST(Faults, NamesAndTagsWithQuotesAndSqlAreStoredVerbatim) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const std::string name = "it's a \"run\"; DROP TABLE runs; --";
  const std::string tag = "'); DELETE FROM run_tags; --";
  const std::string notes = "50% done \\ ` $x ?1 :a @b";
  int64_t run;
  {
    RunStore store(db);
    run = store.create_run(name);
    store.add_tag(run, tag);
    store.add_tag(run, "plain");
    store.set_notes(run, notes);
  }
  RunReader reader(db);
  RunInfo info = reader.run(run);
  EXPECT_EQ(info.name, name);
  EXPECT_EQ(info.tags, (std::vector<std::string>{"'); DELETE FROM run_tags; --", "plain"}));
  EXPECT_EQ(info.notes, notes);
  EXPECT_EQ(reader.find_run(name), run);
  {
    RunStore store(db);
    store.remove_tag(run, tag);
  }
  EXPECT_EQ(reader.run(run).tags, (std::vector<std::string>{"plain"}));
}

TEST(Runs, DeleteRemovesEveryRowOfTheRun) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 5, .layers = 2, .experts = 4, .ranks = 2};
  int64_t a = test::ingest_string(db, synthetic_stream(shape));
  int64_t b = test::ingest_string(db, synthetic_stream(shape));
  { RunStore store(db); store.delete_run(a); }
  RunReader reader(db);
  for (const char* table : {"steps", "expert_load", "a2a", "run_summary"}) {
    std::string sql = std::string("SELECT count(*) FROM ") + table + " WHERE run_id = ?1";
    Stmt st(reader.db(), sql.c_str());
    st.bind(1, a);
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.col_int(0), 0) << table;
    st.reset();
    st.bind(1, b);
    ASSERT_TRUE(st.step());
    EXPECT_GT(st.col_int(0), 0) << table;
  }
  EXPECT_THROW(reader.run(a), Error);
}

}  // namespace
}  // namespace moe::store
