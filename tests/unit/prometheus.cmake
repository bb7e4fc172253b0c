# Unit tests of libactors/prometheus (remote write and text exposition). Appended to
# tether_unit_tests by tests/CMakeLists.txt, which links TETHER_UNIT_TEST_EXTRA_LIBS.
list(APPEND TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/libactors/prometheus/remote_write.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/prometheus/exposition.test.cpp
  ${PROJECT_SOURCE_DIR}/libactors/prometheus/metadata_memory.test.cpp
)
set(TETHER_UNIT_TEST_EXTRA_LIBS tether_prometheus)
