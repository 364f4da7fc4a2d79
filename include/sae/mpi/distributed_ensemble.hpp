#pragma once
/// \file distributed_ensemble.hpp
/// `DistributedMfrEnsemble`: the MFR ensemble of mfr/ensemble.hpp with its members
/// spread over ranks, optionally replicated for data parallelism, modelling the
/// trainer's Model concept.
///
/// Process grid (make_process_grid): P = R x E ranks. The E ranks of one *replica*
/// hold disjoint blocks of members (rank e: members [e m / E, (e + 1) m / E)) and see
/// the same batch; the R replicas hold the same members and split the batch
/// (RankSliceSource over `grid.replicas`). R = 1: ensemble-parallel; E = 1:
/// data-parallel; both at once on larger jobs.
///
/// A step, as MfrEnsemble's (same result up to float summation order):
///  1. every local member computes its gradients on the rank's rows (first step: on
///     the whole batch, gathered over the replicas, for the data-dependent init);
///  2. data parallel: member gradients are all-reduced over the replicas;
///  3. the matching refresh is global (any member re-initialised -> all pairs);
///  4. the members' decoder rows are all-gathered over the E ranks of the replica;
///     each rank evaluates only the pairs that touch its own members (a pair across
///     two ranks is matched on both: the same deterministic computation on the same
///     numbers) and adds the penalty gradient to its own members only; the penalty
///     value is summed over the pairs' first members' ranks;
///  5. every local member is updated.
/// Communication per step: (m - m/E) n d Scalars gathered into each rank (member
/// directions), plus, with R > 1, an all-reduce of the local members' gradients
/// (~2 (d n + n + d) Scalars per member for an untied SAE: W_enc, W_dec, biases).
///
/// Checkpoints: save_state is collective and assembles on rank 0 exactly the layout
/// MfrEnsemble::save_state writes, so a checkpoint resumes on any grid, or in a
/// single process; load_state reads only the rank's own members.

#include "../mfr/ensemble.hpp"
#include "communicator.hpp"
#include "data_parallel.hpp"
#include "distributed_checkpoint.hpp"
#include "step_agreement.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sae {

/// The communicators of a P = replicas x E grid (see the file comment).
struct ProcessGrid {
    Communicator world;     ///< all P ranks (a split copy of the one given)
    Communicator members;   ///< the E ranks of this rank's replica, over which members are spread
    Communicator replicas;  ///< the R ranks holding the same members, over which the batch is split
};

/// Collective over `world`: splits it into `data_replicas` replicas of
/// world.size() / data_replicas ranks each (config_error if it does not divide).
inline ProcessGrid make_process_grid(const Communicator& world, int data_replicas) {
    if (data_replicas < 1 || world.size() % data_replicas != 0) {
        throw config_error("data_replicas = " + std::to_string(data_replicas) + " must divide the " +
                           std::to_string(world.size()) + " ranks");
    }
    const int per_replica = world.size() / data_replicas;
    const int replica = world.rank() / per_replica, position = world.rank() % per_replica;
    ProcessGrid grid{world.split(0, world.rank()), world.split(replica, position), world.split(position, replica)};
    return grid;
}

template <class Scalar, template <class> class Act>
class DistributedMfrEnsemble {
public:
    using scalar_type = Scalar;
    using Member = TrainableSae<Scalar, Act>;
    using Serial = MfrEnsemble<Scalar, Act>;
    using ActivationConfig = typename Member::ActivationConfig;

    /// Every rank passes the same settings and seed; member i gets the seed and
    /// activation settings it would get in MfrEnsemble. `grid` must outlive this.
    DistributedMfrEnsemble(const ProcessGrid& grid, const MfrConfig& config, const AutoencoderConfig& model_config,
                           const ActivationConfig& activation_config, const TrainingConfig& training,
                           std::uint64_t seed, DataParallelConfig parallel = {})
        : grid_(&grid), config_((config.validate(), config)), parallel_(parallel),
          penalty_term_(config.num_saes, config.matching), agreement_(grid.world) {
        const int spread = grid.members.size();
        if (config.num_saes < spread) {
            throw config_error("num_saes = " + std::to_string(config.num_saes) + " is fewer than the " +
                               std::to_string(spread) + " ranks the members are spread over");
        }
        check_data_parallel_settings<Scalar, Act>(training, grid.replicas.size());
        first_ = first_member(grid.members.rank());
        const Index last = first_member(grid.members.rank() + 1);
        for (Index i = first_; i < last; ++i) {
            members_.emplace_back(model_config, Serial::member_activation_config(config, activation_config, i), training,
                                  Serial::member_seed(seed, i));
        }
        verify_replicas();
    }

    /// One coupled step on this rank's rows; collective over the whole grid.
    StepReport train_step(const ConstMatrixRef<Scalar>& batch) {
        const Communicator& replicas = grid_->replicas;
        const Index local_rows = batch.rows();
        const Index total_rows = replicas.sum<std::int64_t>(local_rows, "batch rows");
        const bool whole_batch_here = step_ == 0 && replicas.size() > 1;
        Matrix<Scalar> union_batch;
        if (whole_batch_here) union_batch = gather_rows<Scalar>(replicas, batch);
        std::vector<LossBreakdown> losses(members_.size());
        bool restarted = false;
        // Local work runs through agreement_ (over the whole grid): a numeric failure in
        // one rank's member stops the step on every rank before the next collective.
        agreement_.run("the members' gradients", [&] {
            for (std::size_t i = 0; i < members_.size(); ++i) {
                losses[i] = whole_batch_here ? members_[i].compute_gradients(union_batch) : members_[i].compute_gradients(batch);
                restarted = restarted || members_[i].reinitialized_this_step();
            }
        });
        if (!whole_batch_here) {
            for (std::size_t i = 0; i < members_.size(); ++i) {
                reduce_gradients(replicas, members_[i], local_rows, total_rows, "member " + std::to_string(first_ + Index(i)) + " ");
            }
        }
        const bool any_restart = grid_->members.any(restarted, "re-initialisation flags");
        const double weight = config_.penalty_coefficient * cosine_ramp(step_ + 1, config_.penalty_warmup_steps);
        penalty_ = 0.0;
        if (config_.penalty_coefficient > 0.0 && penalty_term_.num_pairs() > 0) {
            const bool refresh = any_restart || step_ % config_.matching_refresh_steps == 0;
            penalty_ = weight * couple(refresh, weight);
        }
        agreement_.run("the members' updates", [&] {
            for (Member& member : members_) member.apply_gradients();
        });
        ++step_;
        samples_ += static_cast<std::size_t>(total_rows);
        if (parallel_.verify_every > 0 && step_ % parallel_.verify_every == 0) verify_replicas();
        // The first step's losses are the whole batch's on every replica: equal weights.
        if (whole_batch_here) return report(losses, 1, replicas.size());
        return report(losses, local_rows, total_rows);
    }

    std::size_t step() const { return step_; }
    std::size_t samples() const { return samples_; }
    /// The trainer's hook: the numeric fault every rank handles (step_agreement.hpp).
    std::optional<NumericFault> agree_on_fault(const std::optional<NumericFault>& local) {
        return agreement_.agree(local);
    }
    const MfrConfig& config() const { return config_; }
    double last_penalty() const { return penalty_; }
    /// Index of this rank's first member; its members are first .. first + members().size() - 1.
    Index first_member() const { return first_; }
    const std::vector<Member>& members() const { return members_; }
    std::vector<Member>& members() { return members_; }
    const ProcessGrid& grid() const { return *grid_; }

    /// Collective: on world rank 0, `dict` gets what MfrEnsemble::save_state writes
    /// for the whole ensemble (plus "distributed/samples"); elsewhere it is unchanged.
    void save_state(StateDict<Scalar>& dict, const std::string& prefix = "") const {
        StateDict<Scalar> local;
        // Replicas hold identical members: replica 0 speaks for all of them.
        if (grid_->replicas.rank() == 0) {
            for (std::size_t i = 0; i < members_.size(); ++i) {
                members_[i].save_state(local, prefix + "member" + std::to_string(first_ + Index(i)) + "/");
            }
            StateDict<Scalar> matchings;
            penalty_term_.save_state(matchings, "");
            const nlohmann::json all = matchings.values().at("matchings");
            for (std::size_t p = 0; p < penalty_term_.num_pairs(); ++p) {
                if (owns(penalty_term_.pair_members(p).first)) local.set(pair_key(prefix, p), all.at(p));
            }
        }
        StateDict<Scalar> gathered = gather_state(grid_->world, local, 0);
        if (!grid_->world.is_root()) return;
        nlohmann::json pairs = nlohmann::json::array();
        nlohmann::json values = gathered.values();
        for (std::size_t p = 0; p < penalty_term_.num_pairs(); ++p) {
            pairs.push_back(values.at(pair_key(prefix, p)));
            values.erase(pair_key(prefix, p));
        }
        gathered.set_values(std::move(values));
        for (auto& [name, tensor] : gathered.tensors()) dict.tensors()[name] = std::move(tensor);
        for (const auto& [key, value] : gathered.values().items()) dict.set(key, value);
        dict.set(prefix + "penalty/matchings", pairs);
        dict.set(prefix + "num_saes", static_cast<std::size_t>(config_.num_saes));
        dict.set(prefix + "step", step_);
        dict.set(prefix + "penalty", penalty_);
        dict.set(prefix + "distributed/samples", samples_);
    }

    /// Restores this rank's members (and the shared counters and matchings) from a
    /// checkpoint of the whole ensemble, whatever grid wrote it.
    void load_state(const StateDict<Scalar>& dict, const std::string& prefix = "") {
        const std::size_t saved = dict.template get<std::size_t>(prefix + "num_saes");
        if (saved != static_cast<std::size_t>(config_.num_saes)) {
            throw io_error("checkpoint: holds an ensemble of " + std::to_string(saved) + " SAEs, the run has " +
                           std::to_string(config_.num_saes));
        }
        for (std::size_t i = 0; i < members_.size(); ++i) {
            members_[i].load_state(dict, prefix + "member" + std::to_string(first_ + Index(i)) + "/");
        }
        step_ = dict.template get<std::size_t>(prefix + "step");
        penalty_ = dict.template get<double>(prefix + "penalty");
        penalty_term_.load_state(dict, prefix + "penalty/");
        samples_ = dict.has_value(prefix + "distributed/samples")
                       ? dict.template get<std::size_t>(prefix + "distributed/samples")
                       : (members_.empty() ? 0 : members_.front().samples());
    }

private:
    Index first_member(int position) const {
        return config_.num_saes * position / grid_->members.size();
    }
    bool owns(Index member) const { return member >= first_ && member < first_ + static_cast<Index>(members_.size()); }
    static std::string pair_key(const std::string& prefix, std::size_t p) {
        return prefix + "distributed/pair" + std::to_string(p);
    }

    void verify_replicas() const {
        std::uint64_t fingerprint = 0xCBF29CE484222325ULL;
        for (const Member& member : members_) fingerprint = parameter_fingerprint(member, fingerprint);
        require_identical_replicas(grid_->replicas, fingerprint, step_);
    }

    /// All members' decoder rows on this rank (own ones in place, the others gathered),
    /// then the penalty on the pairs touching own members; returns D over all pairs.
    double couple(bool refresh, double weight) {
        const Communicator& spread = grid_->members;
        const Index n = members_.front().model().W_dec().rows(), d = members_.front().model().W_dec().cols();
        std::vector<Matrix<Scalar>> others;
        std::vector<const Matrix<Scalar>*> decoders;
        std::vector<Matrix<Scalar>*> gradients;
        if (spread.size() > 1) {
            std::vector<Scalar> mine;
            mine.reserve(static_cast<std::size_t>(n * d) * members_.size());
            for (const Member& member : members_) {
                const Matrix<Scalar>& W = member.model().W_dec();
                mine.insert(mine.end(), W.data(), W.data() + W.size());
            }
            const std::vector<Scalar> all = spread.allgather(mine, "decoder directions");
            others.reserve(static_cast<std::size_t>(config_.num_saes));
            for (Index i = 0; i < config_.num_saes; ++i) {
                others.emplace_back(Eigen::Map<const Matrix<Scalar>>(all.data() + i * n * d, n, d));
            }
        }
        for (Index i = 0; i < config_.num_saes; ++i) {
            if (owns(i)) {
                Member& member = members_[static_cast<std::size_t>(i - first_)];
                decoders.push_back(&member.model().W_dec());
                gradients.push_back(&member.coupling_gradient());  // as MfrEnsemble::couple (see gradient_reduction.hpp)
            } else {
                decoders.push_back(&others[static_cast<std::size_t>(i)]);
                gradients.push_back(nullptr);
            }
        }
        penalty_term_.evaluate(decoders, refresh, weight, gradients);
        double owned_sum = 0.0;
        for (std::size_t p = 0; p < penalty_term_.num_pairs(); ++p) {
            if (owns(penalty_term_.pair_members(p).first)) owned_sum += penalty_term_.pair_dissimilarities()[p];
        }
        return spread.sum(owned_sum, "penalty") / static_cast<double>(penalty_term_.num_pairs());
    }

    /// MfrEnsemble's report (for one member: that member's own report), as a
    /// row-weighted mean over the replicas.
    StepReport report(const std::vector<LossBreakdown>& losses, Index local_rows, Index total_rows) const {
        StepReport r;
        r.step = step_;
        r.samples = samples_;
        if (config_.num_saes == 1) {
            r = members_.front().report(losses.front());
            r.samples = samples_;
            return row_weighted_report(grid_->replicas, std::move(r), local_rows, total_rows);
        }
        // Sums over own members, weighted by rows over replicas, summed over the grid.
        std::vector<double> sums(5, 0.0);
        for (std::size_t i = 0; i < members_.size(); ++i) {
            const StepReport own = members_[i].report(losses[i]);
            sums[0] += own.loss;
            sums[1] += own.metric("reconstruction");
            sums[2] += own.metric("mse");
            sums[3] += own.metric("l0");
            sums[4] += own.metric("dead_fraction");
        }
        const double row_weight = static_cast<double>(local_rows) / static_cast<double>(total_rows);
        for (double& value : sums) value *= row_weight;
        double reinits = 0.0;
        if (grid_->replicas.rank() == 0) {
            for (const Member& member : members_) reinits += static_cast<double>(member.reinit_count());
        }
        sums.push_back(reinits);
        grid_->world.allreduce_sum(sums.data(), sums.size(), "step metrics");
        const double m = static_cast<double>(config_.num_saes);
        r.loss = sums[0] / m + penalty_;
        r.metrics = {{"reconstruction", sums[1] / m}, {"mse", sums[2] / m},      {"l0", sums[3] / m},
                     {"dead_fraction", sums[4] / m},  {"penalty", penalty_}, {"reinits", sums[5]}};
        return r;
    }

    const ProcessGrid* grid_;
    MfrConfig config_;
    DataParallelConfig parallel_;
    Index first_ = 0;
    std::vector<Member> members_;
    MfrPenalty<Scalar> penalty_term_;
    double penalty_ = 0.0;
    std::size_t step_ = 0;
    std::size_t samples_ = 0;
    StepAgreement agreement_;
};

}  // namespace sae
