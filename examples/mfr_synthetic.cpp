// mfr_synthetic: the main job of libsae. Trains an ensemble of SAEs without coupling
// (lambda = 0, the baseline) and the same ensemble with Mutual Feature Regularization
// on the same stream of synthetic data with known features, then prints how well each
// SAE recovers the true features.
//
//   mfr_synthetic                 quick default (well under 3 minutes on 2 cores)
//   mfr_synthetic --paper         the authors' full configuration (50M samples)
//   mfr_synthetic --help          every setting
#include <sae/cli/arguments.hpp>
#include <sae/sae.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Options {
    std::uint64_t seed = 0;
    sae::Index d_in = 256;
    sae::Index true_features = 512;
    sae::Index latents = 512;
    sae::Index k = 32;
    sae::Index saes = 2;
    sae::Index batch = 1000;
    std::size_t steps = 3000;
    double lr = 0.01;
    double lambda = 1.0;
    std::size_t warmup = 100;
    double reinit_threshold = 2.5;
    bool reinit = false;  // see --help: at small batches the rule restarts SAEs every ~100 steps
    sae::SupportSampling support = sae::SupportSampling::per_chunk;
    sae::MatchingMode matching = sae::MatchingMode::one_to_one;
    std::size_t refresh = 1;
    sae::Index eval_samples = 10000;
    std::string json_path;
};

void print_help() {
    std::cout <<
        R"(mfr_synthetic: MFR ensemble vs independent SAEs on synthetic data with known features.

Data (the MFR authors' generator): 512 Gaussian features in R^256, 12 groups of 42;
each sample uses 32 features of one group, drawn with weight 0.99^index, coefficients
U[0,1). SAEs: tied TopK without ReLU, orthogonal init, Adam, MSE (DESIGN.md section 8).

Options (defaults in brackets):
  --seed N            seed of data and SAEs [0]
  --steps N           training steps [3000]
  --batch N           samples per step [1000]
  --saes M            SAEs per ensemble [2]
  --latents N         latents per SAE [512]
  --k K               active latents per sample [32]
  --lr X              Adam learning rate [0.01]
  --lambda X          MFR penalty coefficient of the coupled run [1.0]
  --warmup N          penalty warm-up steps [100]
  --matching MODE     one_to_one (Hungarian) | max_cosine [one_to_one]
  --refresh K         recompute the matching every K steps [1]
  --reinit-threshold X  enable the authors' firing-rate restart rule with this
                      threshold (they use 2.5); 0 disables it [off; on with --paper]
  --support MODE      per_chunk (authors: a support per group per 1M-sample chunk)
                      | per_sample (a fresh support for every sample) [per_chunk]
  --eval N            held-out samples for MSE/L0/dead [10000]
  --json PATH         also write the results as JSON
  --paper             the authors' full run: batch 10000, 5000 steps (50M samples),
                      restart rule on at threshold 2.5

The quick default leaves the restart rule off: at 1000 samples per batch it fired
every ~100 steps in our runs and each restart discards the SAE's progress.
)";
}

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1,
                                   {{"paper", false}, {"seed", true}, {"steps", true}, {"batch", true}, {"saes", true},
                                    {"latents", true}, {"k", true}, {"lr", true}, {"lambda", true}, {"warmup", true},
                                    {"refresh", true}, {"eval", true}, {"json", true}, {"reinit-threshold", true},
                                    {"matching", true}, {"support", true}},
                                   "mfr_synthetic");
    if (args.help()) {
        print_help();
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("mfr_synthetic: unexpected argument '" + args.positional().front() + "'");
    Options o;
    if (args.flag("paper")) {  // the paper's scale; the options below still override it
        o.batch = 10000;
        o.steps = 5000;
        o.reinit = true;
        o.reinit_threshold = 2.5;
    }
    o.seed = static_cast<std::uint64_t>(args.integer("seed", static_cast<std::int64_t>(o.seed), 0));
    o.steps = static_cast<std::size_t>(args.integer("steps", static_cast<std::int64_t>(o.steps), 1));
    o.batch = args.integer("batch", o.batch, 1);
    o.saes = args.integer("saes", o.saes, 1);
    o.latents = args.integer("latents", o.latents, 1);
    o.k = args.integer("k", o.k, 1);
    o.lr = args.real("lr", o.lr);
    o.lambda = args.real("lambda", o.lambda);
    o.warmup = static_cast<std::size_t>(args.integer("warmup", static_cast<std::int64_t>(o.warmup), 0));
    o.refresh = static_cast<std::size_t>(args.integer("refresh", static_cast<std::int64_t>(o.refresh), 1));
    o.eval_samples = args.integer("eval", o.eval_samples, 1);
    o.json_path = args.get("json", o.json_path);
    if (args.flag("reinit-threshold")) {
        o.reinit_threshold = args.real("reinit-threshold", o.reinit_threshold);
        o.reinit = o.reinit_threshold > 0.0;
    }
    o.matching = args.choice("matching", o.matching,
                             {{"one_to_one", sae::MatchingMode::one_to_one}, {"max_cosine", sae::MatchingMode::max_cosine}});
    o.support = args.choice("support", o.support,
                            {{"per_chunk", sae::SupportSampling::per_chunk}, {"per_sample", sae::SupportSampling::per_sample}});
    return o;
}

struct MemberResult {
    sae::Recovery recovery;
    double mse = 0, l0 = 0, dead = 0;
    std::size_t restarts = 0;
};

struct RunResult {
    std::string name;
    double lambda = 0;
    double seconds = 0;
    double pairwise_mmcs = 0;
    std::vector<MemberResult> members;
};

using Ensemble = sae::MfrEnsemble<float, sae::TopK>;

RunResult train_and_evaluate(const Options& o, const std::string& name, double lambda) {
    sae::CorrelatedGroupsConfig data;
    data.input_dim = o.d_in;
    data.num_features = o.true_features;
    data.support = o.support;
    sae::SyntheticGenerator<float> generator(data, o.seed);  // same seed: same stream in every run

    sae::MfrConfig mfr;
    mfr.num_saes = o.saes;
    mfr.penalty_coefficient = lambda;
    mfr.penalty_warmup_steps = o.warmup;
    mfr.matching = o.matching;
    mfr.matching_refresh_steps = o.refresh;
    sae::TrainingConfig training;
    training.learning_rate.base_rate = o.lr;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
    training.reinit.enabled = o.reinit;
    training.reinit.threshold = o.reinit ? o.reinit_threshold : 2.5;
    const sae::AutoencoderConfig model{o.d_in, o.latents, /*tied=*/true, /*decoder_bias=*/false};
    Ensemble ensemble(mfr, model, {o.k, /*relu=*/false}, training, o.seed);

    std::cerr << name << " (lambda = " << lambda << ")\n";
    sae::SyntheticBatchSource<float> source(generator, o.batch);
    sae::TrainerConfig trainer;
    trainer.total_steps = o.steps;
    const auto start = std::chrono::steady_clock::now();
    sae::train(ensemble, source, trainer, sae::ProgressBar(std::cerr, std::max<std::size_t>(1, o.steps / 10)));
    RunResult result{name, lambda, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                     ensemble.mean_pairwise_mmcs(), {}};

    // Held out: samples the stream had not yet produced, identical for every run.
    const sae::Matrix<float> held_out = generator.sample(o.eval_samples);
    for (const auto& member : ensemble.members()) {
        const auto& sae_model = member.model();
        sae::SparseCode<float> code;
        sae_model.encode_sparse(held_out, code);
        const sae::Matrix<float> x_hat = sae_model.decode(code);
        sae::FiringTracker firing(sae_model.d_sae(), static_cast<std::size_t>(held_out.rows()));
        firing.update(code);
        MemberResult m;
        m.recovery = sae::feature_recovery(generator.true_features(), sae_model.feature_directions());
        m.mse = sae::mean_squared_error(held_out, x_hat);
        m.l0 = sae::mean_l0(code);
        m.dead = (firing.firing_rate() == 0.0).cast<double>().mean();
        m.restarts = member.reinit_count();
        result.members.push_back(m);
    }
    return result;
}

double mean_recovery(const RunResult& run) {
    double total = 0;
    for (const auto& m : run.members) total += m.recovery.mmcs;
    return total / static_cast<double>(run.members.size());
}

void print_table(const Options& o, const std::vector<RunResult>& runs) {
    std::cout << "\nMFR on synthetic data: " << o.true_features << " true features in R^" << o.d_in << ", "
              << o.saes << " tied TopK SAEs (" << o.latents << " latents, k = " << o.k << "), " << o.steps
              << " steps x " << o.batch << " samples, support " << (o.support == sae::SupportSampling::per_chunk ? "per_chunk" : "per_sample")
              << ", restart rule " << (o.reinit ? "on (threshold " + std::to_string(o.reinit_threshold) + ")" : std::string("off"))
              << ", seed " << o.seed << "\n\n";
    std::cout << "| run      | lambda | SAE | recovery MMCS | true > 0.9 | held-out MSE | L0    | dead  | restarts | time (s) |\n"
              << "|----------|--------|-----|---------------|------------|--------------|-------|-------|----------|----------|\n";
    std::cout << std::fixed;
    for (const auto& run : runs) {
        for (std::size_t i = 0; i < run.members.size(); ++i) {
            const auto& m = run.members[i];
            std::cout << "| " << std::left << std::setw(8) << run.name << std::right << " | " << std::setw(6)
                      << std::setprecision(3) << run.lambda << " | " << std::setw(3) << i << " | " << std::setw(13)
                      << std::setprecision(4) << m.recovery.mmcs << " | " << std::setw(10) << std::setprecision(3)
                      << m.recovery.fraction_above << " | " << std::setw(12) << std::setprecision(5) << m.mse << " | "
                      << std::setw(5) << std::setprecision(1) << m.l0 << " | " << std::setw(5) << std::setprecision(3)
                      << m.dead << " | " << std::setw(8) << m.restarts << " | " << std::setw(8) << std::setprecision(1)
                      << run.seconds << " |\n";
        }
    }
    std::cout << "\n" << std::setprecision(4);
    for (const auto& run : runs) {
        std::cout << run.name << ": mean recovery MMCS " << mean_recovery(run) << ", pairwise MMCS between members "
                  << run.pairwise_mmcs << "\n";
    }
    const double delta = mean_recovery(runs[1]) - mean_recovery(runs[0]);
    std::cout << "MFR - baseline recovery: " << std::showpos << delta << std::noshowpos << "\n";
}

void write_json(const Options& o, const std::vector<RunResult>& runs) {
    nlohmann::json out;
    out["seed"] = o.seed;
    out["steps"] = o.steps;
    out["batch"] = o.batch;
    out["support"] = o.support == sae::SupportSampling::per_chunk ? "per_chunk" : "per_sample";
    for (const auto& run : runs) {
        nlohmann::json r{{"name", run.name}, {"lambda", run.lambda}, {"seconds", run.seconds},
                         {"pairwise_mmcs", run.pairwise_mmcs}};
        for (const auto& m : run.members) {
            r["members"].push_back({{"recovery_mmcs", m.recovery.mmcs}, {"fraction_above_0_9", m.recovery.fraction_above},
                                    {"mse", m.mse}, {"l0", m.l0}, {"dead_fraction", m.dead}, {"restarts", m.restarts}});
        }
        out["runs"].push_back(r);
    }
    std::ofstream file(o.json_path);
    if (!file) throw sae::io_error("cannot write " + o.json_path);
    file << out.dump(2) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options options = parse(argc, argv);
        std::vector<RunResult> runs;
        runs.push_back(train_and_evaluate(options, "baseline", 0.0));
        runs.push_back(train_and_evaluate(options, "MFR", options.lambda));
        print_table(options, runs);
        if (!options.json_path.empty()) write_json(options, runs);
        return 0;
    } catch (...) {
        return sae::cli::exit_status_of_current_exception("mfr_synthetic");
    }
}
