# Runs test_keys and searches everything it printed (stdout and stderr, the
# simulator's too) for the plaintext gateway keys the test uses: none may
# appear. Run as: cmake -DTEST=<test_keys> -DSRC=<tests/test_keys.c> -P keys_output_clean.cmake
execute_process(COMMAND ${TEST} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "test_keys failed (${rc}):\n${out}\n${err}")
endif()
# the keys are the test's KEY_* macros: read them from its source
file(STRINGS ${SRC} lines REGEX "^#define KEY_[A-Z]+ \"")
set(n 0)
foreach(line ${lines})
  string(REGEX MATCH "\"([^\"]+)\"" m "${line}")
  set(key ${CMAKE_MATCH_1})
  math(EXPR n "${n} + 1")
  string(FIND "${out}${err}" "${key}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "the output of test_keys holds the gateway key ${key}")
  endif()
endforeach()
if(n LESS 5)
  message(FATAL_ERROR "found ${n} keys in ${SRC}, expected 5")
endif()
string(LENGTH "${out}${err}" len)
message(STATUS "${len} bytes of output, none of the ${n} keys in them")
