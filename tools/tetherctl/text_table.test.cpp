#include "tetherctl/text_table.hpp"

#include <catch2/catch.hpp>

using tether::tools::ctl::display_width;
using tether::tools::ctl::text_table;

TEST_CASE("text_table: pads columns to the widest cell") {
  text_table t{{"NAME", "STATE", "SERIES"},
               {text_table::align::left, text_table::align::left, text_table::align::right}};
  t.add_row({"tether-0", "up", "123"});
  t.add_row({"n1", "down", "45678"});
  CHECK(t.rows() == 2);
  CHECK(t.render()
        == "NAME      STATE  SERIES\n"
           "tether-0  up        123\n"
           "n1        down    45678\n");
}

TEST_CASE("text_table: no header, ragged rows, no trailing blanks") {
  text_table t;
  t.add_row({"a", "bb"});
  t.add_row({"ccc"});
  CHECK(t.render() == "a    bb\nccc\n");
  CHECK(t.render(" | ") == "a   | bb\nccc |\n");
}

TEST_CASE("text_table: an empty table renders its header only") {
  CHECK(text_table{{"A", "B"}}.render() == "A  B\n");
  CHECK(text_table{}.render().empty());
}

TEST_CASE("text_table: widths count code points, not bytes") {
  CHECK(display_width("abc") == 3);
  CHECK(display_width("\xc3\xa9t\xc3\xa9") == 3);
  text_table t;
  t.add_row({"\xc3\xa9", "x"});
  t.add_row({"ab", "y"});
  CHECK(t.render() == "\xc3\xa9   x\nab  y\n");
}
