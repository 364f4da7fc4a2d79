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
Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and stops.

Options:
  --config FILE   the run configuration (required)
  --resume        continue from output.directory/checkpoint.safetensors; the config
                  must match the checkpoint's except trainer.total_steps and output.*
)";

/// ProgressBar, JsonLinesLogger, CheckpointEvery and StopOnInterrupt, each optional,
/// forwarded as one callback.
class RunCallbacks {
public:
    RunCallbacks(const OutputConfig& output, const std::string& directory, std::function<void(std::size_t)> save) {
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
    void on_train_end(const TrainSummary& summary) {
        if (progress_) progress_->on_train_end(summary);
        if (log_) log_->on_train_end(summary);
        checkpoint_->on_train_end(summary);
    }

private:
    std::optional<ProgressBar> progress_;
    std::optional<JsonLinesLogger> log_;
    std::optional<CheckpointEvery> checkpoint_;
    StopOnInterrupt interrupt_;
};

/// Keys that may differ between a checkpoint's config and the resuming config.
bool may_change_on_resume(const std::string& pointer) {
    return pointer.rfind("/output", 0) == 0 || pointer == "/trainer/total_steps";
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
    if (resume) {
        if (!have_checkpoint) throw io_error(checkpoint + ": no checkpoint to resume from");
        const nlohmann::json saved = resume_training(checkpoint, ensemble, source);
        check_resume_config(saved, config_json, checkpoint);
        std::cerr << "sae train: resumed from " << checkpoint << " at step " << ensemble.step() << "\n";
    } else if (have_checkpoint) {
        throw io_error(checkpoint + ": already exists; pass --resume to continue that run or choose another output.directory");
    }
    save_run_config(directory + "/config.json", config);

    RunCallbacks callbacks(config.output, directory,
                           [&](std::size_t) { save_training_checkpoint(checkpoint, ensemble, source, config_json); });
    const TrainSummary summary = train(ensemble, source, config.trainer, callbacks);

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
