// shell_quote: exact strings for the shape of hard cases, and a local /bin/sh round trip of
// hostile strings (the remote round trip is in exec_test.cpp).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "error.h"
#include "shell_quote.h"

using moe::remote::shell_join;
using moe::remote::shell_quote;

std::string pwned_marker();

std::vector<std::string> hostile_strings() {
  return {"",
          "plain",
          "with space",
          "two  spaces\tand tab",
          "single'quote",
          "''",
          "double\"quote",
          "$HOME and ${PATH} and $(id) and `id`",
          "semi; rm -rf /tmp/nothing-here; echo",
          "new\nline\n",
          "back\\slash\\",
          "glob * ? [a-z] ~root",
          "amp & pipe | redirect > /dev/null <",
          "!history #comment",
          "-n",
          "unicode é 漢字 \xff\x01 bytes",
          // The hostile-input set of docs/reliability.md (the marker must never be created).
          "a'b\"c",
          "$(touch " + pwned_marker() + ")",
          "`touch " + pwned_marker() + "`",
          "x; rm -rf ~",
          "two words",
          "line1\nline2",
          "tab\there",
          "ünïcødé ✓ 日本",
          "%d %s %1 %%",
          "'$(touch " + pwned_marker() + ")'\\",
          "\r\x1b[2J\x7f"};
}

// A file only a shell that ran a hostile string as code would create.
std::string pwned_marker() { return "/tmp/moe-pwned-quote-" + std::to_string(::getpid()); }

TEST(ShellQuote, WrapsInSingleQuotes) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$x;y\nz"), "'$x;y\nz'");
  EXPECT_EQ(shell_join({"a", "b c", ""}), "'a' 'b c' ''");
  EXPECT_THROW(shell_quote(std::string("nul\0byte", 8)), moe::Error);
}

TEST(ShellQuote, LocalShellRoundTrip) {
  for (const std::string& s : hostile_strings()) {
    const std::string cmd = "printf %s " + shell_quote(s);
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << cmd;
    EXPECT_EQ(out, s) << "quoted as " << shell_quote(s);
  }
  EXPECT_FALSE(std::filesystem::exists(pwned_marker())) << "a quoted string ran as a command";
}

// Every byte that is special to sh is inside the quotes: the quoted form holds nothing outside a
// '…' pair but the escaped quote \', so sh cannot see a metacharacter.
TEST(ShellQuote, NothingOutsideTheQuotesButEscapedQuotes) {
  for (const std::string& s : hostile_strings()) {
    const std::string q = shell_quote(s);
    bool inside = false;
    for (size_t i = 0; i < q.size(); ++i) {
      if (q[i] == '\'') {
        inside = !inside;
      } else if (!inside) {
        ASSERT_EQ(q.compare(i, 2, "\\'"), 0) << "unquoted byte " << int(q[i]) << " at " << i << " in " << q;
        ++i;  // the escaped quote
      }
    }
    EXPECT_FALSE(inside) << q;
  }
}
