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

# ward_tsan_shim()
#   ThreadSanitizer build only (WARD_TSAN). Debian's Abseil is not built with TSan, so
#   absl::Mutex/CondVar/Notification (and absl::Status's reference count) give TSan no
#   happens-before edges. The shim
#   (src/core/testing/tsan_absl_shim.cc) defines those exported member functions in the
#   executable, annotates them for TSan and forwards to the library's definitions. Every
#   executable created after this call links the shim's object directly (an OBJECT library, so
#   the static-archive linker cannot drop it); libraries do not.
function(ward_tsan_shim)
  add_library(ward_tsan_shim OBJECT ${PROJECT_SOURCE_DIR}/src/core/testing/tsan_absl_shim.cc)
  target_link_libraries(ward_tsan_shim PUBLIC absl::synchronization absl::status absl::time
                        ${CMAKE_DL_LIBS})
  link_libraries("$<$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>:ward_tsan_shim>")
  # Fails (TSan reports races) if the shim stops annotating a primitive.
  ward_test(tsan_absl_shim_test SRCS ${PROJECT_SOURCE_DIR}/src/core/testing/tsan_absl_shim_test.cc
            DEPS absl::synchronization absl::status absl::time)
endfunction()
