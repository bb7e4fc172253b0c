# Locates Tether's dependencies. Debian ships no CMake config for CAF 0.17, xxHash,
# Snappy and RE2; TetherImportedTargets.cmake (installed with the CMake package too)
# wraps them in imported targets caf::core, caf::io, caf::openssl, xxhash::xxhash,
# snappy::snappy and re2::re2.

include(TetherImportedTargets)
tether_import_dependencies(CAF_PARTS core io openssl)
if(TETHER_MISSING_DEPENDENCIES)
  message(FATAL_ERROR "Tether: not found: ${TETHER_MISSING_DEPENDENCIES} "
                      "(bash tools/setup.sh installs every build dependency)")
endif()

find_package(Threads REQUIRED)
# The same minimum versions go into the installed TetherConfig.cmake.
set(TETHER_BOOST_MIN_VERSION 1.81)
set(TETHER_PROTOBUF_MIN_VERSION 3.21)
find_package(Boost ${TETHER_BOOST_MIN_VERSION} REQUIRED)
# Boost.JSON (compiled, Debian libboost-json1.81-dev) reads rules files, the tools'
# JSON and the gateway's; Tether::actors links it.
find_package(boost_json ${TETHER_BOOST_MIN_VERSION} CONFIG QUIET)
if(NOT TARGET Boost::json)
  message(FATAL_ERROR "Tether: not found: Boost.JSON >= ${TETHER_BOOST_MIN_VERSION} "
                      "(Debian libboost-json1.81-dev; bash tools/setup.sh installs it)")
endif()
# Boost.URL (compiled, Debian libboost-url1.81-dev) parses the gateway's request
# targets; only tetherd links it, so the installed package does not need it.
find_package(boost_url ${TETHER_BOOST_MIN_VERSION} CONFIG QUIET)
if(NOT TARGET Boost::url)
  message(FATAL_ERROR "Tether: not found: Boost.URL >= ${TETHER_BOOST_MIN_VERSION} "
                      "(Debian libboost-url1.81-dev; bash tools/setup.sh installs it)")
endif()
find_package(Protobuf ${TETHER_PROTOBUF_MIN_VERSION} REQUIRED)
find_package(Catch2 2.13 REQUIRED)
# CLI11 (header-only, Debian libcli11-dev) parses the tools' command lines.
find_package(CLI11 2.1 QUIET)
if(NOT CLI11_FOUND)
  message(FATAL_ERROR "Tether: not found: CLI11 >= 2.1 for tetherctl and tether-load "
                      "(Debian libcli11-dev; bash tools/setup.sh installs it)")
endif()

# Debian's python3 with its websocket and protobuf modules runs the integration tests,
# whatever python3 comes first on PATH.
find_program(TETHER_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT TETHER_PYTHON)
  find_program(TETHER_PYTHON NAMES python3 REQUIRED)
endif()
