// The `sae` command line, run as a separate process: exit statuses (0 / 1 / 2), one-line
// errors naming the file, train -> checkpoint -> SIGKILL -> --resume giving the same SAE
// as an uninterrupted run, eval numbers checked against a forward pass computed here,
// and conversions checked by reading their output back.
#include <sae/core/activations/topk.hpp>
#include <sae/io/npy.hpp>
#include <sae/io/saelens.hpp>
#include <sae/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"
#include "support/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_cli_cases {

namespace {

struct Result {
    int status;
    std::string out;
    std::string err;
};

bool exists(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0;
}

/// Runs `sae <arguments>` in `dir` (a shell command line; arguments are ours, no quoting needed).
Result sae_cli(const std::string& dir, const std::string& arguments) {
    const std::string err = dir + "/stderr.txt";
    const std::string command = "cd '" + dir + "' && '" SAE_CLI_PATH "' " + arguments + " 2>'" + err + "'";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, sae::test::read_bytes(err)};
}

/// Activations with structure: 6 sparse directions in R^16 plus small noise.
sae::Matrix<float> activations(sae::Index rows, std::uint64_t seed) {
    const sae::Matrix<float> directions = sae::test::gaussian_matrix<float>(6, 16, 99);
    sae::Matrix<float> codes = sae::test::gaussian_matrix<float>(rows, 6, seed).cwiseAbs();
    codes = (codes.array() > 1.0f).select(codes, 0.0f);
    return codes * directions + 0.01f * sae::test::gaussian_matrix<float>(rows, 16, seed + 1);
}

void write_run_config(const std::string& path, std::size_t steps, const std::string& directory) {
    const nlohmann::json config = {
        {"model", {{"autoencoder", {{"d_in", 16}, {"d_sae", 32}, {"tied", false}, {"decoder_bias", true}}},
                   {"activation", {{"architecture", "topk"}, {"k", 3}}}}},
        {"training", {{"learning_rate", {{"base_rate", 0.004}}}, {"loss", {{"aux_coefficient", 0.03}, {"aux_k", 4}}},
                      {"dead_after_tokens", 500}}},
        {"trainer", {{"total_steps", steps}}},
        {"data", {{"train_files", {"a.npy", "b.npy"}}, {"eval_files", {"a.npy"}}, {"batch_size", 32},
                  {"shuffle_buffer_rows", 64}, {"epochs", 200}, {"seed", 5}}},
        {"output", {{"directory", directory}, {"checkpoint_every", 5}, {"log_every", 10}, {"progress", false}}},
        {"seed", 3},
        {"hook_name", "blocks.0.hook_resid_pre"}};
    std::ofstream(path) << config.dump(2);
}

}  // namespace

TEST_CASE("sae: help, usage errors and exit statuses", "[cli]") {
    const sae::test::TempDir temp("cli");
    const std::string dir = temp.path();
    Result r = sae_cli(dir, "--help");
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("train") && Catch::Contains("eval") && Catch::Contains("convert"));
    for (const char* command : {"train", "eval", "convert", "info"}) {
        r = sae_cli(dir, std::string(command) + " --help");
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::Contains(std::string("usage: sae ") + command));
    }
    r = sae_cli(dir, "");
    CHECK(r.status == 2);
    r = sae_cli(dir, "frobnicate");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("frobnicate"));
    r = sae_cli(dir, "train");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("--config"));
    r = sae_cli(dir, "eval --sae x --data y --batch-size zero");
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains("batch-size"));
    r = sae_cli(dir, "info --colour");
    CHECK(r.status == 2);

    // Failures: exit 1, one line on stderr naming the file.
    r = sae_cli(dir, "info missing.npy");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("missing.npy"));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    std::ofstream(dir + "/bad.npy") << "\x93NUMPY garbage";
    r = sae_cli(dir, "info bad.npy");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("bad.npy"));
    std::ofstream(dir + "/bad.json") << R"({"model": {"autoencoder": {"d_in": 4, "d_sae": 64}}, "trainer": {"totl_steps": 3}})";
    r = sae_cli(dir, "train --config bad.json");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("bad.json") && Catch::Contains("trainer.totl_steps"));
}

TEST_CASE("sae train: killed with SIGKILL, resumed, same SAE as an uninterrupted run", "[cli][train][kill]") {
    const sae::test::TempDir temp("cli");
    const std::string dir = temp.path();
    sae::write_npy(dir + "/a.npy", activations(300, 1));
    sae::write_npy(dir + "/b.npy", activations(200, 2));
    const std::size_t steps = 400;

    write_run_config(dir + "/full.json", steps, "full");
    Result r = sae_cli(dir, "train --config full.json");
    REQUIRE(r.status == 0);
    CHECK(exists(dir + "/full/sae/cfg.json"));
    CHECK(exists(dir + "/full/eval.json"));
    const std::string metrics = sae::test::read_bytes(dir + "/full/metrics.jsonl");
    CHECK(std::count(metrics.begin(), metrics.end(), '\n') == static_cast<long>(steps / 10));

    // The same run, killed mid-way (once it has written a few checkpoints), then resumed.
    write_run_config(dir + "/killed.json", steps, "killed");
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (::chdir(dir.c_str()) != 0) ::_exit(4);
        ::freopen("/dev/null", "w", stdout);
        ::freopen("/dev/null", "w", stderr);
        ::execl(SAE_CLI_PATH, "sae", "train", "--config", "killed.json", static_cast<char*>(nullptr));
        ::_exit(5);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!exists(dir + "/killed/checkpoint.safetensors") && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(exists(dir + "/killed/checkpoint.safetensors"));

    // Without --resume the tool refuses to overwrite the run.
    r = sae_cli(dir, "train --config killed.json");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("--resume"));
    r = sae_cli(dir, "train --config killed.json --resume");
    REQUIRE(r.status == 0);
    INFO(r.err);
    const bool killed_mid_run = r.err.find("resumed from") != std::string::npos && r.err.find("at step 400") == std::string::npos;
    CHECK(killed_mid_run);

    const auto full = sae::load_saelens<float, sae::TopK>(dir + "/full/sae");
    const auto resumed = sae::load_saelens<float, sae::TopK>(dir + "/killed/sae");
    CHECK(full.W_enc() == resumed.W_enc());
    CHECK(full.W_dec() == resumed.W_dec());
    CHECK(full.b_dec() == resumed.b_dec());

    // A changed setting (not total_steps or output) is refused on resume.
    write_run_config(dir + "/changed.json", steps, "killed");
    nlohmann::json changed = nlohmann::json::parse(sae::test::read_bytes(dir + "/changed.json"));
    changed["training"]["learning_rate"]["base_rate"] = 0.01;
    std::ofstream(dir + "/changed.json") << changed.dump();
    r = sae_cli(dir, "train --config changed.json --resume");
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains("base_rate"));

    // sae eval reproduces the numbers of a forward pass computed here.
    r = sae_cli(dir, "eval --sae full/sae --data a.npy --data b.npy --batch-size 64 --svg density.svg --json eval.json");
    REQUIRE(r.status == 0);
    const nlohmann::json report = nlohmann::json::parse(r.out);
    sae::Matrix<float> x(500, 16);
    x << sae::read_npy<float>(dir + "/a.npy"), sae::read_npy<float>(dir + "/b.npy");
    const sae::Matrix<float> x_hat = full.forward(x);
    const sae::Matrix<double> error = (x - x_hat).cast<double>();
    const sae::Matrix<double> centred = x.cast<double>().rowwise() - x.cast<double>().colwise().mean();
    CHECK(report["rows"] == 500);
    CHECK_THAT(report["mse"].get<double>(), Catch::Matchers::WithinRel(error.squaredNorm() / (500.0 * 16), 1e-6));
    CHECK_THAT(report["fvu"].get<double>(), Catch::Matchers::WithinRel(error.squaredNorm() / centred.squaredNorm(), 1e-6));
    CHECK_THAT(report["l0"].get<double>(), Catch::Matchers::WithinAbs(3.0, 1e-12));  // TopK, k = 3, ReLU: <= 3
    CHECK(nlohmann::json::parse(sae::test::read_bytes(dir + "/eval.json")) == report);
    CHECK(sae::test::read_bytes(dir + "/density.svg").rfind("<svg", 0) == 0);
}

TEST_CASE("sae convert and sae info", "[cli][convert]") {
    const sae::test::TempDir temp("cli");
    const std::string dir = temp.path();
    const sae::Matrix<float> x = activations(50, 7);
    sae::write_npy(dir + "/x.npy", x);

    Result r = sae_cli(dir, "convert x.npy x.safetensors --tensor acts");
    REQUIRE(r.status == 0);
    CHECK(sae::SafetensorsFile(dir + "/x.safetensors").matrix<float>("acts") == x);
    r = sae_cli(dir, "convert x.safetensors back.npy");
    REQUIRE(r.status == 0);
    CHECK(sae::read_npy<float>(dir + "/back.npy") == x);
    r = sae_cli(dir, "convert x.npy half.safetensors --dtype F16");
    REQUIRE(r.status == 0);
    const sae::SafetensorsFile half(dir + "/half.safetensors");
    CHECK(half.info("activations").dtype == sae::DType::f16);
    CHECK(half.matrix<float>("activations").isApprox(x, 1e-3f));
    r = sae_cli(dir, "convert x.npy x.txt");
    CHECK(r.status == 2);

    r = sae_cli(dir, "info --json x.npy");
    REQUIRE(r.status == 0);
    const nlohmann::json info = nlohmann::json::parse(r.out);
    CHECK(info["shape"] == nlohmann::json({50, 16}));
    CHECK(info["dtype"] == "<f4");

    // A sparsify directory, written by hand in sparsify's layout, becomes a SAELens one.
    const std::string sparsify = dir + "/sparsify";
    ::mkdir(sparsify.c_str(), 0755);
    const sae::Matrix<float> encoder = sae::test::gaussian_matrix<float>(24, 16, 3);  // [d_sae, d_in]
    const sae::Matrix<float> decoder = sae::test::gaussian_matrix<float>(24, 16, 4);
    const sae::Matrix<float> encoder_bias = sae::test::gaussian_matrix<float>(1, 24, 5) * 0.1f;
    const sae::Matrix<float> decoder_bias = sae::test::gaussian_matrix<float>(1, 16, 6) * 0.1f;
    sae::SafetensorsWriter weights;
    weights.add("encoder.weight", encoder);
    weights.add("encoder.bias", encoder_bias, sae::DType::f32, std::vector<std::size_t>{24});
    weights.add("W_dec", decoder);
    weights.add("b_dec", decoder_bias, sae::DType::f32, std::vector<std::size_t>{16});
    weights.write(sparsify + "/sae.safetensors");
    std::ofstream(sparsify + "/cfg.json") << R"({"num_latents": 24, "k": 4, "d_in": 16, "normalize_decoder": true})";
    r = sae_cli(dir, "convert sparsify saelens");
    REQUIRE(r.status == 0);
    const auto converted = sae::load_saelens<float, sae::TopK>(dir + "/saelens");
    // sparsify's forward by hand: top-4 of relu((x - b_dec) encoder^T + bias), decoded.
    const sae::Matrix<float> pre = ((x.rowwise() - decoder_bias.row(0)) * encoder.transpose()).rowwise() + encoder_bias.row(0);
    sae::Matrix<float> code = sae::Matrix<float>::Zero(50, 24);
    for (sae::Index row = 0; row < 50; ++row) {
        std::vector<sae::Index> order(24);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 4, order.end(),
                          [&](sae::Index a, sae::Index b) { return pre(row, a) > pre(row, b); });
        for (int kept = 0; kept < 4; ++kept) code(row, order[kept]) = std::max(pre(row, order[kept]), 0.0f);
    }
    const sae::Matrix<float> expected = (code * decoder).rowwise() + decoder_bias.row(0);
    CHECK(converted.forward(x).isApprox(expected, 1e-4f));
    r = sae_cli(dir, "info saelens");
    REQUIRE(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("topk") && Catch::Contains("W_enc"));
}

}  // namespace test_cli_cases
