# ward_library(NAME SRCS ... DEPS ...)
#   One static library per module, named ward_<NAME>, with includes rooted at src/.
function(ward_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(ward_${name} STATIC ${ARG_SRCS})
  target_include_directories(ward_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(ward_${name} PUBLIC ${ARG_DEPS})
endfunction()

# ward_test(NAME SRCS ... DEPS ...)
#   A GoogleTest binary registered with CTest. Tests run from a fresh temp dir given in
#   TEST_TMPDIR by the test itself; see core/testing/temp_dir.h.
function(ward_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  if(NOT WARD_BUILD_TESTS)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()
