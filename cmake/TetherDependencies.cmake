# Locates Tether's dependencies. Debian ships no CMake config for CAF 0.17, so it is
# found by hand and wrapped in imported targets caf::core, caf::io, caf::openssl.

find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
foreach(part core io openssl)
  find_library(CAF_${part}_LIBRARY NAMES caf_${part} REQUIRED)
  add_library(caf::${part} SHARED IMPORTED)
  set_target_properties(caf::${part} PROPERTIES
    IMPORTED_LOCATION ${CAF_${part}_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR})
endforeach()
set_property(TARGET caf::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES caf::core)
set_property(TARGET caf::openssl APPEND PROPERTY INTERFACE_LINK_LIBRARIES caf::io)

find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(Protobuf 3.21 REQUIRED)
find_package(Catch2 2.13 REQUIRED)

find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
add_library(xxhash::xxhash UNKNOWN IMPORTED)
set_target_properties(xxhash::xxhash PROPERTIES
  IMPORTED_LOCATION ${XXHASH_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${XXHASH_INCLUDE_DIR})

find_path(SNAPPY_INCLUDE_DIR snappy.h REQUIRED)
find_library(SNAPPY_LIBRARY NAMES snappy REQUIRED)
add_library(snappy::snappy UNKNOWN IMPORTED)
set_target_properties(snappy::snappy PROPERTIES
  IMPORTED_LOCATION ${SNAPPY_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${SNAPPY_INCLUDE_DIR})

# Debian's python3 with its websocket and protobuf modules runs the integration tests,
# whatever python3 comes first on PATH.
find_program(TETHER_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT TETHER_PYTHON)
  find_program(TETHER_PYTHON NAMES python3 REQUIRED)
endif()
