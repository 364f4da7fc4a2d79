// Trains a small SAE data-parallel, writing a checkpoint after every step; used by
// the test mpi_rank_killed.
//   sae_mpi_train_driver train <checkpoint> <steps> <kill_rank> <kill_at_step>
//       kill_at_step > 0: rank kill_rank sends itself SIGKILL right after the
//       checkpoint of that step is written (a node failing mid-run).
//   sae_mpi_train_driver verify <checkpoint> <expected_step>
//       loads the checkpoint in one process; exit 0 when it holds expected_step.

#include <sae/core/activations/topk.hpp>
#include <sae/core/callbacks.hpp>
#include <sae/core/trainer.hpp>
#include <sae/mpi/mpi.hpp>

#include "seeded_batches.hpp"

#include <csignal>
#include <cstdio>
#include <string>

namespace {

using Sae = sae::TrainableSae<float, sae::TopK>;

Sae make_sae() {
    sae::AutoencoderConfig model;
    model.d_in = 12;
    model.d_sae = 24;
    sae::TopK<float>::Config activation;
    activation.k = 4;
    return Sae(model, activation, sae::TrainingConfig{}, 7);
}

struct KillAtStep {
    int rank;
    std::size_t step;
    void on_step_end(const sae::StepReport& report) {
        if (step > 0 && report.step == step) std::raise(SIGKILL);
    }
};

}  // namespace

int main(int argc, char** argv) {
    return sae::run_ranks(argc, argv, [&](const sae::Communicator& world) {
        const std::string mode = argc > 1 ? argv[1] : "";
        sae::test::SeededBatches<float> batches(30, 12, 11);
        Sae sae_model = make_sae();
        if (mode == "verify" && argc == 4) {
            sae::resume_training(argv[2], sae_model, batches);
            const std::size_t expected = std::stoul(argv[3]);
            std::printf("checkpoint %s holds step %zu (expected %zu)\n", argv[2], sae_model.step(), expected);
            return sae_model.step() == expected ? 0 : 1;
        }
        if (mode != "train" || argc != 6) throw sae::config_error("usage: train <checkpoint> <steps> <rank> <step> | verify <checkpoint> <step>");
        const std::string checkpoint = argv[2];
        sae::DataParallelSae<float, sae::TopK> model(sae_model, world);
        sae::RankSliceSource<sae::test::SeededBatches<float>> source(batches, world);
        sae::TrainerConfig trainer;
        trainer.total_steps = std::stoul(argv[3]);
        sae::CheckpointEvery checkpoints(1, [&](std::size_t) {
            sae::save_distributed_checkpoint(world, checkpoint, model, source);
        });
        KillAtStep killer{std::stoi(argv[4]), std::stoul(argv[5])};
        if (world.rank() != killer.rank) killer.step = 0;
        sae::train(model, source, trainer, checkpoints, killer);
        return 0;
    });
}
