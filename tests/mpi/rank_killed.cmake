# CTest mpi_rank_killed: a 2-rank data-parallel run whose rank 1 is killed (SIGKILL)
# after the checkpoint of step 3 must end with a non-zero exit and a message naming
# the lost rank, and leave a checkpoint that loads and holds step 3.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(checkpoint "${WORK_DIR}/run.safetensors")
execute_process(COMMAND "${MPIEXEC}" ${NP_FLAG} 2 "${DRIVER}" train "${checkpoint}" 50 1 3
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT 90)
message(STATUS "mpirun exit: ${result}\n${output}")
if(result EQUAL 0)
    message(FATAL_ERROR "the job whose rank 1 was killed exited with 0")
endif()
if(NOT output MATCHES "rank 1|signal 9|Killed")
    message(FATAL_ERROR "the launcher's message does not name the killed rank or the signal")
endif()
execute_process(COMMAND "${MPIEXEC}" ${NP_FLAG} 1 "${DRIVER}" verify "${checkpoint}" 3
                RESULT_VARIABLE verified OUTPUT_VARIABLE verify_output ERROR_VARIABLE verify_output TIMEOUT 60)
message(STATUS "${verify_output}")
if(NOT verified EQUAL 0)
    message(FATAL_ERROR "the last checkpoint is not intact at step 3")
endif()
