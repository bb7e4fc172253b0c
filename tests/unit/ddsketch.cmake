list(APPEND TETHER_UNIT_TEST_SOURCES ${PROJECT_SOURCE_DIR}/libactors/series/ddsketch.test.cpp)
