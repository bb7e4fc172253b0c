# Unit tests of libactors/outputs/remote_write_sender (the remote-write HTTP sender).
# Appended to tether_unit_tests by tests/CMakeLists.txt.
list(APPEND TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/libactors/outputs/remote_write_sender.test.cpp
)
