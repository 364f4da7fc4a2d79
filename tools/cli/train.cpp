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

#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sae::cli {
// Named, not anonymous: the CLI is unity-built, and each command has its own `help`.
namespace train_command {

constexpr const char* help = R"(usage: sae train --config RUN.json [--resume]

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
)";

/// ProgressBar, JsonLinesLogger, CheckpointEvery, FaultLogger and StopOnInterrupt, each
/// optional, forwarded as one callback.
class RunCallbacks {
public:
    RunCallbacks(const OutputConfig& output, const std::string& directory, std::function<void(std::size_t)> save)
        : faults_(directory + "/faults.jsonl") {
        // On a terminal the bar redraws at most ~10 times a second whatever `every` is;
        // in a log file it writes one line per logged step.
        if (output.progress) progress_.emplace(std::cerr, std::max<std::size_t>(1, output.log_every));
        if (output.log_every > 0) log_.emplace(directory + "/metrics.jsonl", output.log_every);
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
        return interrupt_.on_step_end(report);
    }
    std::string stop_reason() const { return interrupt_.stop_reason(); }
    void on_numeric_fault(const NumericFault& fault) {
        if (fault.action != FaultPolicy::stop) std::cerr << "sae train: " << fault.message() << "\n";  // a stop is the error
        faults_.on_numeric_fault(fault);
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
    FaultLogger faults_;
    StopOnInterrupt interrupt_;
};

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

template <class Ensemble, class Source>
int train_loop(const RunConfig& config, Ensemble& ensemble, Source& source, bool resume,
               const SyntheticGenerator<typename Ensemble::scalar_type>* generator) {
    const std::string& directory = config.output.directory;
    const std::string checkpoint = directory + "/checkpoint.safetensors";
    const nlohmann::json config_json = to_json(config);
    std::error_code error;
    const bool have_checkpoint = std::filesystem::exists(checkpoint, error);
    remove_stale_temporaries(directory);
    if (resume) {
        if (!have_checkpoint) throw io_error(checkpoint + ": no checkpoint to resume from");
        const nlohmann::json saved = resume_training(checkpoint, ensemble, source);
        check_resume_config(saved, config_json, checkpoint);
        std::cerr << "sae train: resumed from " << checkpoint << " at step " << ensemble.step() << "\n";
    } else if (have_checkpoint) {
        throw io_error(checkpoint + ": already exists; pass --resume to continue that run or choose another output.directory");
    }
    // The logs continue from the step training starts at (0 for a fresh run).
    trim_log_after(directory + "/metrics.jsonl", ensemble.step());
    trim_log_after(directory + "/faults.jsonl", ensemble.step());
    save_run_config(directory + "/config.json", config);

    std::optional<std::size_t> checkpoint_step;
    if (resume) checkpoint_step = ensemble.step();
    RunCallbacks callbacks(config.output, directory, [&](std::size_t step) {
        save_training_checkpoint(checkpoint, ensemble, source, config_json);
        checkpoint_step = step;
    });
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
    if (summary.skipped_batches > 0) {
        std::cerr << "sae train: " << summary.skipped_batches << " batch(es) skipped for numeric faults (see "
                  << directory << "/faults.jsonl)\n";
    }

    const auto& members = ensemble.members();
    SaeFileInfo info;
    info.model_name = config.model_name;
    info.hook_name = config.hook_name;
    nlohmann::json recovery = nlohmann::json::array();
    for (std::size_t i = 0; i < members.size(); ++i) {
        const auto exported = members[i].exported_model();
        if constexpr (std::is_same_v<std::decay_t<decltype(exported.activation())>, BatchTopK<typename Ensemble::scalar_type>>) {
            if (!exported.activation().threshold_estimated()) continue;  // nothing trained yet
        }
        save_saelens(member_directory(directory, i, members.size()), exported, info);
        if (generator != nullptr) {
            const Recovery r = feature_recovery(generator->true_features(), exported.W_dec(), MatchingMode::one_to_one);
            recovery.push_back({{"member", i}, {"mmcs", r.mmcs}, {"fraction_above_0.9", r.fraction_above}});
        }
    }
    std::cout << "sae train: " << summary.steps << " steps in " << summary.seconds << " s; step " << ensemble.step()
              << " of " << config.trainer.total_steps << "; SAE(s) in " << member_directory(directory, 0, members.size())
              << (members.size() > 1 ? " ..." : "") << "\n";
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

template <class Scalar, template <class> class Act>
int train_as(const RunConfig& config, bool resume) {
    MfrConfig mfr = config.mfr.value_or(MfrConfig{});
    if (!config.mfr) mfr.num_saes = 1;
    MfrEnsemble<Scalar, Act> ensemble(mfr, config.model.autoencoder, activation_config_as<Act, Scalar>(config.model.activation),
                                      config.training, config.seed);
    const DataConfig& data = config.data;
    const Index d_in = config.model.autoencoder.d_in;
    if (data.source == DataSource::synthetic) {
        SyntheticGenerator<Scalar> generator(data.synthetic, data.seed);
        if (generator.input_dim() != d_in) {
            throw config_error("data.synthetic.input_dim = " + std::to_string(generator.input_dim()) +
                               " differs from model.autoencoder.d_in = " + std::to_string(d_in));
        }
        SyntheticBatchSource<Scalar> source(generator, static_cast<Index>(data.batch_size));
        return train_loop(config, ensemble, source, resume, &generator);
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
    return train_loop(config, ensemble, source, resume, static_cast<const SyntheticGenerator<Scalar>*>(nullptr));
}

template <class Scalar>
int train_with_scalar(const RunConfig& config, bool resume) {
    const std::string architecture = config.model.activation.architecture();
    if (architecture == TopK<Scalar>::architecture) return train_as<Scalar, TopK>(config, resume);
    if (architecture == BatchTopK<Scalar>::architecture) return train_as<Scalar, BatchTopK>(config, resume);
    if (architecture == JumpReLU<Scalar>::architecture) return train_as<Scalar, JumpReLU>(config, resume);
    return train_as<Scalar, ReluL1>(config, resume);
}

}  // namespace train_command

int run_train(int argc, char** argv) {
    using namespace train_command;
    const Arguments args(argc, argv, 2, {{"config", true}, {"resume", false}}, "train");
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
    return train_with_scalar<float>(config, args.flag("resume"));
}

}  // namespace sae::cli
