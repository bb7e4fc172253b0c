# Unit tests of tetherd's dashboard (services/tetherd/dashboard/) and gateway, built
# into tether_unit_tests by tests/CMakeLists.txt with the gateway library linked.
list(APPEND TETHER_UNIT_TEST_SOURCES
  ${PROJECT_SOURCE_DIR}/services/tetherd/dashboard/rate_history.test.cpp
  ${PROJECT_SOURCE_DIR}/services/tetherd/gateway_options.test.cpp
  ${PROJECT_SOURCE_DIR}/services/tetherd/log_limiter.test.cpp
  ${PROJECT_SOURCE_DIR}/services/tetherd/write_status.test.cpp
)
list(APPEND TETHER_UNIT_TEST_EXTRA_LIBS tether_gateway)
