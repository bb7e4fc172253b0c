#include "tetherctl/url_encode.hpp"

#include <catch2/catch.hpp>

using tether::tools::ctl::url_encode;

TEST_CASE("url_encode: unreserved characters pass through") {
  CHECK(url_encode("") == "");
  CHECK(url_encode("http_requests_total") == "http_requests_total");
  CHECK(url_encode("AZaz09-._~") == "AZaz09-._~");
}

TEST_CASE("url_encode: series key syntax is percent-encoded") {
  CHECK(url_encode(R"(http_requests_total{code="200",method="get"})")
        == "http_requests_total%7Bcode%3D%22200%22%2Cmethod%3D%22get%22%7D");
  CHECK(url_encode("a b+c&d=e?f#g/h%i:j") == "a%20b%2Bc%26d%3De%3Ff%23g%2Fh%25i%3Aj");
}

TEST_CASE("url_encode: bytes above 0x7f and control bytes are encoded per byte") {
  CHECK(url_encode("\xc3\xa9") == "%C3%A9");
  CHECK(url_encode(std::string_view{"\0\n", 2}) == "%00%0A");
}
