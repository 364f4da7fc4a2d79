// save_state / load_state: a run stopped after K steps and continued in a freshly
// built model and source (same configuration, possibly a different seed, because the
// state wins) ends bit-identical to an uninterrupted run. Property-based: the reference
// is the uninterrupted run itself, not a stored number.
#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/jump_relu.hpp>
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/mfr/ensemble.hpp>

#include <catch2/catch.hpp>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_resume_cases {

namespace {

using sae::Index;

sae::IndependentFeaturesConfig data_config() {
    sae::IndependentFeaturesConfig c;
    c.input_dim = 12;
    c.num_features = 24;
    c.activation_probability = 0.15;
    c.noise_std = 0.01;
    return c;
}

sae::TrainingConfig training_config() {
    sae::TrainingConfig t;
    t.learning_rate.base_rate = 3e-3;
    t.learning_rate.warmup_steps = 5;
    t.sparsity.target = 1e-3;  // used by ReluL1 and JumpReLU
    t.sparsity.warmup_steps = 7;
    t.dead_after_tokens = 64;  // dead latents (and AuxK) appear within the run
    t.loss.aux_k = 4;
    t.loss.aux_coefficient = 1.0 / 32;
    t.normalize_inputs = true;
    t.max_grad_norm = 1.0;
    return t;
}

/// Names an activation template for TEMPLATE_TEST_CASE.
template <template <class> class Act>
struct Arch {
    using Trainable = sae::TrainableSae<float, Act>;
    static typename Act<float>::Config activation() {
        typename Act<float>::Config config{};
        if constexpr (sae::detail::has_k<typename Act<float>::Config>::value) config.k = 3;
        return config;
    }
};

template <class Model>
void require_same_weights(const Model& a, const Model& b) {
    // Bit-identical, not approximately equal: a resumed run must take the same path.
    REQUIRE(a.W_enc() == b.W_enc());
    REQUIRE(a.b_enc() == b.b_enc());
    REQUIRE(a.W_dec() == b.W_dec());
    REQUIRE(a.b_dec() == b.b_dec());
}

/// Trains `total` steps; when stop_at > 0, saves after stop_at steps, rebuilds model and
/// source from scratch with other seeds, loads the state and finishes.
template <class Model, class MakeModel>
Model run(MakeModel make_model, std::size_t total, std::size_t stop_at) {
    sae::SyntheticGenerator<float> generator(data_config(), 11);
    sae::SyntheticBatchSource<float> source(generator, 16);
    Model model = make_model(5);
    if (stop_at == 0) {
        sae::train(model, source, sae::TrainerConfig{total});
        return model;
    }
    sae::train(model, source, sae::TrainerConfig{stop_at});
    sae::StateDict<float> state;
    model.save_state(state);
    source.save_state(state);

    sae::SyntheticGenerator<float> fresh_generator(data_config(), 11);
    fresh_generator.sample(37);  // move the fresh engine away from the saved position
    sae::SyntheticBatchSource<float> fresh_source(fresh_generator, 16);
    Model resumed = make_model(999);
    resumed.load_state(state);
    fresh_source.load_state(state);
    REQUIRE(resumed.step() == stop_at);
    sae::train(resumed, fresh_source, sae::TrainerConfig{total});
    return resumed;
}

}  // namespace

TEMPLATE_TEST_CASE("A resumed TrainableSae ends bit-identical to an uninterrupted one", "[resume]", Arch<sae::TopK>,
                   Arch<sae::BatchTopK>, Arch<sae::JumpReLU>, Arch<sae::ReluL1>) {
    using Trainable = typename TestType::Trainable;
    const auto make = [](std::uint64_t seed) {
        return Trainable({12, 32, false, true, true}, TestType::activation(), training_config(), seed);
    };
    const std::size_t stop_at = GENERATE(1, 9, 23);
    const Trainable reference = run<Trainable>(make, 40, 0);
    const Trainable resumed = run<Trainable>(make, 40, stop_at);
    require_same_weights(reference.model(), resumed.model());
    REQUIRE(reference.optimizer().first_moment("W_enc").matrix() == resumed.optimizer().first_moment("W_enc").matrix());
    REQUIRE((reference.firing().tokens_since_fired() == resumed.firing().tokens_since_fired()).all());
    REQUIRE(reference.samples() == resumed.samples());
}

TEST_CASE("A resumed MFR ensemble with cached matchings and restarts ends bit-identical", "[resume][mfr]") {
    using Ensemble = sae::MfrEnsemble<float, sae::TopK>;
    sae::MfrConfig mfr;
    mfr.num_saes = 3;
    mfr.penalty_warmup_steps = 10;
    mfr.matching_refresh_steps = 4;  // matchings cached across the stop point
    sae::TrainingConfig training = training_config();
    training.normalize_inputs = false;
    training.reinit.enabled = GENERATE(false, true);
    training.reinit.threshold = 1.0;  // restarts do happen in 30 steps
    const auto make = [&](std::uint64_t seed) {
        return Ensemble(mfr, {12, 32, true, false, true}, {3, false}, training, seed);
    };
    const std::size_t stop_at = GENERATE(6, 13);
    const Ensemble reference = run<Ensemble>(make, 30, 0);
    const Ensemble resumed = run<Ensemble>(make, 30, stop_at);
    for (std::size_t i = 0; i < reference.members().size(); ++i) {
        require_same_weights(reference.members()[i].model(), resumed.members()[i].model());
        REQUIRE(reference.members()[i].reinit_count() == resumed.members()[i].reinit_count());
    }
    REQUIRE(reference.last_penalty() == resumed.last_penalty());
}

TEST_CASE("load_state rejects a state from a differently shaped SAE", "[resume]") {
    sae::TrainableSae<float, sae::TopK> small({12, 32, false, true, true}, {3, true}, training_config(), 1);
    sae::StateDict<float> state;
    small.save_state(state);
    sae::TrainableSae<float, sae::TopK> wider({12, 48, false, true, true}, {3, true}, training_config(), 1);
    REQUIRE_THROWS_WITH(wider.load_state(state), Catch::Contains("W_enc") && Catch::Contains("[12, 32]"));
    sae::StateDict<float> partial;
    partial.put("W_enc", small.model().W_enc());
    REQUIRE_THROWS_AS(small.load_state(partial), sae::io_error);
}

}  // namespace test_resume_cases
