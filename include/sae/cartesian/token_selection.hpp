#pragma once
/// \file token_selection.hpp
/// Token selection (arXiv 2401.16426; Marks 2023, "A Mathematical Model for Simulators"):
/// a simulation is a sequence of token steps; at step t every acting axis of a Cartesian
/// object (each agent and the environment, i.e. every axis but the token axis) chooses an
/// action from a distribution conditioned on the history so far, and the object turns the
/// joint choice, at token position t, into the world of that step.
///
/// Choices made here (the paper leaves them open):
///   - Given the history, the acting axes choose independently: the policy returns one
///     distribution per acting axis (a joint distribution that does not factor is modelled
///     by merging those axes into one).
///   - Without a token axis the object is played once per step (a repeated game) and any
///     number of steps is allowed; with one, step t uses token position t and at most
///     size(token axis) steps are allowed (config_error otherwise).
///   - The policy may return unnormalised non-negative weights; they are normalised.
/// Selecting the token axis: first_tokens(k) is the simulation on the object restricted to
/// the first k token positions (CartesianObject::restrict_axis) — the "partial simulation"
/// PSE runs at budget k; CartesianObject::select(token_axis, t) is the object at position t.
///
/// Sampling uses random_sampling.hpp on one std::mt19937_64 per trajectory, so a seed gives
/// the same trajectory on every platform. trajectory_seed(seed, i) (SplitMix64) derives
/// independent, reproducible seeds for the i-th of several trajectories.
///
/// Abstract:
///   Trajectory { actions [step][acting axis], worlds [step], log_probability }
///   StepPolicy = function(step, history) -> distributions [acting axis][action]
///   TokenSimulation(object, policy)
///     acting_axes(), max_steps() (nullopt: unbounded), object()
///     sample(steps, seed) -> Trajectory
///     sample_many(steps, count, seed) -> count trajectories, the i-th with trajectory_seed(seed, i)
///     log_probability(actions) -> log of the probability the policy gives those actions
///                                  (-inf when one has zero weight)
///     first_tokens(k) -> TokenSimulation on token positions 0..k-1 (needs a token axis)
///   A policy answer with the wrong number of distributions or of entries: shape_error
///   naming the step and axis; bad weights: as sample_categorical.

#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/random_sampling.hpp"
#include "sae/cartesian/world_set.hpp"
#include "sae/core/error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// One run of a token simulation.
struct Trajectory {
    std::vector<std::vector<std::size_t>> actions;  ///< [step][acting axis]: the chosen action
    std::vector<WorldId> worlds;                    ///< [step]: the world of that step
    double log_probability = 0.0;                   ///< natural log of the probability of the actions

    std::size_t steps() const { return worlds.size(); }
};

/// policy(step, history) -> one distribution (weights) per acting axis.
using StepPolicy = std::function<std::vector<std::vector<double>>(std::size_t, const Trajectory&)>;

/// SplitMix64 of seed + index: independent seeds for the trajectories of one experiment.
inline std::uint64_t trajectory_seed(std::uint64_t seed, std::uint64_t index) {
    std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
}

/// A Cartesian object driven step by step by a policy.
class TokenSimulation {
public:
    TokenSimulation(CartesianObject object, StepPolicy policy)
        : object_(std::move(object)), policy_(std::move(policy)) {
        if (!policy_) {
            throw config_error("TokenSimulation: the policy is empty");
        }
        token_axis_ = object_.token_axis();
        for (std::size_t i = 0; i < object_.axis_count(); ++i) {
            if (!token_axis_ || i != *token_axis_) {
                acting_axes_.push_back(i);
            }
        }
    }

    const CartesianObject& object() const { return object_; }
    const StepPolicy& policy() const { return policy_; }
    /// Every axis but the token axis, in order: the axes that choose an action each step.
    const std::vector<std::size_t>& acting_axes() const { return acting_axes_; }

    /// The number of token positions, or nullopt when the object has no token axis.
    std::optional<std::size_t> max_steps() const {
        if (!token_axis_) {
            return std::nullopt;
        }
        return object_.axes()[*token_axis_].size;
    }

    /// A trajectory of `steps` steps drawn with std::mt19937_64(seed).
    Trajectory sample(std::size_t steps, std::uint64_t seed) const {
        require_steps(steps, "TokenSimulation::sample");
        std::mt19937_64 rng(seed);
        Trajectory trajectory;
        trajectory.actions.reserve(steps);
        trajectory.worlds.reserve(steps);
        for (std::size_t step = 0; step < steps; ++step) {
            const std::vector<std::vector<double>> distributions = checked_policy(step, trajectory);
            std::vector<std::size_t> choice(acting_axes_.size());
            for (std::size_t k = 0; k < acting_axes_.size(); ++k) {
                choice[k] = sample_categorical(distributions[k], rng);
                trajectory.log_probability += std::log(normalised(distributions[k], choice[k]));
            }
            trajectory.worlds.push_back(world_of(step, choice));
            trajectory.actions.push_back(std::move(choice));
        }
        return trajectory;
    }

    /// `count` trajectories, the i-th drawn with trajectory_seed(seed, i).
    std::vector<Trajectory> sample_many(std::size_t steps, std::size_t count, std::uint64_t seed) const {
        std::vector<Trajectory> out;
        out.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            out.push_back(sample(steps, trajectory_seed(seed, i)));
        }
        return out;
    }

    /// Log-probability the policy assigns to a given sequence of joint actions.
    double log_probability(const std::vector<std::vector<std::size_t>>& actions) const {
        require_steps(actions.size(), "TokenSimulation::log_probability");
        Trajectory history;
        for (std::size_t step = 0; step < actions.size(); ++step) {
            if (actions[step].size() != acting_axes_.size()) {
                throw shape_error("TokenSimulation::log_probability: step " + std::to_string(step) + " has " +
                                  std::to_string(actions[step].size()) + " actions for " +
                                  std::to_string(acting_axes_.size()) + " acting axes");
            }
            const std::vector<std::vector<double>> distributions = checked_policy(step, history);
            for (std::size_t k = 0; k < acting_axes_.size(); ++k) {
                const std::size_t action = actions[step][k];
                if (action >= distributions[k].size()) {
                    throw config_error("TokenSimulation::log_probability: action " + std::to_string(action) +
                                       " at step " + std::to_string(step) + " on axis '" +
                                       object_.axes()[acting_axes_[k]].name + "' is out of range");
                }
                history.log_probability += std::log(normalised(distributions[k], action));
            }
            history.worlds.push_back(world_of(step, actions[step]));
            history.actions.push_back(actions[step]);
        }
        return history.log_probability;
    }

    /// The simulation restricted to token positions 0..steps-1.
    TokenSimulation first_tokens(std::size_t steps) const {
        if (!token_axis_) {
            throw config_error("TokenSimulation::first_tokens: the object has no token axis");
        }
        require_steps(steps, "TokenSimulation::first_tokens");
        if (steps == 0) {
            throw config_error("TokenSimulation::first_tokens: keeping 0 token positions leaves no object");
        }
        std::vector<std::size_t> kept(steps);
        for (std::size_t t = 0; t < steps; ++t) {
            kept[t] = t;
        }
        return TokenSimulation(object_.restrict_axis(*token_axis_, kept), policy_);
    }

private:
    void require_steps(std::size_t steps, const std::string& what) const {
        if (token_axis_ && steps > object_.axes()[*token_axis_].size) {
            throw config_error(what + ": " + std::to_string(steps) + " steps requested but the token axis '" +
                               object_.axes()[*token_axis_].name + "' has " +
                               std::to_string(object_.axes()[*token_axis_].size) + " positions");
        }
    }

    std::vector<std::vector<double>> checked_policy(std::size_t step, const Trajectory& history) const {
        std::vector<std::vector<double>> distributions = policy_(step, history);
        if (distributions.size() != acting_axes_.size()) {
            throw shape_error("TokenSimulation: the policy returned " + std::to_string(distributions.size()) +
                              " distributions at step " + std::to_string(step) + " for " +
                              std::to_string(acting_axes_.size()) + " acting axes");
        }
        for (std::size_t k = 0; k < acting_axes_.size(); ++k) {
            const Axis& axis = object_.axes()[acting_axes_[k]];
            if (distributions[k].size() != axis.size) {
                throw shape_error("TokenSimulation: the policy's distribution for axis '" + axis.name +
                                  "' at step " + std::to_string(step) + " has " +
                                  std::to_string(distributions[k].size()) + " entries, the axis has " +
                                  std::to_string(axis.size) + " actions");
            }
        }
        return distributions;
    }

    /// weights[k] / Σ weights (the weights were validated by sample_categorical or are
    /// validated here for log_probability).
    static double normalised(const std::vector<double>& weights, std::size_t k) {
        double total = 0.0;
        for (std::size_t j = 0; j < weights.size(); ++j) {
            if (!std::isfinite(weights[j]) || weights[j] < 0.0) {
                throw numeric_error("TokenSimulation: policy weight[" + std::to_string(j) + "] = " +
                                    std::to_string(weights[j]) + " is not a finite non-negative number");
            }
            total += weights[j];
        }
        if (!(total > 0.0)) {
            throw config_error("TokenSimulation: the policy gave all-zero weights");
        }
        return weights[k] / total;
    }

    WorldId world_of(std::size_t step, const std::vector<std::size_t>& choice) const {
        std::vector<std::size_t> coordinates(object_.axis_count());
        for (std::size_t k = 0; k < acting_axes_.size(); ++k) {
            coordinates[acting_axes_[k]] = choice[k];
        }
        if (token_axis_) {
            coordinates[*token_axis_] = step;
        }
        return object_.world(coordinates);
    }

    CartesianObject object_;
    StepPolicy policy_;
    std::optional<std::size_t> token_axis_;
    std::vector<std::size_t> acting_axes_;
};

}  // namespace cartesian
}  // namespace sae
