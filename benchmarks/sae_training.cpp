// TopK SAE training and inference throughput: libsae against the same computation in
// PyTorch on the CPU (benchmarks/sae_training_torch.py, run from here), and against the
// limit of the machine, Eigen's float GEMM rate measured in the same run at each shape
// (DESIGN.md section 5). Also: the MFR ensemble step against m independent SAEs, and
// (in a fresh process, --rss) the peak memory of training.
//
// Shapes (the MFR paper's and a modern one):
//   synthetic  d_in 256 -> d_sae 512,    k 32, batch 10,000
//   gpt2       d_in 768 -> d_sae 3072,   k 6,  batch 500, 10 SAEs on the same batch
//   modern     d_in 768 -> d_sae 24,576, k 32, batch 4,096
//
// What is timed (median over --steps after --warmup untimed steps, one batch reused;
// Google Benchmark times each step, see sae::bench::time_with_google_benchmark):
//   train   TrainableSae<float, TopK>::train_step with the library defaults (untied,
//           unit-norm decoder rows, ReLU after TopK, Adam 1e-3): forward, backward,
//           Adam, decoder renormalisation; the 10 SAEs of `gpt2` are an MfrEnsemble
//           with lambda = 0, i.e. 10 independent SAEs. b_dec starts at 0 (the geometric-
//           median initialisation is a first-step cost).
//   encode  Autoencoder::encode_sparse on the batch (pre-activations and TopK).
//   bound   the encoder GEMM alone, 2 B d_in d_sae FLOPs (per SAE) at the GEMM rate (the
//           faster of one whole product and the same product in the encoder's tiles),
//           timed right before each timed step or encode, since a shared machine's
//           speed drifts: "fraction of bound" = the median over the runs of bound time /
//           run time.
//   mfr     the MFR authors' SAEs (tied, no b_dec, TopK without ReLU, torch MSELoss) in
//           an MfrEnsemble: lambda = 0 (independent), lambda = 1 with the Hungarian
//           matching recomputed every step (exact), and lambda = 1 with a stale matching
//           (never refreshed in the timed steps). A matching refreshed every K steps
//           costs stale + (exact - stale) / K per step; the table gives K = 10, 100 and
//           1000 and the smallest K that keeps the ensemble within 1.25x of the
//           independent SAEs. The exact runs take --mfr-exact-steps steps without a
//           warm-up (at gpt2 one step solves 45 assignments of 3072 x 3072). Besides
//           that model, measured: a run of 100 steps that includes one refresh (warm-
//           started from the matching of 100 steps before), per step, against 100
//           independent steps.
//   check   before timing: both sides (each torch variant) train a small SAE for 4 steps
//           from the same initial weights on the same batches (written as .npy) and
//           their losses are compared, to show that they compute the same thing.
//   --rss   (not timed) --steps training steps of one shape; the peak resident set
//           (VmHWM) against the training state (parameters + Adam's two moments + two
//           batches), as "ratio" = peak / state, and, with the resident set read before
//           the batch and the SAEs are allocated (VmRSS: code and libraries; OpenMP's
//           threads start with the first step),
//           "ratio_above_baseline" = (peak - baseline) / state.
//
// Usage: sae_training [--shapes synthetic,gpt2,modern] [--steps 5] [--warmup 2]
//                     [--torch-steps 3] [--torch-variants dense,sparse] [--no-torch]
//                     [--mfr synthetic,gpt2] [--mfr-steps 3] [--mfr-exact-steps 2]
//                     [--threads N]
//                     [--python /usr/bin/python3] [--torch-script PATH] [--dir DIR]
//        sae_training --rss SHAPE [--steps 3] [--threads N]
// Prints a table and one JSON line (the last line; "timer" names the timer). Google
// Benchmark's own table of every measurement goes to stderr.
#include "bench_support.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/io/file.hpp>
#include <sae/io/npy.hpp>
#include <sae/mfr/ensemble.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using sae::bench::benchmarks_dir;
using sae::bench::load_average;
using sae::bench::median;
using sae::bench::time_with_google_benchmark;

using sae::Index;

struct Shape {
    std::string name;
    Index d_in, d_sae, k, batch, num_saes;
    double encoder_flops() const { return 2.0 * static_cast<double>(batch * d_in * d_sae * num_saes); }
};

const std::vector<Shape>& all_shapes() {
    static const std::vector<Shape> shapes = {{"synthetic", 256, 512, 32, 10000, 1},
                                              {"gpt2", 768, 3072, 6, 500, 10},
                                              {"modern", 768, 24576, 32, 4096, 1}};
    return shapes;
}

const Shape& shape_named(const std::string& name) {
    for (const Shape& s : all_shapes()) {
        if (s.name == name) return s;
    }
    throw sae::config_error("unknown shape '" + name + "' (expected synthetic, gpt2 or modern)");
}

struct Options {
    std::vector<std::string> shapes = {"synthetic", "gpt2", "modern"};
    std::vector<std::string> mfr = {"synthetic", "gpt2"};
    std::vector<std::string> torch_variants = {"dense", "sparse"};
    int steps = 5, warmup = 2, torch_steps = 3, mfr_steps = 3, mfr_exact_steps = 2, threads = 0;
    bool torch = true;
    std::string rss;
    std::string python = "/usr/bin/python3";
    std::string torch_script = benchmarks_dir() + "/sae_training_torch.py";
    std::string dir = "/tmp/sae_training_bench";
};

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1,
                                   {{"shapes", true}, {"mfr", true}, {"torch-variants", true}, {"steps", true},
                                    {"warmup", true}, {"torch-steps", true}, {"mfr-steps", true},
                                    {"mfr-exact-steps", true}, {"threads", true}, {"no-torch", false}, {"rss", true},
                                    {"python", true}, {"torch-script", true}, {"dir", true}},
                                   "sae_training");
    if (args.help()) {
        std::cout << "usage: sae_training [--shapes LIST] [--mfr LIST] [--torch-variants dense,sparse] [--steps N]\n"
                     "       [--warmup N] [--torch-steps N] [--mfr-steps N] [--mfr-exact-steps N] [--threads N]\n"
                     "       [--no-torch] [--rss SHAPE] [--python PATH] [--torch-script PATH] [--dir DIR]\n";
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("sae_training: unexpected argument '" + args.positional().front() + "'");
    Options o;
    o.shapes = args.items("shapes", o.shapes);
    o.mfr = args.items("mfr", o.mfr);
    o.torch_variants = args.items("torch-variants", o.torch_variants);
    o.steps = static_cast<int>(args.integer("steps", o.steps, 1));
    o.warmup = static_cast<int>(args.integer("warmup", o.warmup, 0));
    o.torch_steps = static_cast<int>(args.integer("torch-steps", o.torch_steps, 1));
    o.mfr_steps = static_cast<int>(args.integer("mfr-steps", o.mfr_steps, 1));
    o.mfr_exact_steps = static_cast<int>(args.integer("mfr-exact-steps", o.mfr_exact_steps, 1));
    o.threads = static_cast<int>(args.integer("threads", o.threads, 0));
    o.torch = !args.flag("no-torch");
    o.rss = args.get("rss", o.rss);
    o.python = args.get("python", o.python);
    o.torch_script = args.get("torch-script", o.torch_script);
    o.dir = args.get("dir", o.dir);
    for (const std::string& s : o.shapes) shape_named(s);
    for (const std::string& s : o.mfr) shape_named(s);
    for (const std::string& v : o.torch_variants) {
        if (v != "dense" && v != "sparse") throw sae::config_error("--torch-variants: unknown variant " + v);
    }
    return o;
}

/// A memory field of /proc/self/status in bytes: "VmRSS" (resident set size now) or
/// "VmHWM" (its peak so far).
double proc_status_bytes(const std::string& field) {
    std::ifstream in("/proc/self/status");
    const std::string key = field + ":";
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) * 1024.0;
    }
    throw sae::io_error("/proc/self/status: no " + field + " line");
}

sae::Matrix<float> gaussian_batch(Index rows, Index cols, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    sae::Matrix<float> x(rows, cols);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
    return x;
}

/// Eigen's float GEMM rate for [rows, inner] x [inner, cols] with the current threads,
/// measured two ways: one whole product (Eigen parallelises it), and the same product in
/// the tiles the streamed encoder uses (encoder_stream.hpp: blocks of 256 rows on the
/// threads, 512 columns at a time into a tile that stays in cache). The limit is the
/// faster of the two: at some shapes the tiles beat the whole product, whose [rows, cols]
/// result does not fit in cache.
struct GemmRate {
    double whole = 0, tiled = 0;
    double best() const { return std::max(whole, tiled); }
};

/// The two products of the limit, timed once each per call, so that the limit can be
/// measured right beside each run of the work it bounds: a shared VM's speed drifts
/// within seconds, and a fraction taken from timings minutes apart drifts with it.
class GemmLimit {
public:
    GemmLimit(std::string shape, Index rows, Index inner, Index cols)
        : shape_(std::move(shape)), rows_(rows), cols_(cols),
          a_(sae::Matrix<float>::Random(rows, inner)), b_(sae::Matrix<float>::Random(inner, cols)),
          whole_(rows, cols),
          tiles_(static_cast<std::size_t>(sae::detail::available_threads()),
                 sae::Matrix<float>(sae::detail::stream_block_rows, sae::detail::stream_chunk_cols)),
          zero_bias_(sae::RowVector<float>::Zero(cols)), flops_(2.0 * static_cast<double>(rows * inner * cols)) {}

    GemmRate measure_once() {
        GemmRate rate;
        rate.whole = flops_ / time_with_google_benchmark(shape_ + " GEMM", [&] { whole_.noalias() = a_ * b_; }, 0, 1);
        rate.tiled = flops_ / time_with_google_benchmark(shape_ + " GEMM in encoder tiles", [&] { tiled_product(); }, 0, 1);
        return rate;
    }

private:
    /// The encoder's own tile loop (encoder_stream.hpp, stream_pre_activations) with a
    /// zero bias and no selection: the same GEMM shapes and packing the streamed encoder
    /// runs, and nothing else.
    void tiled_product() {
        sae::detail::stream_pre_activations<float>(
            rows_, b_, zero_bias_,
            [&](const sae::detail::StreamBlock& block) { return a_.middleRows(block.first, block.count); },
            [&](const sae::detail::StreamBlock& block, Index, Index width) {
                return sae::detail::stream_tile(tiles_[static_cast<std::size_t>(block.slot)], block, width);
            },
            [](const sae::detail::StreamBlock&, const auto&, Index) {}, [](const sae::detail::StreamBlock&) {});
    }

    std::string shape_;
    Index rows_, cols_;
    sae::Matrix<float> a_, b_, whole_;
    std::vector<sae::Matrix<float>> tiles_;
    sae::RowVector<float> zero_bias_;
    double flops_;
};

/// Times `work` `runs` times (after `warmup` untimed runs), each run right after one
/// measurement of the limit; returns the median seconds of the work and the median, over
/// the runs, of (time of `flops` at that run's limit) / (the run's time).
struct BoundedTiming {
    double seconds = 0, fraction_of_bound = 0;
    GemmRate rate;  ///< the medians of the limit's two rates
};

template <class Work>
BoundedTiming time_against_limit(GemmLimit& limit, const std::string& name, Work&& work, double flops, int warmup, int runs) {
    for (int i = 0; i < warmup; ++i) work();
    std::vector<double> seconds, fractions, whole, tiled;
    for (int run = 0; run < runs; ++run) {
        const GemmRate rate = limit.measure_once();
        const double t = time_with_google_benchmark(name, work, 0, 1);
        seconds.push_back(t);
        fractions.push_back(flops / rate.best() / t);
        whole.push_back(rate.whole);
        tiled.push_back(rate.tiled);
    }
    BoundedTiming timing;
    timing.seconds = median(seconds);
    timing.fraction_of_bound = median(fractions);
    timing.rate.whole = median(whole);
    timing.rate.tiled = median(tiled);
    return timing;
}

sae::TrainingConfig library_defaults() {
    sae::TrainingConfig training;
    training.init_decoder_bias_to_median = false;
    return training;
}

using Ensemble = sae::MfrEnsemble<float, sae::TopK>;
using Trainable = sae::TrainableSae<float, sae::TopK>;

/// m untied TopK SAEs with the library defaults on one batch: lambda = 0.
Ensemble independent_saes(const Shape& s) {
    sae::MfrConfig config;
    config.num_saes = s.num_saes;
    config.penalty_coefficient = 0.0;
    return Ensemble(config, {s.d_in, s.d_sae}, {s.k, true}, library_defaults(), /*seed=*/1);
}

struct TorchRun {
    bool ok = false;
    nlohmann::json result;
};

TorchRun run_torch(const Options& o, const Shape& s, const std::string& variant, const std::string& mode, int threads,
                   const std::string& extra = "") {
    std::filesystem::create_directories(o.dir);
    const std::string out = o.dir + "/torch_" + s.name + "_" + variant + "_" + mode + ".json";
    std::filesystem::remove(out);
    std::ostringstream command;
    command << o.python << " " << o.torch_script << " --d-in " << s.d_in << " --d-sae " << s.d_sae << " --k " << s.k
            << " --batch " << s.batch << " --num-saes " << s.num_saes << " --variant " << variant << " --mode " << mode
            << " --warmup 1 --steps " << o.torch_steps << " --threads " << threads << " --out " << out << extra;
    std::cerr << "running: " << command.str() << "\n";
    TorchRun run;
    if (std::system(command.str().c_str()) != 0 || !std::filesystem::exists(out)) {
        std::cerr << "sae_training: the PyTorch side failed (" << command.str() << ")\n";
        return run;
    }
    run.result = nlohmann::json::parse(sae::read_whole_file(out));
    run.ok = true;
    return run;
}

/// Both sides train a small SAE from the same weights on the same batches; returns the
/// largest relative difference of their per-step losses (or -1 when torch failed).
nlohmann::json check_against_torch(const Options& o, int threads) {
    const Shape s{"check", 64, 256, 8, 512, 1};
    const std::string dir = o.dir + "/check";
    std::filesystem::create_directories(dir);
    Trainable sae_model({s.d_in, s.d_sae}, {s.k, true}, library_defaults(), 3);
    const auto& model = sae_model.model();
    sae::write_npy(dir + "/init_W_enc.npy", model.W_enc());
    sae::write_npy(dir + "/init_b_enc.npy", sae::Matrix<float>(model.b_enc()));
    sae::write_npy(dir + "/init_W_dec.npy", model.W_dec());
    sae::write_npy(dir + "/init_b_dec.npy", sae::Matrix<float>(model.b_dec()));
    std::vector<double> losses;
    for (int step = 0; step < 4; ++step) {
        // Shifted and scaled, so that b_dec and the ReLU both matter.
        const sae::Matrix<float> batch = (gaussian_batch(s.batch, s.d_in, 100 + static_cast<std::uint64_t>(step)).array() * 2.0f + 0.5f).matrix();
        sae::write_npy(dir + "/batch_" + std::to_string(step) + ".npy", batch);
        losses.push_back(sae_model.train_step(batch).loss);
    }
    nlohmann::json check{{"shape", {{"d_in", s.d_in}, {"d_sae", s.d_sae}, {"k", s.k}, {"batch", s.batch}}},
                         {"libsae_losses", losses}};
    if (!o.torch) return check;
    double worst = 0.0;
    for (const std::string& variant : o.torch_variants) {
        const TorchRun torch = run_torch(o, s, variant, "train", threads, " --check " + dir);
        if (!torch.ok) return check;
        const std::vector<double> torch_losses = torch.result.at("losses").get<std::vector<double>>();
        worst = std::max(worst, torch_losses.size() == losses.size() ? 0.0 : 1.0);
        for (std::size_t i = 0; i < std::min(losses.size(), torch_losses.size()); ++i) {
            worst = std::max(worst, std::abs(losses[i] - torch_losses[i]) / std::abs(torch_losses[i]));
        }
        check["torch_losses_" + variant] = torch_losses;
    }
    check["max_relative_difference"] = worst;
    return check;
}

struct ShapeResult {
    Shape shape;
    GemmRate gemm{};  ///< medians over all the limit's measurements
    double train_seconds = 0, encode_seconds = 0, train_fraction = 0, encode_fraction = 0;
    nlohmann::json torch = nlohmann::json::object();
};

ShapeResult measure_shape(const Options& o, const Shape& s, int threads) {
    ShapeResult r{s};
    GemmLimit limit(s.name, s.batch, s.d_in, s.d_sae);
    const sae::Matrix<float> batch = gaussian_batch(s.batch, s.d_in, 7);
    {
        std::cerr << "shape " << s.name << ": libsae train, each step beside the GEMM limit\n";
        Ensemble saes = independent_saes(s);
        const BoundedTiming train = time_against_limit(
            limit, s.name + " libsae train", [&] { saes.train_step(batch); }, s.encoder_flops(), o.warmup, o.steps);
        std::cerr << "shape " << s.name << ": libsae encode, each run beside the GEMM limit\n";
        sae::SparseCode<float> code;
        const BoundedTiming encode = time_against_limit(
            limit, s.name + " libsae encode",
            [&] {
                for (const auto& member : saes.members()) member.model().encode_sparse(batch, code);
            },
            s.encoder_flops(), 1, o.steps);
        r.train_seconds = train.seconds;
        r.train_fraction = train.fraction_of_bound;
        r.encode_seconds = encode.seconds;
        r.encode_fraction = encode.fraction_of_bound;
        r.gemm.whole = median({train.rate.whole, encode.rate.whole});
        r.gemm.tiled = median({train.rate.tiled, encode.rate.tiled});
    }
    if (o.torch) {
        for (const std::string& variant : o.torch_variants) {
            const TorchRun run = run_torch(o, s, variant, "train", threads);
            if (run.ok) r.torch["train_" + variant] = run.result;
        }
        const TorchRun run = run_torch(o, s, "dense", "encode", threads);
        if (run.ok) r.torch["encode"] = run.result;
    }
    return r;
}

struct MfrResult {
    Shape shape;
    double independent = 0, exact = 0, stale = 0;
    double independent_run = 0, refreshed_run = 0;  ///< per step, over a run of refresh_run_steps steps
};

/// The directly measured refresh interval: a run of this many steps refreshes once.
constexpr int refresh_run_steps = 100;

MfrResult measure_mfr(const Options& o, const Shape& base) {
    Shape s = base;
    if (s.num_saes == 1) s.num_saes = 2;  // the paper's synthetic MFR: 2 SAEs
    MfrResult r{s};
    const sae::Matrix<float> batch = gaussian_batch(s.batch, s.d_in, 11);
    sae::TrainingConfig training;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
    training.init_decoder_bias_to_median = false;
    const auto make_ensemble = [&](double lambda, std::size_t refresh) {
        sae::MfrConfig config;
        config.num_saes = s.num_saes;
        config.penalty_coefficient = lambda;
        config.penalty_warmup_steps = 0;
        config.matching_refresh_steps = refresh;
        return Ensemble(config, {s.d_in, s.d_sae, /*tied=*/true, /*decoder_bias=*/false}, {s.k, /*relu=*/false}, training, 5);
    };
    const auto ensemble_step_seconds = [&](const std::string& what, double lambda, std::size_t refresh, int warmup, int steps) {
        Ensemble ensemble = make_ensemble(lambda, refresh);
        return time_with_google_benchmark("mfr " + s.name + " " + what, [&] { ensemble.train_step(batch); }, warmup, steps);
    };
    std::cerr << "mfr " << s.name << ": independent\n";
    r.independent = ensemble_step_seconds("independent", 0.0, 1, 1, o.mfr_steps);
    std::cerr << "mfr " << s.name << ": stale matching\n";
    r.stale = ensemble_step_seconds("stale", 1.0, 1000000, 1, o.mfr_steps);
    std::cerr << "mfr " << s.name << ": exact matching every step\n";
    r.exact = ensemble_step_seconds("exact", 1.0, 1, 0, o.mfr_exact_steps);
    // Measured, not modelled: after one step (whose refresh is the cold first matching),
    // refresh_run_steps steps that include exactly one refresh, warm-started from the
    // matching of refresh_run_steps steps before; against as many independent steps.
    const auto run_seconds_per_step = [&](const std::string& what, double lambda) {
        Ensemble ensemble = make_ensemble(lambda, refresh_run_steps);
        ensemble.train_step(batch);
        const auto run = [&] {
            for (int step = 0; step < refresh_run_steps; ++step) ensemble.train_step(batch);
        };
        return time_with_google_benchmark("mfr " + s.name + " " + what, run, 0, 1) / refresh_run_steps;
    };
    std::cerr << "mfr " << s.name << ": " << refresh_run_steps << " independent steps\n";
    r.independent_run = run_seconds_per_step(std::to_string(refresh_run_steps) + " independent steps", 0.0);
    std::cerr << "mfr " << s.name << ": " << refresh_run_steps << " steps with one refresh\n";
    r.refreshed_run = run_seconds_per_step(std::to_string(refresh_run_steps) + " steps, one refresh", 1.0);
    return r;
}

/// --rss: train one shape in this fresh process and report its peak memory against the
/// memory the training state needs: parameters + Adam's two moments + two batches. The
/// resident set before anything of the training exists (code and libraries; OpenMP's
/// threads start with the first step) is recorded too, so that the memory training adds
/// can be compared alone.
int run_rss(const Options& o, int threads) {
    const Shape& s = shape_named(o.rss);
    const double baseline = proc_status_bytes("VmRSS");
    const sae::Matrix<float> batch = gaussian_batch(s.batch, s.d_in, 7);
    Ensemble saes = independent_saes(s);
    for (int step = 0; step < o.steps; ++step) saes.train_step(batch);
    const double peak = proc_status_bytes("VmHWM");
    const double parameters = static_cast<double>(s.num_saes * (2 * s.d_in * s.d_sae + s.d_in + s.d_sae));
    const double floor_bytes = 4.0 * (3.0 * parameters + 2.0 * static_cast<double>(s.batch * s.d_in));
    std::cout << "peak RSS of training " << s.name << " (" << o.steps << " steps, " << threads << " threads): " << std::fixed
              << std::setprecision(1) << peak / 1048576.0 << " MiB; parameters + Adam + two batches: "
              << floor_bytes / 1048576.0 << " MiB; ratio " << std::setprecision(3) << peak / floor_bytes
              << "; baseline RSS before training: " << std::setprecision(1) << baseline / 1048576.0
              << " MiB; ratio above baseline " << std::setprecision(3) << (peak - baseline) / floor_bytes << "\n";
    const nlohmann::json json{{"benchmark", "sae_training_rss"}, {"shape", s.name}, {"threads", threads},
                              {"steps", o.steps}, {"peak_rss_bytes", peak}, {"baseline_rss_bytes", baseline},
                              {"state_bytes", floor_bytes}, {"ratio", peak / floor_bytes},
                              {"ratio_above_baseline", (peak - baseline) / floor_bytes}};
    std::cout << json.dump() << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return sae::bench::run("sae_training", [&] {
        const Options o = parse(argc, argv);
        const int threads = sae::bench::use_threads(o.threads);
        if (!o.rss.empty()) return run_rss(o, threads);

        const std::string load_before = load_average();
        nlohmann::json json{{"benchmark", "sae_training"}, {"timer", sae::bench::timer()}, {"threads", threads},
                            {"steps", o.steps}, {"warmup", o.warmup}, {"torch_steps", o.torch_steps},
                            {"mfr_steps", o.mfr_steps}};
        json["check"] = check_against_torch(o, threads);
        std::vector<ShapeResult> shapes;
        for (const std::string& name : o.shapes) shapes.push_back(measure_shape(o, shape_named(name), threads));
        std::vector<MfrResult> mfr;
        for (const std::string& name : o.mfr) mfr.push_back(measure_mfr(o, shape_named(name)));
        const std::string load_after = load_average();
        json["load_before"] = load_before;
        json["load_after"] = load_after;

        std::cout << std::fixed << "\nTopK SAE training, float32, " << threads << " threads; load average before: "
                  << load_before << ", after: " << load_after << "\n\n"
                  << "| shape | GEMM GFLOP/s | libsae step (s) | tokens/s | fraction of GEMM bound | torch dense (s) | "
                     "ratio | torch sparse (s) | ratio | encode fraction of GEMM | torch encode ratio |\n"
                  << "|---|---|---|---|---|---|---|---|---|---|---|\n";
        for (const ShapeResult& r : shapes) {
            const Shape& s = r.shape;
            nlohmann::json entry{{"d_in", s.d_in}, {"d_sae", s.d_sae}, {"k", s.k}, {"batch", s.batch},
                                 {"num_saes", s.num_saes}, {"gemm_gflops", r.gemm.best() / 1e9},
                                 {"gemm_whole_gflops", r.gemm.whole / 1e9}, {"gemm_tiled_gflops", r.gemm.tiled / 1e9},
                                 {"libsae_train_seconds", r.train_seconds},
                                 {"libsae_train_tokens_per_second", static_cast<double>(s.batch) / r.train_seconds},
                                 {"train_fraction_of_gemm_bound", r.train_fraction},
                                 {"libsae_encode_seconds", r.encode_seconds},
                                 {"encode_fraction_of_gemm_rate", r.encode_fraction}, {"torch", r.torch}};
            std::cout << "| " << s.name << " " << s.d_in << "->" << s.d_sae << " k" << s.k << " B" << s.batch
                      << (s.num_saes > 1 ? " x" + std::to_string(s.num_saes) : "") << " | " << std::setprecision(1)
                      << r.gemm.best() / 1e9 << " | " << std::setprecision(4) << r.train_seconds << " | " << std::setprecision(0)
                      << static_cast<double>(s.batch) / r.train_seconds << " | " << std::setprecision(3) << r.train_fraction;
            for (const std::string variant : {"dense", "sparse"}) {
                const std::string key = "train_" + variant;
                if (r.torch.contains(key)) {
                    const double t = r.torch[key].at("seconds").get<double>();
                    entry["ratio_over_torch_" + variant] = t / r.train_seconds;
                    std::cout << " | " << std::setprecision(4) << t << " | " << std::setprecision(2) << t / r.train_seconds << "x";
                } else {
                    std::cout << " | - | -";
                }
            }
            std::cout << " | " << std::setprecision(3) << r.encode_fraction;
            if (r.torch.contains("encode")) {
                const double t = r.torch["encode"].at("seconds").get<double>();
                entry["encode_ratio_over_torch"] = t / r.encode_seconds;
                std::cout << " | " << std::setprecision(2) << t / r.encode_seconds << "x |\n";
            } else {
                std::cout << " | - |\n";
            }
            json["shapes"][s.name] = entry;
        }
        if (!mfr.empty()) {
            std::cout << "\nMFR ensemble step (tied TopK SAEs, lambda = 1) against the same SAEs with lambda = 0\n\n"
                      << "| shape | SAEs | independent (s) | exact every step (s) | ratio | stale (s) | ratio | "
                         "refreshed every 10 | every 100 | every 1000 | smallest K within 1.25x | measured: "
                      << refresh_run_steps << " steps with one refresh |\n"
                         "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        }
        for (const MfrResult& r : mfr) {
            const auto refreshed = [&r](double every) { return r.stale + (r.exact - r.stale) / every; };
            // stale + (exact - stale) / K <= 1.25 independent
            const double room = 1.25 * r.independent - r.stale;
            const double smallest_k = room > 0.0 ? std::max(1.0, std::ceil((r.exact - r.stale) / room)) : -1.0;
            std::cout << "| " << r.shape.name << " | " << r.shape.num_saes << " | " << std::setprecision(4) << r.independent
                      << " | " << r.exact << " | " << std::setprecision(2) << r.exact / r.independent << "x | "
                      << std::setprecision(4) << r.stale << " | " << std::setprecision(2) << r.stale / r.independent
                      << "x | " << refreshed(10) / r.independent << "x | " << refreshed(100) / r.independent << "x | "
                      << refreshed(1000) / r.independent << "x | " << std::setprecision(0)
                      << (smallest_k > 0 ? std::to_string(static_cast<long>(smallest_k)) : std::string("never")) << " | "
                      << std::setprecision(2) << r.refreshed_run / r.independent_run << "x |\n";
            json["mfr"][r.shape.name] = {{"num_saes", r.shape.num_saes},
                                         {"independent_seconds", r.independent},
                                         {"exact_seconds", r.exact},
                                         {"stale_seconds", r.stale},
                                         {"ratio_exact", r.exact / r.independent},
                                         {"ratio_stale", r.stale / r.independent},
                                         {"ratio_refreshed_every_10", refreshed(10) / r.independent},
                                         {"ratio_refreshed_every_100", refreshed(100) / r.independent},
                                         {"ratio_refreshed_every_1000", refreshed(1000) / r.independent},
                                         {"smallest_refresh_interval_within_1_25", smallest_k},
                                         {"measured_run_steps", refresh_run_steps},
                                         {"measured_independent_seconds", r.independent_run},
                                         {"measured_refreshed_seconds", r.refreshed_run},
                                         {"ratio_measured_refreshed", r.refreshed_run / r.independent_run}};
        }
        if (json["check"].contains("max_relative_difference")) {
            std::cout << "\nSame computation: 4 steps from the same weights and batches, largest relative difference of the "
                         "losses libsae vs torch: "
                      << std::scientific << std::setprecision(2) << json["check"]["max_relative_difference"].get<double>()
                      << "\n";
        }
        std::cout << json.dump() << "\n";
        return 0;
    });
}
