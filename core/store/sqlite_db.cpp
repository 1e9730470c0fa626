// Checked SQLite calls: see sqlite_db.h.
#include "sqlite_db.h"

#include <sqlite3.h>

#include <cmath>
#include <limits>

#include "error.h"

namespace moe::store {

namespace {

std::string reason(sqlite3* db, int rc) {
  std::string r = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // errmsg can lag behind rc (e.g. after a failed open); fall back to the code's text.
  if (r.empty() || r == "not an error") r = sqlite3_errstr(rc);
  return r;
}

}  // namespace

Db::Db(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == Mode::read_write ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = reason(db_, rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path + ": cannot open the run store: " + why);
  }
  sqlite3_extended_result_codes(db_, 1);
  // SQLite quietly opens a write-protected file read-only; a writer must know at once.
  if (mode == Mode::read_write && sqlite3_db_readonly(db_, "main") == 1) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path + ": cannot write the run store: the file or its file system is read-only");
  }
  check(sqlite3_busy_timeout(db_, 10000), "setting the busy timeout");
  // A read on an unreadable or non-database file fails here, with a clear message.
  exec("PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;"
       " PRAGMA mmap_size=268435456;",
       "setting connection pragmas");
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

void Db::fail(int rc, const char* what) const {
  throw Error(path_ + ": " + what + ": " + reason(db_, rc));
}

void Db::check(int rc, const char* what) const {
  if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, what);
}

void Db::exec(const std::string& sql, const char* what) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) {
    std::string why = msg ? msg : sqlite3_errstr(rc);
    sqlite3_free(msg);
    throw Error(path_ + ": " + what + ": " + why);
  }
}

int64_t Db::pragma_int(const std::string& name) {
  std::string sql = "PRAGMA " + name;
  Stmt st(*this, sql.c_str());
  if (!st.step()) fail(SQLITE_ERROR, "reading a pragma");
  return st.col_int(0);
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int64_t Db::changes() const { return sqlite3_changes64(db_); }

Stmt::Stmt(Db& db, const char* sql) : db_(db), sql_(sql) {
  db_.check(sqlite3_prepare_v2(db.handle(), sql, -1, &st_, nullptr), "preparing a statement");
}

Stmt::~Stmt() { sqlite3_finalize(st_); }

Stmt& Stmt::bind(int i, int64_t v) {
  db_.check(sqlite3_bind_int64(st_, i, v), "binding a value");
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  // SQLite stores NaN as NULL; keep that explicit.
  if (std::isnan(v)) return bind_null(i);
  db_.check(sqlite3_bind_double(st_, i, v), "binding a value");
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view text) {
  db_.check(sqlite3_bind_text64(st_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
            "binding a value");
  return *this;
}

Stmt& Stmt::bind_blob(int i, const void* data, size_t size) {
  // A zero-length blob must still be a blob, not NULL: pass a non-null pointer.
  static const uint8_t empty = 0;
  db_.check(sqlite3_bind_blob64(st_, i, size ? data : &empty, size, SQLITE_TRANSIENT),
            "binding a value");
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  db_.check(sqlite3_bind_null(st_, i), "binding a value");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(st_);
  db_.fail(rc, "running a statement");
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() { sqlite3_reset(st_); }

bool Stmt::is_null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
int64_t Stmt::col_int(int c) const { return sqlite3_column_int64(st_, c); }

double Stmt::col_double(int c) const {
  if (is_null(c)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(st_, c);
}

std::string Stmt::col_text(int c) const {
  const unsigned char* p = sqlite3_column_text(st_, c);
  int n = sqlite3_column_bytes(st_, c);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::span<const uint8_t> Stmt::col_blob(int c) const {
  const void* p = sqlite3_column_blob(st_, c);
  int n = sqlite3_column_bytes(st_, c);
  return {static_cast<const uint8_t*>(p), static_cast<size_t>(p ? n : 0)};
}

WriteTxn::WriteTxn(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE", "starting a write transaction"); }

WriteTxn::~WriteTxn() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void WriteTxn::commit() {
  db_.exec("COMMIT", "committing a write transaction");
  done_ = true;
}

ReadTxn::ReadTxn(Db& db) : db_(db) {
  // Nested use (a query calling another) joins the outer snapshot.
  if (sqlite3_get_autocommit(db_.handle()) == 0) return;
  db_.exec("BEGIN", "starting a read transaction");
  owner_ = true;
}

ReadTxn::~ReadTxn() {
  if (owner_) sqlite3_exec(db_.handle(), "COMMIT", nullptr, nullptr, nullptr);
}

}  // namespace moe::store
