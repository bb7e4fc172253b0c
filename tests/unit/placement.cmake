# Unit tests of libactors/directory/placement (deterministic, sticky slice placement)
# and of the failover election's decision (election).
# Appended to tether_unit_tests by tests/CMakeLists.txt.
list(APPEND TETHER_UNIT_TEST_SOURCES ${PROJECT_SOURCE_DIR}/libactors/directory/placement.test.cpp
     ${PROJECT_SOURCE_DIR}/libactors/directory/election.test.cpp)
