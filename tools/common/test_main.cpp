// Entry point of tether_tools_test; the test cases live in the *.test.cpp files.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
