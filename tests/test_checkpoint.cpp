// Checkpoint files: the StateDict round trip through a .safetensors file, and rejection
// of files that are not checkpoints. Runs killed by SIGKILL and resumed:
// test_kill_resume.cpp.
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/io/checkpoint.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <filesystem>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_checkpoint_cases {

namespace {

using Trainable = sae::TrainableSae<float, sae::TopK>;
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

}  // namespace test_checkpoint_cases
