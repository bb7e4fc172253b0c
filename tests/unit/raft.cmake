# Unit tests of libactors/directory/raft (the Raft consensus core of the directory
# and its durable storage). Appended to tether_unit_tests by tests/CMakeLists.txt;
# the sources are built into tether_core (libactors/CMakeLists.txt).
list(APPEND TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/libactors/directory/raft/raft_node.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/directory/raft/raft_storage.test.cpp
)
