#pragma once
/// \file mpi.hpp
/// libsae's optional MPI component (CMake target `sae::mpi`): everything needed to
/// train an SAE or an MFR ensemble over the ranks of an MPI job.
///   communicator.hpp            MpiEnvironment, Communicator, mpi_error, run_ranks
///   gradient_reduction.hpp      the all-reduce of a TrainableSae's gradients
///   data_parallel.hpp           RankSliceSource, DataParallelSae
///   distributed_ensemble.hpp    ProcessGrid, DistributedMfrEnsemble
///   distributed_checkpoint.hpp  rank-0 atomic checkpoints, resume on any rank count

#include "communicator.hpp"
#include "data_parallel.hpp"
#include "distributed_checkpoint.hpp"
#include "distributed_ensemble.hpp"
#include "gradient_reduction.hpp"
