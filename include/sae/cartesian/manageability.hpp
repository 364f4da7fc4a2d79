#pragma once
/// \file manageability.hpp
/// What one agent of a Cartesian object can bring about: with certainty (ensure, prevent,
/// control, quantified over every joint choice of the other axes) and under a belief about
/// the other axes (manage).
///
/// Certainty. Agent i's ensurables, preventables and controllables are those of its frame
/// view_from(i) (controllables.hpp): S is ensurable when some action of i puts the world
/// in S whatever every other agent, the environment and the token position do.
///
/// Manageability. Marks (2023, "Higher Dimension Cartesian Objects and Aligning 'Tiling
/// Simulators'") introduces manageability as controllability that allows for uncertainty
/// about the other agents' behaviour, with a probability threshold; the post states it
/// informally (its formula could not be recovered from the sources at hand), so this
/// library fixes one definition:
///
///   A belief μ is a probability distribution over the columns of view_from(i), i.e. over
///   the joint choices of all other axes. For an action a of agent i,
///       P_μ(S | a) = Σ_k μ(k) · [a · k ∈ S].
///   Agent i can θ-ensure S when max_a P_μ(S | a) ≥ θ, θ-prevent S when
///   max_a P_μ(W \ S | a) ≥ θ, and θ-manage S when it can do both.
///
/// Properties (tested): with θ = 1 and a belief that gives every column positive
/// probability, θ-manage is exactly control; a set θ-manageable is θ'-manageable for every
/// θ' < θ; a single action that lands in S and outside S with probability 1/2 each makes
/// S 1/2-manageable, so useful thresholds are above 1/2.
///
/// Abstract:
///   agent_can_ensure / agent_can_prevent / agent_can_control(object, axis, S)
///   agent_ensure_generators / agent_prevent_generators(object, axis),
///   agent_controllable_intervals(object, axis)          the forms of controllables.hpp.
///   product_belief(object, axis, per_axis)  μ for other axes that are independent:
///       per_axis[k] is a distribution over the k-th other axis (other_axes order).
///   probability_in(view, belief, action, S)     P_μ(S | action).
///   Management manage(view, belief, S, theta)   the best actions and probabilities.
///   can_manage(object, axis, belief, S, theta).
/// A belief must have one entry per column (shape_error), finite entries (numeric_error),
/// no negative entry and a sum within 1e-9 of 1 (config_error naming the value);
/// theta must be in (0, 1] (config_error).

#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/controllables.hpp"
#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/world_set.hpp"
#include "sae/core/error.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace sae {
namespace cartesian {

inline bool agent_can_ensure(const CartesianObject& object, std::size_t axis, const WorldSet& s) {
    return can_ensure(object.view_from(axis), s);
}

inline bool agent_can_prevent(const CartesianObject& object, std::size_t axis, const WorldSet& s) {
    return can_prevent(object.view_from(axis), s);
}

inline bool agent_can_control(const CartesianObject& object, std::size_t axis, const WorldSet& s) {
    return can_control(object.view_from(axis), s);
}

inline std::vector<WorldSet> agent_ensure_generators(const CartesianObject& object, std::size_t axis) {
    return ensure_generators(object.view_from(axis));
}

inline std::vector<WorldSet> agent_prevent_generators(const CartesianObject& object, std::size_t axis) {
    return prevent_generators(object.view_from(axis));
}

inline std::vector<WorldInterval> agent_controllable_intervals(const CartesianObject& object, std::size_t axis) {
    return controllable_intervals(object.view_from(axis));
}

namespace detail {

/// Checks a probability vector; `what` names it in the messages.
inline void require_distribution(const std::vector<double>& p, std::size_t expected_size, const std::string& what) {
    if (p.size() != expected_size) {
        throw shape_error(what + " has " + std::to_string(p.size()) + " entries, expected " +
                          std::to_string(expected_size));
    }
    double total = 0.0;
    for (std::size_t k = 0; k < p.size(); ++k) {
        if (!std::isfinite(p[k])) {
            throw numeric_error(what + "[" + std::to_string(k) + "] = " + std::to_string(p[k]) + " is not finite");
        }
        if (p[k] < 0.0) {
            throw config_error(what + "[" + std::to_string(k) + "] = " + std::to_string(p[k]) + " is negative");
        }
        total += p[k];
    }
    if (std::abs(total - 1.0) > 1e-9) {
        throw config_error(what + " sums to " + std::to_string(total) + ", not 1");
    }
}

}  // namespace detail

/// The belief over view_from(axis)'s columns when the other axes are independent, with
/// per_axis[k] the distribution of the k-th of other_axes(axis).
inline std::vector<double> product_belief(const CartesianObject& object, std::size_t axis,
                                          const std::vector<std::vector<double>>& per_axis) {
    const std::vector<std::size_t> others = object.other_axes(axis);
    if (per_axis.size() != others.size()) {
        throw shape_error("product_belief: " + std::to_string(per_axis.size()) + " distributions given for " +
                          std::to_string(others.size()) + " other axes");
    }
    for (std::size_t k = 0; k < others.size(); ++k) {
        detail::require_distribution(per_axis[k], object.axes()[others[k]].size,
                                     "product_belief: the distribution of axis '" + object.axes()[others[k]].name +
                                         "'");
    }
    const std::size_t columns = object.cell_count() / object.axes()[axis].size;
    std::vector<double> belief(columns, 1.0);
    for (std::size_t column = 0; column < columns; ++column) {
        const std::vector<std::size_t> choice = object.environment_coordinates(axis, column);
        for (std::size_t k = 0; k < others.size(); ++k) {
            belief[column] *= per_axis[k][choice[k]];
        }
    }
    return belief;
}

/// P_μ(S | action): the probability that `action` puts the world in S.
inline double probability_in(const Frame& view, const std::vector<double>& belief, std::size_t action,
                             const WorldSet& s) {
    detail::require_distribution(belief, view.environment_count(), "probability_in: belief");
    view.require_agent(action, "probability_in");
    require_worlds_in_range(s, view.world_count(), "probability_in: S");
    double p = 0.0;
    for (std::size_t k = 0; k < view.environment_count(); ++k) {
        if (s.contains(view(action, k))) {
            p += belief[k];
        }
    }
    return p;
}

/// The outcome of a manageability check.
struct Management {
    double ensure_probability = 0.0;   ///< max_a P_μ(S | a)
    std::size_t ensuring_action = 0;   ///< the first a reaching it
    double prevent_probability = 0.0;  ///< max_a P_μ(W \ S | a)
    std::size_t preventing_action = 0;
    bool can_ensure = false;   ///< ensure_probability ≥ θ
    bool can_prevent = false;  ///< prevent_probability ≥ θ
    bool manageable = false;   ///< both
};

/// θ-manageability of S in a frame under a belief over its columns.
inline Management manage(const Frame& view, const std::vector<double>& belief, const WorldSet& s, double theta) {
    if (!(theta > 0.0 && theta <= 1.0)) {
        throw config_error("manage: theta = " + std::to_string(theta) + " must be in (0, 1]");
    }
    detail::require_distribution(belief, view.environment_count(), "manage: belief");
    require_worlds_in_range(s, view.world_count(), "manage: S");
    if (view.agent_count() == 0) {
        throw config_error("manage: the agent has no action");
    }
    Management m;
    for (std::size_t a = 0; a < view.agent_count(); ++a) {
        double in = 0.0;
        double out = 0.0;
        for (std::size_t k = 0; k < view.environment_count(); ++k) {
            (s.contains(view(a, k)) ? in : out) += belief[k];
        }
        if (a == 0 || in > m.ensure_probability) {
            m.ensure_probability = in;
            m.ensuring_action = a;
        }
        if (a == 0 || out > m.prevent_probability) {
            m.prevent_probability = out;
            m.preventing_action = a;
        }
    }
    // A tolerance of 1e-12 so that a probability summed to 0.7999999999999999 still
    // reaches θ = 0.8.
    m.can_ensure = m.ensure_probability >= theta - 1e-12;
    m.can_prevent = m.prevent_probability >= theta - 1e-12;
    m.manageable = m.can_ensure && m.can_prevent;
    return m;
}

/// Whether agent `axis` can θ-manage S under `belief` (over view_from(axis)'s columns).
inline bool can_manage(const CartesianObject& object, std::size_t axis, const std::vector<double>& belief,
                       const WorldSet& s, double theta) {
    return manage(object.view_from(axis), belief, s, theta).manageable;
}

}  // namespace cartesian
}  // namespace sae
