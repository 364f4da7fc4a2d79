#pragma once
/// \file checkpoint.hpp
/// Checkpoints: a `StateDict` (weights, optimizer moments, counters, RNG and data
/// positions) and the run's configuration in one `.safetensors` file, written
/// atomically, so a run killed at any moment leaves either the previous checkpoint or
/// the new one, complete.
///
/// File layout: every StateDict tensor as a safetensors tensor in Scalar's dtype
/// (exact), and `__metadata__` = {
///     "format": "libsae-checkpoint", "version": "1",
///     "state":  the StateDict's JSON values (counters, RNG states, stream position),
///     "config": the run configuration as JSON (may be "null") }.
/// Being plain safetensors, a checkpoint opens in any safetensors tool for inspection.
///
///   save_checkpoint(path, state, config)   atomic; io_error "<path>: ..." on a failed write
///                                          (a full disk included), the previous file
///                                          then untouched; numeric_error "<path>: not
///                                          written: tensor 'adam/W_enc/v' holds nan at
///                                          [3, 0] ..." when a tensor or value is NaN/Inf,
///                                          so a checkpoint never stores poisoned state.
///   load_checkpoint<Scalar>(path)          io_error "<path>: ..." when the file is not a
///                                          libsae checkpoint or is damaged.
///   save_training_checkpoint(path, model, source, config) / resume_training(path, model,
///   source)    the same for anything with save_state/load_state (TrainableSae,
///              MfrEnsemble; SyntheticBatchSource, ShardSource): the model's state at
///              the root, the source's under "data/".

#include "../core/error.hpp"
#include "../core/numeric_faults.hpp"
#include "../core/state_dict.hpp"
#include "safetensors.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <string>

namespace sae {

inline constexpr const char* checkpoint_format = "libsae-checkpoint";
inline constexpr const char* checkpoint_version = "1";

template <class Scalar>
struct Checkpoint {
    StateDict<Scalar> state;
    nlohmann::json config;  ///< the run configuration stored with it (null if none)
};

namespace detail {

/// The key of the first NaN/Inf number in a checkpoint's JSON values ("" if none).
/// nlohmann writes such numbers as null, which would make the file unloadable.
inline std::string first_nonfinite_value(const nlohmann::json& value, const std::string& key) {
    if (value.is_number_float()) return std::isfinite(value.get<double>()) ? std::string() : key;
    if (value.is_object()) {
        for (auto it = value.begin(); it != value.end(); ++it) {
            std::string found = first_nonfinite_value(it.value(), key.empty() ? it.key() : key + "/" + it.key());
            if (!found.empty()) return found;
        }
    } else if (value.is_array()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
            std::string found = first_nonfinite_value(value[i], key + "[" + std::to_string(i) + "]");
            if (!found.empty()) return found;
        }
    }
    return std::string();
}

/// numeric_error naming the file and the first non-finite tensor entry or value.
template <class Scalar>
void require_finite_checkpoint(const std::string& path, const StateDict<Scalar>& state) {
    const std::string refused = path + ": not written: ";
    const std::string why = "; a checkpoint never stores non-finite state (the previous checkpoint is kept)";
    for (const auto& [name, tensor] : state.tensors()) {
        if (const std::optional<std::string> bad = describe_nonfinite(tensor)) {
            throw numeric_error(refused + "tensor '" + name + "' holds " + *bad + why);
        }
    }
    const std::string value = first_nonfinite_value(state.values(), "");
    if (!value.empty()) throw numeric_error(refused + "value '" + value + "' is not finite" + why);
}

}  // namespace detail

template <class Scalar>
void save_checkpoint(const std::string& path, const StateDict<Scalar>& state, const nlohmann::json& config = nullptr) {
    detail::require_finite_checkpoint(path, state);
    SafetensorsWriter writer;
    for (const auto& [name, tensor] : state.tensors()) writer.add(name, tensor);
    writer.set_metadata("format", checkpoint_format);
    writer.set_metadata("version", checkpoint_version);
    writer.set_metadata("state", state.values().dump());
    writer.set_metadata("config", config.dump());
    writer.write(path);
}

template <class Scalar>
Checkpoint<Scalar> load_checkpoint(const std::string& path) {
    const SafetensorsFile file(path);
    const std::map<std::string, std::string>& metadata = file.metadata();
    const auto field = [&](const char* key) -> const std::string& {
        const auto found = metadata.find(key);
        if (found == metadata.end()) throw io_error(path + ": not a libsae checkpoint (metadata '" + key + "' is missing)");
        return found->second;
    };
    if (field("format") != checkpoint_format) {
        throw io_error(path + ": metadata 'format' is '" + field("format") + "', expected '" + checkpoint_format + "'");
    }
    if (field("version") != checkpoint_version) {
        throw io_error(path + ": checkpoint version '" + field("version") + "' is not supported (this build reads " +
                       checkpoint_version + ")");
    }
    Checkpoint<Scalar> checkpoint;
    try {
        checkpoint.state.set_values(nlohmann::json::parse(field("state"), detail::JsonDepthLimit(path + ": metadata 'state'")));
        checkpoint.config = nlohmann::json::parse(field("config"), detail::JsonDepthLimit(path + ": metadata 'config'"));
    } catch (const nlohmann::json::exception& e) {
        throw io_error(path + ": metadata 'state' or 'config' is not valid JSON: " + e.what());
    }
    for (const std::string& name : file.names()) {
        checkpoint.state.tensors()[name] = file.template matrix<Scalar>(name);
    }
    return checkpoint;
}

template <class Model, class Source>
void save_training_checkpoint(const std::string& path, const Model& model, const Source& source,
                              const nlohmann::json& config = nullptr) {
    StateDict<typename Model::scalar_type> state;
    model.save_state(state);
    source.save_state(state, "data/");
    save_checkpoint(path, state, config);
}

/// Restores model and source from `path`; returns the configuration stored with it.
/// Errors from a checkpoint that does not fit the model name the file.
template <class Model, class Source>
nlohmann::json resume_training(const std::string& path, Model& model, Source& source) {
    Checkpoint<typename Model::scalar_type> checkpoint = load_checkpoint<typename Model::scalar_type>(path);
    try {
        model.load_state(checkpoint.state);
        source.load_state(checkpoint.state, "data/");
    } catch (const io_error& e) {
        throw io_error(path + ": " + e.what());
    }
    return checkpoint.config;
}

}  // namespace sae
