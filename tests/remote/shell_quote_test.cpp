// shell_quote: exact strings for the shape of hard cases, and a local /bin/sh round trip of
// hostile strings (the remote round trip is in exec_test.cpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "error.h"
#include "shell_quote.h"

using moe::remote::shell_join;
using moe::remote::shell_quote;

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
          "unicode é 漢字 \xff\x01 bytes"};
}

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
}
