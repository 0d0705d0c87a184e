# Copies lib/, adds an upward include to core/, and expects the check to fail.
set(tmp ${CMAKE_CURRENT_BINARY_DIR}/layers-negative)
file(REMOVE_RECURSE ${tmp})
file(COPY ${SRC}/lib DESTINATION ${tmp})
file(APPEND ${tmp}/lib/core/buf.c "\n#include \"engine/engine.h\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DLIB=${tmp}/lib -P ${SRC}/cmake/check_layers.cmake
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(REMOVE_RECURSE ${tmp})
if(rc EQUAL 0)
  message(FATAL_ERROR "the layering check accepted core/ including engine/")
endif()
if(NOT err MATCHES "core/buf.c includes \"engine/engine.h\"")
  message(FATAL_ERROR "the layering check failed without naming the include: ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -DLIB=${SRC}/lib -P ${SRC}/cmake/check_layers.cmake
                RESULT_VARIABLE rc2)
if(NOT rc2 EQUAL 0)
  message(FATAL_ERROR "the real lib/ breaks the layering rule")
endif()
