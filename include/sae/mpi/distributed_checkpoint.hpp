#pragma once
/// \file distributed_checkpoint.hpp
/// Checkpoints of a distributed run: one ordinary libsae checkpoint file
/// (io/checkpoint.hpp), written atomically by rank 0, readable by a run on any
/// number of ranks (and by a single-process run of the same model: a data-parallel
/// SAE writes TrainableSae's layout, a distributed ensemble MfrEnsemble's).
///
///   save_distributed_checkpoint(comm, path, model, source, config)
///       collective. `model.save_state(dict)` is called on every rank (a distributed
///       ensemble gathers its members to rank 0 there); rank 0 adds the source's
///       state and writes the file. A failed write throws io_error on every rank.
///   resume_distributed_training(comm, path, model, source)
///       collective. Every rank reads `path` (a file system all ranks see, as on a
///       cluster's shared storage) and restores its part; if any rank fails, every
///       rank throws (io_error with the failing rank's message where it failed).
///   gather_state(comm, local, root)   the union of every rank's StateDict on root.

#include "../core/state_dict.hpp"
#include "../io/checkpoint.hpp"
#include "communicator.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace sae {

namespace detail {

/// `dict` as bytes: a JSON header (values; tensor names and shapes), a NUL, then every
/// tensor's Scalars in the header's order.
template <class Scalar>
std::vector<char> serialize_state(const StateDict<Scalar>& dict) {
    nlohmann::json header = {{"values", dict.values()}, {"tensors", nlohmann::json::array()}};
    std::size_t elements = 0;
    for (const auto& [name, tensor] : dict.tensors()) {
        header["tensors"].push_back({name, tensor.rows(), tensor.cols()});
        elements += static_cast<std::size_t>(tensor.size());
    }
    const std::string text = header.dump();
    std::vector<char> bytes(text.size() + 1 + elements * sizeof(Scalar));
    std::memcpy(bytes.data(), text.c_str(), text.size() + 1);
    char* out = bytes.data() + text.size() + 1;
    for (const auto& entry : dict.tensors()) {
        const std::size_t size = static_cast<std::size_t>(entry.second.size()) * sizeof(Scalar);
        std::memcpy(out, entry.second.data(), size);
        out += size;
    }
    return bytes;
}

/// Adds what serialize_state wrote to `dict` (values merged at the top level).
template <class Scalar>
void merge_serialized_state(const std::vector<char>& bytes, StateDict<Scalar>& dict) {
    if (bytes.empty()) return;
    const std::size_t text_end = std::strlen(bytes.data());
    const nlohmann::json header = nlohmann::json::parse(bytes.data(), bytes.data() + text_end);
    nlohmann::json values = dict.values();
    values.update(header.at("values"));
    dict.set_values(std::move(values));
    const char* in = bytes.data() + text_end + 1;
    for (const nlohmann::json& entry : header.at("tensors")) {
        Matrix<Scalar> tensor(entry.at(1).get<Index>(), entry.at(2).get<Index>());
        const std::size_t size = static_cast<std::size_t>(tensor.size()) * sizeof(Scalar);
        std::memcpy(tensor.data(), in, size);
        in += size;
        dict.tensors()[entry.at(0).get<std::string>()] = std::move(tensor);
    }
}

/// Throws on every rank when `failure` (this rank's message, empty if fine) is not
/// empty on some rank; the message is the first failing rank's. Collective.
inline void agree_on_failure(const Communicator& comm, const std::string& failure, const std::string& what) {
    int failed_rank = failure.empty() ? comm.size() : comm.rank();
    comm.allreduce_min(&failed_rank, 1, what + " (status)");
    if (failed_rank == comm.size()) return;
    std::vector<char> message(failure.begin(), failure.end());
    std::int64_t length = static_cast<std::int64_t>(message.size());
    comm.broadcast(&length, 1, failed_rank, what + " (message length)");
    message.resize(static_cast<std::size_t>(length));
    comm.broadcast(message.data(), message.size(), failed_rank, what + " (message)");
    throw io_error(what + " failed on rank " + std::to_string(failed_rank) + ": " +
                   std::string(message.begin(), message.end()));
}

}  // namespace detail

/// The union of every rank's `local` (tensors and top-level values) on `root`;
/// other ranks get an empty dict. Collective.
template <class Scalar>
StateDict<Scalar> gather_state(const Communicator& comm, const StateDict<Scalar>& local, int root = 0) {
    const std::vector<std::vector<char>> parts = comm.gather(detail::serialize_state(local), root, "checkpoint state");
    StateDict<Scalar> all;
    for (const std::vector<char>& part : parts) detail::merge_serialized_state(part, all);
    return all;
}

template <class Model, class Source>
void save_distributed_checkpoint(const Communicator& comm, const std::string& path, const Model& model,
                                 const Source& source, const nlohmann::json& config = nullptr) {
    StateDict<typename Model::scalar_type> state;
    model.save_state(state);
    std::string failure;
    if (comm.is_root()) {
        try {
            source.save_state(state, "data/");
            save_checkpoint(path, state, config);
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    detail::agree_on_failure(comm, failure, "writing checkpoint " + path);
}

template <class Model, class Source>
nlohmann::json resume_distributed_training(const Communicator& comm, const std::string& path, Model& model,
                                           Source& source) {
    nlohmann::json config;
    std::string failure;
    try {
        config = resume_training(path, model, source);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    detail::agree_on_failure(comm, failure, "resuming from " + path);
    return config;
}

}  // namespace sae
