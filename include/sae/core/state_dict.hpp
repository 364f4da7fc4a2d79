#pragma once
/// \file state_dict.hpp
/// `StateDict<Scalar>`: everything a training run needs to continue exactly where it
/// stopped, as named tensors (weights, optimizer moments) plus a JSON object of
/// scalars, integer counters and RNG states. Models and sources write themselves into
/// one with `save_state(dict, prefix)` and read themselves back with
/// `load_state(dict, prefix)`; io/checkpoint.hpp puts a StateDict into one file.
///
///   put(key, matrix)          stores a copy of a dense matrix or vector.
///   tensor(key, rows, cols)   requires: `key` was stored with that shape; otherwise
///                             io_error "checkpoint: tensor 'key' ..." (a checkpoint that
///                             does not match the model is a bad file, not a bad call).
///   set(key, value) / get<T>(key)   JSON values under the same key space.
///   set_counts / get_counts   int64 vectors (exact: firing counters exceed 2^24).
/// Keys are "/"-separated paths such as "member1/adam/W_enc/m".

#include "error.hpp"
#include "types.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>

namespace sae {

template <class Scalar>
class StateDict {
public:
    using Counts = Eigen::Array<std::int64_t, Eigen::Dynamic, 1>;

    template <class Derived>
    void put(const std::string& key, const Eigen::DenseBase<Derived>& value) {
        tensors_[key] = value.derived().template cast<Scalar>().matrix();
    }

    const Matrix<Scalar>& tensor(const std::string& key, Index rows, Index cols) const {
        const auto found = tensors_.find(key);
        if (found == tensors_.end()) throw io_error("checkpoint: tensor '" + key + "' is missing");
        if (found->second.rows() != rows || found->second.cols() != cols) {
            throw io_error("checkpoint: tensor '" + key + "' has shape [" + std::to_string(found->second.rows()) + ", " +
                           std::to_string(found->second.cols()) + "], the model expects [" + std::to_string(rows) +
                           ", " + std::to_string(cols) + "]");
        }
        return found->second;
    }

    bool has_tensor(const std::string& key) const { return tensors_.count(key) != 0; }
    const std::map<std::string, Matrix<Scalar>>& tensors() const { return tensors_; }
    std::map<std::string, Matrix<Scalar>>& tensors() { return tensors_; }

    template <class T>
    void set(const std::string& key, const T& value) {
        values_[key] = value;
    }

    template <class T>
    T get(const std::string& key) const {
        const auto found = values_.find(key);
        if (found == values_.end()) throw io_error("checkpoint: value '" + key + "' is missing");
        try {
            return found->template get<T>();
        } catch (const nlohmann::json::exception& e) {
            throw io_error("checkpoint: value '" + key + "' has the wrong type: " + e.what());
        }
    }

    bool has_value(const std::string& key) const { return values_.contains(key); }

    void set_counts(const std::string& key, const Counts& counts) {
        values_[key] = std::vector<std::int64_t>(counts.data(), counts.data() + counts.size());
    }

    Counts get_counts(const std::string& key, Index size) const {
        const std::vector<std::int64_t> raw = get<std::vector<std::int64_t>>(key);
        if (static_cast<Index>(raw.size()) != size) {
            throw io_error("checkpoint: value '" + key + "' has " + std::to_string(raw.size()) + " entries, expected " +
                           std::to_string(size));
        }
        return Eigen::Map<const Counts>(raw.data(), size);
    }

    /// The JSON object of all values (what a checkpoint file stores as metadata).
    const nlohmann::json& values() const { return values_; }
    void set_values(nlohmann::json values) {
        if (!values.is_object()) throw io_error("checkpoint: the state values are not a JSON object");
        values_ = std::move(values);
    }

private:
    std::map<std::string, Matrix<Scalar>> tensors_;
    nlohmann::json values_ = nlohmann::json::object();
};

/// The full state of a standard engine as text (the standard's stream format), so a
/// restored engine continues the identical sequence.
template <class Engine>
std::string engine_state(const Engine& engine) {
    std::ostringstream out;
    out << engine;
    return out.str();
}

template <class Engine>
void restore_engine_state(Engine& engine, const std::string& state, const std::string& key) {
    std::istringstream in(state);
    in >> engine;
    if (in.fail()) throw io_error("checkpoint: value '" + key + "' is not a valid random engine state");
}

}  // namespace sae
