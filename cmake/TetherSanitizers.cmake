# Sanitizer and fuzzing builds (docs/security.md, "Fuzzing"). Both are off by default
# and leave the default build unchanged.
#
#   TETHER_SANITIZE  every target with AddressSanitizer and UndefinedBehaviorSanitizer;
#                    undefined behaviour aborts (-fno-sanitize-recover). GCC or clang.
#   TETHER_FUZZ      the libFuzzer harnesses of tests/fuzz (targets fuzz_*, all of them
#                    behind the target fuzz_harnesses). Needs clang with libFuzzer
#                    (Debian: clang-15, libfuzzer-15-dev). Implies TETHER_SANITIZE, and
#                    every library is built with libFuzzer's coverage instrumentation.

option(TETHER_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TETHER_FUZZ "Build the libFuzzer harnesses of tests/fuzz (clang)" OFF)

if(TETHER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TETHER_FUZZ needs clang with libFuzzer, e.g. "
                        "-DCMAKE_CXX_COMPILER=clang++-15 (Debian clang-15 and "
                        "libfuzzer-15-dev; tools/setup.sh installs them)")
  endif()
  set(TETHER_SANITIZE ON CACHE BOOL "" FORCE)
endif()

if(TETHER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(TETHER_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
