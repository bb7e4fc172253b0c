#include "gateway/query.hpp"

#include <catch2/catch.hpp>

using tether::gateway::query_value;

TEST_CASE("query_value: percent escapes and '+' are decoded") {
  auto key = query_value("/v1/series?key=up%7Bjob%3D%22a+b%22%7D&local=true", "key");
  REQUIRE(key);
  CHECK(*key == "up{job=\"a b\"}");
  CHECK(query_value("/v1/series?key=a&local=true", "local") == "true");
  CHECK(query_value("/v1/series?key=%2B%25", "key") == "+%");
  // Bytes above 0x7f arrive as escapes of their UTF-8 bytes.
  CHECK(query_value("/v1/series?key=%C3%A9", "key") == "\xc3\xa9");
}

TEST_CASE("query_value: absent, empty and repeated parameters") {
  CHECK_FALSE(query_value("/v1/series", "key"));
  CHECK_FALSE(query_value("/v1/series?", "key"));
  CHECK_FALSE(query_value("/v1/series?keys=a", "key"));
  CHECK_FALSE(query_value("/v1/series?xkey=a", "key"));
  CHECK(query_value("/v1/series?key=", "key") == "");
  CHECK(query_value("/v1/series?key", "key") == "");
  CHECK(query_value("/v1/admin/move?slice=3&node=a&slice=4", "slice") == "3");
  CHECK(query_value("/v1/admin/move?node=a&slice=4", "slice") == "4");
}

TEST_CASE("query_value: targets that are not valid URLs give nothing") {
  CHECK_FALSE(query_value("/v1/series?key=%", "key"));
  CHECK_FALSE(query_value("/v1/series?key=%4", "key"));
  CHECK_FALSE(query_value("/v1/series?key=%zz", "key"));
  CHECK_FALSE(query_value("/v1/series?key=up{job=\"a\"}", "key"));
  CHECK_FALSE(query_value("/v1/series?key=a b", "key"));
  CHECK_FALSE(query_value("v1/series?key=a", "key")); // not origin form
}
