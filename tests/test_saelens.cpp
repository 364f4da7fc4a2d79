// Tests of include/sae/io/saelens.hpp: SAELens round trips of every architecture
// (tied included), the SAELens options folded on load, sparsify directories, malformed
// directories, and agreement with an independent NumPy forward pass
// (tools/reference/numpy_sae_forward.py).

#include <sae/io/saelens.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include "support/random_matrix.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_saelens_cases {

using namespace sae;

namespace {

using sae::test::TempDir;
using sae::test::write_bytes;

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_whole_file(path)); }

/// Random weights for any SAE (untied ones get an independent decoder).
template <class Scalar, template <class> class Act>
void randomize(Autoencoder<Scalar, Act>& sae, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Index d_in = sae.d_in(), d_sae = sae.d_sae();
    const Matrix<Scalar> W_enc = test::gaussian_matrix<Scalar>(d_in, d_sae, rng, 0.5);
    const Matrix<Scalar> W_dec = test::gaussian_matrix<Scalar>(d_sae, d_in, rng, 0.5);
    const RowVector<Scalar> b_enc = test::gaussian_matrix<Scalar>(1, d_sae, rng, 0.2);
    const RowVector<Scalar> b_dec = test::gaussian_matrix<Scalar>(1, d_in, rng, 0.2);
    sae.set_parameters(W_enc, b_enc, W_dec, b_dec);
}

constexpr Index d_in = 6;
constexpr Index d_sae = 16;

template <class Scalar>
Autoencoder<Scalar, TopK> make_topk(bool tied, bool relu) {
    AutoencoderConfig config{d_in, d_sae, tied, !tied, !tied};
    Autoencoder<Scalar, TopK> sae(config, {4, relu}, 1);
    randomize(sae, 2);
    // Without ReLU, push pre-activations down so some kept values are negative and the
    // relu flag matters.
    if (!relu) sae.mutable_b_enc().array() -= Scalar(1.5);
    return sae;
}

template <class Scalar>
Autoencoder<Scalar, BatchTopK> make_batchtopk() {
    Autoencoder<Scalar, BatchTopK> sae({d_in, d_sae}, {3, 0.9}, 1);
    randomize(sae, 3);
    sae.activation().set_threshold(Scalar(0.3));
    return sae;
}

template <class Scalar>
Autoencoder<Scalar, JumpReLU> make_jumprelu() {
    Autoencoder<Scalar, JumpReLU> sae({d_in, d_sae}, {0.05, 0.01}, 1);
    randomize(sae, 4);
    std::mt19937_64 rng(5);
    sae.activation().parameter() = test::gaussian_matrix<Scalar>(1, d_sae, rng, 0.5).array() - Scalar(1.5);
    return sae;
}

template <class Scalar>
Autoencoder<Scalar, ReluL1> make_standard() {
    Autoencoder<Scalar, ReluL1> sae({d_in, d_sae}, {}, 1);
    randomize(sae, 6);
    return sae;
}

template <class Scalar>
Matrix<Scalar> input_batch(std::uint64_t seed = 9) {
    return test::gaussian_matrix<Scalar>(12, d_in, seed);
}

/// Saves, loads as the same Act, and checks the parameters and forward pass are the
/// same (exactly, since the file holds Scalar's own type).
template <class Scalar, template <class> class Act>
Autoencoder<Scalar, Act> check_round_trip(const Autoencoder<Scalar, Act>& sae, const std::string& dir) {
    SaeFileInfo info;
    info.model_name = "gpt2";
    info.hook_name = "blocks.3.hook_mlp_out";
    info.hook_layer = 3;
    // Parsed rather than brace-built: clang 14's ASan reports the default `extra` object as
    // leaked when it is replaced by an initializer-list json in this function (not
    // reproducible in isolation; no leak with GCC).
    info.extra = nlohmann::json::parse(R"({"context_size": 128, "d_in": 999, "metadata": {"dataset_path": "owt"}})");
    save_saelens(dir, sae, info, dtype_of<Scalar>());
    const Autoencoder<Scalar, Act> loaded = load_saelens<Scalar, Act>(dir);
    CHECK(loaded.config().tied == sae.config().tied);
    CHECK(loaded.config().decoder_bias == sae.config().decoder_bias);
    CHECK(loaded.config().unit_norm_decoder == sae.config().unit_norm_decoder);
    CHECK(loaded.W_enc() == sae.W_enc());
    CHECK(loaded.b_enc() == sae.b_enc());
    CHECK(loaded.b_dec() == sae.b_dec());
    const Matrix<Scalar> x = input_batch<Scalar>();
    CHECK(loaded.encode(x) == sae.encode(x));
    CHECK(loaded.forward(x) == sae.forward(x));

    const SaeFileInfo read = read_sae_info(dir);
    CHECK(read.format == "saelens");
    CHECK(read.architecture == Act<Scalar>::architecture);
    CHECK(read.model_name == "gpt2");
    CHECK(read.hook_name == "blocks.3.hook_mlp_out");
    CHECK(read.hook_layer == 3);
    CHECK(read.d_in == d_in);
    CHECK(read.d_sae == d_sae);
    CHECK(read.extra.at("context_size") == 128);
    CHECK(read.extra.at("metadata").at("dataset_path") == "owt");
    CHECK_FALSE(read.extra.contains("d_in"));  // structural fields come from the SAE
    CHECK(read_json(dir + "/cfg.json").at("d_in") == d_in);
    return loaded;
}

/// Runs the NumPy reference once on every directory of `dirs` with input x; returns
/// {x_hat, code} per directory.
template <class Scalar>
std::vector<std::pair<Matrix<Scalar>, Matrix<Scalar>>> numpy_forward(const std::vector<std::string>& dirs,
                                                                     const Matrix<Scalar>& x, const TempDir& temp) {
    const std::string python = "/usr/bin/python3";
    REQUIRE(::access(python.c_str(), X_OK) == 0);  // the reference must run: fail, never skip
    const std::string script = SAE_TEST_FIXTURES_DIR "/../../tools/reference/numpy_sae_forward.py";
    REQUIRE(std::filesystem::is_regular_file(script));
    const std::string input = temp.file("x.safetensors");
    SafetensorsWriter writer;
    writer.add("x", x, DType::f64);
    writer.write(input);
    std::string command = python + " '" + script + "'";
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        const std::string output = temp.file("out" + std::to_string(i) + ".safetensors");
        std::filesystem::remove(output);
        command += " '" + dirs[i] + "' '" + input + "' '" + output + "'";
    }
    REQUIRE(std::system(command.c_str()) == 0);
    std::vector<std::pair<Matrix<Scalar>, Matrix<Scalar>>> results;
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        const SafetensorsFile result(temp.file("out" + std::to_string(i) + ".safetensors"));
        results.emplace_back(result.matrix<Scalar>("x_hat"), result.matrix<Scalar>("code"));
    }
    return results;
}

/// Our code and reconstruction equal the reference's (same active latents; values to
/// rounding, the reference computing in float64 from the stored weights).
template <class Scalar, template <class> class Act>
void check_same_forward(const Autoencoder<Scalar, Act>& sae, const Matrix<Scalar>& x,
                        const std::pair<Matrix<Scalar>, Matrix<Scalar>>& reference) {
    const auto& [x_hat, code] = reference;
    const double tolerance = std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
    const Matrix<Scalar> ours_code = sae.encode(x);
    REQUIRE(code.rows() == ours_code.rows());
    REQUIRE(code.cols() == ours_code.cols());
    CHECK(((code.array() != Scalar(0)) == (ours_code.array() != Scalar(0))).all());
    CHECK_THAT(static_cast<double>((code - ours_code).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
    CHECK_THAT(static_cast<double>((x_hat - sae.forward(x)).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
}

template <class Scalar, template <class> class Act>
void check_against_numpy(const Autoencoder<Scalar, Act>& sae, const std::string& dir, const TempDir& temp) {
    const Matrix<Scalar> x = input_batch<Scalar>(17);
    check_same_forward(sae, x, numpy_forward<Scalar>({dir}, x, temp).front());
}

/// Writes cfg.json and sae_weights.safetensors by hand (a foreign SAELens directory).
template <class Scalar>
void write_saelens_dir(const std::string& dir, const nlohmann::json& cfg, const Matrix<Scalar>& W_enc,
                       const RowVector<Scalar>& b_enc, const Matrix<Scalar>& W_dec, const RowVector<Scalar>& b_dec,
                       const std::vector<std::pair<std::string, RowVector<Scalar>>>& more = {}) {
    std::filesystem::create_directories(dir);
    write_bytes(dir + "/cfg.json", cfg.dump());
    SafetensorsWriter writer;
    writer.add("W_enc", W_enc);
    writer.add("b_enc", b_enc, dtype_of<Scalar>(), std::vector<std::size_t>{static_cast<std::size_t>(b_enc.size())});
    writer.add("W_dec", W_dec);
    writer.add("b_dec", b_dec, dtype_of<Scalar>(), std::vector<std::size_t>{static_cast<std::size_t>(b_dec.size())});
    for (const auto& [name, v] : more) {
        writer.add(name, v, dtype_of<Scalar>(), std::vector<std::size_t>{static_cast<std::size_t>(v.size())});
    }
    writer.write(dir + "/sae_weights.safetensors");
}

/// Per row: keep the k largest of `pre` (ReLU applied), the rest zero. Plain loops on
/// purpose: an independent statement of top-k.
template <class Scalar>
Matrix<Scalar> hand_top_k(const Matrix<Scalar>& pre, Index k) {
    Matrix<Scalar> code = Matrix<Scalar>::Zero(pre.rows(), pre.cols());
    for (Index r = 0; r < pre.rows(); ++r) {
        std::vector<Index> order(static_cast<std::size_t>(pre.cols()));
        std::iota(order.begin(), order.end(), Index(0));
        std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return pre(r, a) > pre(r, b); });
        for (Index i = 0; i < k; ++i) {
            const Index c = order[static_cast<std::size_t>(i)];
            code(r, c) = std::max(pre(r, c), Scalar(0));
        }
    }
    return code;
}

}  // namespace

TEMPLATE_TEST_CASE("saelens: save/load round trip of every architecture", "[saelens]", float) {
    using Scalar = TestType;
    TempDir temp("saelens_rt");

    SECTION("topk, untied and tied") {
        const Autoencoder<Scalar, TopK> untied = make_topk<Scalar>(false, true);
        const auto loaded = check_round_trip(untied, temp.file("topk"));
        CHECK(loaded.activation().config().k == 4);
        CHECK(loaded.W_dec() == untied.W_dec());
        const nlohmann::json cfg = read_json(temp.file("topk/cfg.json"));
        CHECK(cfg.at("architecture") == "topk");
        CHECK(cfg.at("k") == 4);
        CHECK(cfg.at("activation_fn_kwargs").at("k") == 4);
        CHECK(cfg.at("metadata").at("hook_name") == "blocks.3.hook_mlp_out");

        const Autoencoder<Scalar, TopK> tied = make_topk<Scalar>(true, false);  // the MFR authors' SAE
        const auto loaded_tied = check_round_trip(tied, temp.file("tied"));
        CHECK_FALSE(loaded_tied.activation().config().relu);
        const SafetensorsFile weights(temp.file("tied/sae_weights.safetensors"));
        CHECK(weights.matrix<Scalar>("W_dec") == tied.W_dec());  // explicit normalised decoder
        CHECK(weights.matrix<Scalar>("W_enc") == tied.W_enc());
    }
    SECTION("batchtopk is saved as jumprelu with a broadcast threshold") {
        const Autoencoder<Scalar, BatchTopK> sae = make_batchtopk<Scalar>();
        const auto loaded = check_round_trip(sae, temp.file("btk"));
        CHECK(loaded.activation().threshold_estimated());
        CHECK(loaded.activation().parameter()(0) == Scalar(0.3));
        CHECK(loaded.activation().config().k == 3);
        CHECK(read_json(temp.file("btk/cfg.json")).at("architecture") == "jumprelu");
        const SafetensorsFile weights(temp.file("btk/sae_weights.safetensors"));
        CHECK(weights.info("threshold").shape == std::vector<std::size_t>{d_sae});
        CHECK((weights.vector<Scalar>("threshold").array() == Scalar(0.3)).all());
        CHECK(std::holds_alternative<Autoencoder<Scalar, BatchTopK>>(load_any_sae<Scalar>(temp.file("btk"))));
        // Any jumprelu file with one threshold for all latents also loads as JumpReLU.
        const auto as_jump = load_saelens<Scalar, JumpReLU>(temp.file("btk"));
        const Matrix<Scalar> x = input_batch<Scalar>();
        CHECK(as_jump.encode(x).isApprox(sae.encode(x)));

        Autoencoder<Scalar, BatchTopK> untrained({d_in, d_sae}, {3, 0.9}, 1);
        CHECK_THROWS_AS(save_saelens(temp.file("untrained"), untrained), config_error);
    }
    SECTION("jumprelu stores the raw threshold") {
        const Autoencoder<Scalar, JumpReLU> sae = make_jumprelu<Scalar>();
        const auto loaded = check_round_trip(sae, temp.file("jump"));
        CHECK(loaded.activation().config().bandwidth == 0.01);
        CHECK(loaded.activation().config().initial_threshold == 0.05);
        const SafetensorsFile weights(temp.file("jump/sae_weights.safetensors"));
        const RowVector<Scalar> theta = weights.vector<Scalar>("threshold");
        for (Index j = 0; j < d_sae; ++j) {
            CHECK_THAT(static_cast<double>(theta(j)), Catch::Matchers::WithinRel(std::exp(static_cast<double>(sae.activation().parameter()(j))), 1e-6));
            CHECK_THAT(static_cast<double>(loaded.activation().parameter()(j)),
                       Catch::Matchers::WithinAbs(static_cast<double>(sae.activation().parameter()(j)), 1e-6));
        }
        CHECK(std::holds_alternative<Autoencoder<Scalar, JumpReLU>>(load_any_sae<Scalar>(temp.file("jump"))));
        CHECK_THROWS_AS((load_saelens<Scalar, BatchTopK>(temp.file("jump"))), config_error);  // thresholds differ
        CHECK_THROWS_AS((load_saelens<Scalar, TopK>(temp.file("jump"))), config_error);
    }
    SECTION("standard") {
        const Autoencoder<Scalar, ReluL1> sae = make_standard<Scalar>();
        check_round_trip(sae, temp.file("std"));
        CHECK(read_json(temp.file("std/cfg.json")).at("architecture") == "standard");
        CHECK(std::holds_alternative<Autoencoder<Scalar, ReluL1>>(load_any_sae<Scalar>(temp.file("std"))));
        CHECK_THROWS_AS((load_saelens<Scalar, JumpReLU>(temp.file("std"))), config_error);
    }
}

// The file format is exercised for both Scalars by one architecture; the rest run in
// float, which keeps this test's compile time (every architecture is a template) in check.
TEST_CASE("saelens: a double SAE round-trips exactly", "[saelens]") {
    TempDir temp("saelens_double");
    const Autoencoder<double, TopK> sae = make_topk<double>(false, true);
    const auto loaded = check_round_trip(sae, temp.file("topk"));
    CHECK(loaded.W_dec() == sae.W_dec());
    CHECK(SafetensorsFile(temp.file("topk/sae_weights.safetensors")).info("W_enc").dtype == DType::f64);
}

TEST_CASE("saelens: half-precision files round to the stored type", "[saelens]") {
    TempDir temp("saelens_half");
    const Autoencoder<float, TopK> sae = make_topk<float>(false, true);
    for (DType t : {DType::f16, DType::bf16}) {
        const std::string dir = temp.file(safetensors_dtype_name(t));
        save_saelens(dir, sae, {}, t);
        CHECK(read_json(dir + "/cfg.json").at("dtype") == (t == DType::f16 ? "float16" : "bfloat16"));
        const auto loaded = load_saelens<float, TopK>(dir);
        for (Index i = 0; i < sae.W_enc().size(); ++i) {
            const float v = sae.W_enc().data()[i];
            const float stored = t == DType::f16 ? half_bits_to_float(float_to_half_bits(v))
                                                 : bfloat16_bits_to_float(float_to_bfloat16_bits(v));
            CHECK(loaded.W_enc().data()[i] == stored);
        }
    }
    Autoencoder<float, TopK> large = make_topk<float>(false, true);
    large.mutable_W_enc()(0, 0) = 1e6f;
    CHECK_THROWS_AS(save_saelens(temp.file("large"), large, {}, DType::f16), numeric_error);
    CHECK_THROWS_AS(save_saelens(temp.file("int"), large, {}, DType::i32), config_error);
}

TEMPLATE_TEST_CASE("saelens: foreign SAELens options are folded into the weights", "[saelens]", float) {
    using Scalar = TestType;
    TempDir temp("saelens_foreign");
    std::mt19937_64 rng(21);
    const Matrix<Scalar> W_enc = test::gaussian_matrix<Scalar>(d_in, d_sae, rng);
    const Matrix<Scalar> W_dec = test::gaussian_matrix<Scalar>(d_sae, d_in, rng);  // rows not unit norm
    const RowVector<Scalar> b_enc = test::gaussian_matrix<Scalar>(1, d_sae, rng, 0.3);
    const RowVector<Scalar> b_dec = test::gaussian_matrix<Scalar>(1, d_in, rng, 0.3);
    const Matrix<Scalar> x = input_batch<Scalar>(23);
    const RowVector<Scalar> norms = W_dec.rowwise().norm().transpose();
    const double tolerance = std::is_same_v<Scalar, float> ? 2e-5 : 1e-12;

    SECTION("topk with rescale_acts_by_decoder_norm and without b_dec on the input") {
        const nlohmann::json cfg = {{"architecture", "topk"}, {"d_in", d_in}, {"d_sae", d_sae}, {"k", 5},
                                    {"dtype", "float32"}, {"apply_b_dec_to_input", false},
                                    {"rescale_acts_by_decoder_norm", true},
                                    {"metadata", {{"sae_lens_version", "6.5.0"}, {"hook_name", "blocks.7.hook_resid_post"}}}};
        const std::string dir = temp.file("rescale");
        write_saelens_dir<Scalar>(dir, cfg, W_enc, b_enc, W_dec, b_dec);
        // SAELens: hidden = (x W_enc + b_enc) * norms; code = topk; x_hat = (code / norms) W_dec + b_dec.
        Matrix<Scalar> hidden = x * W_enc;
        hidden.rowwise() += b_enc;
        hidden = hidden * norms.asDiagonal();
        const Matrix<Scalar> code = hand_top_k(hidden, 5);
        Matrix<Scalar> x_hat = code * norms.cwiseInverse().asDiagonal() * W_dec;
        x_hat.rowwise() += b_dec;

        const auto sae = load_saelens<Scalar, TopK>(dir);
        CHECK_FALSE(sae.config().unit_norm_decoder);
        CHECK_THAT(static_cast<double>((sae.encode(x) - code).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
        CHECK_THAT(static_cast<double>((sae.forward(x) - x_hat).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
        CHECK(read_sae_info(dir).hook_layer == 7);
        check_against_numpy(sae, dir, temp);
    }
    SECTION("pre-6 layout: standard + activation_fn_str topk") {
        const nlohmann::json cfg = {{"architecture", "standard"}, {"d_in", d_in}, {"d_sae", d_sae},
                                    {"activation_fn_str", "topk"}, {"activation_fn_kwargs", {{"k", 3}}},
                                    {"hook_point", "blocks.2.hook_resid_pre"}, {"hook_point_layer", 2},
                                    {"normalize_activations", false}, {"model_name", "gpt2-small"}};
        const std::string dir = temp.file("pre6");
        write_saelens_dir<Scalar>(dir, cfg, W_enc, b_enc, W_dec, b_dec);
        Matrix<Scalar> hidden = x.rowwise() - b_dec;
        hidden = hidden * W_enc;
        hidden.rowwise() += b_enc;
        Matrix<Scalar> x_hat = hand_top_k(hidden, 3) * W_dec;
        x_hat.rowwise() += b_dec;
        const AnyAutoencoder<Scalar> any = load_any_sae<Scalar>(dir);
        REQUIRE(std::holds_alternative<Autoencoder<Scalar, TopK>>(any));
        const auto& sae = std::get<Autoencoder<Scalar, TopK>>(any);
        CHECK(sae.activation().config().k == 3);
        CHECK_THAT(static_cast<double>((sae.forward(x) - x_hat).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
        CHECK(read_sae_info(dir).model_name == "gpt2-small");
        CHECK(read_sae_info(dir).hook_name == "blocks.2.hook_resid_pre");
        CHECK(read_sae_info(dir).hook_layer == 2);
        check_against_numpy(sae, dir, temp);
    }
    SECTION("batchtopk training save: a scalar topk_threshold") {
        const nlohmann::json cfg = {{"architecture", "batchtopk"}, {"d_in", d_in}, {"d_sae", d_sae}, {"k", 4.0},
                                    {"metadata", {{"sae_lens_version", "6.0.0"}}}};
        const std::string dir = temp.file("btk_train");
        std::filesystem::create_directories(dir);
        write_bytes(dir + "/cfg.json", cfg.dump());
        SafetensorsWriter writer;
        writer.add("W_enc", W_enc);
        writer.add("b_enc", b_enc, dtype_of<Scalar>(), std::vector<std::size_t>{d_sae});
        writer.add("W_dec", W_dec);
        writer.add("b_dec", b_dec, dtype_of<Scalar>(), std::vector<std::size_t>{d_in});
        writer.add("topk_threshold", (Matrix<double>(1, 1) << 0.75).finished(), DType::f64, std::vector<std::size_t>{});
        writer.write(dir + "/sae_weights.safetensors");
        const auto sae = load_saelens<Scalar, BatchTopK>(dir);
        CHECK(sae.activation().parameter()(0) == Scalar(0.75));
        CHECK(sae.activation().config().k == 4);
        // relu(pre) * (pre > 0.75), by hand.
        Matrix<Scalar> pre = x.rowwise() - b_dec;
        pre = pre * W_enc;
        pre.rowwise() += b_enc;
        const Matrix<Scalar> code = (pre.array() > Scalar(0.75)).select(pre, Scalar(0));
        CHECK_THAT(static_cast<double>((sae.encode(x) - code).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
        check_against_numpy(sae, dir, temp);
    }
    SECTION("jumprelu with a non-positive threshold acts as ReLU on that latent") {
        RowVector<Scalar> theta = RowVector<Scalar>::Constant(d_sae, Scalar(0.5));
        theta(0) = Scalar(-1);
        theta(1) = Scalar(0);
        const nlohmann::json cfg = {{"architecture", "jumprelu"}, {"d_in", d_in}, {"d_sae", d_sae}};
        const std::string dir = temp.file("jump0");
        write_saelens_dir<Scalar>(dir, cfg, W_enc, b_enc, W_dec, b_dec, {{"threshold", theta}});
        const auto sae = load_saelens<Scalar, JumpReLU>(dir);
        CHECK(sae.activation().parameter().allFinite());
        CHECK_FALSE(sae.config().tied);
        check_against_numpy(sae, dir, temp);
    }
}

TEMPLATE_TEST_CASE("saelens: sparsify directories", "[saelens][sparsify]", float) {
    using Scalar = TestType;
    TempDir temp("sparsify");
    std::mt19937_64 rng(31);
    const Matrix<Scalar> encoder = test::gaussian_matrix<Scalar>(d_sae, d_in, rng);  // [d_sae, d_in]
    const RowVector<Scalar> bias = test::gaussian_matrix<Scalar>(1, d_sae, rng, 0.3);
    const Matrix<Scalar> W_dec = test::gaussian_matrix<Scalar>(d_sae, d_in, rng);
    const RowVector<Scalar> b_dec = test::gaussian_matrix<Scalar>(1, d_in, rng, 0.3);
    const std::string dir = temp.file("layers.4");
    std::filesystem::create_directories(dir);
    write_bytes(dir + "/cfg.json", R"({"activation": "topk", "expansion_factor": 32, "normalize_decoder": true,
        "num_latents": 16, "k": 3, "multi_topk": false, "skip_connection": false, "transcode": false, "d_in": 6})");
    SafetensorsWriter writer;
    writer.add("encoder.weight", encoder);
    writer.add("encoder.bias", bias, dtype_of<Scalar>(), std::vector<std::size_t>{d_sae});
    writer.add("W_dec", W_dec);
    writer.add("b_dec", b_dec, dtype_of<Scalar>(), std::vector<std::size_t>{d_in});
    writer.write(dir + "/sae.safetensors");

    // sparsify's forward by hand: relu((x - b_dec) encoder^T + bias), top-k, decode.
    const Matrix<Scalar> x = input_batch<Scalar>(37);
    Matrix<Scalar> pre(x.rows(), d_sae);
    for (Index r = 0; r < x.rows(); ++r) {
        for (Index j = 0; j < d_sae; ++j) {
            Scalar s = bias(j);
            for (Index i = 0; i < d_in; ++i) s += (x(r, i) - b_dec(i)) * encoder(j, i);
            pre(r, j) = std::max(s, Scalar(0));
        }
    }
    const Matrix<Scalar> code = hand_top_k(pre, 3);
    Matrix<Scalar> x_hat = code * W_dec;
    x_hat.rowwise() += b_dec;
    const double tolerance = std::is_same_v<Scalar, float> ? 2e-5 : 1e-12;

    const Autoencoder<Scalar, TopK> sae = load_sparsify<Scalar>(dir);
    CHECK(sae.W_enc() == encoder.transpose());
    CHECK(sae.activation().config().k == 3);
    CHECK(sae.activation().config().relu);
    CHECK(sae.config().unit_norm_decoder);
    CHECK_THAT(static_cast<double>((sae.encode(x) - code).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
    CHECK_THAT(static_cast<double>((sae.forward(x) - x_hat).cwiseAbs().maxCoeff()), Catch::Matchers::WithinAbs(0.0, tolerance));
    CHECK(std::holds_alternative<Autoencoder<Scalar, TopK>>(load_any_sae<Scalar>(dir)));
    const SaeFileInfo info = read_sae_info(dir);
    CHECK(info.format == "sparsify");
    CHECK(info.d_sae == d_sae);
    CHECK(info.hook_name == "layers.4");
    CHECK(info.hook_layer == 4);
    check_against_numpy(sae, dir, temp);

    // Unsupported sparsify variants are refused by name.
    write_bytes(dir + "/cfg.json", R"({"d_in": 6, "num_latents": 16, "k": 3, "skip_connection": true})");
    CHECK_THROWS_WITH(load_sparsify<Scalar>(dir), Catch::Matchers::Contains("skip_connection"));
    write_bytes(dir + "/cfg.json", R"({"d_in": 6, "num_latents": 16, "k": 3, "activation": "groupmax"})");
    CHECK_THROWS_WITH(load_sparsify<Scalar>(dir), Catch::Matchers::Contains("groupmax"));
    write_bytes(dir + "/cfg.json", R"({"d_in": 6, "num_latents": 8, "k": 3})");  // tensors are [16, 6]
    CHECK_THROWS_AS(load_sparsify<Scalar>(dir), io_error);
}

TEST_CASE("saelens: malformed directories throw io_error naming the file and field", "[saelens]") {
    TempDir temp("saelens_bad");
    const Autoencoder<float, TopK> sae = make_topk<float>(false, true);
    const std::string good = temp.file("good");
    save_saelens(good, sae);
    const nlohmann::json cfg = read_json(good + "/cfg.json");
    int counter = 0;
    // A copy of the good directory with cfg.json replaced; loading must fail naming `words`.
    const auto check_cfg = [&](const nlohmann::json& bad_cfg, std::initializer_list<const char*> words) {
        const std::string dir = temp.file("bad" + std::to_string(counter++));
        std::filesystem::create_directories(dir);
        std::filesystem::copy_file(good + "/sae_weights.safetensors", dir + "/sae_weights.safetensors");
        write_bytes(dir + "/cfg.json", bad_cfg.dump());
        try {
            (void)load_any_sae<float>(dir);
            FAIL("no io_error for " << bad_cfg.dump());
        } catch (const io_error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(dir) != std::string::npos);
            for (const char* word : words) CHECK(std::string(e.what()).find(word) != std::string::npos);
        }
    };
    nlohmann::json bad = cfg;
    bad.erase("d_in");
    check_cfg(bad, {"cfg.json", "'d_in'"});
    bad = cfg;
    bad.erase("d_sae");
    check_cfg(bad, {"'d_sae'"});
    bad = cfg;
    bad["d_sae"] = 17;
    check_cfg(bad, {"sae_weights.safetensors", "'W_enc'", "[6, 16]"});
    bad = cfg;
    bad["d_in"] = "6";
    check_cfg(bad, {"'d_in'"});
    bad = cfg;
    bad["architecture"] = "gated";
    check_cfg(bad, {"'architecture'", "gated"});
    bad = cfg;
    bad["k"] = 17;
    check_cfg(bad, {"'k'"});
    bad = cfg;
    bad.erase("k");
    bad.erase("activation_fn_kwargs");
    bad["metadata"].erase("libsae");
    check_cfg(bad, {"'k'"});
    bad = cfg;
    bad["normalize_activations"] = "layer_norm";
    check_cfg(bad, {"'normalize_activations'"});
    bad = cfg;
    bad["dtype"] = "int8";
    check_cfg(bad, {"'dtype'"});
    bad = cfg;
    bad["metadata"]["libsae"]["topk_relu"] = "yes";
    check_cfg(bad, {"'topk_relu'"});

    // Not JSON, missing files, missing or non-finite tensors.
    const std::string dir = temp.file("files");
    std::filesystem::create_directories(dir);
    CHECK_THROWS_WITH(load_any_sae<float>(dir), Catch::Matchers::Contains(dir));
    CHECK_THROWS_AS(read_sae_info(dir), io_error);
    std::filesystem::copy_file(good + "/sae_weights.safetensors", dir + "/sae_weights.safetensors");
    CHECK_THROWS_WITH((load_saelens<float, TopK>(dir)), Catch::Matchers::Contains("cfg.json"));
    write_bytes(dir + "/cfg.json", "{\"d_in\": 6,");
    CHECK_THROWS_WITH((load_saelens<float, TopK>(dir)), Catch::Matchers::Contains("cfg.json") && Catch::Matchers::Contains("JSON"));
    write_bytes(dir + "/cfg.json", cfg.dump());
    SafetensorsWriter partial;
    partial.add("W_enc", sae.W_enc());
    partial.add("b_enc", sae.b_enc(), DType::f32, std::vector<std::size_t>{d_sae});
    partial.add("b_dec", sae.b_dec(), DType::f32, std::vector<std::size_t>{d_in});
    partial.write(dir + "/sae_weights.safetensors");
    CHECK_THROWS_WITH((load_saelens<float, TopK>(dir)), Catch::Matchers::Contains("'W_dec'"));
    Matrix<float> nan_decoder = sae.W_dec();
    nan_decoder(2, 3) = std::numeric_limits<float>::quiet_NaN();
    partial.add("W_dec", nan_decoder);
    partial.write(dir + "/sae_weights.safetensors");
    CHECK_THROWS_WITH((load_saelens<float, TopK>(dir)), Catch::Matchers::Contains("'W_dec'") && Catch::Matchers::Contains("NaN"));

    // A tied file whose decoder is not the normalised encoder.
    const std::string tied_dir = temp.file("tied");
    save_saelens(tied_dir, make_topk<float>(true, false));
    Matrix<float> wrong = SafetensorsFile(tied_dir + "/sae_weights.safetensors").matrix<float>("W_dec");
    wrong.row(0) *= -1.0f;
    SafetensorsWriter rewritten;
    const SafetensorsFile original(tied_dir + "/sae_weights.safetensors");
    for (const std::string& name : original.names()) {
        if (name == "W_dec") rewritten.add(name, wrong);
        else rewritten.add(name, original.matrix<float>(name), DType::f32, original.info(name).shape);
    }
    rewritten.write(tied_dir + "/sae_weights.safetensors");
    CHECK_THROWS_WITH((load_saelens<float, TopK>(tied_dir)), Catch::Matchers::Contains("tied"));

    Autoencoder<float, TopK> with_nan = make_topk<float>(false, true);
    with_nan.mutable_b_enc()(0) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(save_saelens(temp.file("nan"), with_nan), numeric_error);
}

TEMPLATE_TEST_CASE("saelens: the NumPy reference forward pass agrees", "[saelens][numpy]", float) {
    using Scalar = TestType;
    TempDir temp("saelens_numpy");
    const DType dtype = dtype_of<Scalar>();
    const auto topk = make_topk<Scalar>(false, true);
    const auto tied = make_topk<Scalar>(true, false);
    const auto batchtopk = make_batchtopk<Scalar>();
    const auto jumprelu = make_jumprelu<Scalar>();
    const auto standard = make_standard<Scalar>();
    const std::vector<std::string> dirs{temp.file("topk"), temp.file("tied"), temp.file("btk"), temp.file("jump"),
                                        temp.file("std")};
    save_saelens(dirs[0], topk, {}, dtype);
    save_saelens(dirs[1], tied, {}, dtype);
    save_saelens(dirs[2], batchtopk, {}, dtype);
    save_saelens(dirs[3], jumprelu, {}, dtype);
    save_saelens(dirs[4], standard, {}, dtype);
    const Matrix<Scalar> x = input_batch<Scalar>(17);
    const auto reference = numpy_forward<Scalar>(dirs, x, temp);
    check_same_forward(topk, x, reference[0]);
    check_same_forward(tied, x, reference[1]);
    CHECK((tied.encode(x).array() < Scalar(0)).any());  // the relu = false case is exercised
    check_same_forward(batchtopk, x, reference[2]);
    check_same_forward(jumprelu, x, reference[3]);
    check_same_forward(standard, x, reference[4]);
}

}  // namespace test_saelens_cases
