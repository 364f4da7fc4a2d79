// GPT-2 Small forward pass (random weights, 124M parameters, context 1024): tokens/s of
// libsae and of the identical computation in PyTorch on the CPU, in the same run, on the
// same weights and tokens (the weights are written to a Hugging Face directory that
// benchmarks/gpt2_forward_torch.py loads; it also checks that its logits match ours).
// Both sides compute every position's logits [batch*1024, 50257] in float32, using all
// cores (or --threads N). PyTorch runs with two backends (see the script): "onednn"
// (linear layers through oneDNN, PyTorch's fastest CPU path here; --reps passes after a
// warm-up) and "blas" (plain torch ops on the system BLAS; --blas-reps passes without a
// warm-up, since with the reference BLAS one pass takes minutes). Also reported: the
// Eigen SGEMM rate measured in the same run, and each forward pass's FLOP/s as a
// fraction of it (DESIGN.md section 5), and the load average before and after. libsae's
// passes and the SGEMM are timed by Google Benchmark (its own table goes to stderr).
//
// Usage: gpt2_forward [--batch 1] [--context 1024] [--reps 3] [--blas-reps 1]
//                     [--threads N] [--torch-backends onednn,blas]
//                     [--dir /tmp/sae_gpt2_forward] [--python /usr/bin/python3]
//                     [--torch-script PATH] [--no-torch] [--keep]
// Prints a table and one JSON line ("timer" names the timer).
#include "bench_support.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/io/npy.hpp>
#include <sae/io/safetensors.hpp>
#include <sae/models/gpt2.hpp>
#include <sae/models/gpt2_weights.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <initializer_list>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using sae::bench::benchmarks_dir;
using sae::bench::load_average;
using sae::bench::time_with_google_benchmark;

using sae::Index;
namespace models = sae::models;

struct Options {
    Index batch = 1;
    Index context = 1024;
    int reps = 3;
    int blas_reps = 1;
    std::vector<std::string> backends = {"onednn", "blas"};
    int threads = 0;  // 0: every core
    std::string dir = "/tmp/sae_gpt2_forward";
    std::string python = "/usr/bin/python3";
    std::string torch_script = benchmarks_dir() + "/gpt2_forward_torch.py";
    bool torch = true;
    bool keep = false;
};

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1,
                                   {{"batch", true}, {"context", true}, {"reps", true}, {"blas-reps", true},
                                    {"torch-backends", true}, {"threads", true}, {"dir", true}, {"python", true},
                                    {"torch-script", true}, {"no-torch", false}, {"keep", false}},
                                   "gpt2_forward");
    if (args.help()) {
        std::cout << "usage: gpt2_forward [--batch 1] [--context 1024] [--reps 3] [--blas-reps 1]\n"
                     "                    [--threads N] [--torch-backends onednn,blas]\n"
                     "                    [--dir /tmp/sae_gpt2_forward] [--python /usr/bin/python3]\n"
                     "                    [--torch-script PATH] [--no-torch] [--keep]\n";
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("gpt2_forward: unexpected argument '" + args.positional().front() + "'");
    Options o;
    o.batch = args.integer("batch", o.batch, 1);
    o.context = args.integer("context", o.context, 2);
    if (o.context > 1024) throw sae::cli::usage_error("gpt2_forward: --context " + std::to_string(o.context) + " exceeds GPT-2's 1024 positions");
    o.reps = static_cast<int>(args.integer("reps", o.reps, 1));
    o.blas_reps = static_cast<int>(args.integer("blas-reps", o.blas_reps, 1));
    o.backends = args.items("torch-backends", o.backends);
    for (const std::string& backend : o.backends) {
        if (backend != "onednn" && backend != "blas") {
            throw sae::cli::usage_error("gpt2_forward: --torch-backends: unknown backend '" + backend + "' (onednn, blas)");
        }
    }
    o.threads = static_cast<int>(args.integer("threads", o.threads, 0));
    o.dir = args.get("dir", o.dir);
    o.python = args.get("python", o.python);
    o.torch_script = args.get("torch-script", o.torch_script);
    o.torch = !args.flag("no-torch");
    o.keep = args.flag("keep");
    return o;
}

/// The weights as a Hugging Face GPT-2 directory (config.json + model.safetensors).
void save_hf(const models::Gpt2Weights<float>& w, const std::string& dir) {
    std::filesystem::create_directories(dir);
    const models::Gpt2Config& c = w.config;
    const nlohmann::json config{{"model_type", "gpt2"}, {"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_embd", c.n_embd},
                                {"n_positions", c.n_ctx}, {"n_ctx", c.n_ctx}, {"vocab_size", c.vocab_size},
                                {"layer_norm_epsilon", c.layer_norm_epsilon}, {"tie_word_embeddings", true}};
    sae::write_file_atomically(dir + "/config.json", config.dump(2) + "\n");
    sae::SafetensorsWriter out;
    const auto vector = [&](const std::string& name, const sae::RowVector<float>& v) {
        out.add(name, v, sae::DType::f32, std::vector<std::size_t>{static_cast<std::size_t>(v.size())});
    };
    out.add("wte.weight", w.wte);
    out.add("wpe.weight", w.wpe);
    for (int l = 0; l < c.n_layer; ++l) {
        const models::Gpt2BlockWeights<float>& b = w.blocks[static_cast<std::size_t>(l)];
        const std::string p = "h." + std::to_string(l) + ".";
        vector(p + "ln_1.weight", b.ln_1.weight);
        vector(p + "ln_1.bias", b.ln_1.bias);
        out.add(p + "attn.c_attn.weight", b.attn_c_attn.weight);
        vector(p + "attn.c_attn.bias", b.attn_c_attn.bias);
        out.add(p + "attn.c_proj.weight", b.attn_c_proj.weight);
        vector(p + "attn.c_proj.bias", b.attn_c_proj.bias);
        vector(p + "ln_2.weight", b.ln_2.weight);
        vector(p + "ln_2.bias", b.ln_2.bias);
        out.add(p + "mlp.c_fc.weight", b.mlp_c_fc.weight);
        vector(p + "mlp.c_fc.bias", b.mlp_c_fc.bias);
        out.add(p + "mlp.c_proj.weight", b.mlp_c_proj.weight);
        vector(p + "mlp.c_proj.bias", b.mlp_c_proj.bias);
    }
    vector("ln_f.weight", w.ln_f.weight);
    vector("ln_f.bias", w.ln_f.bias);
    out.write(dir + "/model.safetensors");
}

/// Multiply-adds of one forward pass over [batch, seq] tokens, times 2: every GEMM of
/// the blocks and the LM head, and the causal halves of Q K^T and P V.
double forward_flops(const models::Gpt2Config& c, Index batch, Index seq) {
    const double n = static_cast<double>(batch * seq), d = c.n_embd, m = c.mlp_width(), v = c.vocab_size;
    const double per_layer = n * (d * 3 * d + d * d + 2 * d * m) + static_cast<double>(batch) * 2.0 * (seq * (seq + 1) / 2.0) * d;
    return 2.0 * (c.n_layer * per_layer + n * d * v);
}

/// Eigen's float GEMM rate with the current threads, on a shape like the MLP's.
double gemm_flops_per_second() {
    const Index rows = 1024, inner = 768, cols = 3072;
    const sae::Matrix<float> a = sae::Matrix<float>::Random(rows, inner), b = sae::Matrix<float>::Random(inner, cols);
    sae::Matrix<float> c(rows, cols);
    const double seconds = time_with_google_benchmark("Eigen SGEMM 1024x768x3072", [&] { c.noalias() = a * b; }, 1, 5);
    return 2.0 * rows * inner * cols / seconds;
}

struct TorchResult {
    std::string backend;
    double tokens_per_second = 0, seconds = 0, max_abs_diff = 0;
    int threads = 0, reps = 0;
    std::string version;
};

TorchResult run_torch(const Options& o, const std::string& backend, int threads) {
    const std::string out = o.dir + "/torch.json";
    std::filesystem::remove(out);
    const bool blas = backend == "blas";
    const std::string command = o.python + " " + o.torch_script + " --model " + o.dir + " --tokens " + o.dir +
                                "/tokens.npy --check " + o.dir + "/last_logits.npy --backend " + backend + " --reps " +
                                std::to_string(blas ? o.blas_reps : o.reps) + " --warmup " + (blas ? "0" : "1") +
                                " --threads " + std::to_string(threads) + " --out " + out;
    std::cerr << "running: " << command << "\n";
    if (std::system(command.c_str()) != 0 || !std::filesystem::exists(out)) {
        throw sae::io_error("the PyTorch side failed (" + command + ")");
    }
    const nlohmann::json j = nlohmann::json::parse(sae::read_whole_file(out));
    TorchResult r;
    r.backend = backend;
    r.reps = j.at("reps").get<int>();
    r.tokens_per_second = j.at("tokens_per_second").get<double>();
    r.seconds = j.at("seconds_median").get<double>();
    r.max_abs_diff = j.at("max_abs_diff_last_logits").get<double>();
    r.threads = j.at("threads").get<int>();
    r.version = j.at("torch").get<std::string>();
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    return sae::bench::run("gpt2_forward", [&] {
        const Options o = parse(argc, argv);
        const int threads = sae::bench::use_threads(o.threads);
        const std::string load_before = load_average();

        models::Gpt2Config config;  // GPT-2 Small
        models::Gpt2Weights<float> weights = models::random_gpt2_weights<float>(config, /*seed=*/0);
        std::size_t parameters = static_cast<std::size_t>(weights.wte.size() + weights.wpe.size() + weights.ln_f.weight.size() +
                                                          weights.ln_f.bias.size());
        for (const models::Gpt2BlockWeights<float>& b : weights.blocks) {
            for (const sae::RowVector<float>* v : {&b.ln_1.weight, &b.ln_1.bias, &b.ln_2.weight, &b.ln_2.bias, &b.attn_c_attn.bias,
                                                   &b.attn_c_proj.bias, &b.mlp_c_fc.bias, &b.mlp_c_proj.bias}) {
                parameters += static_cast<std::size_t>(v->size());
            }
            for (const sae::Matrix<float>* m : {&b.attn_c_attn.weight, &b.attn_c_proj.weight, &b.mlp_c_fc.weight, &b.mlp_c_proj.weight}) {
                parameters += static_cast<std::size_t>(m->size());
            }
        }
        if (o.torch) save_hf(weights, o.dir);
        const models::Gpt2<float> model(std::move(weights));

        std::mt19937_64 rng(1);
        std::uniform_int_distribution<int> id(0, config.vocab_size - 1);
        models::TokenBatch tokens(o.batch, o.context);
        for (Index i = 0; i < tokens.size(); ++i) tokens.data()[i] = id(rng);

        // One untimed warm-up pass (page faults, caches); the last pass's logits are checked
        // against PyTorch's.
        sae::Matrix<float> logits;
        const double sae_seconds =
            time_with_google_benchmark("libsae GPT-2 forward", [&] { logits = model.forward(tokens); }, 1, o.reps);
        const double n_tokens = static_cast<double>(o.batch * o.context);
        const double sae_rate = n_tokens / sae_seconds;
        const double flops = forward_flops(config, o.batch, o.context);
        const double gemm_rate = gemm_flops_per_second();

        std::vector<TorchResult> torch;
        if (o.torch) {
            std::filesystem::create_directories(o.dir);
            sae::Matrix<double> ids = tokens.cast<double>();
            sae::write_npy(o.dir + "/tokens.npy", ids, sae::DType::i64);
            sae::Matrix<float> last(o.batch, config.vocab_size);
            for (Index b = 0; b < o.batch; ++b) last.row(b) = logits.row(b * o.context + o.context - 1);
            sae::write_npy(o.dir + "/last_logits.npy", last);
            for (const std::string& backend : o.backends) torch.push_back(run_torch(o, backend, threads));
            if (!o.keep) std::filesystem::remove_all(o.dir);
        }
        const std::string load_after = load_average();

        std::cout << "\nGPT-2 Small forward, random weights (" << parameters << " parameters), batch " << o.batch << " x context "
                  << o.context << ", all-position logits, float32, " << threads << " threads; median of " << o.reps
                  << " runs\nload average before: " << load_before << ", after: " << load_after << "\n\n"
                  << "| implementation | seconds / pass | tokens/s | GFLOP/s | fraction of Eigen SGEMM |\n"
                  << "|---|---|---|---|---|\n"
                  << std::fixed << std::setprecision(3) << "| libsae (Eigen) | " << sae_seconds << " | " << std::setprecision(1)
                  << sae_rate << " | " << flops / sae_seconds / 1e9 << " | " << std::setprecision(3)
                  << flops / sae_seconds / gemm_rate << " |\n";
        for (const TorchResult& t : torch) {
            std::cout << "| PyTorch " << t.version << " " << t.backend << " (" << t.threads << " threads, " << t.reps
                      << (t.reps == 1 ? " run" : " runs") << ") | " << std::setprecision(3) << t.seconds << " | "
                      << std::setprecision(1) << t.tokens_per_second << " | " << flops / t.seconds / 1e9 << " | "
                      << std::setprecision(3) << flops / t.seconds / gemm_rate << " |\n";
        }
        std::cout << "\nEigen SGEMM (1024x768 * 768x3072) in this run: " << std::setprecision(1) << gemm_rate / 1e9 << " GFLOP/s\n";
        nlohmann::json json{{"benchmark", "gpt2_forward"}, {"timer", sae::bench::timer()}, {"parameters", parameters},
                            {"batch", o.batch}, {"context", o.context}, {"threads", threads}, {"reps", o.reps},
                            {"libsae_seconds", sae_seconds}, {"libsae_tokens_per_second", sae_rate}, {"forward_gflop", flops / 1e9},
                            {"eigen_sgemm_gflops", gemm_rate / 1e9}, {"load_before", load_before}, {"load_after", load_after}};
        for (const TorchResult& t : torch) {
            std::cout << "tokens/s ratio libsae / PyTorch " << t.backend << ": " << std::fixed << std::setprecision(3)
                      << sae_rate / t.tokens_per_second << "; max |logit difference| at the last positions: " << std::scientific
                      << std::setprecision(2) << t.max_abs_diff << "\n";
            json["torch"][t.backend] = {{"seconds", t.seconds}, {"tokens_per_second", t.tokens_per_second}, {"threads", t.threads},
                                        {"reps", t.reps}, {"version", t.version},
                                        {"ratio_libsae_over_torch", sae_rate / t.tokens_per_second},
                                        {"max_abs_diff_last_logits", t.max_abs_diff}};
        }
        std::cout << json.dump() << "\n";
        return 0;
    });
}
