// eeg_mfr: the MFR paper's EEG experiment on real recordings, and EEG denoising measured
// with the EEGdenoiseNet protocol on the same recording's own eye artifacts.
//
// Reconstruction (the paper's question): 5 tied TopK SAEs (512 latents, k = 6, Adam 1e-3,
// batch 1024, 10 epochs) trained as independent SAEs (lambda = 0) and as an MFR ensemble,
// on EEG band-passed 0.5-45 Hz (Butterworth order 5, zero-phase), cut into 1-s windows
// (the last one zero-padded), z-scored per channel and window; MSE on held-out windows,
// over several seeds. Three settings, each printed with its name:
//   multichannel   the paper's input: one row per window, 32 channels x 128 samples
//                  (EEGLAB sample recording, 238 s at 128 Hz: 239 windows);
//   single         one row per (window, channel), 128 samples (7,648 rows);
//   pooled         single-channel rows of every recording whose rate is a whole
//                  multiple of 128 Hz, resampled to 128 Hz: the EEGLAB recording plus
//                  eeglab_test.edf (16 ch, 256 Hz, 60 s), mne_test.edf (136 EEG ch,
//                  512 Hz, 6 s) and mne_test.bdf (64 EEG ch, 2048 Hz, 1 s).
// Denoising: clean = low-EOG channels in low-EOG windows, artifacts = the recording's
// EOG1/EOG2 channels in windows with eye activity, mixed at SNR -7..2 dB; RRMSE
// (temporal, spectral) and CC of: no processing, band-pass only, SAEs, the MFR
// ensemble, and SAEs with their EOG-aligned latents zeroed or excluded. SVG plots go to
// the output directory.
//
//   eeg_mfr               the default run (authors' settings, 3 seeds; a few minutes)
//   eeg_mfr --help        every setting
#include "example_data.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/eeg/eeg.hpp>
#include <sae/io/svg_plot.hpp>
#include <sae/sae.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {

using sae::Index;
using Rows = sae::Matrix<float>;
using Ensemble = sae::MfrEnsemble<float, sae::TopK>;
namespace eeg = sae::eeg;

struct Options {
    std::string data_dir = example_data_path("eeg");
    std::string set_path;  // optional EEGLAB .set (else .fdt + .locs with 32 channels at 128 Hz)
    std::string out_dir = "eeg_mfr_out";
    std::string json_path;
    std::uint64_t seed = 0;
    int seeds = 3;
    std::uint64_t split_seed = 2024;
    double test_fraction = 0.2;
    // The authors' EEG settings (configs/eeg.yaml of their code).
    sae::Index saes = 5;
    sae::Index latents = 512;
    sae::Index k = 6;
    double lr = 1e-3;
    sae::Index batch = 1024;
    int epochs = 10;
    double low_hz = 0.5, high_hz = 45.0;
    int filter_order = 5;
    double window_s = 1.0;
    double rate = 128.0;
    double lambda = 0.5;
    std::size_t warmup = 100;
    sae::MatchingMode matching = sae::MatchingMode::one_to_one;
    std::size_t refresh = 1;
    // What to run.
    bool multichannel = true, single = true, pooled = true, denoise = true;
    // Denoising protocol.
    double clean_corr = 0.3;  // a channel is "clean" when |corr| with both EOG channels is below this
    double eog_ratio = 3.0;   // a latent is EOG-aligned when it fires this many times more often on EOG
    double plot_snr = -3.0;
};

void print_help() {
    std::cout << R"(eeg_mfr: MFR vs independent SAEs on real EEG (reconstruction MSE), and EEG
denoising with the EEGdenoiseNet protocol on the recording's own EOG artifacts.

Data (--data DIR, default examples/data/eeg): eeglab_data.fdt + eeglab_chan32.locs (the
EEGLAB sample: 32 channels at 128 Hz; EOG1/EOG2 are eye channels) and, for the pooled
setting, eeglab_test.edf, mne_test.edf, mne_test.bdf (skipped with a note when absent).

Options (defaults in brackets; the defaults are the MFR authors' EEG settings):
  --data DIR          data directory [examples/data/eeg]
  --set PATH          read channel count, rate and labels from an EEGLAB .set instead
  --out DIR           where the SVG plots go [eeg_mfr_out]
  --json PATH         also write every number as JSON
  --seed S            first seed [0]; seeds S, S+1, ... train the SAEs
  --seeds N           number of seeds [3]
  --split-seed S      which windows are held out (the same for every seed) [2024]
  --test-fraction F   held-out share of the windows [0.2]
  --saes M            SAEs per ensemble [5]
  --latents N         latents per SAE [512]
  --k K               active latents [6]
  --lr X              Adam learning rate [0.001]
  --batch N           rows per step [1024]
  --epochs N          passes over the training rows [10]
  --lambda X          MFR penalty coefficient [0.5, the authors' last non-zero EEG value]
  --warmup N          penalty warm-up steps [100, the authors' default]
  --matching MODE     one_to_one (Hungarian, authors') | max_cosine [one_to_one]
  --refresh K         recompute the matching every K steps [1]
  --only LIST         comma-separated subset of multichannel,single,pooled,denoise
  --clean-corr X      clean channels: |corr| with EOG below X [0.3]
  --eog-ratio X       EOG-aligned latent: firing rate on EOG >= X x rate on clean EEG [3]
  --plot-snr DB       SNR of the denoised segment plotted [-3]
)";
}

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(
        argc, argv, 1,
        {{"data", true}, {"set", true}, {"out", true}, {"json", true}, {"seed", true}, {"seeds", true},
         {"split-seed", true}, {"test-fraction", true}, {"saes", true}, {"latents", true}, {"k", true}, {"lr", true},
         {"batch", true}, {"epochs", true}, {"lambda", true}, {"warmup", true}, {"refresh", true},
         {"clean-corr", true}, {"eog-ratio", true}, {"plot-snr", true}, {"matching", true}, {"only", true}},
        "eeg_mfr");
    if (args.help()) {
        print_help();
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("eeg_mfr: unexpected argument '" + args.positional().front() + "'");
    const auto count = [&](const char* name, auto fallback, std::int64_t minimum) {
        return static_cast<decltype(fallback)>(args.integer(name, static_cast<std::int64_t>(fallback), minimum));
    };
    Options o;
    o.data_dir = args.get("data", o.data_dir);
    o.set_path = args.get("set", o.set_path);
    o.out_dir = args.get("out", o.out_dir);
    o.json_path = args.get("json", o.json_path);
    o.seed = count("seed", o.seed, 0);
    o.seeds = count("seeds", o.seeds, 1);
    o.split_seed = count("split-seed", o.split_seed, 0);
    o.test_fraction = args.real("test-fraction", o.test_fraction);
    o.saes = count("saes", o.saes, 1);
    o.latents = count("latents", o.latents, 1);
    o.k = count("k", o.k, 1);
    o.lr = args.real("lr", o.lr);
    o.batch = count("batch", o.batch, 1);
    o.epochs = count("epochs", o.epochs, 1);
    o.lambda = args.real("lambda", o.lambda);
    o.warmup = count("warmup", o.warmup, 0);
    o.refresh = count("refresh", o.refresh, 1);
    o.clean_corr = args.real("clean-corr", o.clean_corr);
    o.eog_ratio = args.real("eog-ratio", o.eog_ratio);
    o.plot_snr = args.real("plot-snr", o.plot_snr);
    o.matching = args.choice("matching", o.matching,
                             {{"one_to_one", sae::MatchingMode::one_to_one}, {"max_cosine", sae::MatchingMode::max_cosine}});
    if (args.flag("only")) {
        o.multichannel = o.single = o.pooled = o.denoise = false;
        for (const std::string& item : args.items("only", {})) {
            if (item == "multichannel") o.multichannel = true;
            else if (item == "single") o.single = true;
            else if (item == "pooled") o.pooled = true;
            else if (item == "denoise") o.denoise = true;
            else throw sae::cli::usage_error("eeg_mfr: --only: unknown setting '" + item + "' (multichannel, single, pooled, denoise)");
        }
    }
    if (!(o.test_fraction > 0 && o.test_fraction < 1)) throw sae::config_error("--test-fraction must lie in (0, 1)");
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---------------------------------------------------------------------------------
// Data

/// Which windows of a recording are held out: round(fraction * windows) of them, drawn
/// by a seeded shuffle that does not depend on the training seed.
std::vector<bool> held_out_windows(Index windows, double fraction, std::uint64_t seed) {
    std::vector<Index> order(static_cast<std::size_t>(windows));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<bool> test(static_cast<std::size_t>(windows), false);
    const auto count = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(windows)));
    for (std::size_t i = 0; i < count; ++i) test[static_cast<std::size_t>(order[i])] = true;
    return test;
}

/// Rows of `set` whose window is (or is not) held out.
Rows pick_rows(const eeg::SegmentSet<float>& set, const std::vector<bool>& test, bool want_test) {
    std::vector<Index> keep;
    for (Index r = 0; r < set.rows.rows(); ++r) {
        if (test[static_cast<std::size_t>(set.window_of_row[static_cast<std::size_t>(r)])] == want_test) keep.push_back(r);
    }
    Rows out(static_cast<Index>(keep.size()), set.rows.cols());
    for (std::size_t i = 0; i < keep.size(); ++i) out.row(static_cast<Index>(i)) = set.rows.row(keep[i]);
    return out;
}

Rows stack(const std::vector<Rows>& parts) {
    Index rows = 0;
    for (const Rows& p : parts) rows += p.rows();
    Rows out(rows, parts.front().cols());
    Index at = 0;
    for (const Rows& p : parts) {
        out.middleRows(at, p.rows()) = p;
        at += p.rows();
    }
    return out;
}

eeg::Recording load_eeglab_recording(const Options& o) {
    if (!o.set_path.empty()) return eeg::load_eeglab(o.set_path);
    // Metadata given explicitly: 32 channels at 128 Hz, labels from the .locs file.
    return eeg::load_fdt(o.data_dir + "/eeglab_data.fdt", 128.0, eeg::read_locs_labels(o.data_dir + "/eeglab_chan32.locs"));
}

bool is_scalp_eeg(const std::string& label) {
    const auto starts = [&](const char* p) { return label.rfind(p, 0) == 0; };
    const bool eog = label.size() >= 3 && label.compare(label.size() - 3, 3, "EOG") == 0;
    return !(starts("EXG") || starts("Ergo") || starts("Status") || eog);
}

// ---------------------------------------------------------------------------------
// Training

/// The authors' DataLoader: the rows shuffled every epoch, batches of `batch` rows, the
/// last batch of an epoch smaller.
class EpochBatches {
public:
    EpochBatches(const Rows& rows, Index batch, std::uint64_t seed) : rows_(&rows), batch_(batch), rng_(seed) {
        order_.resize(static_cast<std::size_t>(rows.rows()));
        std::iota(order_.begin(), order_.end(), 0);
        reshuffle();
    }
    std::size_t steps_per_epoch() const { return static_cast<std::size_t>((rows_->rows() + batch_ - 1) / batch_); }
    void next_batch(Rows& out) {
        if (position_ >= rows_->rows()) reshuffle();
        const Index n = std::min(batch_, rows_->rows() - position_);
        out.resize(n, rows_->cols());
        for (Index i = 0; i < n; ++i) out.row(i) = rows_->row(order_[static_cast<std::size_t>(position_ + i)]);
        position_ += n;
    }

private:
    void reshuffle() {
        std::shuffle(order_.begin(), order_.end(), rng_);
        position_ = 0;
    }
    const Rows* rows_;
    Index batch_;
    std::mt19937_64 rng_;
    std::vector<Index> order_;
    Index position_ = 0;
};

struct TrainedRun {
    Ensemble ensemble;
    double seconds = 0;
    std::size_t steps = 0;
    double final_warmup_weight = 0;
    double agreement = 0;  ///< mean pairwise MMCS of the members (Hungarian)
};

/// One training run: `rows` with penalty `lambda` from `seed`.
struct Job {
    const Rows* rows;
    double lambda;
    std::uint64_t seed;
    std::string name;
};

TrainedRun train(const Options& o, const Job& job) {
    sae::MfrConfig mfr;
    mfr.num_saes = o.saes;
    mfr.penalty_coefficient = job.lambda;
    mfr.penalty_warmup_steps = o.warmup;
    mfr.matching = o.matching;
    mfr.matching_refresh_steps = o.refresh;
    sae::TrainingConfig training;
    training.learning_rate.base_rate = o.lr;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;  // nn.MSELoss
    const sae::AutoencoderConfig model{job.rows->cols(), o.latents, /*tied=*/true, /*decoder_bias=*/false};
    TrainedRun run{Ensemble(mfr, model, {o.k, /*relu=*/false}, training, job.seed), 0, 0, 0, 0};
    EpochBatches batches(*job.rows, o.batch, sae::derive_seed(job.seed, 1000));
    sae::TrainerConfig trainer;
    trainer.total_steps = static_cast<std::size_t>(o.epochs) * batches.steps_per_epoch();
    const auto start = std::chrono::steady_clock::now();
    sae::train(run.ensemble, batches, trainer);
    run.seconds = seconds_since(start);
    run.steps = trainer.total_steps;
    run.final_warmup_weight = job.lambda > 0 ? sae::cosine_ramp(run.steps, o.warmup) : 0.0;
    run.agreement = run.ensemble.mean_pairwise_mmcs();
    return run;
}

/// Trains every job, two (or as many as OpenMP has threads) at a time. Each run is
/// single-threaded inside: the MFR penalty's matching is serial, so running whole runs
/// side by side keeps both cores busy where parallel members would leave one idle.
/// Results do not depend on the number of threads.
std::vector<std::unique_ptr<TrainedRun>> train_all(const Options& o, const std::vector<Job>& jobs) {
    std::vector<std::unique_ptr<TrainedRun>> runs(jobs.size());
    std::exception_ptr failure;
    const int count = static_cast<int>(jobs.size());
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int i = 0; i < count; ++i) {
        try {
            const Job& job = jobs[static_cast<std::size_t>(i)];
            runs[static_cast<std::size_t>(i)] = std::make_unique<TrainedRun>(train(o, job));
            const TrainedRun& run = *runs[static_cast<std::size_t>(i)];
#if defined(_OPENMP)
#pragma omp critical(eeg_mfr_progress)
#endif
            std::cerr << "  trained " << job.name << " (lambda " << job.lambda << ", seed " << job.seed << "): "
                      << job.rows->rows() << " rows x " << job.rows->cols() << ", " << run.steps << " steps in "
                      << std::fixed << std::setprecision(1) << run.seconds << " s" << std::defaultfloat << "\n";
        } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(eeg_mfr_failure)
#endif
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
    return runs;
}

double member_mse(const Ensemble::Member& member, const Rows& rows) {
    sae::SparseCode<float> code;
    member.model().encode_sparse(rows, code);
    return sae::mean_squared_error(rows, member.model().decode(code));
}

double ensemble_mse(const Ensemble& ensemble, const Rows& rows) {
    double total = 0;
    for (const auto& member : ensemble.members()) total += member_mse(member, rows);
    return total / static_cast<double>(ensemble.members().size());
}

// ---------------------------------------------------------------------------------
// Reconstruction settings

struct SettingResult {
    std::string name;
    std::string description;
    Index train_rows = 0, test_rows = 0, d_in = 0;
    std::size_t steps = 0;
    double final_weight = 0;
    std::vector<double> baseline_mse, mfr_mse, improvement_percent, baseline_agreement, mfr_agreement, seconds;
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> per_recording;  // name -> (baseline, MFR)
};

struct Spread {
    double mean = 0, sd = 0, min = 0, max = 0;
};

Spread spread(const std::vector<double>& v) {
    Spread s;
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
    s.min = *std::min_element(v.begin(), v.end());
    s.max = *std::max_element(v.begin(), v.end());
    return s;
}

/// The lambda = 0 and MFR ensembles of one seed.
struct EnsemblePair {
    Ensemble baseline;
    Ensemble mfr;
};

/// Trains both runs for every seed and scores them on the held-out rows.
/// `test_parts` names held-out subsets reported separately (may be empty); the trained
/// ensembles are appended to `keep` when it is given.
SettingResult run_setting(const Options& o, const std::string& name, const std::string& description, const Rows& train_rows,
                          const Rows& test_rows, const std::vector<std::pair<std::string, Rows>>& test_parts,
                          std::vector<EnsemblePair>* keep = nullptr) {
    SettingResult r;
    r.name = name;
    r.description = description;
    r.train_rows = train_rows.rows();
    r.test_rows = test_rows.rows();
    r.d_in = train_rows.cols();
    std::cerr << "setting '" << name << "': training " << 2 * o.seeds << " ensembles\n";
    std::vector<Job> jobs;
    for (int s = 0; s < o.seeds; ++s) {  // MFR runs first: they take longest
        jobs.push_back({&train_rows, o.lambda, o.seed + static_cast<std::uint64_t>(s), name + " MFR"});
    }
    for (int s = 0; s < o.seeds; ++s) jobs.push_back({&train_rows, 0.0, o.seed + static_cast<std::uint64_t>(s), name + " baseline"});
    std::vector<std::unique_ptr<TrainedRun>> runs = train_all(o, jobs);
    const std::size_t seeds = static_cast<std::size_t>(o.seeds);
    for (std::size_t s = 0; s < seeds; ++s) {
        const TrainedRun& coupled = *runs[s];
        const TrainedRun& base = *runs[seeds + s];
        const double b = ensemble_mse(base.ensemble, test_rows), m = ensemble_mse(coupled.ensemble, test_rows);
        r.baseline_mse.push_back(b);
        r.mfr_mse.push_back(m);
        r.improvement_percent.push_back(100.0 * (b - m) / b);
        r.baseline_agreement.push_back(base.agreement);
        r.mfr_agreement.push_back(coupled.agreement);
        r.steps = coupled.steps;
        r.final_weight = coupled.final_warmup_weight;
        for (const auto& [part, rows] : test_parts) {
            if (rows.rows() == 0) continue;
            r.per_recording[part].first.push_back(ensemble_mse(base.ensemble, rows));
            r.per_recording[part].second.push_back(ensemble_mse(coupled.ensemble, rows));
        }
        r.seconds.push_back(base.seconds + coupled.seconds);
        if (keep != nullptr) keep->push_back({std::move(runs[seeds + s]->ensemble), std::move(runs[s]->ensemble)});
    }
    return r;
}

void print_setting(const Options& o, const SettingResult& r) {
    std::cout << "\n### Setting '" << r.name << "': " << r.description << "\n"
              << r.train_rows << " training rows, " << r.test_rows << " held-out rows, d_in = " << r.d_in << "; "
              << o.saes << " tied TopK SAEs (" << o.latents << " latents, k = " << o.k << "), Adam " << o.lr << ", batch "
              << o.batch << ", " << o.epochs << " epochs = " << r.steps << " steps; MFR lambda = " << o.lambda
              << ", warm-up " << o.warmup << " steps (penalty weight at the last step: " << std::setprecision(3)
              << r.final_weight << " x lambda)\n\n";
    std::cout << "| seed | held-out MSE, lambda = 0 | held-out MSE, MFR | MFR improvement | members agree (MMCS) 0 -> MFR | time (s) |\n"
              << "|------|--------------------------|-------------------|-----------------|-------------------------------|----------|\n";
    std::cout << std::fixed;
    for (std::size_t s = 0; s < r.baseline_mse.size(); ++s) {
        std::cout << "| " << std::setw(4) << o.seed + s << " | " << std::setw(24) << std::setprecision(5) << r.baseline_mse[s]
                  << " | " << std::setw(17) << r.mfr_mse[s] << " | " << std::setw(14) << std::showpos << std::setprecision(2)
                  << r.improvement_percent[s] << std::noshowpos << "% | " << std::setprecision(3) << std::setw(14)
                  << r.baseline_agreement[s] << " -> " << std::setw(12) << r.mfr_agreement[s] << " | " << std::setw(8)
                  << std::setprecision(1) << r.seconds[s] << " |\n";
    }
    const Spread b = spread(r.baseline_mse), m = spread(r.mfr_mse), g = spread(r.improvement_percent);
    std::cout << std::setprecision(5) << "\n" << r.name << ": MSE lambda = 0 " << b.mean << " +- " << b.sd << ", MFR " << m.mean
              << " +- " << m.sd << "; relative improvement " << std::showpos << std::setprecision(2) << g.mean << "%"
              << std::noshowpos << " +- " << g.sd << " (sd over " << r.baseline_mse.size() << " seeds; min " << std::showpos
              << g.min << "%, max " << g.max << "%" << std::noshowpos << "; paper: +6.67%)\n";
    for (const auto& [part, mse] : r.per_recording) {
        const Spread pb = spread(mse.first), pm = spread(mse.second);
        std::cout << "  held-out " << part << ": lambda = 0 " << std::setprecision(5) << pb.mean << ", MFR " << pm.mean
                  << " (" << std::showpos << std::setprecision(2) << 100.0 * (pb.mean - pm.mean) / pb.mean << "%"
                  << std::noshowpos << ")\n";
    }
    std::cout << std::defaultfloat << std::setprecision(6);
}

// ---------------------------------------------------------------------------------
// Denoising

struct Method {
    std::string name;
    std::string color;
    bool dashed = false;
};

/// f(y) = SAE(z) * sd + mean with z the window z-scored (the SAE's training domain).
class ZScored {
public:
    explicit ZScored(const Rows& y) : z_(y), mean_(y.rows()), sd_(y.rows()) {
        for (Index r = 0; r < y.rows(); ++r) {
            mean_[r] = y.row(r).mean();
            sd_[r] = std::max(1e-8f, std::sqrt((y.row(r).array() - mean_[r]).square().mean()));
            z_.row(r) = (y.row(r).array() - mean_[r]) / sd_[r];
        }
    }
    const Rows& z() const { return z_; }
    Rows restore(const Rows& z_hat) const {
        Rows out(z_hat.rows(), z_hat.cols());
        for (Index r = 0; r < z_hat.rows(); ++r) out.row(r) = z_hat.row(r).array() * sd_[r] + mean_[r];
        return out;
    }

private:
    Rows z_;
    Eigen::VectorXf mean_, sd_;
};

/// Latents of `model` that fire at least `ratio` times more often on EOG rows than on
/// clean EEG rows (and on at least 2% of the EOG rows).
std::vector<bool> eog_aligned_latents(const sae::Autoencoder<float, sae::TopK>& model, const Rows& eog_rows, const Rows& clean_rows,
                                      double ratio) {
    const auto rates = [&](const Rows& rows) {
        sae::SparseCode<float> code;
        model.encode_sparse(rows, code);
        Eigen::ArrayXd count = Eigen::ArrayXd::Zero(model.d_sae());
        for (Index r = 0; r < code.outerSize(); ++r) {
            for (sae::SparseCode<float>::InnerIterator it(code, r); it; ++it) count[it.col()] += 1;
        }
        return Eigen::ArrayXd(count / static_cast<double>(rows.rows()));
    };
    const Eigen::ArrayXd on_eog = rates(eog_rows), on_clean = rates(clean_rows);
    std::vector<bool> mask(static_cast<std::size_t>(model.d_sae()), false);
    for (Index j = 0; j < model.d_sae(); ++j) {
        mask[static_cast<std::size_t>(j)] = on_eog[j] >= 0.02 && on_eog[j] >= ratio * on_clean[j];
    }
    return mask;
}

enum class LatentTreatment { keep, zero, exclude };

/// Reconstruction of z-scored rows with the masked latents zeroed after TopK, or
/// excluded before it (their slots go to the next-best latents).
Rows reconstruct(const sae::Autoencoder<float, sae::TopK>& model, const Rows& z, const std::vector<bool>& mask, LatentTreatment how) {
    sae::SparseCode<float> code;
    if (how == LatentTreatment::exclude) {
        sae::Matrix<float> pre;
        model.pre_activations(z, pre);
        for (Index j = 0; j < pre.cols(); ++j) {
            if (mask[static_cast<std::size_t>(j)]) pre.col(j).setConstant(std::numeric_limits<float>::lowest());
        }
        model.activation().select_inference(pre, code);
    } else {
        model.encode_sparse(z, code);
        if (how == LatentTreatment::zero) {
            for (Index r = 0; r < code.outerSize(); ++r) {
                for (sae::SparseCode<float>::InnerIterator it(code, r); it; ++it) {
                    if (mask[static_cast<std::size_t>(it.col())]) it.valueRef() = 0.0f;
                }
            }
        }
    }
    return model.decode(code);
}

/// Mean of the members' reconstructions (each member alone when `member` >= 0).
Rows ensemble_denoise(const Ensemble& ensemble, const ZScored& input, const std::vector<std::vector<bool>>& masks,
                      LatentTreatment how, int member = -1) {
    Rows sum = Rows::Zero(input.z().rows(), input.z().cols());
    int used = 0;
    for (std::size_t i = 0; i < ensemble.members().size(); ++i) {
        if (member >= 0 && static_cast<int>(i) != member) continue;
        sum += reconstruct(ensemble.members()[i].model(), input.z(), masks[i], how);
        ++used;
    }
    return input.restore(sum / static_cast<float>(used));
}

struct DenoiseResult {
    std::vector<double> snrs;
    std::vector<Method> methods;
    // [method][snr] -> scores summed over seeds (divided at the end)
    std::vector<std::vector<eeg::DenoisingScores>> scores;
    int seeds = 0;
    Index clean_channels = 0, test_pairs = 0, clean_train_rows = 0;
    std::vector<std::string> clean_labels;
    std::vector<int> eog_latents_single, eog_latents_mfr;
    // One plotted example (first seed).
    std::vector<double> plot_clean, plot_noisy_raw, plot_noisy_band, plot_mfr, plot_excluded;
};

/// `all_channel` holds, per seed, the ensembles trained on every channel of the training
/// windows (the 'single' setting's); they are trained here when it is empty.
DenoiseResult run_denoising(const Options& o, const eeg::Recording& raw, const eeg::Recording& band, const std::vector<bool>& test_window,
                            const Index window, std::vector<EnsemblePair> all_channel) {
    DenoiseResult result;
    const Index eog1 = band.channel_index("EOG1"), eog2 = band.channel_index("EOG2");
    const Index windows = eeg::segment_count(band.samples(), window, eeg::PaddingRule::drop_last);

    // Clean channels: |corr| with both EOG channels below the threshold (band-passed).
    const auto corr = [&](Index a, Index b) {
        const Eigen::ArrayXd x = band.data.row(a).transpose().array() - band.data.row(a).mean();
        const Eigen::ArrayXd y = band.data.row(b).transpose().array() - band.data.row(b).mean();
        return (x * y).sum() / std::sqrt(x.square().sum() * y.square().sum());
    };
    std::vector<Index> clean_channels;
    for (Index c = 0; c < band.channels(); ++c) {
        if (c == eog1 || c == eog2) continue;
        if (std::abs(corr(c, eog1)) < o.clean_corr && std::abs(corr(c, eog2)) < o.clean_corr) {
            clean_channels.push_back(c);
            result.clean_labels.push_back(band.labels[static_cast<std::size_t>(c)]);
        }
    }
    if (clean_channels.empty()) throw sae::config_error("--clean-corr " + std::to_string(o.clean_corr) + " leaves no clean channel");
    result.clean_channels = static_cast<Index>(clean_channels.size());

    // Eye activity per window: the larger RMS of the two band-passed EOG channels.
    std::vector<double> eog_rms(static_cast<std::size_t>(windows));
    for (Index w = 0; w < windows; ++w) {
        eog_rms[static_cast<std::size_t>(w)] = std::max(eeg::rms(band.data.row(eog1).segment(w * window, window)),
                                                        eeg::rms(band.data.row(eog2).segment(w * window, window)));
    }
    std::vector<double> sorted = eog_rms;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2], upper_quartile = sorted[sorted.size() * 3 / 4];

    // Rows: band-passed clean windows (targets), EOG windows (artifacts), raw versions.
    struct Pools {
        std::vector<Eigen::VectorXd> clean_band, clean_raw, eog_band, eog_raw;
    } train_pool, test_pool;
    for (Index w = 0; w < windows; ++w) {
        Pools& pool = test_window[static_cast<std::size_t>(w)] ? test_pool : train_pool;
        const double activity = eog_rms[static_cast<std::size_t>(w)];
        if (activity <= median) {
            for (Index c : clean_channels) {
                pool.clean_band.push_back(band.data.row(c).segment(w * window, window).transpose());
                pool.clean_raw.push_back(raw.data.row(c).segment(w * window, window).transpose());
            }
        }
        if (activity >= upper_quartile) {
            for (Index e : {eog1, eog2}) {
                pool.eog_band.push_back(band.data.row(e).segment(w * window, window).transpose());
                pool.eog_raw.push_back(raw.data.row(e).segment(w * window, window).transpose());
            }
        }
    }
    const auto zscored_rows = [&](const std::vector<Eigen::VectorXd>& v) {
        Rows rows(static_cast<Index>(v.size()), window);
        for (std::size_t i = 0; i < v.size(); ++i) rows.row(static_cast<Index>(i)) = v[i].transpose().cast<float>();
        return ZScored(rows).z();
    };
    const Rows clean_train = zscored_rows(train_pool.clean_band);
    const Rows eog_train = zscored_rows(train_pool.eog_band);
    result.clean_train_rows = clean_train.rows();

    // Test pairs: each clean test window with an artifact window drawn at random (fixed
    // by the split seed, the same for every SNR and seed, as EEGdenoiseNet pairs them).
    const Index pairs = static_cast<Index>(test_pool.clean_band.size());
    result.test_pairs = pairs;
    std::mt19937_64 rng(o.split_seed + 7);
    std::uniform_int_distribution<std::size_t> pick(0, test_pool.eog_band.size() - 1);
    std::vector<std::size_t> artifact_of(static_cast<std::size_t>(pairs));
    for (auto& a : artifact_of) a = pick(rng);

    // All-channel single-channel rows of the training windows: the SAEs that know EOG.
    eeg::SegmentOptions all_options;
    all_options.window = window;
    all_options.layout = eeg::SegmentLayout::single_channel;
    const eeg::SegmentSet<float> all_rows = eeg::make_segments<float>(band.data, all_options);
    const Rows all_train = pick_rows(all_rows, test_window, false);

    result.snrs = {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2};
    result.methods = {{"no processing", "#7f7f7f", true},
                      {"band-pass only", "#000000", false},
                      {"single SAE", "#1f77b4", true},
                      {"5 independent SAEs, mean", "#17becf", false},
                      {"MFR ensemble, mean", "#d62728", false},
                      {"single SAE, EOG latents zeroed", "#9467bd", true},
                      {"single SAE, EOG latents excluded", "#2ca02c", true},
                      {"MFR ensemble, EOG latents excluded", "#ff7f0e", false}};
    result.scores.assign(result.methods.size(), std::vector<eeg::DenoisingScores>(result.snrs.size()));
    const eeg::WelchPsd psd(band.sample_rate, window);

    // Clean-trained ensembles for every seed (and the all-channel ones when the 'single'
    // setting did not train them), trained side by side.
    const bool need_all = all_channel.size() < static_cast<std::size_t>(o.seeds);
    std::vector<Job> jobs;
    for (int s = 0; s < o.seeds; ++s) {
        const std::uint64_t seed = o.seed + static_cast<std::uint64_t>(s);
        jobs.push_back({&clean_train, o.lambda, seed, "denoise clean-trained MFR"});
        jobs.push_back({&clean_train, 0.0, seed, "denoise clean-trained baseline"});
        if (need_all) {
            jobs.push_back({&all_train, o.lambda, seed, "denoise all-channel MFR"});
            jobs.push_back({&all_train, 0.0, seed, "denoise all-channel baseline"});
        }
    }
    std::cerr << "denoising: training " << jobs.size() << " ensembles\n";
    std::vector<std::unique_ptr<TrainedRun>> runs = train_all(o, jobs);
    const std::size_t per_seed = need_all ? 4 : 2;
    if (need_all) {
        all_channel.clear();
        for (std::size_t s = 0; s < static_cast<std::size_t>(o.seeds); ++s) {
            all_channel.push_back({std::move(runs[s * per_seed + 3]->ensemble), std::move(runs[s * per_seed + 2]->ensemble)});
        }
    }

    for (int s = 0; s < o.seeds; ++s) {
        const TrainedRun& clean_mfr = *runs[static_cast<std::size_t>(s) * per_seed];
        const TrainedRun& clean_base = *runs[static_cast<std::size_t>(s) * per_seed + 1];
        const Ensemble& all_base = all_channel[static_cast<std::size_t>(s)].baseline;
        const Ensemble& all_mfr = all_channel[static_cast<std::size_t>(s)].mfr;
        const std::vector<std::vector<bool>> none(static_cast<std::size_t>(o.saes),
                                                  std::vector<bool>(static_cast<std::size_t>(o.latents), false));
        std::vector<std::vector<bool>> base_masks, mfr_masks;
        int base_count = 0, mfr_count = 0;
        for (Index i = 0; i < o.saes; ++i) {
            base_masks.push_back(eog_aligned_latents(all_base.members()[static_cast<std::size_t>(i)].model(), eog_train, clean_train, o.eog_ratio));
            mfr_masks.push_back(eog_aligned_latents(all_mfr.members()[static_cast<std::size_t>(i)].model(), eog_train, clean_train, o.eog_ratio));
            base_count += static_cast<int>(std::count(base_masks.back().begin(), base_masks.back().end(), true));
            mfr_count += static_cast<int>(std::count(mfr_masks.back().begin(), mfr_masks.back().end(), true));
        }
        result.eog_latents_single.push_back(base_count / static_cast<int>(o.saes));
        result.eog_latents_mfr.push_back(mfr_count / static_cast<int>(o.saes));

        for (std::size_t si = 0; si < result.snrs.size(); ++si) {
            const double snr = result.snrs[si];
            // y = x + lambda n with the SNR of the band-passed (in-band) signals. The mixture
            // is the clean channel plus lambda times the EOG channel shifted in time: band-pass
            // is linear, so the band-passed mixture in the window is exactly x + lambda n_band,
            // and the raw mixture is x_raw + lambda n_raw.
            Rows clean(pairs, window), noisy_band(pairs, window), noisy_raw(pairs, window);
            for (Index p = 0; p < pairs; ++p) {
                const Eigen::VectorXd& x = test_pool.clean_band[static_cast<std::size_t>(p)];
                const std::size_t a = artifact_of[static_cast<std::size_t>(p)];
                const double scale = eeg::artifact_scale(x, test_pool.eog_band[a], snr);
                clean.row(p) = x.transpose().cast<float>();
                noisy_band.row(p) = (x + scale * test_pool.eog_band[a]).transpose().cast<float>();
                Eigen::VectorXd mixed_raw = test_pool.clean_raw[static_cast<std::size_t>(p)] + scale * test_pool.eog_raw[a];
                mixed_raw.array() -= mixed_raw.mean();  // the electrode offset is no information
                noisy_raw.row(p) = mixed_raw.transpose().cast<float>();
            }
            const ZScored input(noisy_band);
            std::vector<Rows> outputs;
            outputs.push_back(noisy_raw);
            outputs.push_back(noisy_band);
            outputs.push_back(Rows());  // single SAE: scored member by member below
            outputs.push_back(ensemble_denoise(clean_base.ensemble, input, none, LatentTreatment::keep));
            outputs.push_back(ensemble_denoise(clean_mfr.ensemble, input, none, LatentTreatment::keep));
            outputs.push_back(Rows());  // single SAE, zeroed: member by member
            outputs.push_back(Rows());  // single SAE, excluded: member by member
            outputs.push_back(ensemble_denoise(all_mfr, input, mfr_masks, LatentTreatment::exclude));
            for (std::size_t m = 0; m < outputs.size(); ++m) {
                eeg::DenoisingScores sc;
                if (m == 2 || m == 5 || m == 6) {  // mean over the 5 SAEs used one at a time
                    for (int i = 0; i < static_cast<int>(o.saes); ++i) {
                        const Rows out = m == 2 ? ensemble_denoise(clean_base.ensemble, input, none, LatentTreatment::keep, i)
                                                : ensemble_denoise(all_base, input, base_masks,
                                                                   m == 5 ? LatentTreatment::zero : LatentTreatment::exclude, i);
                        const eeg::DenoisingScores one = eeg::score(out, clean, psd);
                        sc.rrmse_temporal += one.rrmse_temporal / static_cast<double>(o.saes);
                        sc.rrmse_spectral += one.rrmse_spectral / static_cast<double>(o.saes);
                        sc.cc += one.cc / static_cast<double>(o.saes);
                    }
                } else {
                    sc = eeg::score(outputs[m], clean, psd);
                }
                result.scores[m][si].rrmse_temporal += sc.rrmse_temporal;
                result.scores[m][si].rrmse_spectral += sc.rrmse_spectral;
                result.scores[m][si].cc += sc.cc;
            }
            if (s == 0 && snr == o.plot_snr) {
                const auto as_vector = [](const Rows& rows) {
                    std::vector<double> v(static_cast<std::size_t>(rows.cols()));
                    for (Index t = 0; t < rows.cols(); ++t) v[static_cast<std::size_t>(t)] = rows(0, t);
                    return v;
                };
                const ZScored one(noisy_band.topRows(1));
                result.plot_clean = as_vector(clean.topRows(1));
                result.plot_noisy_raw = as_vector(noisy_raw.topRows(1));
                result.plot_noisy_band = as_vector(noisy_band.topRows(1));
                result.plot_mfr = as_vector(ensemble_denoise(clean_mfr.ensemble, one, none, LatentTreatment::keep));
                result.plot_excluded = as_vector(ensemble_denoise(all_mfr, one, mfr_masks, LatentTreatment::exclude));
            }
        }
        ++result.seeds;
    }
    for (auto& per_method : result.scores) {
        for (auto& sc : per_method) {
            sc.rrmse_temporal /= result.seeds;
            sc.rrmse_spectral /= result.seeds;
            sc.cc /= result.seeds;
        }
    }
    return result;
}

void print_denoising(const Options& o, const DenoiseResult& d) {
    std::cout << "\n### Denoising (EEGdenoiseNet protocol on the EEGLAB recording's own EOG)\n"
              << "clean: " << d.clean_channels << " channels with |corr| < " << o.clean_corr << " to both EOG channels (";
    for (std::size_t i = 0; i < d.clean_labels.size(); ++i) std::cout << (i ? " " : "") << d.clean_labels[i];
    std::cout << ") in windows whose EOG RMS is at most the median; artifacts: EOG1/EOG2 in windows in the top quartile of\n"
              << "EOG RMS; " << d.test_pairs << " held-out (clean, artifact) pairs per SNR; SNR on the 0.5-45 Hz band-passed signals;\n"
              << "SAEs trained on " << d.clean_train_rows << " clean training rows (plain schemes) or on every channel of the\n"
              << "training windows (EOG-latent schemes; latents firing >= " << o.eog_ratio
              << "x more often on EOG than on EEG, on >= 2% of EOG rows:";
    for (std::size_t s = 0; s < d.eog_latents_single.size(); ++s) {
        std::cout << " seed " << o.seed + s << ": " << d.eog_latents_single[s] << " per lambda=0 SAE, " << d.eog_latents_mfr[s] << " per MFR SAE;";
    }
    std::cout << ")\nmeans over " << d.seeds << " seeds. Outputting zeros would score RRMSE_t = 1.\n";
    const auto table = [&](const char* title, auto field) {
        std::cout << "\n" << title << "\n| SNR (dB) |";
        for (std::size_t m = 0; m < d.methods.size(); ++m) std::cout << " (" << m + 1 << ") |";
        std::cout << "\n|----------|";
        for (std::size_t m = 0; m < d.methods.size(); ++m) std::cout << "-------|";
        std::cout << "\n" << std::fixed;
        for (std::size_t si = 0; si < d.snrs.size(); ++si) {
            std::cout << "| " << std::setw(8) << std::setprecision(0) << d.snrs[si] << " |";
            for (std::size_t m = 0; m < d.methods.size(); ++m) std::cout << " " << std::setw(5) << std::setprecision(3) << field(d.scores[m][si]) << " |";
            std::cout << "\n";
        }
        std::cout << "| mean     |";
        for (std::size_t m = 0; m < d.methods.size(); ++m) {
            double total = 0;
            for (const auto& sc : d.scores[m]) total += field(sc);
            std::cout << " " << std::setw(5) << std::setprecision(3) << total / static_cast<double>(d.snrs.size()) << " |";
        }
        std::cout << "\n" << std::defaultfloat << std::setprecision(6);
    };
    std::cout << "\nmethods:";
    for (std::size_t m = 0; m < d.methods.size(); ++m) std::cout << " (" << m + 1 << ") " << d.methods[m].name << ";";
    std::cout << "\n";
    table("RRMSE temporal (lower is better)", [](const eeg::DenoisingScores& s) { return s.rrmse_temporal; });
    table("RRMSE spectral (Welch PSD, lower is better)", [](const eeg::DenoisingScores& s) { return s.rrmse_spectral; });
    table("CC (higher is better)", [](const eeg::DenoisingScores& s) { return s.cc; });
}

void write_plots(const Options& o, const DenoiseResult& d, double rate) {
    std::filesystem::create_directories(o.out_dir);
    const auto metric_plot = [&](const std::string& file, const std::string& title, const std::string& y_label, bool log_y, auto field) {
        sae::LinePlot plot;
        plot.log_y = log_y;
        plot.title = title;
        plot.x_label = "SNR (dB)";
        plot.y_label = y_label;
        plot.width = 980;
        for (std::size_t m = 0; m < d.methods.size(); ++m) {
            sae::PlotSeries series;
            series.label = d.methods[m].name;
            series.color = d.methods[m].color;
            series.dashed = d.methods[m].dashed;
            series.markers = true;
            series.x = d.snrs;
            for (const auto& sc : d.scores[m]) series.y.push_back(field(sc));
            plot.add(series);
        }
        sae::write_file_atomically(o.out_dir + "/" + file, plot.svg());
    };
    metric_plot("rrmse_temporal_vs_snr.svg", "RRMSE (temporal) vs SNR, EEGLAB recording, EOG artifacts", "RRMSE temporal (log)", true,
                [](const eeg::DenoisingScores& s) { return s.rrmse_temporal; });
    metric_plot("rrmse_spectral_vs_snr.svg", "RRMSE (spectral, Welch PSD) vs SNR", "RRMSE spectral (log)", true,
                [](const eeg::DenoisingScores& s) { return s.rrmse_spectral; });
    metric_plot("cc_vs_snr.svg", "Correlation with the clean EEG vs SNR", "CC", false, [](const eeg::DenoisingScores& s) { return s.cc; });
    if (!d.plot_clean.empty()) {
        sae::LinePlot plot;
        plot.title = "One held-out segment at SNR " + sae::svg_number(o.plot_snr) + " dB (channel " + d.clean_labels.front() + ")";
        plot.x_label = "time (s)";
        plot.y_label = "amplitude (uV)";
        plot.width = 860;
        std::vector<double> t(d.plot_clean.size());
        for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i) / rate;
        plot.add({"noisy (raw)", "#bbbbbb", false, false, 1.0, t, d.plot_noisy_raw});
        plot.add({"noisy, band-passed", "#7f7f7f", true, false, 1.2, t, d.plot_noisy_band});
        plot.add({"clean", "#000000", false, false, 2.0, t, d.plot_clean});
        plot.add({"MFR ensemble", "#d62728", false, false, 1.5, t, d.plot_mfr});
        plot.add({"MFR, EOG latents excluded", "#ff7f0e", false, false, 1.5, t, d.plot_excluded});
        sae::write_file_atomically(o.out_dir + "/denoised_segment.svg", plot.svg());
    }
}

void write_json(const Options& o, const std::vector<SettingResult>& settings, const DenoiseResult* d) {
    nlohmann::json out;
    out["seed"] = o.seed;
    out["seeds"] = o.seeds;
    out["epochs"] = o.epochs;
    out["lambda"] = o.lambda;
    for (const SettingResult& r : settings) {
        nlohmann::json s{{"name", r.name}, {"description", r.description}, {"train_rows", r.train_rows}, {"test_rows", r.test_rows},
                         {"d_in", r.d_in}, {"steps", r.steps}, {"baseline_mse", r.baseline_mse}, {"mfr_mse", r.mfr_mse},
                         {"improvement_percent", r.improvement_percent}, {"baseline_mmcs", r.baseline_agreement},
                         {"mfr_mmcs", r.mfr_agreement}};
        for (const auto& [part, mse] : r.per_recording) s["per_recording"][part] = {{"baseline_mse", mse.first}, {"mfr_mse", mse.second}};
        out["settings"].push_back(s);
    }
    if (d != nullptr) {
        for (std::size_t m = 0; m < d->methods.size(); ++m) {
            nlohmann::json method{{"name", d->methods[m].name}, {"snr_db", d->snrs}};
            for (const auto& sc : d->scores[m]) {
                method["rrmse_temporal"].push_back(sc.rrmse_temporal);
                method["rrmse_spectral"].push_back(sc.rrmse_spectral);
                method["cc"].push_back(sc.cc);
            }
            out["denoising"].push_back(method);
        }
    }
    sae::write_file_atomically(o.json_path, out.dump(2) + "\n");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
#if defined(_OPENMP)
        omp_set_max_active_levels(1);  // runs train side by side; each one single-threaded inside
#endif
        const auto start = std::chrono::steady_clock::now();
        const Index window = static_cast<Index>(std::llround(o.window_s * o.rate));

        // The EEGLAB recording: band-passed on the continuous signal, then windowed.
        const eeg::Recording raw = load_eeglab_recording(o);
        if (raw.sample_rate != o.rate) throw sae::config_error("the EEGLAB recording is not at " + std::to_string(o.rate) + " Hz");
        const eeg::Recording band = eeg::bandpass(raw, o.low_hz, o.high_hz, o.filter_order);
        const Index windows = eeg::segment_count(band.samples(), window, eeg::PaddingRule::zero_pad_last);
        const std::vector<bool> test_window = held_out_windows(windows, o.test_fraction, o.split_seed);
        std::cout << "EEGLAB recording: " << raw.channels() << " channels x " << raw.samples() << " samples at " << raw.sample_rate
                  << " Hz (" << raw.duration_seconds() << " s), " << windows << " windows of " << window
                  << " samples (the last zero-padded), " << std::count(test_window.begin(), test_window.end(), true)
                  << " held out (split seed " << o.split_seed << ")\n";

        std::vector<SettingResult> settings;
        eeg::SegmentOptions seg;
        seg.window = window;
        if (o.multichannel) {
            seg.layout = eeg::SegmentLayout::multichannel;
            const eeg::SegmentSet<float> set = eeg::make_segments<float>(band.data, seg);
            settings.push_back(run_setting(o, "multichannel",
                                           "EEGLAB sample, all 32 channels x 1 s per row (the paper's input layout)",
                                           pick_rows(set, test_window, false), pick_rows(set, test_window, true), {}));
            print_setting(o, settings.back());
        }
        seg.layout = eeg::SegmentLayout::single_channel;
        const eeg::SegmentSet<float> single_set = eeg::make_segments<float>(band.data, seg);
        const Rows single_train = pick_rows(single_set, test_window, false), single_test = pick_rows(single_set, test_window, true);
        std::vector<EnsemblePair> single_ensembles;  // reused by the denoising schemes that need EOG latents
        if (o.single) {
            settings.push_back(run_setting(o, "single", "EEGLAB sample, one channel x 1 s per row", single_train, single_test, {},
                                           &single_ensembles));
            print_setting(o, settings.back());
        }
        if (o.pooled) {
            std::vector<Rows> train_parts{single_train}, test_parts{single_test};
            std::vector<std::pair<std::string, Rows>> named{{"eeglab_data.fdt", single_test}};
            std::string description = "single-channel 1-s rows at 128 Hz from eeglab_data.fdt";
            std::uint64_t file_index = 1;
            for (const std::string name : {"eeglab_test.edf", "mne_test.edf", "mne_test.bdf"}) {
                const std::string path = o.data_dir + "/" + name;
                if (!std::filesystem::exists(path)) {
                    std::cout << "pooled: " << path << " not found, skipped\n";
                    continue;
                }
                const eeg::EdfFile file(path);
                const eeg::Recording all = file.read();
                std::vector<std::string> scalp;
                for (const std::string& label : all.labels) {
                    if (is_scalp_eeg(label)) scalp.push_back(label);
                }
                const eeg::Recording picked = all.select(scalp);
                const double ratio = picked.sample_rate / o.rate;
                if (ratio < 1 || ratio != std::floor(ratio)) {
                    std::cout << "pooled: " << name << " at " << picked.sample_rate << " Hz is not a whole multiple of " << o.rate
                              << " Hz, skipped\n";
                    continue;
                }
                const eeg::Recording resampled = eeg::resample(picked, o.rate);
                const eeg::Recording filtered = eeg::bandpass(resampled, o.low_hz, o.high_hz, o.filter_order);
                const eeg::SegmentSet<float> set = eeg::make_segments<float>(filtered.data, seg);
                const Index file_windows = eeg::segment_count(filtered.samples(), window, eeg::PaddingRule::zero_pad_last);
                const std::vector<bool> held = held_out_windows(file_windows, o.test_fraction, sae::derive_seed(o.split_seed, file_index++));
                train_parts.push_back(pick_rows(set, held, false));
                test_parts.push_back(pick_rows(set, held, true));
                named.emplace_back(name, test_parts.back());
                std::cout << "pooled: " << name << ": " << picked.channels() << " EEG channels at " << picked.sample_rate << " Hz, "
                          << picked.duration_seconds() << " s -> " << file_windows << " windows at " << o.rate << " Hz, "
                          << std::count(held.begin(), held.end(), true) << " held out\n";
                description += ", " + name;
            }
            settings.push_back(run_setting(o, "pooled", description, stack(train_parts), stack(test_parts), named));
            print_setting(o, settings.back());
        }
        std::unique_ptr<DenoiseResult> denoised;
        if (o.denoise) {
            denoised = std::make_unique<DenoiseResult>(run_denoising(o, raw, band, test_window, window, std::move(single_ensembles)));
            print_denoising(o, *denoised);
            write_plots(o, *denoised, band.sample_rate);
            std::cout << "\nplots: " << o.out_dir << "/{denoised_segment,rrmse_temporal_vs_snr,rrmse_spectral_vs_snr,cc_vs_snr}.svg\n";
        }
        if (!o.json_path.empty()) write_json(o, settings, denoised.get());
        std::cout << "\ntotal time " << std::fixed << std::setprecision(1) << seconds_since(start) << " s\n";
        return 0;
    } catch (...) {
        return sae::cli::exit_status_of_current_exception("eeg_mfr");
    }
}
