// Numeric faults injected into real training runs (issue 10), each detected at its step,
// reported with the tensor at fault and handled by its policy (numeric_faults.hpp):
//   - NaN/Inf in an input batch;
//   - an exploding loss (an outlier batch 1000x the data's scale) and a NaN loss;
//   - parameters and Adam moments overflowing (a batch 1e11x the scale: in float the
//     second moment reaches Inf and the update turns W_enc NaN), and gradients
//     overflowing inside train_step (1e20x);
//   - an SAE whose latents all die (ReLU + L1 with a huge coefficient).
// The references are independent of the trainer's fault code: "skip_batch" must give a
// run bit-identical to one whose source never served the bad batch, and "stop" must leave
// a last checkpoint equal to a clean run of the steps before the fault.
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/callbacks.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/io/checkpoint.hpp>
#include <sae/io/config_json.hpp>
#include <sae/io/npy.hpp>
#include <sae/mfr/ensemble.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"
#include "support/state_equality.hpp"
#include "support/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_numeric_faults_cases {

namespace {

using sae::Matrix;
using sae::StateDict;
using sae::test::require_same_state;
using Sae = sae::TrainableSae<float, sae::TopK>;
using Ensemble = sae::MfrEnsemble<float, sae::TopK>;

constexpr std::size_t total_steps = 30;
constexpr std::size_t bad_call = 20;  // after the loss median window (10) is full

sae::TrainingConfig training() {
    sae::TrainingConfig t;
    t.learning_rate.base_rate = 3e-3;
    return t;
}

Sae make_sae() { return Sae({8, 16, false, true, true}, {2, true}, training(), 1); }

Ensemble make_ensemble() {
    sae::MfrConfig mfr;
    mfr.penalty_warmup_steps = 5;
    return Ensemble(mfr, {8, 16, false, true, true}, {2, true}, training(), 1);
}

sae::TrainerConfig trainer_config(std::size_t steps = total_steps) {
    sae::TrainerConfig config;
    config.total_steps = steps;
    config.faults.loss_median_window = 10;
    return config;
}

/// The clean synthetic stream where the batches of the calls in `bad` (1-based) are
/// altered by `corrupt`, or, with `drop`, never served (the reference for skip_batch).
class ScriptedSource {
public:
    ScriptedSource(std::set<std::size_t> bad, std::function<void(Matrix<float>&)> corrupt, bool drop = false)
        : generator_(data(), 3), source_(generator_, 16), bad_(std::move(bad)), corrupt_(std::move(corrupt)), drop_(drop) {}
    ScriptedSource(const ScriptedSource&) = delete;  // source_ points into generator_
    ScriptedSource& operator=(const ScriptedSource&) = delete;

    void next_batch(Matrix<float>& out) {
        for (;;) {
            source_.next_batch(out);
            if (bad_.count(++calls_) == 0) return;
            if (!drop_) {
                corrupt_(out);
                return;
            }
        }
    }

private:
    static sae::IndependentFeaturesConfig data() {
        sae::IndependentFeaturesConfig c;
        c.input_dim = 8;
        c.num_features = 16;
        c.activation_probability = 0.2;
        return c;
    }

    sae::SyntheticGenerator<float> generator_;
    sae::SyntheticBatchSource<float> source_;
    std::set<std::size_t> bad_;
    std::function<void(Matrix<float>&)> corrupt_;
    bool drop_;
    std::size_t calls_ = 0;
};

std::function<void(Matrix<float>&)> scale_by(float factor) {
    return [factor](Matrix<float>& batch) { batch *= factor; };
}

std::function<void(Matrix<float>&)> put_at(sae::Index row, sae::Index col, float value) {
    return [=](Matrix<float>& batch) { batch(row, col) = value; };
}

/// Records what the trainer tells its callbacks.
struct Recorder {
    std::vector<sae::NumericFault> faults;
    std::vector<std::size_t> steps;
    int train_ends = 0;
    void on_numeric_fault(const sae::NumericFault& fault) { faults.push_back(fault); }
    void on_step_end(const sae::StepReport& report) { steps.push_back(report.step); }
    void on_train_end(const sae::TrainSummary&) { ++train_ends; }
};

template <class Model>
StateDict<float> state_of(const Model& model) {
    StateDict<float> state;
    model.save_state(state);
    return state;
}

/// A model trained `steps` steps on the clean stream with the bad calls dropped.
template <class Model>
StateDict<float> reference_state(Model model, std::size_t steps, std::set<std::size_t> dropped = {}) {
    ScriptedSource source(std::move(dropped), nullptr, /*drop=*/true);
    sae::train(model, source, trainer_config(steps));
    return state_of(model);
}

/// Trains with a checkpoint after every step and expects the run to stop with a fault.
template <class Model>
sae::NumericFault expect_stop(Model& model, ScriptedSource& source, const sae::TrainerConfig& config,
                              const std::string& checkpoint, Recorder& recorder) {
    sae::CheckpointEvery every_step(1, [&](std::size_t) { sae::save_checkpoint(checkpoint, state_of(model)); });
    try {
        sae::train(model, source, config, recorder, every_step);
    } catch (const sae::numeric_fault_error& e) {
        CHECK(std::string(e.what()).find(e.fault().message()) != std::string::npos);
        return e.fault();
    }
    FAIL("expected sae::numeric_fault_error");
    return {};
}

/// A TrainableSae that, once, reports a NaN loss for step `at`: any model whose loss
/// overflows without raising. Forwards what the trainer inspects.
class NanLossOnce {
public:
    using scalar_type = float;
    explicit NanLossOnce(std::size_t at) : inner_(make_sae()), at_(at) {}

    sae::StepReport train_step(const sae::ConstMatrixRef<float>& batch) {
        sae::StepReport report = inner_.train_step(batch);
        if (report.step == at_ && !fired_) {
            fired_ = true;
            report.loss = std::numeric_limits<double>::quiet_NaN();
        }
        return report;
    }
    std::size_t step() const { return inner_.step(); }
    const Sae::Model& model() const { return inner_.model(); }
    const sae::Adam<float>& optimizer() const { return inner_.optimizer(); }
    const sae::FiringTracker& firing() const { return inner_.firing(); }
    void save_state(StateDict<float>& state) const { inner_.save_state(state); }
    void load_state(const StateDict<float>& state) { inner_.load_state(state); }

private:
    Sae inner_;
    std::size_t at_;
    bool fired_ = false;
};

/// One SAE's b_dec trained by the library's Adam on gradient = the batch's column mean;
/// exposes model() and optimizer() as TrainableSae does, so the trainer scans them under
/// their checkpoint names.
class BiasOnlyModel {
public:
    using scalar_type = float;
    BiasOnlyModel() : sae_({8, 16, false, true, true}, {2, true}, 1) {}

    sae::StepReport train_step(const sae::ConstMatrixRef<float>& batch) {
        sae::RowVector<float> gradient = batch.colwise().mean();
        adam_.step({sae::make_parameter_view("b_dec", sae_.mutable_b_dec(), gradient)}, 1e-3);
        ++steps_;
        return sae::StepReport{steps_, steps_ * static_cast<std::size_t>(batch.rows()), 1.0, {}};
    }
    std::size_t step() const { return steps_; }
    const sae::Autoencoder<float, sae::TopK>& model() const { return sae_; }
    const sae::Adam<float>& optimizer() const { return adam_; }
    void save_state(StateDict<float>& state) const {
        state.put("b_dec", sae_.b_dec());
        state.put("adam/b_dec/v", adam_.second_moment("b_dec"));
        state.set("step", steps_);
    }

private:
    sae::Autoencoder<float, sae::TopK> sae_;
    sae::Adam<float> adam_;
    std::size_t steps_ = 0;
};

/// A model with no SAE inside: one step counter and one "moments" vector that goes NaN
/// at step `poison_at`; shows the for_each_state_tensor hook and what a model without
/// save_state/load_state may use.
struct PlainModel {
    using scalar_type = float;
    std::size_t poison_at = 0;
    std::size_t steps = 0;
    Eigen::ArrayXf moments = Eigen::ArrayXf::Ones(5);

    sae::StepReport train_step(const sae::ConstMatrixRef<float>&) {
        ++steps;
        if (steps == poison_at) moments(3) = std::numeric_limits<float>::infinity();
        return sae::StepReport{steps, steps, 1.0, {}};
    }
    std::size_t step() const { return steps; }
    template <class Visit>
    void for_each_state_tensor(Visit&& visit) const {
        visit("moments", moments);
    }
};

}  // namespace

// ---- input batches ------------------------------------------------------------------

TEST_CASE("A NaN or Inf in a batch is skipped: the run equals one that never saw the batch", "[numeric_faults]") {
    const float value = GENERATE(std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity());
    Sae model = make_sae();
    ScriptedSource source({7}, put_at(3, 5, value));
    Recorder recorder;
    const sae::TrainSummary summary = sae::train(model, source, trainer_config(), recorder);

    CHECK(model.step() == total_steps);
    CHECK(summary.steps == total_steps);
    CHECK(summary.skipped_batches == 1);
    REQUIRE(summary.faults.size() == 1);
    const sae::NumericFault& fault = summary.faults.front();
    CHECK(fault.kind == sae::FaultKind::input);
    CHECK(fault.action == sae::FaultPolicy::skip_batch);
    CHECK(fault.step == 7);
    CHECK(fault.tensor == "batch");
    CHECK_THAT(fault.detail, Catch::Contains("at row 3, column 5"));
    CHECK_THAT(fault.message(), Catch::StartsWith("non-finite input at step 7 in tensor 'batch': ") &&
                                    Catch::EndsWith("[policy input = skip_batch]"));
    REQUIRE(recorder.faults.size() == 1);
    CHECK(recorder.faults.front().message() == fault.message());
    CHECK(recorder.steps.size() == total_steps);  // steps 1..30, none missing
    CHECK(recorder.steps.back() == total_steps);
    CHECK(recorder.train_ends == 1);
    require_same_state(state_of(model), reference_state(make_sae(), total_steps, {7}));
}

TEST_CASE("With input = stop a NaN batch stops the run and the last checkpoint is the step before", "[numeric_faults]") {
    const sae::test::TempDir temp("faults");
    const std::string checkpoint = temp.file("checkpoint.safetensors");
    Sae model = make_sae();
    ScriptedSource source({7}, put_at(3, 5, std::numeric_limits<float>::quiet_NaN()));
    sae::TrainerConfig config = trainer_config();
    config.faults.input = sae::FaultPolicy::stop;
    Recorder recorder;
    const sae::NumericFault fault = expect_stop(model, source, config, checkpoint, recorder);

    CHECK(fault.kind == sae::FaultKind::input);
    CHECK(fault.step == 7);
    CHECK(fault.message() == "non-finite input at step 7 in tensor 'batch': nan at row 3, column 5 [policy input = stop]");
    CHECK(model.step() == 6);  // the bad batch never reached the model
    REQUIRE(recorder.faults.size() == 1);
    CHECK(recorder.train_ends == 0);
    CHECK(recorder.steps.back() == 6);
    require_same_state(sae::load_checkpoint<float>(checkpoint).state, reference_state(make_sae(), 6));
}

TEST_CASE("max_consecutive_skips bad batches in a row stop the run; a good step resets the count", "[numeric_faults]") {
    sae::TrainerConfig config = trainer_config();
    config.faults.max_consecutive_skips = 3;
    const auto nan = put_at(0, 0, std::numeric_limits<float>::quiet_NaN());
    {
        Sae model = make_sae();
        ScriptedSource source({4, 5, 6, 7}, nan);
        try {
            sae::train(model, source, config);
            FAIL("expected sae::numeric_fault_error");
        } catch (const sae::numeric_fault_error& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("stopped after 3 consecutive skipped batches") &&
                                     Catch::Contains("non-finite input at step 4 "));
            CHECK(e.fault().step == 4);  // three batches offered for step 4, all bad
        }
        CHECK(model.step() == 3);
    }
    Sae model = make_sae();
    ScriptedSource source({4, 5, 7, 8}, nan);  // never three in a row
    const sae::TrainSummary summary = sae::train(model, source, config);
    CHECK(summary.skipped_batches == 4);
    CHECK(model.step() == total_steps);
    require_same_state(state_of(model), reference_state(make_sae(), total_steps, {4, 5, 7, 8}));
}

// ---- loss -------------------------------------------------------------------------------

TEST_CASE("An exploding loss stops the run before the step is kept", "[numeric_faults]") {
    const sae::test::TempDir temp("faults");
    const std::string checkpoint = temp.file("checkpoint.safetensors");
    Sae model = make_sae();
    ScriptedSource source({bad_call}, scale_by(1e3f));  // finite, but 1000x the data's scale
    Recorder recorder;
    const sae::NumericFault fault = expect_stop(model, source, trainer_config(), checkpoint, recorder);

    CHECK(fault.kind == sae::FaultKind::loss);
    CHECK(fault.step == bad_call);
    CHECK(fault.tensor == "loss");
    CHECK_THAT(fault.message(), Catch::StartsWith("loss diverged at step 20 (loss = ") &&
                                    Catch::Contains("> 100 x the running median") &&
                                    Catch::Contains("of the last 10 steps)") && Catch::EndsWith("[policy loss = stop]"));
    REQUIRE(recorder.faults.size() == 1);
    CHECK(recorder.train_ends == 0);
    CHECK(recorder.steps.back() == bad_call - 1);
    require_same_state(sae::load_checkpoint<float>(checkpoint).state, reference_state(make_sae(), bad_call - 1));
}

TEST_CASE("loss = skip_batch undoes the exploding step exactly", "[numeric_faults]") {
    Sae model = make_sae();
    ScriptedSource source({bad_call}, scale_by(1e3f));
    sae::TrainerConfig config = trainer_config();
    config.faults.loss = sae::FaultPolicy::skip_batch;
    const sae::TrainSummary summary = sae::train(model, source, config);
    CHECK(summary.skipped_batches == 1);
    REQUIRE(summary.faults.size() == 1);
    CHECK(summary.faults.front().kind == sae::FaultKind::loss);
    CHECK(summary.faults.front().action == sae::FaultPolicy::skip_batch);
    require_same_state(state_of(model), reference_state(make_sae(), total_steps, {bad_call}));

    // Without the spike check the same batch is trained through: the run differs.
    Sae unchecked = make_sae();
    ScriptedSource same({bad_call}, scale_by(1e3f));
    config.faults.loss_spike_factor = 0;
    CHECK(sae::train(unchecked, same, config).faults.empty());
    CHECK(unchecked.model().W_enc() != model.model().W_enc());
}

TEST_CASE("A NaN loss is a loss fault: stop names the step, skip_batch undoes it", "[numeric_faults]") {
    {
        NanLossOnce model(12);
        ScriptedSource source({}, nullptr);
        CHECK_THROWS_WITH(sae::train(model, source, trainer_config()),
                          Catch::StartsWith("loss diverged at step 12 (loss = nan) [policy loss = stop]"));
        CHECK(model.step() == 12);  // the model took the step; no callback kept it
    }
    NanLossOnce model(12);
    ScriptedSource source({}, nullptr);
    sae::TrainerConfig config = trainer_config();
    config.faults.loss = sae::FaultPolicy::skip_batch;
    const sae::TrainSummary summary = sae::train(model, source, config);
    CHECK(summary.skipped_batches == 1);
    require_same_state(state_of(model), reference_state(make_sae(), total_steps, {12}));
}

// ---- parameters, Adam moments, gradients --------------------------------------------------

TEST_CASE("Weights overflowing stop the run before the step is kept", "[numeric_faults]") {
    // 1e11x: in float the squared gradients (Adam's second moment) overflow; 1e20x: the
    // reconstruction itself does. Either the model refuses the step (numeric_error from
    // train_step) or its weights/moments come out non-finite (the trainer's scan): both
    // are state faults at step 20.
    const float factor = GENERATE(1e11f, 1e20f);
    const sae::test::TempDir temp("faults");
    const std::string checkpoint = temp.file("checkpoint.safetensors");
    Sae model = make_sae();
    ScriptedSource source({bad_call}, scale_by(factor));
    Recorder recorder;
    const sae::NumericFault fault = expect_stop(model, source, trainer_config(), checkpoint, recorder);

    CHECK(fault.kind == sae::FaultKind::state);
    CHECK(fault.step == bad_call);
    CHECK_THAT(fault.message(), Catch::StartsWith("non-finite model state at step 20 in tensor '") &&
                                    Catch::EndsWith("[policy state = stop]"));
    REQUIRE(recorder.faults.size() == 1);
    CHECK(recorder.train_ends == 0);
    CHECK(recorder.steps.back() == bad_call - 1);
    require_same_state(sae::load_checkpoint<float>(checkpoint).state, reference_state(make_sae(), bad_call - 1));
}

TEST_CASE("Adam's second moment overflowing to Inf is found by name, and never checkpointed", "[numeric_faults]") {
    const sae::test::TempDir temp("faults");
    const std::string checkpoint = temp.file("checkpoint.safetensors");
    BiasOnlyModel model;
    ScriptedSource source({bad_call}, [](Matrix<float>& batch) { batch.setConstant(1e20f); });
    Recorder recorder;
    const sae::NumericFault fault = expect_stop(model, source, trainer_config(), checkpoint, recorder);

    CHECK(fault.kind == sae::FaultKind::state);
    CHECK(fault.step == bad_call);
    // g = 1e20 is finite (Adam accepts it) but g^2 is not: v = Inf. Through m / sqrt(v)
    // the bias may turn NaN in the same step; either way the moment is named.
    CHECK_THAT(fault.message(), Catch::Contains("adam/b_dec/v"));
    CHECK(model.optimizer().second_moment("b_dec").isInf().any());
    CHECK(recorder.steps.back() == bad_call - 1);
    CHECK(sae::load_checkpoint<float>(checkpoint).state.get<std::size_t>("step") == bad_call - 1);

    const std::string before = sae::test::read_bytes(checkpoint);
    CHECK_THROWS_WITH(sae::save_checkpoint(checkpoint, state_of(model)),
                      Catch::StartsWith(checkpoint + ": not written: tensor '") &&
                          Catch::Contains("a checkpoint never stores non-finite state"));
    CHECK(sae::test::read_bytes(checkpoint) == before);
}

TEST_CASE("state = skip_batch undoes a step that poisoned the weights", "[numeric_faults]") {
    const float factor = GENERATE(1e11f, 1e20f);
    Sae model = make_sae();
    ScriptedSource source({bad_call}, scale_by(factor));
    sae::TrainerConfig config = trainer_config();
    config.faults.state = sae::FaultPolicy::skip_batch;
    const sae::TrainSummary summary = sae::train(model, source, config);
    CHECK(summary.skipped_batches == 1);
    REQUIRE(summary.faults.size() == 1);
    CHECK(summary.faults.front().kind == sae::FaultKind::state);
    CHECK(summary.faults.front().step == bad_call);
    require_same_state(state_of(model), reference_state(make_sae(), total_steps, {bad_call}));
}

TEST_CASE("The state scan names tensors as the checkpoint does, members included", "[numeric_faults][mfr]") {
    Ensemble ensemble = make_ensemble();
    ScriptedSource source({}, nullptr);
    sae::train(ensemble, source, trainer_config(3));
    std::set<std::string> scanned;
    auto collect = [&](const std::string& name, const auto&) { scanned.insert(name); };
    REQUIRE(sae::detail::visit_state_tensors(ensemble, collect));
    std::set<std::string> saved;
    const StateDict<float> state = state_of(ensemble);
    for (const auto& entry : state.tensors()) {
        // The median is a fixed statistic of the first batch, not trained state.
        if (entry.first.find("median") == std::string::npos) saved.insert(entry.first);
    }
    CHECK(scanned == saved);
    CHECK(scanned.count("member1/adam/W_enc/v") == 1);
}

TEST_CASE("An MFR ensemble's faulty step stops the run, or is undone as a whole", "[numeric_faults][mfr]") {
    {
        Ensemble ensemble = make_ensemble();
        ScriptedSource source({bad_call}, scale_by(1e11f));
        CHECK_THROWS_WITH(sae::train(ensemble, source, trainer_config()),
                          Catch::StartsWith("non-finite model state at step 20 in tensor '"));
    }
    Ensemble ensemble = make_ensemble();
    ScriptedSource source({bad_call}, scale_by(1e11f));
    sae::TrainerConfig config = trainer_config();
    config.faults.state = sae::FaultPolicy::skip_batch;
    CHECK(sae::train(ensemble, source, config).skipped_batches == 1);
    require_same_state(state_of(ensemble), reference_state(make_ensemble(), total_steps, {bad_call}));
}

TEST_CASE("A model's own for_each_state_tensor is checked after every step", "[numeric_faults]") {
    PlainModel model;
    model.poison_at = 4;
    ScriptedSource source({}, nullptr);
    CHECK_THROWS_WITH(sae::train(model, source, trainer_config(10)),
                      "non-finite model state at step 4 in tensor 'moments': inf at [3, 0] (1 non-finite entry) "
                      "[policy state = stop]; training stopped before this step was kept");
    // state_check_every = 0 turns the scan off (the checkpoint writer still refuses it).
    PlainModel unchecked;
    unchecked.poison_at = 4;
    sae::TrainerConfig config = trainer_config(10);
    config.faults.state_check_every = 0;
    CHECK(sae::train(unchecked, source, config).steps == 10);
}

// ---- dead latents ------------------------------------------------------------------------

TEST_CASE("An SAE whose latents all die stops the run, or is reported once", "[numeric_faults]") {
    // ReLU + L1 with lambda = 100: the L1 term drives every pre-activation below zero.
    sae::TrainingConfig t = training();
    t.learning_rate.base_rate = 1e-2;
    t.sparsity.target = 100.0;
    const auto make = [&] { return sae::TrainableSae<float, sae::ReluL1>({8, 16, false, true, true}, {}, t, 1); };
    sae::TrainerConfig config = trainer_config(300);
    config.faults.dead_latents_window = 5;
    {
        auto model = make();
        ScriptedSource source({}, nullptr);
        sae::MetricsHistory history;
        try {
            sae::train(model, source, config, history);
            FAIL("expected sae::numeric_fault_error");
        } catch (const sae::numeric_fault_error& e) {
            const sae::NumericFault& fault = e.fault();
            CHECK(fault.kind == sae::FaultKind::dead_latents);
            CHECK(fault.tensor == "latents");
            CHECK(fault.message() == "all latents dead at step " + std::to_string(fault.step) +
                                         " in 'latents': no latent fired on any row for 5 steps [policy dead_latents = stop]");
            // Independently of the firing tracker: the model's own L0 of the 4 kept steps
            // before was 0, and of the step before those, not.
            const std::vector<double> l0 = history.series("l0");
            REQUIRE(l0.size() == fault.step - 1);
            REQUIRE(l0.size() >= 5);
            for (std::size_t i = l0.size() - 4; i < l0.size(); ++i) CHECK(l0[i] == 0.0);
            CHECK(l0[l0.size() - 5] > 0.0);
        }
    }
    auto model = make();
    ScriptedSource source({}, nullptr);
    config.faults.dead_latents = sae::FaultPolicy::report;
    Recorder recorder;
    const sae::TrainSummary summary = sae::train(model, source, config, recorder);
    CHECK(summary.steps == 300);
    CHECK(summary.skipped_batches == 0);
    REQUIRE(!summary.faults.empty());
    CHECK(summary.faults.front().kind == sae::FaultKind::dead_latents);
    CHECK(summary.faults.front().action == sae::FaultPolicy::report);
    CHECK(recorder.faults.size() == summary.faults.size());
    // Reported once per window of 5 silent steps, not once per step.
    CHECK(summary.faults.size() <= 300 / 5);
}

// ---- configuration ----------------------------------------------------------------------

TEST_CASE("Fault policies: defaults, validation and JSON keys", "[numeric_faults][config]") {
    const sae::NumericFaultConfig defaults;
    CHECK(defaults.input == sae::FaultPolicy::skip_batch);
    CHECK(defaults.loss == sae::FaultPolicy::stop);
    CHECK(defaults.state == sae::FaultPolicy::stop);
    CHECK(defaults.dead_latents == sae::FaultPolicy::stop);
    CHECK_FALSE(defaults.needs_rollback());

    sae::TrainerConfig config;
    config.faults.input = sae::FaultPolicy::report;
    CHECK_THROWS_WITH(config.validate(), Catch::StartsWith("TrainerConfig.faults.input = \"report\" is not allowed"));
    config = {};
    config.faults.dead_latents = sae::FaultPolicy::skip_batch;
    CHECK_THROWS_WITH(config.validate(), Catch::StartsWith("TrainerConfig.faults.dead_latents = \"skip_batch\""));
    config = {};
    config.faults.loss_spike_factor = 0.5;
    CHECK_THROWS_WITH(config.validate(), Catch::Contains("loss_spike_factor must be 0 (off) or a finite number > 1"));

    const auto error_of = [](const char* text) -> std::string {
        try {
            sae::read_config<sae::TrainerConfig>(nlohmann::json::parse(text), "trainer");
        } catch (const sae::config_error& e) {
            return e.what();
        }
        return "(no config_error)";
    };
    CHECK_THAT(error_of(R"({"faults": {"loss": "skip"}})"),
               Catch::StartsWith("trainer.faults.loss: expected one of \"stop\", \"skip_batch\", \"report\", got \"skip\""));
    CHECK_THAT(error_of(R"({"faults": {"state": "report"}})"),
               Catch::StartsWith("trainer.faults.state: state = \"report\" is not allowed"));
    CHECK_THAT(error_of(R"({"faults": {"loss_spike_factor": -2}})"), Catch::StartsWith("trainer.faults.loss_spike_factor: "));
    CHECK_THAT(error_of(R"({"faults": {"max_consecutive_skips": 0}})"),
               Catch::StartsWith("trainer.faults.max_consecutive_skips: "));
    CHECK_THAT(error_of(R"({"faults": {"dead_latent_window": 5}})"),
               Catch::StartsWith("trainer.faults.dead_latent_window: unknown key") &&
                   Catch::Contains("did you mean \"dead_latents_window\"?"));

    sae::TrainerConfig custom;
    custom.faults = {sae::FaultPolicy::stop, sae::FaultPolicy::skip_batch, sae::FaultPolicy::skip_batch,
                     sae::FaultPolicy::report, 4, 20.0, 50, 7, 3};
    const nlohmann::json j = custom;
    CHECK(j["faults"] == nlohmann::json::parse(R"({"input": "stop", "loss": "skip_batch", "state": "skip_batch",
        "dead_latents": "report", "max_consecutive_skips": 4, "loss_spike_factor": 20.0, "loss_median_window": 50,
        "dead_latents_window": 7, "state_check_every": 3})"));
    const sae::NumericFaultConfig back = sae::read_config<sae::TrainerConfig>(j).faults;
    CHECK(nlohmann::json(sae::read_config<sae::TrainerConfig>(j)) == j);
    CHECK(back.needs_rollback());
}

TEST_CASE("skip_batch for loss or state faults needs a model that can be restored", "[numeric_faults][config]") {
    PlainModel model;
    ScriptedSource source({}, nullptr);
    sae::TrainerConfig config = trainer_config(5);
    config.faults.loss = sae::FaultPolicy::skip_batch;
    CHECK_THROWS_WITH(sae::train(model, source, config),
                      Catch::StartsWith("TrainerConfig.faults.loss = \"skip_batch\" undoes the faulty step") &&
                          Catch::Contains("save_state"));
    CHECK(model.step() == 0);
}

// ---- checkpoints ----------------------------------------------------------------------------

TEST_CASE("save_checkpoint refuses NaN/Inf tensors and values and keeps the previous file", "[numeric_faults][checkpoint]") {
    const sae::test::TempDir temp("faults");
    const std::string path = temp.file("ckpt.safetensors");
    StateDict<float> good;
    good.put("W", Matrix<float>::Ones(2, 3));
    good.set("lr", 0.5);
    sae::save_checkpoint(path, good);
    const std::string before = sae::test::read_bytes(path);

    StateDict<float> bad_tensor = good;
    bad_tensor.tensors()["W"](1, 2) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(sae::save_checkpoint(path, bad_tensor),
                      path + ": not written: tensor 'W' holds -inf at [1, 2] (1 non-finite entry); a checkpoint never "
                             "stores non-finite state (the previous checkpoint is kept)");
    StateDict<float> bad_value = good;
    bad_value.set("report", std::vector<double>{1.0, std::numeric_limits<double>::quiet_NaN()});
    CHECK_THROWS_WITH(sae::save_checkpoint(path, bad_value), Catch::Contains("value 'report[1]' is not finite"));
    CHECK(sae::test::read_bytes(path) == before);
    CHECK(sae::load_checkpoint<float>(path).state.tensors().at("W") == Matrix<float>::Ones(2, 3));
}

// ---- the command line -------------------------------------------------------------------------

#ifdef SAE_CLI_PATH
TEST_CASE("sae train skips a NaN row's batch by default and stops on it with input = stop", "[numeric_faults][cli]") {
    const sae::test::TempDir temp("faults_cli");
    const std::string dir = temp.path();
    Matrix<float> rows = sae::test::gaussian_matrix<float>(64, 8, 17);
    rows(40, 6) = std::numeric_limits<float>::quiet_NaN();  // file order, batch 16: step 3, row 8
    sae::write_npy(dir + "/a.npy", rows);
    const auto write_config = [&](const std::string& name, const char* input_policy) {
        const nlohmann::json config = {
            {"model", {{"autoencoder", {{"d_in", 8}, {"d_sae", 16}}}, {"activation", {{"architecture", "topk"}, {"k", 2}}}}},
            {"trainer", {{"total_steps", 6}, {"faults", {{"input", input_policy}}}}},
            {"data", {{"train_files", {"a.npy"}}, {"batch_size", 16}, {"shuffle_buffer_rows", 0}, {"epochs", 3}}},
            {"output", {{"directory", name}, {"checkpoint_every", 1}, {"log_every", 0}, {"progress", false}}}};
        sae::test::write_bytes(dir + "/" + name + ".json", config.dump());
    };
    const auto run = [&](const std::string& name) {
        const std::string command = "cd '" + dir + "' && '" SAE_CLI_PATH "' train --config " + name + ".json 2>" + name + ".err >/dev/null";
        const int status = std::system(command.c_str());
        return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, sae::test::read_bytes(dir + "/" + name + ".err"));
    };

    write_config("skip", "skip_batch");
    const auto [skip_status, skip_err] = run("skip");
    CHECK(skip_status == 0);
    CHECK_THAT(skip_err, Catch::Contains("non-finite input at step 3 in tensor 'batch': nan at row 8, column 6 "
                                         "[policy input = skip_batch]") &&
                             Catch::Contains("batch(es) skipped for numeric faults"));
    const std::string log = sae::test::read_bytes(dir + "/skip/faults.jsonl");
    const nlohmann::json first = nlohmann::json::parse(log.substr(0, log.find('\n')));
    CHECK(first["step"] == 3);
    CHECK(first["kind"] == "input");
    CHECK(first["action"] == "skip_batch");
    CHECK(sae::load_checkpoint<float>(dir + "/skip/checkpoint.safetensors").state.get<std::size_t>("member0/step") == 6);

    write_config("stop", "stop");
    const auto [stop_status, stop_err] = run("stop");
    CHECK(stop_status == 1);
    CHECK_THAT(stop_err, Catch::Contains("sae train: error: non-finite input at step 3 in tensor 'batch': nan at row 8, "
                                         "column 6 [policy input = stop]") &&
                             Catch::Contains("checkpoint.safetensors (step 2) is the last good state"));
    CHECK(sae::load_checkpoint<float>(dir + "/stop/checkpoint.safetensors").state.get<std::size_t>("member0/step") == 2);

    // trainer.faults may change on --resume: skipping the batch lets the run finish.
    write_config("stop", "skip_batch");
    const std::string resume = "cd '" + dir + "' && '" SAE_CLI_PATH "' train --config stop.json --resume 2>/dev/null >/dev/null";
    CHECK(std::system(resume.c_str()) == 0);
    CHECK(sae::load_checkpoint<float>(dir + "/stop/checkpoint.safetensors").state.get<std::size_t>("member0/step") == 6);
}
#endif

}  // namespace test_numeric_faults_cases
