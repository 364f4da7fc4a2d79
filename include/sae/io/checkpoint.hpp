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
///   save_checkpoint(path, state, config)   atomic; io_error on a failed write.
///   load_checkpoint<Scalar>(path)          io_error "<path>: ..." when the file is not a
///                                          libsae checkpoint or is damaged.
///   save_training_checkpoint(path, model, source, config) / resume_training(path, model,
///   source)    the same for anything with save_state/load_state (TrainableSae,
///              MfrEnsemble; SyntheticBatchSource, ShardSource): the model's state at
///              the root, the source's under "data/".

#include "../core/error.hpp"
#include "../core/state_dict.hpp"
#include "safetensors.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace sae {

inline constexpr const char* checkpoint_format = "libsae-checkpoint";
inline constexpr const char* checkpoint_version = "1";

template <class Scalar>
struct Checkpoint {
    StateDict<Scalar> state;
    nlohmann::json config;  ///< the run configuration stored with it (null if none)
};

template <class Scalar>
void save_checkpoint(const std::string& path, const StateDict<Scalar>& state, const nlohmann::json& config = nullptr) {
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
        checkpoint.state.set_values(nlohmann::json::parse(field("state")));
        checkpoint.config = nlohmann::json::parse(field("config"));
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
