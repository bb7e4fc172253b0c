# Unit tests of libactors/directory/replicated_directory (the directory as a
# Raft-replicated state machine of CAF actors). Appended to tether_unit_tests by
# tests/CMakeLists.txt; the sources are built into tether_actors
# (libactors/CMakeLists.txt).
list(APPEND TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/libactors/directory/replicated_directory.test.cpp
)
