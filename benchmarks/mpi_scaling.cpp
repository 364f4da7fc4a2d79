// mpi_scaling: what one distributed training step costs here, split into compute and
// communication, and what the scaling model of README "Training on a cluster"
// predicts for this run and for 8, 64 and 512 ranks.
//
//   mpirun -np P mpi_scaling [--mode data|ensemble] [--d-in 768] [--d-sae 3072] [--k 6]
//        [--batch 500] [--members 10] [--refresh 10] [--steps 5] [--bandwidth-gbs 12.5] [--latency-us 2]
//        [--rank-gflops F]   (the rate of one rank of the cluster predicted for; default: measured here)
//
// --mode data: one SAE, data-parallel (a DistributedMfrEnsemble of one member on a
// grid of P replicas: the step of DataParallelSae); --mode ensemble: an MFR ensemble
// of --members SAEs spread over the ranks (one replica; max-cosine matching refreshed
// every --refresh steps). Rank 0 prints a table and one
// JSON line. Measured here: per-rank compute rate F (the encoder GEMM of one SAE on
// the rank's rows), the effective bandwidth of this machine's MPI (an all-reduce of
// the gradient size), step time, time inside MPI calls, payload bytes per step.
// Predicted: the model below with F and the measured local bandwidth, for the P of
// this run (to compare with the measurement), and with --bandwidth-gbs/--latency-us
// (an interconnect) for 8, 64 and 512 ranks.
//
// Timed with std::chrono::steady_clock, not Google Benchmark like the other benchmarks
// here: a step is collective (every rank must run the same steps in lockstep, or the
// all-reduces inside it block), the time that counts is the slowest rank's (reduced with
// MPI_MAX after a barrier), and the step is split into compute and the time inside MPI
// calls that the communicator accumulates over exactly the timed steps. Google
// Benchmark times, decides and reports per process, with no barrier or cross-rank
// reduction, so each rank would time and print its own table. The JSON line says so
// ("timer").

#include <sae/cli/arguments.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/mpi/mpi.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Setting {
    double d_in, d_sae, batch, members, refresh;
};

/// The scaling model (README): per-step time on P ranks of rate F (flop/s) joined by
/// links of bandwidth `bw` (bytes/s) and latency `alpha` (s), Scalars of `s` bytes.
///  compute: the encoder GEMM, 2 B d n flops per SAE and step (TopK's decoder and
///           backward touch only the k active latents and are left out);
///  data-parallel: every rank B / P rows of every member; ring all-reduce of the
///           gradients, G = (2 n d + n + d) s bytes per member: 2 (P-1)/P G m / bw + 2 (P-1) alpha;
///  ensemble: E = the largest divisor of P not above m ranks per replica, R = P / E
///           replicas; ceil(m / E) members and B / R rows per rank; all-gather of the
///           other members' decoders, (m - m/E) n d s / bw + (E - 1) alpha, plus the
///           replicas' all-reduce of the rank's members' gradients; the penalty's
///           matching refresh, 2 n^2 d flops per pair every K steps, for each pair
///           touching a member of the rank (max-cosine; the Hungarian assignment's
///           O(n^3) is not modelled).
struct Prediction {
    double compute, communication, bytes;
    double efficiency(double single_rank_compute, double ranks) const {
        return single_rank_compute / (ranks * (compute + communication));
    }
};

Prediction predict(const Setting& s, const std::string& mode, double ranks, double flops, double bandwidth,
                   double latency, double scalar_bytes = 4.0) {
    const double per_member_flops = 2.0 * s.batch * s.d_in * s.d_sae;
    const double gradient_bytes = (2.0 * s.d_sae * s.d_in + s.d_sae + s.d_in) * scalar_bytes;
    const auto allreduce = [&](double bytes, double p) {
        return p <= 1 ? 0.0 : 2.0 * (p - 1.0) / p * bytes / bandwidth + 2.0 * (p - 1.0) * latency;
    };
    if (mode == "data") {
        return {s.members * per_member_flops / ranks / flops, allreduce(s.members * gradient_bytes, ranks),
                ranks > 1 ? s.members * gradient_bytes : 0.0};
    }
    double spread = 1;
    for (double e = 1; e <= std::min(ranks, s.members); ++e) {
        if (std::fmod(ranks, e) == 0.0) spread = e;
    }
    const double replicas = ranks / spread;
    const double own = std::ceil(s.members / spread);
    const double gathered = (s.members - own) * s.d_sae * s.d_in * scalar_bytes;
    const double gather_time = spread <= 1 ? 0.0 : gathered / bandwidth + (spread - 1.0) * latency;
    const double pairs = own * (s.members - 1.0) - own * (own - 1.0) / 2.0;
    const double penalty_flops = pairs * 2.0 * s.d_sae * s.d_sae * s.d_in / s.refresh;
    return {(own * per_member_flops / replicas + penalty_flops) / flops,
            gather_time + allreduce(own * gradient_bytes, replicas),
            gathered + (replicas > 1 ? own * gradient_bytes : 0.0)};
}

/// Sustained flop/s of this rank on the encoder GEMM of one SAE over `rows` rows.
double measure_flops(sae::Index rows, sae::Index d_in, sae::Index d_sae) {
    const sae::Matrix<float> x = sae::Matrix<float>::Random(rows, d_in);
    const sae::Matrix<float> w = sae::Matrix<float>::Random(d_in, d_sae);
    sae::Matrix<float> out(rows, d_sae);
    out.noalias() = x * w;  // warm-up
    const Clock::time_point start = Clock::now();
    int repeats = 0;
    do {
        out.noalias() = x * w;
        ++repeats;
    } while (seconds_since(start) < 0.3);
    return 2.0 * double(rows) * double(d_in) * double(d_sae) * repeats / seconds_since(start);
}

/// Effective all-reduce bandwidth of this communicator for `bytes` (bytes / s, as
/// the model's ring formula would need it), 0 on one rank.
double measure_allreduce_bandwidth(const sae::Communicator& world, std::size_t bytes) {
    if (world.size() == 1) return 0.0;
    std::vector<float> buffer(bytes / sizeof(float), 1.0f);
    world.allreduce_sum(buffer.data(), buffer.size(), "warm-up");
    const Clock::time_point start = Clock::now();
    const int repeats = 3;
    for (int i = 0; i < repeats; ++i) world.allreduce_sum(buffer.data(), buffer.size(), "bandwidth probe");
    const double seconds = seconds_since(start) / repeats;
    const double p = world.size();
    return 2.0 * (p - 1.0) / p * double(bytes) / seconds;
}

/// Prints the model's table for 1, 2, 3, 8, 64 and 512 ranks; returns it as JSON.
std::string print_predictions(const Setting& setting, const std::string& mode, double rate, double bandwidth,
                              double latency) {
    std::printf("  predicted with %.0f GFLOP/s per rank, %.1f GB/s, %.1f us links:\n  %6s %12s %12s %12s %10s\n",
                rate / 1e9, bandwidth / 1e9, latency * 1e6, "ranks", "compute s", "comm s", "bytes/rank", "efficiency");
    const double single = predict(setting, mode, 1, rate, bandwidth, latency).compute;
    std::string json = "[";
    for (const double p : {1.0, 2.0, 3.0, 8.0, 64.0, 512.0}) {
        const Prediction at = predict(setting, mode, p, rate, bandwidth, latency);
        std::printf("  %6.0f %12.5f %12.5f %12.3g %9.1f%%\n", p, at.compute, at.communication, at.bytes,
                    100.0 * at.efficiency(single, p));
        json += std::string(p > 1 ? "," : "") + "{\"ranks\":" + std::to_string(int(p)) +
                ",\"efficiency\":" + std::to_string(at.efficiency(single, p)) + "}";
    }
    return json + "]";
}

}  // namespace

int main(int argc, char** argv) {
    return sae::run_ranks(argc, argv, [&](const sae::Communicator& world) {
        const sae::cli::Arguments args(argc, argv, 1,
                                       {{"mode", true}, {"d-in", true}, {"d-sae", true}, {"k", true}, {"batch", true},
                                        {"members", true}, {"refresh", true}, {"steps", true}, {"rank-gflops", true}, {"predict-only", false}, {"bandwidth-gbs", true}, {"latency-us", true}},
                                       "mpi_scaling");
        if (args.help()) {
            if (world.is_root()) {
                std::printf("usage: mpirun -np P mpi_scaling [--mode data|ensemble] [--d-in 768] [--d-sae 3072] [--k 6]\n"
                            "       [--batch 500] [--members 10] [--refresh 10] [--steps 5] [--bandwidth-gbs 12.5]\n"
                            "       [--latency-us 2] [--rank-gflops F] [--predict-only]\n");
            }
            return 0;
        }
        const std::string mode = args.get("mode", "data");
        if (mode != "data" && mode != "ensemble") throw sae::config_error("--mode must be data or ensemble");
        const sae::Index d_in = args.integer("d-in", 768, 1), d_sae = args.integer("d-sae", 3072, 1);
        const sae::Index k = args.integer("k", 6, 1), batch = args.integer("batch", 500, 1);
        const sae::Index members = mode == "data" ? 1 : args.integer("members", 10, 2);
        const std::size_t steps = static_cast<std::size_t>(args.integer("steps", 5, 1));
        const sae::Index refresh = args.integer("refresh", 10, 1);
        const double cluster_flops = args.real("rank-gflops", 0.0) * 1e9;  // 0: F measured here
        const double interconnect = args.real("bandwidth-gbs", 12.5) * 1e9, latency = args.real("latency-us", 2.0) * 1e-6;

        const Setting setting{double(d_in), double(d_sae), double(batch), double(members), double(refresh)};
        if (args.flag("predict-only")) {  // the model alone, e.g. for sizes that do not fit here
            if (!(cluster_flops > 0)) throw sae::config_error("--predict-only needs --rank-gflops");
            if (world.is_root()) {
                std::printf("mpi_scaling --mode %s (model only): d_in %lld, d_sae %lld, batch %lld, members %lld, "
                            "refresh %lld\n", mode.c_str(), (long long)d_in, (long long)d_sae, (long long)batch,
                            (long long)members, (long long)refresh);
                print_predictions(setting, mode, cluster_flops, interconnect, latency);
            }
            return 0;
        }

        sae::AutoencoderConfig model;
        model.d_in = d_in;
        model.d_sae = d_sae;
        sae::TopK<float>::Config activation;
        activation.k = k;
        sae::TrainingConfig training;
        training.init_decoder_bias_to_median = false;  // the benchmark times steady-state steps

        std::mt19937_64 rng(1);
        std::normal_distribution<float> normal;
        sae::Matrix<float> global(batch, d_in);
        for (sae::Index i = 0; i < global.size(); ++i) global.data()[i] = normal(rng);

        const sae::ProcessGrid grid = sae::make_process_grid(world, mode == "data" ? world.size() : 1);
        const sae::Communicator& comm = mode == "data" ? grid.replicas : grid.members;
        sae::MfrConfig mfr;
        mfr.num_saes = members;
        mfr.penalty_coefficient = mode == "data" ? 0.0 : 0.005;
        mfr.penalty_warmup_steps = 0;
        mfr.matching = sae::MatchingMode::max_cosine;
        mfr.matching_refresh_steps = static_cast<std::size_t>(refresh);
        sae::DistributedMfrEnsemble<float, sae::TopK> ensemble(grid, mfr, model, activation, training, 3);
        const auto [first, count] = sae::rank_rows(batch, grid.replicas.rank(), grid.replicas.size());
        const sae::Matrix<float> local = global.middleRows(first, count);

        ensemble.train_step(local);  // the first step gathers the batch; not timed
        world.barrier();
        comm.reset_stats();
        const Clock::time_point start = Clock::now();
        for (std::size_t s = 0; s < steps; ++s) ensemble.train_step(local);
        double step_seconds = seconds_since(start) / double(steps);
        double mpi_seconds = comm.stats().seconds / double(steps);
        const double payload = double(comm.stats().payload_bytes) / double(steps);
        world.allreduce_max(&step_seconds, 1, "step time");
        world.allreduce_max(&mpi_seconds, 1, "mpi time");

        const double flops = world.sum(measure_flops(std::max<sae::Index>(1, batch / world.size()), d_in, d_sae),
                                       "flop rate") / world.size();
        const std::size_t gradient_bytes = static_cast<std::size_t>(2 * d_sae * d_in + d_sae + d_in) * sizeof(float);
        const double local_bandwidth = measure_allreduce_bandwidth(world, gradient_bytes);
        if (!world.is_root()) return 0;

        const double ranks = world.size();
        // The whole step's rate on one rank: what --rank-gflops should be for the runs
        // on more ranks (the GEMM alone is only part of a step).
        const double single_step_rate = predict(setting, mode, 1, 1.0, 1.0, 0.0).compute / (step_seconds - mpi_seconds);
        const double model_rate = cluster_flops > 0 ? cluster_flops : flops;
        const Prediction here =
            predict(setting, mode, ranks, model_rate, local_bandwidth > 0 ? local_bandwidth : 1.0, 0.0);
        std::printf("mpi_scaling --mode %s: d_in %lld, d_sae %lld, k %lld, batch %lld, members %lld, refresh %lld, "
                    "%d ranks\n", mode.c_str(), (long long)d_in, (long long)d_sae, (long long)k, (long long)batch,
                    (long long)members, (long long)refresh, world.size());
        std::printf("  measured: step %.4f s, in MPI %.4f s, payload %.1f MB/step/rank; F = %.2f GFLOP/s/rank, "
                    "all-reduce bandwidth %.2f GB/s\n",
                    step_seconds, mpi_seconds, payload / 1e6, flops / 1e9, local_bandwidth / 1e9);
        if (world.size() == 1) {
            std::printf("  step rate on one rank: %.2f GFLOP/s of model flops (pass as --rank-gflops to runs on more ranks)\n",
                        single_step_rate / 1e9);
        }
        std::printf("  model here (F = %.2f GFLOP/s, measured bandwidth): compute %.4f s + communication %.4f s = %.4f s "
                    "(measured: compute %.4f s, in MPI %.4f s, step %.4f s)\n",
                    model_rate / 1e9, here.compute, here.communication, here.compute + here.communication,
                    step_seconds - mpi_seconds, mpi_seconds, step_seconds);
        const std::string predicted =
            print_predictions(setting, mode, cluster_flops > 0 ? cluster_flops : flops, interconnect, latency);
        std::printf("{\"benchmark\":\"mpi_scaling\",\"timer\":\"std::chrono::steady_clock\",\"mode\":\"%s\",\"ranks\":%d,\"step_s\":%g,\"mpi_s\":%g,"
                    "\"payload_bytes\":%g,\"flops\":%g,\"model_step_s\":%g,\"predicted\":%s}\n",
                    mode.c_str(), world.size(), step_seconds, mpi_seconds, payload, flops,
                    here.compute + here.communication, predicted.c_str());
        return 0;
    });
}
