#pragma once
/// \file run_config.hpp
/// Everything one training run needs, as `sae train --config run.json` reads it:
///
///   {
///     "model":    {"autoencoder": {...}, "activation": {"architecture": "topk", "k": 32, ...},
///                  "dtype": "float32"},
///     "training": TrainingConfig,
///     "trainer":  {"total_steps": 1000, "check_finite": true,
///                  "faults": {"input": "skip_batch", "loss": "stop", "state": "stop",
///                             "dead_latents": "stop", ...}}   (numeric_faults.hpp),
///     "mfr":      MfrConfig or null (null or absent: one SAE, no ensemble),
///     "data":     {"source": "files" | "synthetic", "train_files": [...], ...,
///                  "synthetic": CorrelatedGroupsConfig},
///     "output":   {"directory": "run", "checkpoint_every": 1000, ...},
///     "seed": 0, "model_name": "", "hook_name": ""
///   }
///
/// Every key is optional (a missing key keeps the default below) except what the
/// defaults cannot supply: model.autoencoder.d_in and d_sae, and data.train_files when
/// data.source is "files". Keys are checked strictly (config_json.hpp).
///
/// Provides
///   ActivationSettings, ModelConfig, DataConfig, OutputConfig, RunConfig (+ validate)
///   activation_config_as<Act, Scalar>(settings)  the Act<Scalar>::Config to construct
///                                                the SAE with (config_error if the
///                                                architecture differs)
///   run_config_from_json(j, source_name)  config_error "<source_name>: <key path>: ..."
///   to_json(run_config)                   every setting, as nlohmann::json
///   load_run_config(path)                 requires: a JSON file (comments allowed)
///       ensures: relative paths in data.train_files and data.eval_files are resolved
///                against the directory of the config file, so a config works from any
///                working directory; output.directory stays relative to the working
///                directory of the process (where the user asks for results to go).
///       throws:  io_error "<path>: ..." when the file cannot be read or is not JSON
///                (with the byte offset; invalid UTF-8 included); config_error
///                "<path>: <key path>: ..." for a bad value or a duplicate key.
///   save_run_config(path, config)         validates, then writes pretty-printed JSON
///                                         atomically, keys in declaration order, so
///                                         load_run_config(path) gives `config` back.
///
/// Seeds: `seed` initialises the model (ensemble member i uses derive_seed(seed, i));
/// `data.seed` drives shuffling and the synthetic generator, so the two can be varied
/// independently.

#include "sae/io/config_json.hpp"
#include "sae/io/file.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace sae {

/// Floating-point type of the parameters and batches.
enum class ScalarType { float32, float64 };

/// Where training batches come from.
enum class DataSource {
    files,     ///< .npy / .safetensors activation files (data.train_files)
    synthetic  ///< the correlated-groups generator (data.synthetic), with known features
};

constexpr std::array<std::pair<ScalarType, const char*>, 2> config_enum_names(ScalarType) {
    return {{{ScalarType::float32, "float32"}, {ScalarType::float64, "float64"}}};
}
constexpr std::array<std::pair<DataSource, const char*>, 2> config_enum_names(DataSource) {
    return {{{DataSource::files, "files"}, {DataSource::synthetic, "synthetic"}}};
}

// ---- activation ------------------------------------------------------------------------

/// The activation of the SAE: an architecture and its settings, one JSON object
/// {"architecture": "topk", "k": 32, "relu": true}. Architectures: "topk", "batchtopk",
/// "jumprelu", "standard" (ReLU + L1, SAELens' name). The Config types hold no
/// Scalar-dependent field; they are stored as the float instantiation's and converted by
/// activation_config_as.
struct ActivationSettings {
    using Variant =
        std::variant<TopK<float>::Config, BatchTopK<float>::Config, JumpReLU<float>::Config, ReluL1<float>::Config>;
    Variant config{};  ///< default: TopK with its defaults

    /// The architecture's name, as in the JSON and in Act::architecture.
    const char* architecture() const {
        return std::visit([](const auto& c) { return architecture_of(c); }, config);
    }

    /// k of a TopK or BatchTopK activation; nullopt for architectures without k.
    std::optional<Index> k() const {
        return std::visit(
            [](const auto& c) -> std::optional<Index> {
                using C = std::decay_t<decltype(c)>;
                if constexpr (detail::config_io::is_config_of_v<C, TopK> || detail::config_io::is_config_of_v<C, BatchTopK>) return c.k;
                return std::nullopt;
            },
            config);
    }

    template <class C>
    static const char* architecture_of(const C&) {
        if constexpr (detail::config_io::is_config_of_v<C, TopK>) return TopK<float>::architecture;
        if constexpr (detail::config_io::is_config_of_v<C, BatchTopK>) return BatchTopK<float>::architecture;
        if constexpr (detail::config_io::is_config_of_v<C, JumpReLU>) return JumpReLU<float>::architecture;
        return ReluL1<float>::architecture;
    }
};

namespace detail::config_io {

inline std::vector<std::string> architecture_names() {
    return {TopK<float>::architecture, BatchTopK<float>::architecture, JumpReLU<float>::architecture,
            ReluL1<float>::architecture};
}

/// The alternative called `name`, with its defaults.
template <std::size_t I = 0>
ActivationSettings::Variant activation_named(const std::string& name, const std::string& path) {
    if constexpr (I == std::variant_size_v<ActivationSettings::Variant>) {
        config_fail(path, "expected one of " + join_names(architecture_names(), "\"") + ", got \"" + name + "\"");
    } else {
        using C = std::variant_alternative_t<I, ActivationSettings::Variant>;
        if (name == ActivationSettings::architecture_of(C{})) return C{};
        return activation_named<I + 1>(name, path);
    }
}

}  // namespace detail::config_io

template <class BasicJson, std::enable_if_t<detail::config_io::is_json_v<BasicJson>, int> = 0>
void to_json(BasicJson& j, const ActivationSettings& settings) {
    j = BasicJson::object();
    j["architecture"] = settings.architecture();
    std::visit(
        [&j](const auto& c) {
            BasicJson fields;
            to_json(fields, c);
            for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
        },
        settings.config);
}

/// Reads {"architecture": name, <that architecture's keys>}. A missing "architecture"
/// keeps the current one; a new architecture starts from its defaults.
template <class BasicJson, std::enable_if_t<detail::config_io::is_json_v<BasicJson>, int> = 0>
void from_json_strict(const BasicJson& j, ActivationSettings& settings, const std::string& path) {
    if (!j.is_object()) detail::config_io::config_fail(path, "expected an object, got " + detail::config_io::describe_json(j));
    ActivationSettings::Variant result = settings.config;
    const auto named = j.find("architecture");
    if (named != j.end()) {
        const std::string key = detail::config_io::join_key(path, "architecture");
        std::string name;
        detail::config_io::read_value(*named, name, key);
        if (name != settings.architecture()) result = detail::config_io::activation_named(name, key);
    }
    std::visit([&](auto& c) { detail::config_io::read_struct(j, c, path, {"architecture"}); }, result);
    settings.config = std::move(result);
}

template <class BasicJson, std::enable_if_t<detail::config_io::is_json_v<BasicJson>, int> = 0>
void from_json(const BasicJson& j, ActivationSettings& settings) {
    from_json_strict(j, settings, std::string());
}

/// The settings as the Config of `Act<Scalar>`, to construct the SAE with.
/// Throws config_error when the configured architecture is not Act's.
template <template <class> class Act, class Scalar>
typename Act<Scalar>::Config activation_config_as(const ActivationSettings& settings,
                                                  const std::string& path = "model.activation") {
    const auto* stored = std::get_if<typename Act<float>::Config>(&settings.config);
    if (stored == nullptr) {
        throw config_error(detail::config_io::join_key(path, "architecture") + ": the config asks for \"" +
                           settings.architecture() + "\", not \"" + Act<Scalar>::architecture + "\"");
    }
    if constexpr (std::is_same_v<Scalar, float>) {
        return *stored;
    } else {
        // Same fields, different type: copy through the JSON form, which is exact.
        nlohmann::json j;
        to_json(j, *stored);
        return read_config<typename Act<Scalar>::Config>(j, path);
    }
}

// ---- the run -------------------------------------------------------------------------

struct ModelConfig {
    AutoencoderConfig autoencoder{};      ///< d_in and d_sae have no useful default: set them
    ActivationSettings activation{};
    ScalarType dtype = ScalarType::float32;

    /// config_error naming the key path (under `path`): the autoencoder's and the
    /// activation's own rules, and k <= d_sae.
    void validate(const std::string& path = "") const {
        using detail::config_io::join_key;
        detail::config_io::validate_config(autoencoder, join_key(path, "autoencoder"));
        std::visit([&](const auto& c) { detail::config_io::validate_config(c, join_key(path, "activation")); }, activation.config);
        const std::optional<Index> k = activation.k();
        if (k && *k > autoencoder.d_sae) {
            throw config_error(join_key(path, "activation.k") + ": k = " + std::to_string(*k) + " exceeds " +
                               join_key(path, "autoencoder.d_sae") + " = " + std::to_string(autoencoder.d_sae));
        }
    }
};

struct DataConfig {
    DataSource source = DataSource::files;
    std::vector<std::string> train_files;  ///< .npy or .safetensors, rows = samples
    std::vector<std::string> eval_files;   ///< optional held-out files
    std::string tensor;                    ///< safetensors tensor name; "" = the only tensor
    std::size_t batch_size = 4096;         ///< rows per training step
    std::size_t shuffle_buffer_rows = 262144;  ///< rows shuffled together; 0 = file order
    std::size_t epochs = 1;                ///< passes over train_files at most
    std::uint64_t seed = 0;                ///< shuffling and the synthetic generator
    CorrelatedGroupsConfig synthetic{};    ///< used when source = "synthetic"

    void validate(const std::string& path = "") const {
        using detail::config_io::join_key;
        if (batch_size < 1) throw config_error(join_key(path, "batch_size") + ": must be >= 1, got 0");
        if (epochs < 1) throw config_error(join_key(path, "epochs") + ": must be >= 1, got 0");
        check_paths(train_files, join_key(path, "train_files"));
        check_paths(eval_files, join_key(path, "eval_files"));
        const std::string source_is = join_key(path, "source") + " = \"" + enum_name(source) + "\"";
        if (source == DataSource::files && train_files.empty()) {
            throw config_error(join_key(path, "train_files") + ": must name at least one file when " + source_is);
        }
        if (source == DataSource::synthetic && !train_files.empty()) {
            throw config_error(join_key(path, "train_files") + ": must be empty when " + source_is +
                               " (batches are generated)");
        }
        detail::config_io::validate_config(synthetic, join_key(path, "synthetic"));
    }

private:
    static void check_paths(const std::vector<std::string>& files, const std::string& key) {
        for (std::size_t i = 0; i < files.size(); ++i) {
            if (files[i].empty()) throw config_error(key + "[" + std::to_string(i) + "]: empty file name");
        }
    }
};

struct OutputConfig {
    std::string directory = "run";      ///< checkpoints, logs and the saved SAE go here
    std::size_t checkpoint_every = 1000;  ///< steps between checkpoints; 0 = only at the end
    std::size_t log_every = 100;        ///< steps between log lines; 0 = no log
    bool progress = true;               ///< progress bar on the terminal

    void validate(const std::string& path = "") const {
        if (directory.empty()) throw config_error(detail::config_io::join_key(path, "directory") + ": must not be empty");
    }
};

struct RunConfig {
    ModelConfig model{};
    TrainingConfig training{};
    TrainerConfig trainer{};
    std::optional<MfrConfig> mfr;  ///< absent: a single SAE; present: an MFR ensemble
    DataConfig data{};
    OutputConfig output{};
    std::uint64_t seed = 0;        ///< model initialisation
    std::string model_name;        ///< where the activations came from (recorded, e.g. "gpt2")
    std::string hook_name;         ///< e.g. "blocks.0.hook_mlp_out" (recorded)

    /// Every section's rules, then the rules that tie sections together; config_error
    /// naming every key involved.
    void validate(const std::string& path = "") const {
        using detail::config_io::join_key;
        model.validate(join_key(path, "model"));
        detail::config_io::validate_config(training, join_key(path, "training"));
        detail::config_io::validate_config(trainer, join_key(path, "trainer"));
        if (mfr) detail::config_io::validate_config(*mfr, join_key(path, "mfr"));
        data.validate(join_key(path, "data"));
        output.validate(join_key(path, "output"));
        check_data_width(path);
        check_member_k(path);
        check_training_fits_model(path);
    }

private:
    void check_data_width(const std::string& path) const {
        using detail::config_io::join_key;
        if (data.source != DataSource::synthetic || data.synthetic.input_dim == model.autoencoder.d_in) return;
        throw config_error(join_key(path, "data.synthetic.input_dim") + ": " +
                           std::to_string(data.synthetic.input_dim) + " differs from " +
                           join_key(path, "model.autoencoder.d_in") + " = " + std::to_string(model.autoencoder.d_in) +
                           " (the SAE's input width)");
    }

    void check_member_k(const std::string& path) const {
        using detail::config_io::join_key;
        if (!mfr || !mfr->scale_k_by_member) return;
        const std::string key = join_key(path, "mfr.scale_k_by_member");
        const std::optional<Index> k = model.activation.k();
        if (!k) {
            throw config_error(key + ": the \"" + std::string(model.activation.architecture()) + "\" activation (" +
                               join_key(path, "model.activation.architecture") + ") has no k to scale");
        }
        // The last member uses k * num_saes; compared by division to avoid overflow.
        if (mfr->num_saes > model.autoencoder.d_sae / *k) {
            throw config_error(key + ": the last member's k = " + join_key(path, "model.activation.k") + " * " +
                               join_key(path, "mfr.num_saes") + " = " + std::to_string(*k) + " * " +
                               std::to_string(mfr->num_saes) + " exceeds " + join_key(path, "model.autoencoder.d_sae") +
                               " = " + std::to_string(model.autoencoder.d_sae));
        }
    }

    void check_training_fits_model(const std::string& path) const {
        using detail::config_io::join_key;
        if (training.normalize_inputs && model.autoencoder.tied) {
            throw config_error(join_key(path, "training.normalize_inputs") + ": cannot be true with " +
                               join_key(path, "model.autoencoder.tied") + " = true (a tied SAE cannot absorb the input scale)");
        }
        if (training.micro_batch_rows > 0 && std::holds_alternative<BatchTopK<float>::Config>(model.activation.config)) {
            throw config_error(join_key(path, "training.micro_batch_rows") + ": must be 0 when " +
                               join_key(path, "model.activation.architecture") + " = \"" + BatchTopK<float>::architecture +
                               "\" (it selects over the whole batch, which cannot be cut into micro-batches)");
        }
        if (training.reinit.enabled && training.reinit.target_rate == 0.0 && !model.activation.k()) {
            throw config_error(join_key(path, "training.reinit.target_rate") + ": must be > 0 when " +
                               join_key(path, "training.reinit.enabled") + " = true, because the \"" +
                               model.activation.architecture() + "\" activation (" +
                               join_key(path, "model.activation.architecture") + ") has no k to derive it from");
        }
    }
};

template <class V>
void visit_config_fields(ModelConfig& c, V&& visit) {
    visit("autoencoder", c.autoencoder);
    visit("activation", c.activation);
    visit("dtype", c.dtype);
}

template <class V>
void visit_config_fields(DataConfig& c, V&& visit) {
    visit("source", c.source);
    visit("train_files", c.train_files);
    visit("eval_files", c.eval_files);
    visit("tensor", c.tensor);
    visit("batch_size", c.batch_size);
    visit("shuffle_buffer_rows", c.shuffle_buffer_rows);
    visit("epochs", c.epochs);
    visit("seed", c.seed);
    visit("synthetic", c.synthetic);
}

template <class V>
void visit_config_fields(OutputConfig& c, V&& visit) {
    visit("directory", c.directory);
    visit("checkpoint_every", c.checkpoint_every);
    visit("log_every", c.log_every);
    visit("progress", c.progress);
}

template <class V>
void visit_config_fields(RunConfig& c, V&& visit) {
    visit("model", c.model);
    visit("training", c.training);
    visit("trainer", c.trainer);
    visit("mfr", c.mfr);
    visit("data", c.data);
    visit("output", c.output);
    visit("seed", c.seed);
    visit("model_name", c.model_name);
    visit("hook_name", c.hook_name);
}

// ---- files ---------------------------------------------------------------------------

/// Makes relative data.train_files / data.eval_files relative to `base_directory`
/// ("" leaves them as they are); absolute paths are kept.
inline void resolve_data_paths(DataConfig& data, const std::string& base_directory) {
    if (base_directory.empty()) return;
    const auto resolve = [&base_directory](std::vector<std::string>& files) {
        for (std::string& file : files) {
            const std::filesystem::path path(file);
            if (path.is_relative()) file = (std::filesystem::path(base_directory) / path).string();
        }
    };
    resolve(data.train_files);
    resolve(data.eval_files);
}

/// The RunConfig described by `j`; config_error "<source_name>: <key path>: ...".
inline RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source_name) {
    try {
        return read_config<RunConfig>(j);
    } catch (const config_error& e) {
        if (source_name.empty()) throw;
        throw config_error(source_name + ": " + e.what());
    }
}

inline nlohmann::json to_json(const RunConfig& config) {
    nlohmann::json j;
    to_json(j, config);
    return j;
}

namespace detail::config_io {

/// A config is small; refusing a huge file keeps a wrong path from filling memory.
constexpr std::uintmax_t max_config_file_bytes = std::uintmax_t(16) << 20;

inline std::string read_config_file(const std::string& path) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) throw io_error(path + ": is a directory, not a config file");
    const std::uintmax_t size = std::filesystem::file_size(path, error);
    if (!error && size > max_config_file_bytes) {
        throw io_error(path + ": " + std::to_string(size) + " bytes is too large for a config file (limit " +
                       std::to_string(max_config_file_bytes) + ")");
    }
    return read_whole_file(path);
}

}  // namespace detail::config_io

inline RunConfig load_run_config(const std::string& path) {
    const nlohmann::json j = parse_config_json(detail::config_io::read_config_file(path), path);
    RunConfig config = run_config_from_json(j, path);
    resolve_data_paths(config.data, std::filesystem::path(path).parent_path().string());
    return config;
}

inline void save_run_config(const std::string& path, const RunConfig& config) {
    try {
        config.validate();
    } catch (const config_error& e) {
        throw config_error(path + ": not saved: " + e.what());
    }
    nlohmann::ordered_json j;
    to_json(j, config);
    std::string text;
    try {
        text = j.dump(2) + "\n";
    } catch (const nlohmann::json::exception& e) {  // a string that is not UTF-8
        throw io_error(path + ": cannot write the config as JSON: " + e.what());
    }
    write_file_atomically(path, text);
}

}  // namespace sae
