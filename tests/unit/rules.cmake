# Unit tests of libactors/rules (the rule set of the cardinality shield). Appended to
# tether_unit_tests by tests/CMakeLists.txt.
list(APPEND TETHER_UNIT_TEST_SOURCES ${PROJECT_SOURCE_DIR}/libactors/rules/rule_set.test.cpp)
