# CTest mpi_cli_train: `sae train --mpi` on the synthetic task, an MFR ensemble of 3
# SAEs: 4 steps on 2 ranks as 2 data replicas, then resumed to 8 steps on 3 ranks
# (members spread, one replica). Both runs must succeed, the resumed one must start at
# step 4, and rank 0 must have written every member's SAELens directory.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
function(write_config steps)
    file(WRITE "${WORK_DIR}/run.json" "{
  \"model\": {\"autoencoder\": {\"d_in\": 16, \"d_sae\": 32, \"tied\": true, \"decoder_bias\": false},
            \"activation\": {\"architecture\": \"topk\", \"k\": 4, \"relu\": false}},
  \"training\": {\"learning_rate\": {\"base_rate\": 0.01}},
  \"trainer\": {\"total_steps\": ${steps}},
  \"mfr\": {\"num_saes\": 3, \"penalty_coefficient\": 0.1, \"penalty_warmup_steps\": 2},
  \"data\": {\"source\": \"synthetic\", \"batch_size\": 64,
           \"synthetic\": {\"input_dim\": 16, \"num_features\": 48, \"num_groups\": 4, \"active_per_sample\": 3,
                         \"support\": \"per_sample\"}},
  \"output\": {\"directory\": \"${WORK_DIR}/out\", \"checkpoint_every\": 2, \"log_every\": 1, \"progress\": false}
}")
endfunction()

# run_sae(RANKS "PATTERN[;PATTERN...]" [sae train options...]): every pattern must match the output.
function(run_sae ranks expected_output)
    execute_process(COMMAND "${MPIEXEC}" ${NP_FLAG} ${ranks} "${SAE}" train --config "${WORK_DIR}/run.json" --mpi ${ARGN}
                    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE errors TIMEOUT 100)
    message(STATUS "${ranks} ranks, exit ${result}:\n${output}${errors}")
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "sae train --mpi on ${ranks} ranks failed")
    endif()
    foreach(pattern IN LISTS expected_output)
        if(NOT "${output}${errors}" MATCHES "${pattern}")
            message(FATAL_ERROR "sae train --mpi on ${ranks} ranks: output lacks '${pattern}'")
        endif()
    endforeach()
endfunction()

write_config(4)
run_sae(2 "step 4 of 4" --data-replicas 2)
write_config(8)
run_sae(3 "resumed from .* at step 4;step 8 of 8;member 2: recovery" --resume)
foreach(member 0 1 2)
    if(NOT EXISTS "${WORK_DIR}/out/sae_${member}/sae_weights.safetensors")
        message(FATAL_ERROR "rank 0 did not write ${WORK_DIR}/out/sae_${member}")
    endif()
endforeach()
