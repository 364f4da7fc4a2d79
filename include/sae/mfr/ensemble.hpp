#pragma once
/// \file ensemble.hpp
/// `MfrEnsemble`: m SAEs trained on the same batches and coupled by Mutual Feature
/// Regularization (DESIGN.md section 8, after the authors' code). Every member's loss
/// gets the same penalty
///
///   P = lambda * w(t) * mean over pairs (a, b) of (1 - MMCS(a, b)),
///   w(t) = 0.5 (1 + cos(pi (W - t) / W)) for t < W, then 1     (t = step, from 1)
///
/// where MMCS(a, b) is the mean cosine of matched unit feature directions (decoder
/// rows; for tied SAEs, the normalised encoder directions); see penalty.hpp for the
/// matching and the gradient.
///
/// Matching modes and their cost per pair at n latents and width d:
///  - one_to_one (default, the authors'): Hungarian on 1 - cos; O(n^2 d) for the
///    cosine matrix plus O(n^3) for the assignment;
///  - max_cosine: each feature to its most similar one, symmetrised
///    (0.5 MMCS(a->b) + 0.5 MMCS(b->a)); O(n^2 d), no assignment.
/// With `matching_refresh_steps = K > 1` the matching is recomputed every K steps (and
/// whenever a member was re-initialised); in between the stale pairs are reused and a
/// step costs O(n d) per pair: one read of each matched row per partner, member by
/// member on the threads, written straight into each member's coupling gradient
/// (penalty.hpp).
///
/// Order within a step (what the authors' loop means, made exact):
///  1. every member computes its loss and gradients on the batch, applying its own
///     re-initialisation rule (so the penalty below sees the new weights);
///  2. the penalty and its gradient are computed from all members' current weights;
///  3. only then is every member updated.
/// With lambda = 0 no penalty is computed and the ensemble is exactly m independent
/// TrainableSae runs with seeds derive_seed(seed, i).

#include "../core/parallel.hpp"
#include "../core/step_report.hpp"
#include "../core/schedule.hpp"
#include "../core/trainable_sae.hpp"
#include "penalty.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace sae {

struct MfrConfig {
    Index num_saes = 2;                     ///< m
    double penalty_coefficient = 1.0;       ///< lambda (the authors' ensemble_consistency_weight)
    std::size_t penalty_warmup_steps = 100; ///< W of the cosine ramp; 0 = full weight at once
    MatchingMode matching = MatchingMode::one_to_one;
    std::size_t matching_refresh_steps = 1; ///< recompute the matching every K steps
    bool scale_k_by_member = false;         ///< member i uses k * (i + 1) (an earlier authors' version)

    void validate() const {
        if (num_saes < 1) throw config_error("num_saes = " + std::to_string(num_saes) + " must be >= 1");
        if (!(penalty_coefficient >= 0.0) || !std::isfinite(penalty_coefficient)) {
            throw config_error("penalty_coefficient = " + std::to_string(penalty_coefficient) +
                               " must be a finite number >= 0");
        }
        if (matching_refresh_steps < 1) throw config_error("matching_refresh_steps must be >= 1");
    }
};

template <class Scalar, template <class> class Act>
class MfrEnsemble {
public:
    using scalar_type = Scalar;
    using Member = TrainableSae<Scalar, Act>;
    using ActivationConfig = typename Member::ActivationConfig;

    MfrEnsemble(const MfrConfig& config, const AutoencoderConfig& model_config,
                const ActivationConfig& activation_config, const TrainingConfig& training, std::uint64_t seed)
        : config_((config.validate(), config)), penalty_term_(config.num_saes, config.matching) {
        members_.reserve(static_cast<std::size_t>(config.num_saes));
        for (Index i = 0; i < config.num_saes; ++i) {
            members_.emplace_back(model_config, member_activation_config(config, activation_config, i), training,
                                  member_seed(seed, i));
        }
    }

    /// Member i's activation settings (k scaled by i + 1 under scale_k_by_member).
    static ActivationConfig member_activation_config(const MfrConfig& config, const ActivationConfig& activation_config,
                                                     Index i) {
        ActivationConfig member_activation = activation_config;
        if (config.scale_k_by_member) {
            if constexpr (detail::has_k<ActivationConfig>::value) {
                member_activation.k = activation_config.k * (i + 1);
            } else {
                throw config_error("scale_k_by_member: the activation has no k");
            }
        }
        return member_activation;
    }

    /// Member i's seed for an ensemble seeded by `seed`.
    static std::uint64_t member_seed(std::uint64_t seed, Index i) { return derive_seed(seed, static_cast<std::uint64_t>(i)); }

    /// One coupled step of every member on the same batch. Members are independent
    /// until the penalty, so with OpenMP enabled they compute their gradients (and
    /// apply their updates) in parallel; the result does not depend on the threads.
    StepReport train_step(const ConstMatrixRef<Scalar>& batch) {
        detail::check_training_batch<Scalar>(batch, members_.front().model().d_in(), "MfrEnsemble::train_step");
        std::vector<LossBreakdown> losses(members_.size());
        for_each_member([&](std::size_t i) { losses[i] = members_[i].compute_gradients(batch); });
        bool any_restart = false;
        for (const Member& member : members_) any_restart = any_restart || member.reinitialized_this_step();
        const double weight = config_.penalty_coefficient * cosine_ramp(step_ + 1, config_.penalty_warmup_steps);
        penalty_ = 0.0;
        if (config_.penalty_coefficient > 0.0 && penalty_term_.num_pairs() > 0) {
            const bool refresh = any_restart || step_ % config_.matching_refresh_steps == 0;
            penalty_ = weight * couple(refresh, weight);
        }
        for_each_member([&](std::size_t i) { members_[i].apply_gradients(); });
        ++step_;
        return report(losses);
    }

    std::size_t step() const { return step_; }
    const MfrConfig& config() const { return config_; }
    const std::vector<Member>& members() const { return members_; }
    std::vector<Member>& members() { return members_; }

    /// The penalty P of the last step (0 when lambda = 0).
    double last_penalty() const { return penalty_; }

    /// Mean over pairs of MMCS in the configured mode, on the current weights, with
    /// freshly computed matchings.
    double mean_pairwise_mmcs() const {
        MfrPenalty<Scalar> fresh(config_.num_saes, config_.matching);
        std::vector<const Matrix<Scalar>*> decoders;
        for (const Member& member : members_) decoders.push_back(&member.model().W_dec());
        return 1.0 - fresh.evaluate(decoders, true, 0.0, {});
    }

    /// Every member's state under "member<i>/", the step, the last penalty and the
    /// cached matchings (see TrainableSae::save_state).
    void save_state(StateDict<Scalar>& dict, const std::string& prefix = "") const {
        for (std::size_t i = 0; i < members_.size(); ++i) {
            members_[i].save_state(dict, prefix + "member" + std::to_string(i) + "/");
        }
        dict.set(prefix + "num_saes", members_.size());
        dict.set(prefix + "step", step_);
        dict.set(prefix + "penalty", penalty_);
        penalty_term_.save_state(dict, prefix + "penalty/");
    }

    void load_state(const StateDict<Scalar>& dict, const std::string& prefix = "") {
        const std::size_t saved = dict.template get<std::size_t>(prefix + "num_saes");
        if (saved != members_.size()) {
            throw io_error("checkpoint: holds an ensemble of " + std::to_string(saved) + " SAEs, the run has " +
                           std::to_string(members_.size()));
        }
        for (std::size_t i = 0; i < members_.size(); ++i) {
            members_[i].load_state(dict, prefix + "member" + std::to_string(i) + "/");
        }
        step_ = dict.template get<std::size_t>(prefix + "step");
        penalty_ = dict.template get<double>(prefix + "penalty");
        penalty_term_.load_state(dict, prefix + "penalty/");
    }

private:
    /// Runs work(i) for every member, in parallel under OpenMP; the first exception
    /// thrown by any member is rethrown here, after every member has run.
    template <class Work>
    void for_each_member(Work&& work) {
        detail::parallel_for(static_cast<Index>(members_.size()), [&](Index i, int) { work(static_cast<std::size_t>(i)); });
    }

    /// Adds lambda * w(t) * dD/dW_dec to each member's decoder-row gradient;
    /// returns D (the mean over pairs of 1 - MMCS).
    double couple(bool refresh, double weight) {
        std::vector<const Matrix<Scalar>*> decoders;
        std::vector<Matrix<Scalar>*> gradients;
        decoders.reserve(members_.size());
        gradients.reserve(members_.size());
        for (Member& member : members_) {
            decoders.push_back(&member.model().W_dec());
            gradients.push_back(&member.coupling_gradient_to_overwrite());
        }
        return penalty_term_.evaluate(decoders, refresh, weight, gradients, GradientOutput::overwrite);
    }

    StepReport report(const std::vector<LossBreakdown>& losses) const {
        // An "ensemble" of one is a plain SAE: report its full metrics (lr, aux, ...).
        if (members_.size() == 1) return members_.front().report(losses.front());
        StepReport r;
        r.step = step_;
        r.samples = members_.front().samples();
        double reconstruction = 0.0, mse = 0.0, l0 = 0.0, dead = 0.0, own_loss = 0.0;
        std::size_t reinits = 0;
        for (std::size_t i = 0; i < members_.size(); ++i) {
            const StepReport own = members_[i].report(losses[i]);
            own_loss += own.loss;
            reconstruction += own.metric("reconstruction");
            mse += own.metric("mse");
            l0 += own.metric("l0");
            dead += own.metric("dead_fraction");
            reinits += members_[i].reinit_count();
        }
        const double m = static_cast<double>(members_.size());
        r.loss = own_loss / m + penalty_;
        r.metrics = {{"reconstruction", reconstruction / m}, {"mse", mse / m},          {"l0", l0 / m},
                     {"dead_fraction", dead / m},            {"penalty", penalty_},     {"reinits", static_cast<double>(reinits)}};
        return r;
    }

    MfrConfig config_;
    std::vector<Member> members_;
    MfrPenalty<Scalar> penalty_term_;
    double penalty_ = 0.0;
    std::size_t step_ = 0;
};

}  // namespace sae
