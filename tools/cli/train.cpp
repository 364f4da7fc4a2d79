// `sae train --config run.json [--resume]`: one SAE or an MFR ensemble, from activation
// files or the synthetic generator, with a progress bar, JSON Lines metrics, atomic
// checkpoints, Ctrl-C handling, resumption, and SAELens directories at the end.
#include "commands.hpp"
#include "evaluate_files.hpp"

#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/jump_relu.hpp>
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/callbacks.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/shard_source.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/io/checkpoint.hpp>
#include <sae/io/file.hpp>
#include <sae/io/run_config.hpp>
#include <sae/io/saelens.hpp>
#include <sae/mfr/ensemble.hpp>
#include <sae/mfr/feature_matching.hpp>
#if defined(SAE_CLI_WITH_MPI)
#include <sae/mpi/mpi.hpp>
#endif

#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sae::cli {
// Named, not anonymous: the CLI is unity-built, and each command has its own `help`.
namespace train_command {

constexpr const char* help = R"(usage: sae train --config RUN.json [--resume] [--mpi [--data-replicas R]]

Trains what RUN.json describes (see examples/configs/ and README "Training from the
command line"): one SAE, or an MFR ensemble when "mfr" is set, on activation files
(data.train_files: .npy / .safetensors, streamed through a shuffle buffer) or on the
synthetic generator (data.source = "synthetic").

Writes into output.directory:
  config.json              the run's full configuration, defaults filled in
  metrics.jsonl            one JSON object every output.log_every steps
  checkpoint.safetensors   every output.checkpoint_every steps and at the end (atomic)
  sae/ or sae_0/, sae_1/   the trained SAE(s) as SAELens directories
  eval.json                metrics on data.eval_files, when given
  recovery.json            synthetic data: how well the true features were recovered
  faults.jsonl             one line per numeric fault, when any (also printed)
Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and stops.

Numeric faults (trainer.faults): a batch holding NaN/Inf is skipped (input =
"skip_batch"; 10 in a row stop the run); a non-finite or exploding loss, non-finite
weights or Adam moments, or an SAE whose latents all died stop the run with exit
status 1, the message naming the step and the tensor, and the last checkpoint left
as the last good state (nothing faulty is ever written). trainer.faults may change
on --resume, e.g. to skip the batch that made the loss explode.

Options:
  --config FILE   the run configuration (required)
  --resume        continue from output.directory/checkpoint.safetensors; the config
                  must match the checkpoint's except trainer.total_steps,
                  trainer.faults and output.*
  --mpi           run as one rank of an MPI job (mpirun -np P sae train ... --mpi, or
                  srun under Slurm; only in an sae built with MPI): the MFR members
                  are spread over the ranks and the batches split between data
                  replicas; rank 0 writes the outputs and checkpoints, which resume on
                  any number of ranks (output.directory must be on storage all ranks see)
  --data-replicas R   with --mpi: R replicas of P / R ranks each; default: P for one
                  SAE, else P / E with E the largest divisor of P not above the members
)";

/// ProgressBar, JsonLinesLogger, CheckpointEvery, FaultLogger and StopOnInterrupt, each
/// optional, forwarded as one callback.
class RunCallbacks {
public:
    /// `reports`: this process draws the progress bar and writes metrics.jsonl and
    /// faults.jsonl (in an MPI run only rank 0 does). `agree`: turns this process's wish
    /// to stop into the decision of the whole run (every rank must stop at the same step).
    RunCallbacks(const OutputConfig& output, const std::string& directory, std::function<void(std::size_t)> save,
                 bool reports = true, std::function<bool(bool)> agree = {})
        : agree_(std::move(agree)) {
        if (reports) faults_.emplace(directory + "/faults.jsonl");
        // On a terminal the bar redraws at most ~10 times a second whatever `every` is;
        // in a log file it writes one line per logged step.
        if (output.progress && reports) progress_.emplace(std::cerr, std::max<std::size_t>(1, output.log_every));
        if (output.log_every > 0 && reports) log_.emplace(directory + "/metrics.jsonl", output.log_every);
        const std::size_t every = output.checkpoint_every > 0 ? output.checkpoint_every : std::numeric_limits<std::size_t>::max();
        checkpoint_.emplace(every, std::move(save), true);
    }
    void on_train_begin(const TrainContext& context) {
        if (progress_) progress_->on_train_begin(context);
        if (log_) log_->on_train_begin(context);
    }
    bool on_step_end(const StepReport& report) {
        if (progress_) progress_->on_step_end(report);
        if (log_) log_->on_step_end(report);
        checkpoint_->on_step_end(report);
        const bool stop = interrupt_.on_step_end(report);
        return agree_ ? agree_(stop) : stop;
    }
    std::string stop_reason() const { return interrupt_.stop_reason(); }
    void on_numeric_fault(const NumericFault& fault) {
        if (fault.action != FaultPolicy::stop) std::cerr << "sae train: " << fault.message() << "\n";  // a stop is the error
        if (faults_) faults_->on_numeric_fault(fault);
    }
    void on_train_end(const TrainSummary& summary) {
        if (progress_) progress_->on_train_end(summary);
        if (log_) log_->on_train_end(summary);
        checkpoint_->on_train_end(summary);
    }

private:
    std::optional<ProgressBar> progress_;
    std::optional<JsonLinesLogger> log_;
    std::optional<CheckpointEvery> checkpoint_;
    std::optional<FaultLogger> faults_;
    StopOnInterrupt interrupt_;
    std::function<bool(bool)> agree_;
};

/// A run in one process: train_loop's view of the other processes (there are none).
struct SingleProcess {
    bool is_root() const { return true; }
    template <class Model, class Source>
    nlohmann::json resume(const std::string& path, Model& model, Source& source) const {
        return resume_training(path, model, source);
    }
    template <class Model, class Source>
    void save(const std::string& path, const Model& model, const Source& source, const nlohmann::json& config) const {
        save_training_checkpoint(path, model, source, config);
    }
    std::function<bool(bool)> agreement() const { return {}; }
    /// Whether this process writes the SAELens directories of its members.
    bool exports_members() const { return true; }
    template <class Ensemble>
    std::size_t member_index(const Ensemble&, std::size_t i) const { return i; }
    nlohmann::json gather(nlohmann::json local) const { return local; }
};

#if defined(SAE_CLI_WITH_MPI)
/// A rank of an MPI run (DistributedMfrEnsemble on `grid`).
struct MpiRank {
    const ProcessGrid& grid;
    bool is_root() const { return grid.world.is_root(); }
    template <class Model, class Source>
    nlohmann::json resume(const std::string& path, Model& model, Source& source) const {
        return resume_distributed_training(grid.world, path, model, source);
    }
    template <class Model, class Source>
    void save(const std::string& path, const Model& model, const Source& source, const nlohmann::json& config) const {
        save_distributed_checkpoint(grid.world, path, model, source, config);
    }
    std::function<bool(bool)> agreement() const {
        return [this](bool stop) { return grid.world.any(stop, "stop request"); };
    }
    bool exports_members() const { return grid.replicas.rank() == 0; }
    template <class Ensemble>
    std::size_t member_index(const Ensemble& ensemble, std::size_t i) const {
        return static_cast<std::size_t>(ensemble.first_member()) + i;
    }
    /// The JSON arrays of every rank concatenated on rank 0 (in rank order).
    nlohmann::json gather(const nlohmann::json& local) const {
        const std::string text = local.dump();
        const auto parts = grid.world.gather(std::vector<char>(text.begin(), text.end()), 0, "results");
        nlohmann::json all = nlohmann::json::array();
        for (const std::vector<char>& part : parts) {
            for (const nlohmann::json& item : nlohmann::json::parse(part.begin(), part.end())) all.push_back(item);
        }
        return all;
    }
};
#endif

/// Keys that may differ between a checkpoint's config and the resuming config: none of
/// them changes the path a fault-free run takes.
bool may_change_on_resume(const std::string& pointer) {
    return pointer.rfind("/output", 0) == 0 || pointer == "/trainer/total_steps" || pointer.rfind("/trainer/faults", 0) == 0;
}

/// Whether `name` is a temporary of AtomicFileWriter: "<file>.tmp.<pid>.<n>".
bool is_atomic_write_temporary(const std::string& name) {
    const std::size_t tag = name.rfind(".tmp.");
    if (tag == std::string::npos || tag == 0) return false;
    const std::string rest = name.substr(tag + 5);
    const std::size_t dot = rest.find('.');
    const auto digits = [](const std::string& text) {
        return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
    };
    return dot != std::string::npos && digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

/// Removes what a process killed in the middle of an atomic write leaves behind:
/// temporaries never renamed into place, in the files this command writes (the run's
/// directory and its sae/, sae_<i>/ directories). The directory belongs to this run, so
/// no other process is writing them.
void remove_stale_temporaries(const std::string& directory) {
    std::error_code error;
    std::vector<std::filesystem::path> folders{directory}, stale;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
        const std::string name = entry.path().filename().string();
        if ((name == "sae" || name.rfind("sae_", 0) == 0) && entry.is_directory(error)) folders.push_back(entry.path());
    }
    for (const std::filesystem::path& folder : folders) {
        for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
            if (is_atomic_write_temporary(entry.path().filename().string())) stale.push_back(entry.path());
        }
    }
    for (const std::filesystem::path& path : stale) std::filesystem::remove(path, error);
}

/// Keeps the lines of the JSON Lines log `path` up to step `step`: the steps after the
/// checkpoint are trained (and logged) again after a resume (a fresh run starts at 0),
/// and a line cut by a kill would corrupt the next one.
void trim_log_after(const std::string& path, std::size_t step) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) return;
    const std::string text = read_whole_file(path);
    std::string kept;
    std::size_t begin = 0;
    for (std::size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
        const std::string line = text.substr(begin, end - begin);
        const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        const auto logged = record.is_object() ? record.find("step") : record.end();
        if (logged != record.end() && logged->is_number_unsigned() && logged->get<std::size_t>() <= step) kept += line + '\n';
    }
    if (kept.size() != text.size()) write_file_atomically(path, kept);
}

void check_resume_config(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint) {
    if (saved.is_null()) return;
    for (const nlohmann::json& change : nlohmann::json::diff(saved, now)) {
        const std::string pointer = change["path"];
        if (!may_change_on_resume(pointer)) {
            throw config_error(checkpoint + ": the config differs from the checkpoint's at '" + pointer +
                               "'; only trainer.total_steps and output.* may change when resuming");
        }
    }
}

std::string member_directory(const std::string& directory, std::size_t i, std::size_t count) {
    return count == 1 ? directory + "/sae" : directory + "/sae_" + std::to_string(i);
}

template <class Ensemble, class Source, class Run = SingleProcess>
int train_loop(const RunConfig& config, Ensemble& ensemble, Source& source, bool resume,
               const SyntheticGenerator<typename Ensemble::scalar_type>* generator, const Run& run = {}) {
    const std::string& directory = config.output.directory;
    const std::string checkpoint = directory + "/checkpoint.safetensors";
    const nlohmann::json config_json = to_json(config);
    std::error_code error;
    const bool have_checkpoint = std::filesystem::exists(checkpoint, error);
    remove_stale_temporaries(directory);
    if (resume) {
        if (!have_checkpoint) throw io_error(checkpoint + ": no checkpoint to resume from");
        const nlohmann::json saved = run.resume(checkpoint, ensemble, source);
        check_resume_config(saved, config_json, checkpoint);
        if (run.is_root()) std::cerr << "sae train: resumed from " << checkpoint << " at step " << ensemble.step() << "\n";
    } else if (have_checkpoint) {
        throw io_error(checkpoint + ": already exists; pass --resume to continue that run or choose another output.directory");
    }
    // The logs continue from the step training starts at (0 for a fresh run).
    if (run.is_root()) {
        trim_log_after(directory + "/metrics.jsonl", ensemble.step());
        trim_log_after(directory + "/faults.jsonl", ensemble.step());
        save_run_config(directory + "/config.json", config);
    }

    std::optional<std::size_t> checkpoint_step;
    if (resume) checkpoint_step = ensemble.step();
    RunCallbacks callbacks(
        config.output, directory,
        [&](std::size_t step) {
            run.save(checkpoint, ensemble, source, config_json);
            checkpoint_step = step;
        },
        run.is_root(), run.agreement());
    TrainSummary summary;
    try {
        summary = train(ensemble, source, config.trainer, callbacks);
    } catch (const numeric_fault_error& e) {
        throw numeric_error(std::string(e.what()) + "; " +
                            (checkpoint_step ? checkpoint + " (step " + std::to_string(*checkpoint_step) +
                                                   ") is the last good state: fix the cause, or change trainer.faults, "
                                                   "and continue with --resume"
                                             : std::string("no checkpoint was written before the fault")));
    }
    if (summary.skipped_batches > 0 && run.is_root()) {
        std::cerr << "sae train: " << summary.skipped_batches << " batch(es) skipped for numeric faults (see "
                  << directory << "/faults.jsonl)\n";
    }

    const auto& members = ensemble.members();
    const std::size_t member_count = config.mfr ? static_cast<std::size_t>(config.mfr->num_saes) : 1;
    SaeFileInfo info;
    info.model_name = config.model_name;
    info.hook_name = config.hook_name;
    nlohmann::json recovery = nlohmann::json::array();
    for (std::size_t i = 0; i < members.size() && run.exports_members(); ++i) {
        const std::size_t index = run.member_index(ensemble, i);
        const auto exported = members[i].exported_model();
        if constexpr (std::is_same_v<std::decay_t<decltype(exported.activation())>, BatchTopK<typename Ensemble::scalar_type>>) {
            if (!exported.activation().threshold_estimated()) continue;  // nothing trained yet
        }
        save_saelens(member_directory(directory, index, member_count), exported, info);
        if (generator != nullptr) {
            const Recovery r = feature_recovery(generator->true_features(), exported.W_dec(), MatchingMode::one_to_one);
            recovery.push_back({{"member", index}, {"mmcs", r.mmcs}, {"fraction_above_0.9", r.fraction_above}});
        }
    }
    recovery = run.gather(recovery);
    if (!run.is_root()) return summary.stopped_early ? 1 : 0;  // rank 0 holds member 0 and reports
    std::cout << "sae train: " << summary.steps << " steps in " << summary.seconds << " s; step " << ensemble.step()
              << " of " << config.trainer.total_steps << "; SAE(s) in " << member_directory(directory, 0, member_count)
              << (member_count > 1 ? " ..." : "") << "\n";
    if (generator != nullptr) {
        write_file_atomically(directory + "/recovery.json", recovery.dump(2) + "\n");
        for (const nlohmann::json& r : recovery) {
            std::cout << "  member " << r["member"] << ": recovery (MMCS to the true features) " << r["mmcs"] << "\n";
        }
    }
    if (!config.data.eval_files.empty()) {
        const Evaluation evaluation = evaluate_files(members.front().exported_model(), config.data.eval_files,
                                                     config.data.tensor, 4096, 0);
        const std::string text = evaluation.to_json().dump(2) + "\n";
        write_file_atomically(directory + "/eval.json", text);
        std::cout << "  eval on data.eval_files: mse " << evaluation.mse() << ", fvu " << evaluation.fvu() << ", l0 "
                  << evaluation.l0() << ", dead " << evaluation.dead_fraction() << "\n";
    }
    if (summary.stopped_early) {
        std::cerr << "sae train: " << summary.stop_reason << "; checkpoint written, continue with --resume\n";
        return 1;
    }
    return 0;
}

/// How the run is launched: one process, or one rank of an MPI job.
struct Launch {
    bool resume = false;
    bool mpi = false;
    Index data_replicas = 0;  ///< 0: default_replicas
};

/// P / E with E the largest divisor of P not above `members`: members spread as
/// widely as they go, the rest of the ranks split the batches.
inline int default_replicas(int ranks, Index members) {
    int spread = 1;
    for (int e = 1; e <= ranks && e <= members; ++e) {
        if (ranks % e == 0) spread = e;
    }
    return ranks / spread;
}

/// The ensemble (in this process, or spread over the MPI job) trained on `source`.
template <class Scalar, template <class> class Act, class Source>
int train_on(const RunConfig& config, Source& source, const Launch& launch, const SyntheticGenerator<Scalar>* generator) {
    MfrConfig mfr = config.mfr.value_or(MfrConfig{});
    if (!config.mfr) mfr.num_saes = 1;
    const auto activation = activation_config_as<Act, Scalar>(config.model.activation);
#if defined(SAE_CLI_WITH_MPI)
    if (launch.mpi) {
        const Communicator world;
        if (world.size() > 1 && config.trainer.faults.needs_rollback()) {
            // Undoing a step needs every rank's own copy of its state; the distributed
            // ensemble's state is assembled on rank 0 only (for checkpoints).
            throw config_error("trainer.faults: \"skip_batch\" for loss or state faults undoes the step, which --mpi on " +
                               std::to_string(world.size()) + " ranks does not support; use \"stop\" and --resume");
        }
        const int replicas =
            launch.data_replicas > 0 ? static_cast<int>(launch.data_replicas) : default_replicas(world.size(), mfr.num_saes);
        const ProcessGrid grid = make_process_grid(world, replicas);
        DistributedMfrEnsemble<Scalar, Act> ensemble(grid, mfr, config.model.autoencoder, activation, config.training,
                                                     config.seed);
        RankSliceSource<Source> slices(source, grid.replicas);
        return train_loop(config, ensemble, slices, launch.resume, generator, MpiRank{grid});
    }
#endif
    MfrEnsemble<Scalar, Act> ensemble(mfr, config.model.autoencoder, activation, config.training, config.seed);
    return train_loop(config, ensemble, source, launch.resume, generator);
}

template <class Scalar, template <class> class Act>
int train_as(const RunConfig& config, const Launch& launch) {
    const DataConfig& data = config.data;
    const Index d_in = config.model.autoencoder.d_in;
    if (data.source == DataSource::synthetic) {
        SyntheticGenerator<Scalar> generator(data.synthetic, data.seed);
        if (generator.input_dim() != d_in) {
            throw config_error("data.synthetic.input_dim = " + std::to_string(generator.input_dim()) +
                               " differs from model.autoencoder.d_in = " + std::to_string(d_in));
        }
        SyntheticBatchSource<Scalar> source(generator, static_cast<Index>(data.batch_size));
        return train_on<Scalar, Act>(config, source, launch, &generator);
    }
    ShardSourceConfig shards;
    shards.files = data.train_files;
    shards.tensor = data.tensor;
    shards.batch_size = static_cast<Index>(data.batch_size);
    shards.shuffle_buffer_rows = static_cast<Index>(data.shuffle_buffer_rows);
    shards.epochs = data.epochs;
    shards.seed = data.seed;
    ShardSource<Scalar> source(shards);
    if (source.input_dim() != d_in) {
        throw config_error("model.autoencoder.d_in = " + std::to_string(d_in) + " but the rows of " + data.train_files.front() +
                           " have " + std::to_string(source.input_dim()) + " values");
    }
    if (config.trainer.total_steps > source.batches_available()) {
        throw config_error("trainer.total_steps = " + std::to_string(config.trainer.total_steps) + " needs more data than " +
                           std::to_string(data.epochs) + " epoch(s) of " + std::to_string(source.total_rows()) +
                           " rows give (" + std::to_string(source.batches_available()) +
                           " batches); raise data.epochs or lower trainer.total_steps");
    }
    return train_on<Scalar, Act>(config, source, launch, static_cast<const SyntheticGenerator<Scalar>*>(nullptr));
}

template <class Scalar>
int train_with_scalar(const RunConfig& config, const Launch& launch) {
    const std::string architecture = config.model.activation.architecture();
    if (architecture == TopK<Scalar>::architecture) return train_as<Scalar, TopK>(config, launch);
    if (architecture == BatchTopK<Scalar>::architecture) return train_as<Scalar, BatchTopK>(config, launch);
    if (architecture == JumpReLU<Scalar>::architecture) return train_as<Scalar, JumpReLU>(config, launch);
    return train_as<Scalar, ReluL1>(config, launch);
}

/// Trains as one rank of an MPI job; a failure on any rank ends the whole job with
/// "sae train: rank R of P: ..." (its peers would otherwise wait forever).
int train_as_mpi_rank(int argc, char** argv, const RunConfig& config, const Launch& launch) {
#if defined(SAE_CLI_WITH_MPI)
    MpiEnvironment environment(argc, argv);
    const Communicator world;
    try {
        return train_with_scalar<float>(config, launch);
    } catch (const std::exception& e) {
        std::cerr << "sae train: rank " << world.rank() << " of " << world.size() << ": " << e.what() << std::endl;
        world.abort(1);
    }
#else
    (void)argc;
    (void)argv;
    (void)config;
    (void)launch;
    throw usage_error("train: --mpi: this sae was built without MPI (configure libsae with MPI installed)");
#endif
}

}  // namespace train_command

int run_train(int argc, char** argv) {
    using namespace train_command;
    const Arguments args(argc, argv, 2, {{"config", true}, {"resume", false}, {"mpi", false}, {"data-replicas", true}},
                         "train");
    if (print_help_if_asked(args, help)) return 0;
    if (!args.positional().empty()) throw usage_error("train: unexpected argument '" + args.positional().front() + "'");
    const RunConfig config = load_run_config(args.require("config"));
    std::error_code error;
    std::filesystem::create_directories(config.output.directory, error);
    if (error) throw io_error(config.output.directory + ": cannot create the output directory: " + error.message());
    // One Scalar keeps the tool's build small; float64 training is a template argument
    // away in the C++ API (TrainableSae<double, Act>, MfrEnsemble<double, Act>).
    if (config.model.dtype != ScalarType::float32) {
        throw config_error(args.require("config") + ": model.dtype: the sae tool trains in float32 only; "
                           "use the C++ API for float64 training");
    }
    Launch launch;
    launch.resume = args.flag("resume");
    launch.mpi = args.flag("mpi");
    launch.data_replicas = args.integer("data-replicas", 0, 1);
    if (launch.data_replicas > 0 && !launch.mpi) throw usage_error("train: --data-replicas needs --mpi");
    if (launch.mpi) return train_as_mpi_rank(argc, argv, config, launch);
    return train_with_scalar<float>(config, launch);
}

}  // namespace sae::cli
