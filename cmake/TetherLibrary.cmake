# tether_library(<target> SOURCES <files...> DEPENDS <targets...>
#                [PRIVATE_DEPENDS <targets...>])
#
# The library of one libactors/ folder, declared in that folder's CMakeLists.txt.
# The folder's unit tests (every `*.test.cpp` in it and below) are registered with it:
# tests/CMakeLists.txt builds them all into tether_unit_tests, and a new test file is
# built and run without being listed anywhere.
# DEPENDS names the folders' libraries (and outside libraries) its code uses; they
# are the only folders its headers and sources may include from, besides itself and
# the public headers (tether/...). The layering test (tests/structure/) checks every
# include against what is declared here: CMake writes the declared graph to
# <build>/libactors/layering.txt.
function(tether_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/libactors>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/libactors/include>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPENDS})
  if(ARG_PRIVATE_DEPENDS)
    target_link_libraries(${name} PRIVATE ${ARG_PRIVATE_DEPENDS})
  endif()
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  file(RELATIVE_PATH folder ${PROJECT_SOURCE_DIR}/libactors ${CMAKE_CURRENT_SOURCE_DIR})
  set(deps)
  foreach(d IN LISTS ARG_DEPENDS ARG_PRIVATE_DEPENDS)
    if(d MATCHES "^tether_")
      list(APPEND deps ${d})
    endif()
  endforeach()
  list(JOIN deps " " deps)
  set_property(GLOBAL APPEND PROPERTY TETHER_LAYERING "${folder} ${name}: ${deps}")
  set_property(GLOBAL APPEND PROPERTY TETHER_FOLDER_LIBRARIES ${name})
  file(GLOB_RECURSE tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.test.cpp)
  set_property(GLOBAL APPEND PROPERTY TETHER_UNIT_TEST_SOURCES ${tests})
endfunction()
