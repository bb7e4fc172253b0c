#include "keys/utf8.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace tether::keys;

TEST_CASE("valid_utf8 accepts well-formed text and refuses the rest", "[keys][utf8]") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xc3"));             // truncated
  CHECK_FALSE(valid_utf8("\xc0\xaf"));         // overlong
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));     // surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(valid_utf8("\x80"));             // lone continuation byte
}

TEST_CASE("append_printable escapes invalid bytes and controls", "[keys][utf8]") {
  std::string out;
  append_printable(out, "a\xc3" "b\n\xe2\x82\xac");
  CHECK(out == "a\\xc3b\\x0a\xe2\x82\xac");
  CHECK(valid_utf8(out));
}

TEST_CASE("append_printable cuts on a character boundary", "[keys][utf8]") {
  // 63 ASCII bytes, then a two-byte character across the 64-byte cut.
  std::string text(63, 'x');
  text += "\xc3\xa9tail";
  auto q = quoted(text);
  CHECK(valid_utf8(q));
  CHECK(q == "'" + std::string(63, 'x') + "...'");
}

TEST_CASE("sanitised passes valid text through and repairs the rest", "[keys][utf8]") {
  CHECK(sanitised("fine \xc3\xa9") == "fine \xc3\xa9");
  CHECK(sanitised("bad \xff") == "bad \\xff");
  std::string long_text(2000, 'y');
  auto cut = sanitised(long_text, 1024);
  CHECK(cut.size() == 1027);
  CHECK(cut.substr(1024) == "...");
  std::string multi;
  for (int i = 0; i < 600; ++i)
    multi += "\xc3\xa9";
  CHECK(valid_utf8(sanitised(multi, 1023)));
}
