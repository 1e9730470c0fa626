#pragma once
// A thin, checked RAII layer over the SQLite C API: one connection (Db), one prepared statement
// (Stmt), one write transaction (WriteTxn). Every call is checked; a failure throws moe::Error
// with a one-line message naming the database file, what was being done and SQLite's reason.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace moe::store {

class Db {
 public:
  enum class Mode { read_write, read_only };
  // Opens (read_write: creates) the file and sets the connection's pragmas (WAL, synchronous=NORMAL,
  // foreign keys, busy timeout). Does not touch the schema: see store_schema.h.
  Db(const std::string& path, Mode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  Mode mode() const { return mode_; }

  void exec(const std::string& sql, const char* what);  // runs one or more statements, no results
  int64_t pragma_int(const std::string& name);          // "PRAGMA name" → its integer value
  int64_t last_insert_rowid() const;
  int64_t changes() const;

  // Throws "FILE: WHAT: sqlite's message" when rc is an error code.
  void check(int rc, const char* what) const;
  [[noreturn]] void fail(int rc, const char* what) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  Mode mode_;
};

class Stmt {
 public:
  Stmt(Db& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binding is 1-based, as in SQLite.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view text);
  Stmt& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Stmt& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Stmt& bind_blob(int i, const void* data, size_t size);
  Stmt& bind_null(int i);

  bool step();        // true: a row is ready; false: done. Throws on error.
  void run();         // step() once for a statement without results, then reset()
  void reset();       // ready to run again (bindings kept)

  // Columns are 0-based, as in SQLite.
  bool is_null(int c) const;
  int64_t col_int(int c) const;
  double col_double(int c) const;  // NULL → NaN
  std::string col_text(int c) const;
  std::span<const uint8_t> col_blob(int c) const;

 private:
  Db& db_;
  sqlite3_stmt* st_ = nullptr;
  const char* sql_;
};

// BEGIN IMMEDIATE … COMMIT; rolls back when destroyed without commit() (an exception unwinding).
class WriteTxn {
 public:
  explicit WriteTxn(Db& db);
  ~WriteTxn();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

// BEGIN (deferred) … COMMIT around several SELECTs, so they see one snapshot of a WAL database.
class ReadTxn {
 public:
  explicit ReadTxn(Db& db);
  ~ReadTxn();

 private:
  Db& db_;
  bool owner_ = false;
};

}  // namespace moe::store
