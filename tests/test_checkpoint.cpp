// Checkpoint files: the StateDict round trip through a .safetensors file, rejection of
// files that are not checkpoints, and the kill test of the issue: a child process that
// trains and checkpoints is killed with SIGKILL at several moments (seeded), and a run
// resumed from whatever checkpoint it left reaches weights bit-identical to an
// uninterrupted run with the same seed.
#include <sae/core/activations/topk.hpp>
#include <sae/core/callbacks.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/io/checkpoint.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_checkpoint_cases {

namespace {

using Trainable = sae::TrainableSae<float, sae::TopK>;
constexpr std::size_t total_steps = 600;

bool exists(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0;
}

sae::IndependentFeaturesConfig data_config() {
    sae::IndependentFeaturesConfig c;
    c.input_dim = 24;
    c.num_features = 48;
    c.activation_probability = 0.1;
    return c;
}

Trainable make_model() {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = 2e-3;
    training.dead_after_tokens = 2000;
    training.loss.aux_k = 8;
    return Trainable({24, 96, false, true, true}, {4, true}, training, 3);
}

/// Trains to total_steps from wherever `model` and `source` are, checkpointing every
/// `every` steps to `path` when `path` is not empty.
void train_to_end(Trainable& model, sae::SyntheticBatchSource<float>& source, const std::string& path, std::size_t every) {
    if (path.empty()) {
        sae::train(model, source, sae::TrainerConfig{total_steps});
        return;
    }
    sae::train(model, source, sae::TrainerConfig{total_steps},
               sae::CheckpointEvery(every, [&](std::size_t) { sae::save_training_checkpoint(path, model, source); }));
}

}  // namespace

TEST_CASE("A checkpoint file round-trips the state exactly", "[checkpoint]") {
    const sae::test::TempDir temp("checkpoint");
    const std::string dir = temp.path();
    sae::SyntheticGenerator<float> generator(data_config(), 5);
    sae::SyntheticBatchSource<float> source(generator, 32);
    Trainable model = make_model();
    sae::train(model, source, sae::TrainerConfig{17});
    const nlohmann::json config = {{"note", "stored with the checkpoint"}, {"d_sae", 96}};
    sae::save_training_checkpoint(dir + "/ckpt.safetensors", model, source, config);

    Trainable restored = make_model();
    sae::SyntheticGenerator<float> generator2(data_config(), 5);
    sae::SyntheticBatchSource<float> source2(generator2, 32);
    const nlohmann::json read_config = sae::resume_training(dir + "/ckpt.safetensors", restored, source2);
    CHECK(read_config == config);
    CHECK(restored.step() == 17);
    CHECK(restored.model().W_enc() == model.model().W_enc());
    CHECK(restored.optimizer().second_moment("W_dec").matrix() == model.optimizer().second_moment("W_dec").matrix());
    // The data stream continues where it stopped: the next batches agree.
    sae::Matrix<float> a, b;
    source.next_batch(a);
    source2.next_batch(b);
    CHECK(a == b);
    // No temporary files are left next to the checkpoint.
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    CHECK(names == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("load_checkpoint rejects files that are not libsae checkpoints", "[checkpoint]") {
    const sae::test::TempDir temp("checkpoint");
    const std::string dir = temp.path();
    sae::SafetensorsWriter plain;
    plain.add("W_enc", sae::Matrix<float>::Ones(2, 2));
    plain.write(dir + "/plain.safetensors");
    REQUIRE_THROWS_WITH(sae::load_checkpoint<float>(dir + "/plain.safetensors"),
                        Catch::Contains("plain.safetensors") && Catch::Contains("format"));

    sae::SafetensorsWriter future;
    future.add("W_enc", sae::Matrix<float>::Ones(2, 2));
    future.set_metadata("format", "libsae-checkpoint");
    future.set_metadata("version", "99");
    future.set_metadata("state", "{}");
    future.set_metadata("config", "null");
    future.write(dir + "/future.safetensors");
    REQUIRE_THROWS_WITH(sae::load_checkpoint<float>(dir + "/future.safetensors"), Catch::Contains("version"));

    sae::SafetensorsWriter broken;
    broken.set_metadata("format", "libsae-checkpoint");
    broken.set_metadata("version", "1");
    broken.set_metadata("state", "{\"step\": ");
    broken.set_metadata("config", "null");
    broken.write(dir + "/broken.safetensors");
    REQUIRE_THROWS_WITH(sae::load_checkpoint<float>(dir + "/broken.safetensors"), Catch::Contains("'state'"));

    // A checkpoint of another model: the error names the file and the tensor.
    sae::StateDict<float> state;
    make_model().save_state(state);
    state.put("W_enc", sae::Matrix<float>::Zero(24, 10));
    sae::save_checkpoint(dir + "/other.safetensors", state);
    Trainable model = make_model();
    sae::SyntheticGenerator<float> generator(data_config(), 5);
    sae::SyntheticBatchSource<float> source(generator, 32);
    REQUIRE_THROWS_WITH(sae::resume_training(dir + "/other.safetensors", model, source),
                        Catch::Contains("other.safetensors") && Catch::Contains("W_enc"));
}

TEST_CASE("A run killed by SIGKILL resumes to bit-identical weights", "[checkpoint][kill]") {
    Trainable reference = make_model();
    {
        sae::SyntheticGenerator<float> generator(data_config(), 5);
        sae::SyntheticBatchSource<float> source(generator, 32);
        train_to_end(reference, source, "", 0);
    }

    // Trial 0 kills almost at once (maybe before the first checkpoint: resume from
    // scratch); the others kill at seeded moments after the first checkpoint exists.
    std::mt19937 rng(2024);
    std::uniform_int_distribution<int> delay_ms(0, 30);
    const int trials = 4;
    int resumed_mid_run = 0;
    for (int trial = 0; trial < trials; ++trial) {
        const sae::test::TempDir temp("checkpoint");
    const std::string dir = temp.path();
        const std::string path = dir + "/ckpt.safetensors";
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // Child: train and checkpoint until killed; never returns into Catch.
            Trainable model = make_model();
            sae::SyntheticGenerator<float> generator(data_config(), 5);
            sae::SyntheticBatchSource<float> source(generator, 32);
            try {
                train_to_end(model, source, path, 7);
            } catch (...) {
                ::_exit(3);
            }
            ::_exit(0);
        }
        if (trial > 0) {
            // Wait for the first checkpoint (however slow this build is), then kill at a
            // seeded moment after it, usually while later checkpoints are being written.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (!exists(path) && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(trial == 0 ? 1 : delay_ms(rng)));
        ::kill(child, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

        Trainable model = make_model();
        sae::SyntheticGenerator<float> generator(data_config(), 5);
        sae::SyntheticBatchSource<float> source(generator, 32);
        if (exists(path)) {
            sae::resume_training(path, model, source);  // must never see a partial file
        }
        if (model.step() > 0 && model.step() < total_steps) ++resumed_mid_run;
        INFO("trial " << trial << " resumed at step " << model.step());
        train_to_end(model, source, "", 0);
        REQUIRE(model.step() == total_steps);
        REQUIRE(model.model().W_enc() == reference.model().W_enc());
        REQUIRE(model.model().W_dec() == reference.model().W_dec());
        REQUIRE(model.model().b_dec() == reference.model().b_dec());
        REQUIRE((model.firing().tokens_since_fired() == reference.firing().tokens_since_fired()).all());
    }
    // The test is only meaningful if most trials really resumed mid-run.
    CHECK(resumed_mid_run >= 2);
}

}  // namespace test_checkpoint_cases
