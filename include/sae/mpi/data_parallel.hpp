#pragma once
/// \file data_parallel.hpp
/// Data-parallel training of one SAE over the ranks of a communicator.
///
///   RankSliceSource<Source>   wraps a source of *global* batches; rank r of P keeps
///                             rows [r N / P, (r + 1) N / P) of each one. Every rank
///                             walks the same stream (same files, seed, position), so
///                             the union of the ranks' batches is exactly the batch a
///                             single process would train on, and the stream position
///                             in a checkpoint does not depend on P: a run resumes on
///                             any number of ranks. A ShardSource reads only the rank's
///                             rows from the files (keep_batch_part); other sources
///                             make the whole batch, which is sliced.
///   DataParallelSae           wraps a TrainableSae and models the trainer's Model
///                             concept, so `train()`, its callbacks and checkpoints
///                             work unchanged: each step computes the rank's gradients,
///                             all-reduces them weighted by the ranks' rows
///                             (gradient_reduction.hpp), and applies the same update
///                             everywhere; every `verify_every` steps a fingerprint of
///                             the weights is compared across ranks (mpi_error if any
///                             rank differs).
///
/// Exactly the single-process run (up to the order of float sums):
///  - the first step (input scale, geometric-median b_dec) runs on the union batch,
///    gathered to every rank once;
///  - settings that depend on per-rank state outside the gradients are refused with
///    config_error when P > 1: the re-initialisation rule and AuxK (both read the
///    firing counters, which each rank updates from its own rows) and BatchTopK
///    (its selection and threshold are over the local batch).
///  - reported metrics are row-weighted means over the ranks, `samples` counts the
///    rows of all ranks.

#include "../core/trainable_sae.hpp"
#include "../core/step_report.hpp"
#include "communicator.hpp"
#include "gradient_reduction.hpp"
#include "step_agreement.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

struct DataParallelConfig {
    std::size_t verify_every = 1;  ///< compare the weights across ranks every K steps; 0 = never
};

/// Throws config_error when `training` (or the activation) cannot be data-parallel.
template <class Scalar, template <class> class Act>
void check_data_parallel_settings(const TrainingConfig& training, int ranks) {
    if (ranks <= 1) return;
    const std::string where = "data-parallel training on " + std::to_string(ranks) + " ranks: ";
    if (training.reinit.enabled) {
        throw config_error(where + "reinit.enabled needs the firing rates of the whole batch, which each rank only "
                                   "sees in part; turn the rule off or train on one rank");
    }
    if (training.loss.aux_coefficient > 0.0) {
        throw config_error(where + "aux_coefficient = " + std::to_string(training.loss.aux_coefficient) +
                           ": AuxK's dead latents come from per-rank firing counters; set it to 0 or use one rank");
    }
    if constexpr (detail::has_estimated_threshold<typename TrainableSae<Scalar, Act>::Model::Activation>::value) {
        throw config_error(where + "the batchtopk activation selects over the local batch; use topk or one rank");
    }
}

/// Rows [first, first + count) of a global batch of `rows` that rank `rank` of `ranks` keeps.
inline std::pair<Index, Index> rank_rows(Index rows, int rank, int ranks) {
    const Index first = rows * rank / ranks;
    const Index last = rows * (rank + 1) / ranks;
    return {first, last - first};
}

namespace detail {
template <class Source, class = void>
struct reads_batch_parts : std::false_type {};
template <class Source>
struct reads_batch_parts<Source, std::void_t<decltype(std::declval<Source&>().keep_batch_part(0, 1))>> : std::true_type {};
}  // namespace detail

/// A BatchSource that hands this rank its slice of every batch of `Source`. A source
/// that can read only a part of each batch (ShardSource::keep_batch_part) is asked to,
/// so each rank reads only its own rows from the files; any other source yields whole
/// batches, which are sliced here.
template <class Source>
class RankSliceSource {
public:
    /// `source` must outlive this object and yield the same batches on every rank.
    RankSliceSource(Source& source, int rank, int ranks) : source_(&source), rank_(rank), ranks_(ranks) {
        if (ranks < 1 || rank < 0 || rank >= ranks) {
            throw config_error("RankSliceSource: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
        }
        if constexpr (detail::reads_batch_parts<Source>::value) source.keep_batch_part(rank, ranks);
    }
    RankSliceSource(Source& source, const Communicator& comm) : RankSliceSource(source, comm.rank(), comm.size()) {}

    template <class Scalar>
    void next_batch(Matrix<Scalar>& out) {
        if constexpr (detail::reads_batch_parts<Source>::value) {
            source_->next_batch(out);
        } else {
            Matrix<Scalar> global;
            source_->next_batch(global);
            const auto [first, count] = rank_rows(global.rows(), rank_, ranks_);
            out = global.middleRows(first, count);
        }
    }

    template <class Dict>
    void save_state(Dict& dict, const std::string& prefix = "data/") const {
        source_->save_state(dict, prefix);
    }
    template <class Dict>
    void load_state(const Dict& dict, const std::string& prefix = "data/") {
        source_->load_state(dict, prefix);
    }

private:
    Source* source_;
    int rank_;
    int ranks_;
};

namespace detail {

/// FNV-1a over the bytes of `tensor`, continuing from `hash`.
template <class Derived>
std::uint64_t fingerprint_bytes(std::uint64_t hash, const Eigen::DenseBase<Derived>& tensor) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(tensor.derived().data());
    const std::size_t count = static_cast<std::size_t>(tensor.size()) * sizeof(typename Derived::Scalar);
    for (std::size_t i = 0; i < count; ++i) hash = (hash ^ bytes[i]) * 0x100000001B3ULL;
    return hash;
}

}  // namespace detail

/// A fingerprint of every parameter of `sae` (bit-exact: any differing bit changes it
/// with overwhelming probability).
template <class Scalar, template <class> class Act>
std::uint64_t parameter_fingerprint(const TrainableSae<Scalar, Act>& sae, std::uint64_t hash = 0xCBF29CE484222325ULL) {
    const auto& model = sae.model();
    hash = detail::fingerprint_bytes(hash, model.W_enc());
    hash = detail::fingerprint_bytes(hash, model.b_enc());
    hash = detail::fingerprint_bytes(hash, model.W_dec());
    hash = detail::fingerprint_bytes(hash, model.b_dec());
    if constexpr (TrainableSae<Scalar, Act>::Model::Activation::has_parameter) {
        hash = detail::fingerprint_bytes(hash, model.activation().parameter());
    }
    return hash;
}

/// Throws mpi_error when `fingerprint` differs between the ranks of `comm`. Collective.
inline void require_identical_replicas(const Communicator& comm, std::uint64_t fingerprint, std::size_t step) {
    if (comm.size() == 1) return;
    std::uint64_t low = fingerprint, high = fingerprint;
    comm.allreduce_min(&low, 1, "weight fingerprint");
    comm.allreduce_max(&high, 1, "weight fingerprint");
    if (low != high) {
        throw mpi_error("data-parallel replicas diverged after step " + std::to_string(step) + ": rank " +
                        std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) +
                        " holds weights that differ from another rank's");
    }
}

/// The rows of every rank's `local` batch, in rank order, on every rank. Collective.
template <class Scalar>
Matrix<Scalar> gather_rows(const Communicator& comm, const ConstMatrixRef<Scalar>& local) {
    using RowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const RowMajor rows = local;
    const std::vector<Scalar> mine(rows.data(), rows.data() + rows.size());
    const std::vector<Scalar> all = comm.allgather(mine, "batch rows");
    const Index cols = local.cols();
    return Eigen::Map<const RowMajor>(all.data(), static_cast<Index>(all.size()) / cols, cols);
}

/// `report` with its loss and metrics replaced by their means over the ranks of
/// `comm`, weighted by `local_rows`. Every rank must report the same metric names.
inline StepReport row_weighted_report(const Communicator& comm, StepReport report, Index local_rows, Index total_rows) {
    if (comm.size() == 1) return report;
    std::vector<double> values{report.loss};
    for (const auto& metric : report.metrics) values.push_back(metric.second);
    const double weight = static_cast<double>(local_rows) / static_cast<double>(total_rows);
    for (double& value : values) value *= weight;
    comm.allreduce_sum(values.data(), values.size(), "step metrics");
    report.loss = values[0];
    for (std::size_t i = 0; i < report.metrics.size(); ++i) report.metrics[i].second = values[i + 1];
    return report;
}

template <class Scalar, template <class> class Act>
class DataParallelSae {
public:
    using scalar_type = Scalar;
    using Sae = TrainableSae<Scalar, Act>;

    /// `sae` and `comm` must outlive the wrapper; every rank must construct its SAE
    /// with the same configuration and seed (checked at the first step).
    DataParallelSae(Sae& sae, const Communicator& comm, DataParallelConfig config = {})
        : sae_(&sae), comm_(&comm), config_(config), samples_(sae.samples()), agreement_(comm) {
        check_data_parallel_settings<Scalar, Act>(sae.training_config(), comm.size());
        require_identical_replicas(comm, parameter_fingerprint(sae), sae.step());
    }

    /// One step on this rank's rows; collective.
    StepReport train_step(const ConstMatrixRef<Scalar>& batch) {
        const Index local_rows = batch.rows();
        const Index total_rows = comm_->sum<std::int64_t>(local_rows, "batch rows");
        LossBreakdown loss;
        // Local work runs through agreement_: a numeric failure on one rank stops the
        // step on every rank before the next collective (step_agreement.hpp).
        if (sae_->step() == 0 && comm_->size() > 1) {
            // Initialisation reads the whole first batch (scale, median): give it all of it.
            const Matrix<Scalar> union_batch = gather_rows<Scalar>(*comm_, batch);
            agreement_.run("the gradients", [&] { loss = sae_->compute_gradients(union_batch); });
        } else {
            agreement_.run("the gradients", [&] { loss = sae_->compute_gradients(batch); });
            reduce_gradients(*comm_, *sae_, local_rows, total_rows);
        }
        agreement_.run("the update", [&] { sae_->apply_gradients(); });
        samples_ += static_cast<std::size_t>(total_rows);
        if (config_.verify_every > 0 && sae_->step() % config_.verify_every == 0) {
            require_identical_replicas(*comm_, parameter_fingerprint(*sae_), sae_->step());
        }
        // The first step's loss is already the union's; the others are averaged.
        StepReport report = sae_->report(loss);
        report.samples = samples_;
        if (sae_->step() == 1) return report;  // computed on the union batch everywhere
        return row_weighted_report(*comm_, std::move(report), local_rows, total_rows);
    }

    std::size_t step() const { return sae_->step(); }
    std::size_t samples() const { return samples_; }
    /// The trainer's hook: the numeric fault every rank handles (step_agreement.hpp).
    std::optional<NumericFault> agree_on_fault(const std::optional<NumericFault>& local) {
        return agreement_.agree(local);
    }
    const Sae& sae() const { return *sae_; }
    Sae& sae() { return *sae_; }
    const Communicator& communicator() const { return *comm_; }

    /// The SAE's state (identical on every rank) plus the global sample count.
    void save_state(StateDict<Scalar>& dict, const std::string& prefix = "") const {
        sae_->save_state(dict, prefix);
        dict.set(prefix + "data_parallel/samples", samples_);
    }
    void load_state(const StateDict<Scalar>& dict, const std::string& prefix = "") {
        sae_->load_state(dict, prefix);
        samples_ = dict.has_value(prefix + "data_parallel/samples")
                       ? dict.template get<std::size_t>(prefix + "data_parallel/samples")
                       : sae_->samples();
    }

private:
    Sae* sae_;
    const Communicator* comm_;
    DataParallelConfig config_;
    std::size_t samples_;
    StepAgreement agreement_;
};

}  // namespace sae
