# Imported targets for the dependencies that Debian ships without CMake package files:
# CAF 0.17 (caf::core, caf::io, caf::openssl), xxHash (xxhash::xxhash), Snappy
# (snappy::snappy) and RE2 (re2::re2; bookworm's libre2-dev has only a pkg-config
# file). Tether's own build (TetherDependencies.cmake) and the installed CMake package
# (TetherConfig.cmake) both use it, so that an embedder links the same libraries as
# tetherd.
#
#   tether_import_dependencies(CAF_PARTS core io [openssl])
#
# defines every target that does not exist yet in the calling directory and sets
# TETHER_MISSING_DEPENDENCIES to the headers and libraries it could not find (empty
# when all were found). It never fails by itself: the caller decides.

macro(_tether_import_library target header)
  # ARGN: library names; cached as e.g. CAF_CORE_INCLUDE_DIR and CAF_CORE_LIBRARY.
  if(NOT TARGET ${target})
    string(REPLACE "::" "_" _tether_var ${target})
    string(TOUPPER ${_tether_var} _tether_var)
    find_path(${_tether_var}_INCLUDE_DIR ${header})
    find_library(${_tether_var}_LIBRARY NAMES ${ARGN})
    if(NOT ${_tether_var}_INCLUDE_DIR)
      list(APPEND TETHER_MISSING_DEPENDENCIES ${header})
    elseif(NOT ${_tether_var}_LIBRARY)
      list(APPEND TETHER_MISSING_DEPENDENCIES lib${ARGV2})
    else()
      add_library(${target} UNKNOWN IMPORTED)
      set_target_properties(${target} PROPERTIES
        IMPORTED_LOCATION ${${_tether_var}_LIBRARY}
        INTERFACE_INCLUDE_DIRECTORIES ${${_tether_var}_INCLUDE_DIR})
    endif()
  endif()
endmacro()

macro(tether_import_dependencies)
  cmake_parse_arguments(_tether_deps "" "" "CAF_PARTS" ${ARGN})
  set(TETHER_MISSING_DEPENDENCIES "")
  set(_tether_previous "")
  foreach(_tether_part IN LISTS _tether_deps_CAF_PARTS)
    _tether_import_library(caf::${_tether_part} caf/all.hpp caf_${_tether_part})
    # caf::io needs caf::core, caf::openssl needs caf::io: each links the one before.
    if(_tether_previous AND TARGET caf::${_tether_part} AND TARGET ${_tether_previous})
      get_target_property(_tether_links caf::${_tether_part} INTERFACE_LINK_LIBRARIES)
      if(NOT _tether_links)
        set_property(TARGET caf::${_tether_part} APPEND PROPERTY
          INTERFACE_LINK_LIBRARIES ${_tether_previous})
      endif()
    endif()
    set(_tether_previous caf::${_tether_part})
  endforeach()
  _tether_import_library(xxhash::xxhash xxhash.h xxhash)
  _tether_import_library(snappy::snappy snappy.h snappy)
  _tether_import_library(re2::re2 re2/re2.h re2)
  list(REMOVE_DUPLICATES TETHER_MISSING_DEPENDENCIES)
endmacro()
