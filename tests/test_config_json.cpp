// Tests of the JSON configuration layer (include/sae/io/config_json.hpp, run_config.hpp).
//
// The independent source of truth is this file: the equality operators below list every
// field by hand, the enum spellings are written out, and the number of fields of each
// library struct is counted from the struct itself (aggregate initialisation), so a field
// added to a struct but not to the JSON schema fails here.

#include "sae/io/run_config.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

using nlohmann::json;

// ---- equality, written out field by field (the spec of what must round-trip) --------

namespace sae {

bool operator==(const AutoencoderConfig& a, const AutoencoderConfig& b) {
    return a.d_in == b.d_in && a.d_sae == b.d_sae && a.tied == b.tied && a.decoder_bias == b.decoder_bias &&
           a.unit_norm_decoder == b.unit_norm_decoder;
}
template <class C, std::enable_if_t<detail::config_io::is_config_of_v<C, TopK>, int> = 0>
bool operator==(const C& a, const C& b) {
    return a.k == b.k && a.relu == b.relu;
}
template <class C, std::enable_if_t<detail::config_io::is_config_of_v<C, BatchTopK>, int> = 0>
bool operator==(const C& a, const C& b) {
    return a.k == b.k && a.threshold_momentum == b.threshold_momentum;
}
template <class C, std::enable_if_t<detail::config_io::is_config_of_v<C, JumpReLU>, int> = 0>
bool operator==(const C& a, const C& b) {
    return a.initial_threshold == b.initial_threshold && a.bandwidth == b.bandwidth;
}
template <class C, std::enable_if_t<detail::config_io::is_config_of_v<C, ReluL1>, int> = 0>
bool operator==(const C&, const C&) {
    return true;
}
bool operator==(const LossConfig& a, const LossConfig& b) {
    return a.normalization == b.normalization && a.aux_coefficient == b.aux_coefficient && a.aux_k == b.aux_k;
}
bool operator==(const AdamConfig& a, const AdamConfig& b) {
    return a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.epsilon == b.epsilon;
}
bool operator==(const LearningRateSchedule& a, const LearningRateSchedule& b) {
    return a.base_rate == b.base_rate && a.warmup_steps == b.warmup_steps && a.decay == b.decay &&
           a.decay_steps == b.decay_steps && a.total_steps == b.total_steps && a.final_fraction == b.final_fraction;
}
bool operator==(const CoefficientWarmup& a, const CoefficientWarmup& b) {
    return a.target == b.target && a.warmup_steps == b.warmup_steps;
}
bool operator==(const ReinitRule& a, const ReinitRule& b) {
    return a.enabled == b.enabled && a.threshold == b.threshold && a.target_rate == b.target_rate;
}
bool operator==(const TrainingConfig& a, const TrainingConfig& b) {
    return a.learning_rate == b.learning_rate && a.adam == b.adam && a.sparsity == b.sparsity && a.loss == b.loss &&
           a.max_grad_norm == b.max_grad_norm && a.dead_after_tokens == b.dead_after_tokens &&
           a.init_decoder_bias_to_median == b.init_decoder_bias_to_median &&
           a.normalize_inputs == b.normalize_inputs && a.reinit == b.reinit &&
           a.micro_batch_rows == b.micro_batch_rows;
}
bool operator==(const NumericFaultConfig& a, const NumericFaultConfig& b) {
    return a.input == b.input && a.loss == b.loss && a.state == b.state && a.dead_latents == b.dead_latents &&
           a.max_consecutive_skips == b.max_consecutive_skips && a.loss_spike_factor == b.loss_spike_factor &&
           a.loss_median_window == b.loss_median_window && a.dead_latents_window == b.dead_latents_window &&
           a.state_check_every == b.state_check_every;
}
bool operator==(const TrainerConfig& a, const TrainerConfig& b) {
    return a.total_steps == b.total_steps && a.check_finite == b.check_finite && a.faults == b.faults;
}
bool operator==(const MfrConfig& a, const MfrConfig& b) {
    return a.num_saes == b.num_saes && a.penalty_coefficient == b.penalty_coefficient &&
           a.penalty_warmup_steps == b.penalty_warmup_steps && a.matching == b.matching &&
           a.matching_refresh_steps == b.matching_refresh_steps && a.scale_k_by_member == b.scale_k_by_member;
}
bool operator==(const CorrelatedGroupsConfig& a, const CorrelatedGroupsConfig& b) {
    return a.input_dim == b.input_dim && a.num_features == b.num_features && a.num_groups == b.num_groups &&
           a.active_per_sample == b.active_per_sample && a.decay == b.decay && a.support == b.support &&
           a.chunk_size == b.chunk_size && a.num_chunks == b.num_chunks &&
           a.normalize_features == b.normalize_features && a.noise_std == b.noise_std;
}
bool operator==(const IndependentFeaturesConfig& a, const IndependentFeaturesConfig& b) {
    return a.input_dim == b.input_dim && a.num_features == b.num_features &&
           a.activation_probability == b.activation_probability && a.probability_decay == b.probability_decay &&
           a.magnitude == b.magnitude && a.noise_std == b.noise_std && a.normalize_features == b.normalize_features;
}
bool operator==(const ActivationSettings& a, const ActivationSettings& b) { return a.config == b.config; }
bool operator==(const ModelConfig& a, const ModelConfig& b) {
    return a.autoencoder == b.autoencoder && a.activation == b.activation && a.dtype == b.dtype;
}
bool operator==(const DataConfig& a, const DataConfig& b) {
    return a.source == b.source && a.train_files == b.train_files && a.eval_files == b.eval_files &&
           a.tensor == b.tensor && a.batch_size == b.batch_size && a.shuffle_buffer_rows == b.shuffle_buffer_rows &&
           a.epochs == b.epochs && a.seed == b.seed && a.synthetic == b.synthetic;
}
bool operator==(const OutputConfig& a, const OutputConfig& b) {
    return a.directory == b.directory && a.checkpoint_every == b.checkpoint_every && a.log_every == b.log_every &&
           a.progress == b.progress;
}
bool operator==(const RunConfig& a, const RunConfig& b) {
    return a.model == b.model && a.training == b.training && a.trainer == b.trainer && a.mfr == b.mfr &&
           a.data == b.data && a.output == b.output && a.seed == b.seed && a.model_name == b.model_name &&
           a.hook_name == b.hook_name;
}

/// Failure messages show the JSON form.
template <class T, std::enable_if_t<detail::config_io::is_config_struct_v<T> || std::is_same_v<T, ActivationSettings>, int> = 0>
std::ostream& operator<<(std::ostream& out, const T& config) {
    json j;
    to_json(j, config);
    return out << j.dump();
}

}  // namespace sae

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_config_json_cases {

namespace {

using sae::test::TempDir;

using sae::Index;

// ---- helpers -------------------------------------------------------------------------

/// Converts to anything: T{AnyField, ...} compiles for up to as many initialisers as T
/// has fields (aggregate initialisation), which counts the fields of a library struct.
struct AnyField {
    template <class T>
    operator T() const;  // only used in unevaluated contexts
};
template <std::size_t>
using AnyFieldAt = AnyField;

template <class T, class Indices, class = void>
struct brace_constructible : std::false_type {};
template <class T, std::size_t... I>
struct brace_constructible<T, std::index_sequence<I...>, std::void_t<decltype(T{AnyFieldAt<I>{}...})>>
    : std::true_type {};

template <class T, std::size_t N = 0>
constexpr std::size_t aggregate_field_count() {
    if constexpr (brace_constructible<T, std::make_index_sequence<N + 1>>::value) {
        return aggregate_field_count<T, N + 1>();
    } else {
        return N;
    }
}

/// The config_error message of `f`, or a marker when it throws none.
std::string config_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const sae::config_error& e) {
        return e.what();
    }
    return "(no config_error thrown)";
}

std::string io_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const sae::io_error& e) {
        return e.what();
    }
    return "(no io_error thrown)";
}

/// Paths of leaves (and keys) of `a` whose value equals the one in `b` at the same place.
void collect_equal_leaves(const json& a, const json& b, const std::string& path, std::vector<std::string>& equal) {
    if (a.is_object() && b.is_object()) {
        for (auto it = a.begin(); it != a.end(); ++it) {
            const auto other = b.find(it.key());
            if (other != b.end()) collect_equal_leaves(it.value(), *other, path + "." + it.key(), equal);
        }
        return;
    }
    if (a == b) equal.push_back(path);
}

/// x == read(to_json(x)), both from the JSON value and from its text; and x really
/// differs from T{} in every field (but `at_default`, where validity forbids), so the
/// round trip proves each field is carried.
template <class T>
void check_round_trip(const T& x, const std::vector<std::string>& at_default = {}) {
    json j;
    to_json(j, x);
    std::vector<std::string> unchanged;
    json defaults;
    to_json(defaults, T{});
    collect_equal_leaves(j, defaults, "", unchanged);
    CHECK(json(unchanged) == json(at_default));
    CHECK(sae::read_config<T>(j) == x);
    CHECK(sae::read_config<T>(json::parse(j.dump())) == x);
}

/// Every field away from its default (and valid).
sae::TrainingConfig full_training() {
    sae::TrainingConfig t;
    t.learning_rate = {3e-4, 10, sae::DecayShape::cosine, 200, 1000, 0.1};
    t.adam = {0.8, 0.99, 1e-6};
    t.sparsity = {5.0, 50};
    t.loss = {sae::ReconstructionNormalization::mean_over_elements, 1.0 / 32.0, 64};
    t.max_grad_norm = 1.5;
    t.dead_after_tokens = 123456;
    t.init_decoder_bias_to_median = false;
    t.normalize_inputs = true;
    t.reinit = {true, 3.25, 0.0625};
    t.micro_batch_rows = 2048;
    return t;
}

sae::CorrelatedGroupsConfig full_groups() {
    sae::CorrelatedGroupsConfig g;
    g.input_dim = 32;
    g.num_features = 96;
    g.num_groups = 4;
    g.active_per_sample = 5;
    g.decay = 0.95;
    g.support = sae::SupportSampling::per_sample;
    g.chunk_size = 1000;
    g.num_chunks = 7;
    g.normalize_features = true;
    g.noise_std = 0.01;
    return g;
}

/// Every fault setting away from its default (and valid).
sae::NumericFaultConfig full_faults() {
    return {sae::FaultPolicy::stop, sae::FaultPolicy::skip_batch, sae::FaultPolicy::skip_batch, sae::FaultPolicy::report,
            4, 20.0, 50, 7, 3};
}

sae::RunConfig full_run() {
    sae::RunConfig r;
    r.model.autoencoder = {32, 64, true, false, false};
    r.model.activation.config = sae::BatchTopK<float>::Config{4, 0.9};
    r.model.dtype = sae::ScalarType::float64;
    r.training = full_training();
    r.training.normalize_inputs = false;  // not with a tied SAE
    r.training.micro_batch_rows = 0;      // not with BatchTopK
    r.training.max_grad_norm = 2.0;
    r.trainer = {777, false, full_faults()};
    r.mfr = sae::MfrConfig{3, 0.005, 7, sae::MatchingMode::max_cosine, 10, true};
    r.data.source = sae::DataSource::synthetic;
    r.data.eval_files = {"/data/eval one.npy", "/data/eval-2.safetensors"};
    r.data.tensor = "blocks.0.hook_mlp_out";
    r.data.batch_size = 512;
    r.data.shuffle_buffer_rows = 0;
    r.data.epochs = 3;
    r.data.seed = std::numeric_limits<std::uint64_t>::max();
    r.data.synthetic = full_groups();
    r.output = {"out/dir", 5, 0, false};
    r.seed = 42;
    r.model_name = "gpt2";
    r.hook_name = "blocks.0.hook_resid_pre";
    return r;
}

const std::string examples_dir = SAE_TEST_FIXTURES_DIR "/../../examples/configs";

/// A valid run with everything else at its default.
const char* const minimal_run = R"({
    "model": {"autoencoder": {"d_in": 8, "d_sae": 16}, "activation": {"k": 4}},
    "data": {"train_files": ["a.npy"]}
})";

// ---- tests ---------------------------------------------------------------------------

TEST_CASE("every config struct round-trips through JSON with non-default values", "[config_json]") {
    check_round_trip(sae::AutoencoderConfig{17, 33, true, false, false});
    check_round_trip(sae::TopK<float>::Config{7, false});
    check_round_trip(sae::TopK<double>::Config{7, false});
    check_round_trip(sae::BatchTopK<float>::Config{9, 0.5});
    check_round_trip(sae::BatchTopK<double>::Config{9, 0.5});
    check_round_trip(sae::JumpReLU<float>::Config{0.25, 0.125});
    check_round_trip(sae::JumpReLU<double>::Config{0.1, 0.3});
    check_round_trip(sae::LossConfig{sae::ReconstructionNormalization::mean_over_elements, 0.1, 3});
    check_round_trip(sae::AdamConfig{0.1, 0.2, 0.3});  // 0.1 etc. are not exact binary: the text must round-trip
    check_round_trip(sae::LearningRateSchedule{1.0 / 3.0, 5, sae::DecayShape::linear, 10, 20, 0.5});
    check_round_trip(sae::CoefficientWarmup{2.0, 7});
    check_round_trip(sae::ReinitRule{true, 1.25, 0.5});
    check_round_trip(full_training());
    check_round_trip(full_faults());
    check_round_trip(sae::TrainerConfig{12, false, full_faults()});
    check_round_trip(sae::MfrConfig{5, 0.25, 3, sae::MatchingMode::max_cosine, 4, true});
    check_round_trip(full_groups());
    check_round_trip(sae::IndependentFeaturesConfig{16, 40, 0.2, 0.9, sae::MagnitudeDistribution::half_normal, 0.5,
                                                    false});
    check_round_trip(sae::OutputConfig{"somewhere", 1, 2, false});
    // A tied SAE excludes normalize_inputs, BatchTopK micro_batch_rows, a synthetic source
    // train_files (all non-default in full_training() and in the save/load test below).
    check_round_trip(full_run(), {".data.train_files", ".training.micro_batch_rows", ".training.normalize_inputs"});

    // The activation keeps its architecture and only that architecture's keys.
    for (const sae::ActivationSettings& settings :
         {sae::ActivationSettings{sae::TopK<float>::Config{3, false}},
          sae::ActivationSettings{sae::BatchTopK<float>::Config{5, 0.75}},
          sae::ActivationSettings{sae::JumpReLU<float>::Config{0.5, 0.25}},
          sae::ActivationSettings{sae::ReluL1<float>::Config{}}}) {
        CHECK(sae::read_config<sae::ActivationSettings>(json(settings)) == settings);
    }
    CHECK(json(sae::ActivationSettings{sae::JumpReLU<float>::Config{0.5, 0.25}}) ==
          json::parse(R"({"architecture": "jumprelu", "initial_threshold": 0.5, "bandwidth": 0.25})"));
    CHECK(json(sae::ActivationSettings{sae::ReluL1<float>::Config{}}) == json::parse(R"({"architecture": "standard"})"));
}

TEST_CASE("to_json writes every field of every struct", "[config_json]") {
    CHECK(json(sae::AutoencoderConfig{}).size() == aggregate_field_count<sae::AutoencoderConfig>());
    CHECK(json(sae::TopK<float>::Config{}).size() == aggregate_field_count<sae::TopK<float>::Config>());
    CHECK(json(sae::BatchTopK<float>::Config{}).size() == aggregate_field_count<sae::BatchTopK<float>::Config>());
    CHECK(json(sae::JumpReLU<float>::Config{}).size() == aggregate_field_count<sae::JumpReLU<float>::Config>());
    CHECK(json(sae::ReluL1<float>::Config{}).size() == aggregate_field_count<sae::ReluL1<float>::Config>());
    CHECK(json(sae::LossConfig{}).size() == aggregate_field_count<sae::LossConfig>());
    CHECK(json(sae::AdamConfig{}).size() == aggregate_field_count<sae::AdamConfig>());
    CHECK(json(sae::LearningRateSchedule{}).size() == aggregate_field_count<sae::LearningRateSchedule>());
    CHECK(json(sae::CoefficientWarmup{}).size() == aggregate_field_count<sae::CoefficientWarmup>());
    CHECK(json(sae::ReinitRule{}).size() == aggregate_field_count<sae::ReinitRule>());
    CHECK(json(sae::TrainingConfig{}).size() == aggregate_field_count<sae::TrainingConfig>());
    CHECK(json(sae::TrainerConfig{}).size() == aggregate_field_count<sae::TrainerConfig>());
    CHECK(json(sae::NumericFaultConfig{}).size() == aggregate_field_count<sae::NumericFaultConfig>());
    CHECK(json(sae::MfrConfig{}).size() == aggregate_field_count<sae::MfrConfig>());
    CHECK(json(sae::CorrelatedGroupsConfig{}).size() == aggregate_field_count<sae::CorrelatedGroupsConfig>());
    CHECK(json(sae::IndependentFeaturesConfig{}).size() == aggregate_field_count<sae::IndependentFeaturesConfig>());
    CHECK(json(sae::ModelConfig{}).size() == aggregate_field_count<sae::ModelConfig>());
    CHECK(json(sae::DataConfig{}).size() == aggregate_field_count<sae::DataConfig>());
    CHECK(json(sae::OutputConfig{}).size() == aggregate_field_count<sae::OutputConfig>());
    // RunConfig holds a std::optional, which defeats the field count; its keys by hand.
    const json run = sae::to_json(sae::RunConfig{});
    std::vector<std::string> keys;
    for (auto it = run.begin(); it != run.end(); ++it) keys.push_back(it.key());
    CHECK(keys == std::vector<std::string>{"data", "hook_name", "mfr", "model", "model_name", "output", "seed",
                                           "trainer", "training"});
    CHECK(run.at("mfr").is_null());
    // A few values, spelled as a user reads them.
    CHECK(run.at("training").at("learning_rate").at("decay") == "constant");
    CHECK(run.at("training").at("loss").at("normalization") == "sum_over_features");
    CHECK(run.at("model").at("activation") == json::parse(R"({"architecture": "topk", "k": 32, "relu": true})"));
    CHECK(run.at("model").at("dtype") == "float32");
    CHECK(run.at("data").at("source") == "files");
    CHECK(run.at("data").at("batch_size") == 4096);
}

TEST_CASE("missing keys keep the defaults", "[config_json]") {
    const json empty = json::object();
    CHECK(sae::read_config<sae::TopK<double>::Config>(empty) == sae::TopK<double>::Config{});
    CHECK(sae::read_config<sae::BatchTopK<float>::Config>(empty) == sae::BatchTopK<float>::Config{});
    CHECK(sae::read_config<sae::JumpReLU<float>::Config>(empty) == sae::JumpReLU<float>::Config{});
    CHECK(sae::read_config<sae::LossConfig>(empty) == sae::LossConfig{});
    CHECK(sae::read_config<sae::AdamConfig>(empty) == sae::AdamConfig{});
    CHECK(sae::read_config<sae::LearningRateSchedule>(empty) == sae::LearningRateSchedule{});
    CHECK(sae::read_config<sae::CoefficientWarmup>(empty) == sae::CoefficientWarmup{});
    CHECK(sae::read_config<sae::ReinitRule>(empty) == sae::ReinitRule{});
    CHECK(sae::read_config<sae::TrainingConfig>(empty) == sae::TrainingConfig{});
    CHECK(sae::read_config<sae::TrainerConfig>(empty) == sae::TrainerConfig{});
    CHECK(sae::read_config<sae::MfrConfig>(empty) == sae::MfrConfig{});
    CHECK(sae::read_config<sae::CorrelatedGroupsConfig>(empty) == sae::CorrelatedGroupsConfig{});
    CHECK(sae::read_config<sae::IndependentFeaturesConfig>(empty) == sae::IndependentFeaturesConfig{});
    CHECK(sae::read_config<sae::OutputConfig>(empty) == sae::OutputConfig{});
    CHECK(sae::read_config<sae::ActivationSettings>(empty) == sae::ActivationSettings{});
    // d_in and d_sae have no valid default.
    CHECK_THAT(config_error_of([&] { sae::read_config<sae::AutoencoderConfig>(empty, "model.autoencoder"); }),
               Catch::Contains("model.autoencoder.d_in"));

    sae::RunConfig expected;
    expected.model.autoencoder.d_in = 8;
    expected.model.autoencoder.d_sae = 16;
    expected.model.activation.config = sae::TopK<float>::Config{4, true};
    expected.data.train_files = {"a.npy"};
    CHECK(sae::run_config_from_json(json::parse(minimal_run), "") == expected);

    // A partial nested object changes only its own keys, and a new architecture starts
    // from that architecture's defaults.
    const json partial = json::parse(R"({"adam": {"beta2": 0.95}, "activation": {"architecture": "batchtopk"}})");
    sae::AdamConfig adam_expected;
    adam_expected.beta2 = 0.95;
    CHECK(sae::read_config<sae::AdamConfig>(partial.at("adam")) == adam_expected);
    CHECK(sae::read_config<sae::ActivationSettings>(partial.at("activation")) ==
          sae::ActivationSettings{sae::BatchTopK<float>::Config{}});
}

TEST_CASE("from_json_strict keeps current values for missing keys and changes nothing on error", "[config_json]") {
    sae::AdamConfig adam{0.5, 0.6, 1e-6};
    sae::from_json_strict(json{{"beta1", 0.7}}, adam, "adam");
    CHECK(adam == sae::AdamConfig{0.7, 0.6, 1e-6});
    CHECK_THAT(config_error_of([&] { sae::from_json_strict(json{{"beta1", 0.1}, {"beta2", 2.0}}, adam, "adam"); }),
               Catch::Contains("adam.beta2"));
    CHECK(adam == sae::AdamConfig{0.7, 0.6, 1e-6});
    // nlohmann's get<T>() goes through the same strict reader.
    CHECK_THAT(config_error_of([] { json{{"beta3", 0.1}}.get<sae::AdamConfig>(); }), Catch::Contains("beta3: unknown key"));
    CHECK(json{{"beta1", 0.25}}.get<sae::AdamConfig>() == sae::AdamConfig{0.25, 0.999, 1e-8});
}

TEST_CASE("enum values are read from their names", "[config_json]") {
    using sae::read_config;
    CHECK(read_config<sae::LossConfig>(json{{"normalization", "sum_over_features"}}).normalization ==
          sae::ReconstructionNormalization::sum_over_features);
    CHECK(read_config<sae::LossConfig>(json{{"normalization", "mean_over_elements"}}).normalization ==
          sae::ReconstructionNormalization::mean_over_elements);
    const auto decay = [](const char* name) {
        return read_config<sae::LearningRateSchedule>(json{{"decay", name}, {"decay_steps", 1}, {"total_steps", 1}}).decay;
    };
    CHECK(read_config<sae::LearningRateSchedule>(json{{"decay", "constant"}}).decay == sae::DecayShape::constant);
    CHECK(decay("linear") == sae::DecayShape::linear);
    CHECK(decay("cosine") == sae::DecayShape::cosine);
    CHECK(read_config<sae::MfrConfig>(json{{"matching", "one_to_one"}}).matching == sae::MatchingMode::one_to_one);
    CHECK(read_config<sae::MfrConfig>(json{{"matching", "max_cosine"}}).matching == sae::MatchingMode::max_cosine);
    CHECK(read_config<sae::CorrelatedGroupsConfig>(json{{"support", "per_chunk"}}).support ==
          sae::SupportSampling::per_chunk);
    CHECK(read_config<sae::CorrelatedGroupsConfig>(json{{"support", "per_sample"}}).support ==
          sae::SupportSampling::per_sample);
    CHECK(read_config<sae::IndependentFeaturesConfig>(json{{"magnitude", "uniform01"}}).magnitude ==
          sae::MagnitudeDistribution::uniform01);
    CHECK(read_config<sae::IndependentFeaturesConfig>(json{{"magnitude", "exponential"}}).magnitude ==
          sae::MagnitudeDistribution::exponential);
    CHECK(read_config<sae::IndependentFeaturesConfig>(json{{"magnitude", "half_normal"}}).magnitude ==
          sae::MagnitudeDistribution::half_normal);
    CHECK(sae::enum_from_name<sae::ScalarType>("float64") == sae::ScalarType::float64);
    CHECK(sae::enum_from_name<sae::DataSource>("synthetic") == sae::DataSource::synthetic);
    CHECK(std::string(sae::enum_name(sae::ScalarType::float32)) == "float32");
    CHECK(std::string(sae::enum_name(sae::DataSource::files)) == "files");
    CHECK_THAT(config_error_of([] { sae::enum_name(static_cast<sae::DecayShape>(9)); }), Catch::Contains("9"));
}

TEST_CASE("integers: exact floats accepted, fractions and out-of-range values rejected", "[config_json]") {
    using sae::read_config;
    CHECK(read_config<sae::TrainerConfig>(json::parse(R"({"total_steps": 4096.0})")).total_steps == 4096);
    CHECK(read_config<sae::TrainerConfig>(json::parse(R"({"total_steps": 1e4})")).total_steps == 10000);
    CHECK(read_config<sae::DataConfig>(json::parse(R"({"seed": 18446744073709551615, "train_files": ["a"]})")).seed ==
          std::numeric_limits<std::uint64_t>::max());
    CHECK(read_config<sae::AutoencoderConfig>(json::parse(R"({"d_in": 9223372036854775807, "d_sae": 1})")).d_in ==
          std::numeric_limits<Index>::max());
    CHECK_THAT(config_error_of([] { read_config<sae::AutoencoderConfig>(json::parse(R"({"d_in": 9223372036854775808})")); }),
               Catch::Contains("d_in: value out of range"));
    CHECK_THAT(config_error_of([] { read_config<sae::AutoencoderConfig>(json::parse(R"({"d_in": -3, "d_sae": 1})")); }),
               Catch::Contains("d_in: d_in = -3 must be positive"));
    CHECK_THAT(config_error_of([] { read_config<sae::AutoencoderConfig>(json::parse(R"({"d_in": null})")); }),
               Catch::Contains("d_in: expected an integer, got null"));
    // Doubles accept integers.
    CHECK(read_config<sae::AdamConfig>(json::parse(R"({"epsilon": 1})")).epsilon == 1.0);
}

struct BadValue {
    const char* patch;                  ///< merged into minimal_run (null deletes a key)
    std::vector<std::string> expected;  ///< substrings of the message
};

TEST_CASE("bad values give a config_error naming the full key path", "[config_json]") {
    static const std::vector<BadValue> cases = {
        // unknown keys at several depths
        {R"({"trainer_": {}})", {"run.json: trainer_: unknown key (known: model, training, trainer, mfr, data",
                                 "did you mean \"trainer\"?"}},
        {R"({"training": {"adam": {"beta3": 0.9}}})",
         {"run.json: training.adam.beta3: unknown key (known: beta1, beta2, epsilon)"}},
        {R"({"modle": {}})", {"run.json: modle: unknown key", "did you mean \"model\"?"}},
        {R"({"data": {"synthetic": {"num_group": 3}}})", {"data.synthetic.num_group: unknown key", "\"num_groups\""}},
        {R"({"model": {"activation": {"bandwidth": 0.1}}})",
         {"model.activation.bandwidth: unknown key (known: architecture, k, relu)"}},
        {R"({"model": {"activation": {"architecture": "jumprelu"}}})", {"model.activation.k: unknown key"}},
        // wrong JSON types
        {R"({"training": {"adam": {"beta1": "0.9"}}})", {"training.adam.beta1: expected a number, got string"}},
        {R"({"model": {"autoencoder": {"tied": 1}}})", {"model.autoencoder.tied: expected a boolean"}},
        {R"({"trainer": {"total_steps": true}})", {"trainer.total_steps: expected a non-negative integer, got boolean"}},
        {R"({"training": {"adam": 0.9}})", {"training.adam: expected an object, got number"}},
        {R"({"data": {"train_files": "a.npy"}})", {"data.train_files: expected an array"}},
        {R"({"data": {"train_files": ["a.npy", 3]}})", {"data.train_files[1]: expected a string, got number"}},
        {R"({"mfr": true})", {"mfr: expected an object, got boolean"}},
        // negative, fractional or too large for the field
        {R"({"data": {"batch_size": -1}})", {"data.batch_size: expected a non-negative integer, got number -1"}},
        {R"({"seed": -5})", {"run.json: seed: expected a non-negative integer"}},
        {R"({"mfr": {"penalty_warmup_steps": -1}})", {"mfr.penalty_warmup_steps: expected a non-negative integer"}},
        {R"({"trainer": {"total_steps": 2.5}})", {"trainer.total_steps: expected a non-negative integer, got number 2.5"}},
        {R"({"model": {"autoencoder": {"d_in": 1e30}}})", {"model.autoencoder.d_in: value out of range"}},
        {R"({"data": {"seed": 18446744073709551616}})", {"data.seed: value out of range"}},
        // out of range for the struct's own rules
        {R"({"training": {"adam": {"beta1": 1.5}}})", {"training.adam.beta1: ", "1.5"}},
        {R"({"training": {"learning_rate": {"base_rate": -0.001}}})", {"training.learning_rate.base_rate: "}},
        {R"({"training": {"learning_rate": {"decay": "cosine", "decay_steps": 10, "total_steps": 5}}})",
         {"training.learning_rate.", "exceed total_steps"}},
        {R"({"training": {"max_grad_norm": -1}})", {"training.max_grad_norm: "}},
        {R"({"training": {"micro_batch_rows": -3}})", {"training.micro_batch_rows: ", "-3"}},
        {R"({"training": {"reinit": {"threshold": 0}}})", {"training.reinit.threshold: "}},
        {R"({"data": {"synthetic": {"active_per_sample": 100}}})", {"data.synthetic.active_per_sample: "}},
        {R"({"mfr": {"num_saes": 0}})", {"mfr.num_saes: "}},
        {R"({"model": {"activation": {"k": 0}}})", {"model.activation.k: "}},
        {R"({"model": {"activation": {"architecture": "batchtopk", "threshold_momentum": 1.0}}})",
         {"model.activation.threshold_momentum: "}},
        {R"({"model": {"activation": {"architecture": "jumprelu", "k": null, "bandwidth": 0}}})",
         {"model.activation.bandwidth: "}},
        {R"({"output": {"directory": ""}})", {"output.directory: must not be empty"}},
        // bad enum names, with the valid ones listed
        {R"({"training": {"learning_rate": {"decay": "cosin"}}})",
         {"training.learning_rate.decay: expected one of \"constant\", \"linear\", \"cosine\", got \"cosin\""}},
        {R"({"training": {"loss": {"normalization": 1}}})", {"training.loss.normalization: expected one of", "got number"}},
        {R"({"mfr": {"matching": "hungarian"}})", {"mfr.matching: ", "\"one_to_one\", \"max_cosine\""}},
        {R"({"model": {"activation": {"architecture": "topq"}}})",
         {"model.activation.architecture: expected one of \"topk\", \"batchtopk\", \"jumprelu\", \"standard\""}},
        {R"({"model": {"dtype": "float16"}})", {"model.dtype: ", "\"float64\""}},
        {R"({"data": {"source": "file"}})", {"data.source: ", "\"synthetic\""}},
        // cross-field rules, naming both keys
        {R"({"model": {"activation": {"k": 17}}})", {"model.activation.k: ", "model.autoencoder.d_sae = 16"}},
        {R"({"data": {"train_files": []}})", {"data.train_files: ", "data.source = \"files\""}},
        {R"({"data": {"batch_size": 0}})", {"data.batch_size: must be >= 1"}},
        {R"({"data": {"epochs": 0}})", {"data.epochs: must be >= 1"}},
        {R"({"data": {"train_files": ["a.npy", ""]}})", {"data.train_files[1]: empty file name"}},
        {R"({"data": {"source": "synthetic", "train_files": []}})",
         {"data.synthetic.input_dim: 256", "model.autoencoder.d_in = 8"}},
        {R"({"data": {"source": "synthetic"}})", {"data.train_files: must be empty", "data.source = \"synthetic\""}},
        {R"({"mfr": {"scale_k_by_member": true, "num_saes": 5}})",
         {"mfr.scale_k_by_member: ", "mfr.num_saes", "model.autoencoder.d_sae = 16"}},
        {R"({"mfr": {"scale_k_by_member": true}, "model": {"activation": {"architecture": "jumprelu", "k": null}}})",
         {"mfr.scale_k_by_member: ", "model.activation.architecture"}},
        {R"({"model": {"autoencoder": {"tied": true}}, "training": {"normalize_inputs": true}})",
         {"training.normalize_inputs: ", "model.autoencoder.tied"}},
        {R"({"model": {"activation": {"architecture": "standard", "k": null}}, "training": {"reinit": {"enabled": true}}})",
         {"training.reinit.target_rate: ", "training.reinit.enabled", "model.activation.architecture"}},
        {R"({"model": {"activation": {"architecture": "batchtopk"}}, "training": {"micro_batch_rows": 100}})",
         {"training.micro_batch_rows: must be 0", "model.activation.architecture = \"batchtopk\""}},
    };
    const BadValue& bad = GENERATE(Catch::Generators::from_range(cases));
    json j = json::parse(minimal_run);
    j.merge_patch(json::parse(bad.patch));
    INFO("patch: " << bad.patch);
    const std::string message = config_error_of([&] { sae::run_config_from_json(j, "run.json"); });
    for (const std::string& part : bad.expected) CHECK_THAT(message, Catch::Contains(part));
}

TEST_CASE("the top level must be an object", "[config_json]") {
    CHECK_THAT(config_error_of([] { sae::run_config_from_json(json::array(), "run.json"); }),
               Catch::Contains("run.json: top level: expected an object, got array"));
}

TEST_CASE("activation settings convert to the Config of either Scalar", "[config_json]") {
    const sae::ActivationSettings settings{sae::BatchTopK<float>::Config{7, 0.5}};
    CHECK(settings.k() == Index(7));
    CHECK(std::string(settings.architecture()) == "batchtopk");
    const auto as_double = sae::activation_config_as<sae::BatchTopK, double>(settings);
    CHECK(as_double.k == 7);
    CHECK(as_double.threshold_momentum == 0.5);
    CHECK(sae::activation_config_as<sae::BatchTopK, float>(settings) == sae::BatchTopK<float>::Config{7, 0.5});
    CHECK_THAT(config_error_of([&] { sae::activation_config_as<sae::TopK, float>(settings); }),
               Catch::Contains("model.activation.architecture: ") && Catch::Contains("\"batchtopk\", not \"topk\""));
    CHECK_FALSE(sae::ActivationSettings{sae::JumpReLU<float>::Config{}}.k().has_value());

    // A model the reader accepts is one the library constructs.
    sae::RunConfig run = sae::run_config_from_json(json::parse(minimal_run), "");
    const sae::Autoencoder<float, sae::TopK> model(run.model.autoencoder,
                                                   sae::activation_config_as<sae::TopK, float>(run.model.activation));
    CHECK(model.d_sae() == 16);
    CHECK(model.activation().config().k == 4);
}

TEST_CASE("the example configs load", "[config_json]") {
    const sae::RunConfig topk = sae::load_run_config(examples_dir + "/topk_synthetic.json");
    CHECK(topk.model.autoencoder == sae::AutoencoderConfig{256, 512, true, false, true});
    CHECK(topk.model.activation == sae::ActivationSettings{sae::TopK<float>::Config{32, false}});
    CHECK(topk.data.source == sae::DataSource::synthetic);
    CHECK(topk.data.synthetic == sae::CorrelatedGroupsConfig{});  // the authors' task is the default
    CHECK(topk.data.batch_size == 10000);
    CHECK(topk.training.learning_rate.base_rate == 0.01);
    CHECK(topk.training.loss.normalization == sae::ReconstructionNormalization::mean_over_elements);
    CHECK_FALSE(topk.mfr.has_value());

    // topk_synthetic.json documents every setting: its keys are exactly to_json's.
    const json file = sae::parse_config_json(sae::read_whole_file(examples_dir + "/topk_synthetic.json"), "");
    CHECK(file == sae::to_json(topk));

    const sae::RunConfig mfr = sae::load_run_config(examples_dir + "/mfr_npy.json");
    REQUIRE(mfr.mfr.has_value());
    CHECK(*mfr.mfr == sae::MfrConfig{10, 0.005, 100, sae::MatchingMode::one_to_one, 100, false});
    CHECK(mfr.model.activation == sae::ActivationSettings{sae::TopK<float>::Config{6, false}});
    CHECK(mfr.data.batch_size == 500);
    CHECK(mfr.hook_name == "blocks.0.hook_mlp_out");
    // Relative data paths are taken relative to the config file's directory.
    CHECK(mfr.data.train_files ==
          std::vector<std::string>{examples_dir + "/activations/gpt2_blocks.0.hook_mlp_out_000.npy",
                                   examples_dir + "/activations/gpt2_blocks.0.hook_mlp_out_001.npy"});
    CHECK(mfr.data.eval_files ==
          std::vector<std::string>{examples_dir + "/activations/gpt2_blocks.0.hook_mlp_out_eval.npy"});
    CHECK(mfr.output.directory == "runs/mfr_gpt2_l0");  // not a data path: left as written
}

TEST_CASE("load_run_config resolves relative data paths and reports file errors with the path", "[config_json]") {
    const TempDir dir;

    SECTION("relative paths are relative to the config's directory, absolute ones are kept") {
        const std::string path = dir.file("sub/run.json", R"({
            "model": {"autoencoder": {"d_in": 8, "d_sae": 64}},
            "data": {"train_files": ["acts/a.npy", "/abs/b.npy"], "eval_files": ["../c.npy"]}
        })");
        const sae::RunConfig run = sae::load_run_config(path);
        CHECK(run.data.train_files == std::vector<std::string>{dir.path() + "/sub/acts/a.npy", "/abs/b.npy"});
        CHECK(run.data.eval_files == std::vector<std::string>{dir.path() + "/sub/../c.npy"});
    }
    SECTION("a bad value names the file and the key") {
        const std::string path = dir.file("bad.json", R"({
            "model": {"autoencoder": {"d_in": 8, "d_sae": 64}},
            "data": {"train_files": ["a.npy"]},
            "training": {"adam": {"beta1": 1.5}}
        })");
        CHECK_THAT(config_error_of([&] { sae::load_run_config(path); }),
                   Catch::StartsWith(path + ": training.adam.beta1: "));
    }
    SECTION("a repeated key is an error, not a silent overwrite") {
        const std::string path = dir.file("dup.json", R"({"model": {"autoencoder": {"d_in": 8, "d_in": 9}}})");
        CHECK_THAT(config_error_of([&] { sae::load_run_config(path); }),
                   Catch::Contains(path + ": model.autoencoder.d_in: duplicate key"));
        const std::string top = dir.file("dup_top.json", R"({"seed": 1, "data": {"train_files": ["a", "b"]}, "seed": 2})");
        CHECK_THAT(config_error_of([&] { sae::load_run_config(top); }), Catch::Contains(top + ": seed: duplicate key"));
    }
    SECTION("truncated JSON is an io_error with the path and the byte offset") {
        const std::string path = dir.file("truncated.json", R"({"model": {"autoencoder": {"d_in": 8)");
        const std::string message = io_error_of([&] { sae::load_run_config(path); });
        CHECK_THAT(message, Catch::StartsWith(path + ": invalid JSON at byte "));
    }
    SECTION("invalid UTF-8 is an io_error with the path") {
        const std::string path = dir.file("latin1.json", "{\"model_name\": \"caf\xe9\"}");
        CHECK_THAT(io_error_of([&] { sae::load_run_config(path); }),
                   Catch::StartsWith(path + ": invalid JSON at byte ") && Catch::Contains("UTF-8"));
    }
    SECTION("an empty file, a missing file and a directory are io_errors with the path") {
        const std::string empty = dir.file("empty.json", "");
        CHECK_THAT(io_error_of([&] { sae::load_run_config(empty); }), Catch::StartsWith(empty + ": invalid JSON"));
        const std::string missing = dir.path() + "/missing.json";
        CHECK_THAT(io_error_of([&] { sae::load_run_config(missing); }), Catch::StartsWith(missing + ": "));
        CHECK_THAT(io_error_of([&] { sae::load_run_config(dir.path()); }), Catch::StartsWith(dir.path() + ": "));
    }
    SECTION("comments are allowed") {
        const std::string path = dir.file("commented.json", R"(// a run
            {"model": {"autoencoder": {"d_in": 8, /* width */ "d_sae": 64}},
             "data": {"train_files": ["/x.npy"]}}  // end)");
        CHECK(sae::load_run_config(path).model.autoencoder.d_sae == 64);
    }
}

TEST_CASE("save_run_config writes what load_run_config reads back", "[config_json]") {
    const TempDir dir;
    sae::RunConfig run = full_run();
    run.data.source = sae::DataSource::files;
    run.data.train_files = {dir.path() + "/a.npy"};  // absolute, so loading keeps it as is
    const std::string path = dir.path() + "/saved.json";
    sae::save_run_config(path, run);
    CHECK(sae::load_run_config(path) == run);

    // Pretty-printed, sections in declaration order.
    const std::string text = sae::read_whole_file(path);
    CHECK(text.find("\n  \"model\": {") != std::string::npos);
    CHECK(text.find("\"model\"") < text.find("\"training\""));
    CHECK(text.find("\"training\"") < text.find("\"trainer\""));
    CHECK(text.find("\"data\"") < text.find("\"output\""));

    // An invalid config is refused and leaves the old file in place.
    sae::RunConfig invalid = run;
    invalid.data.batch_size = 0;
    CHECK_THAT(config_error_of([&] { sae::save_run_config(path, invalid); }), Catch::Contains("data.batch_size"));
    CHECK(sae::read_whole_file(path) == text);
}

TEST_CASE("relative paths stay as written without a base directory", "[config_json]") {
    sae::DataConfig data;
    data.train_files = {"a.npy", "/b.npy"};
    sae::resolve_data_paths(data, "");
    CHECK(data.train_files == std::vector<std::string>{"a.npy", "/b.npy"});
    sae::resolve_data_paths(data, "/base");
    CHECK(data.train_files == std::vector<std::string>{"/base/a.npy", "/b.npy"});
}

}  // namespace

}  // namespace test_config_json_cases
