#pragma once
/// \file schedule.hpp
/// Step-indexed schedules for training: the learning rate (linear warm-up, then
/// constant, linear or cosine decay over the last steps), a linear warm-up of a loss
/// coefficient (SAELens' `l1_warm_up_steps`), the cosine ramp that MFR's authors put
/// on their penalty, and global-norm gradient clipping.
///
/// Abstract:
///   LearningRateSchedule::at(step)   requires validate() passes; step is the 0-based index
///                                    of the step about to be taken.
///                                    ensures warm-up base*(step+1)/warmup_steps for
///                                    step < warmup_steps; then base until the last
///                                    decay_steps of total_steps, over which the rate falls
///                                    (linearly or as a half cosine) from base towards
///                                    base*final_fraction, as torch's LinearLR /
///                                    CosineAnnealingLR do: the first decay step uses base,
///                                    the rate reaches base*final_fraction at
///                                    step == total_steps and stays there after.
///   CoefficientWarmup::at(step)      ensures target * min(1, (step+1)/warmup_steps).
///   cosine_ramp(t, W)                ensures 0.5 (1 + cos(pi (W - t)/W)) for t < W, else 1.
///   clip_gradient_norm(params, c)    ensures the gradients' global L2 norm is <= c when
///                                    c > 0 (scaled by c/norm in place); returns the norm
///                                    before clipping; numeric_error when it is not finite.

#include "error.hpp"
#include "types.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace sae {

/// How the learning rate falls over the last `decay_steps` steps.
enum class DecayShape { constant, linear, cosine };

namespace detail {
constexpr double schedule_pi = 3.14159265358979323846;
}  // namespace detail

struct LearningRateSchedule {
    double base_rate = 1e-3;
    std::size_t warmup_steps = 0;
    DecayShape decay = DecayShape::constant;
    std::size_t decay_steps = 0;  ///< decay happens over the LAST decay_steps of total_steps
    std::size_t total_steps = 0;  ///< needed only when decay != constant
    double final_fraction = 0.0;  ///< rate at the end of the decay, as a fraction of base_rate

    /// Learning rate for the step with 0-based index `step`.
    double at(std::size_t step) const {
        if (step < warmup_steps) {
            return base_rate * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
        }
        return base_rate * decay_factor(step);
    }

    /// Throws config_error naming the field: base_rate finite and > 0; final_fraction in
    /// [0, 1]; decay != constant needs 0 < decay_steps and warmup_steps + decay_steps <=
    /// total_steps (the warm-up and the decay must not overlap); decay == constant needs
    /// decay_steps == 0 (a decay length that would be silently ignored is a mistake).
    void validate() const {
        if (!(std::isfinite(base_rate) && base_rate > 0.0)) {
            throw config_error("LearningRateSchedule.base_rate must be finite and > 0, got " + std::to_string(base_rate));
        }
        if (!(final_fraction >= 0.0 && final_fraction <= 1.0)) {
            throw config_error("LearningRateSchedule.final_fraction must be in [0, 1], got " +
                               std::to_string(final_fraction));
        }
        if (decay == DecayShape::constant) {
            if (decay_steps != 0) {
                throw config_error("LearningRateSchedule.decay_steps = " + std::to_string(decay_steps) +
                                   " but decay is constant; set a decay shape or decay_steps = 0");
            }
            return;
        }
        if (decay_steps == 0) {
            throw config_error("LearningRateSchedule.decay_steps must be > 0 when decay is linear or cosine");
        }
        if (warmup_steps + decay_steps > total_steps) {
            throw config_error("LearningRateSchedule: warmup_steps (" + std::to_string(warmup_steps) +
                               ") + decay_steps (" + std::to_string(decay_steps) + ") exceed total_steps (" +
                               std::to_string(total_steps) + ")");
        }
    }

private:
    // Fraction of base_rate after the warm-up. `progress` counts decay steps already
    // taken, so the first decay step still runs at the full rate.
    double decay_factor(std::size_t step) const {
        if (decay == DecayShape::constant || decay_steps == 0) return 1.0;
        const std::size_t decay_start = total_steps - decay_steps;
        if (step < decay_start) return 1.0;
        const double progress =
            std::min(1.0, static_cast<double>(step - decay_start) / static_cast<double>(decay_steps));
        const double remaining = decay == DecayShape::linear ? 1.0 - progress
                                                             : 0.5 * (1.0 + std::cos(detail::schedule_pi * progress));
        return final_fraction + (1.0 - final_fraction) * remaining;
    }
};

/// Linear warm-up of a loss coefficient from 0 to `target` (SAELens' l1_warm_up_steps).
struct CoefficientWarmup {
    double target = 0.0;
    std::size_t warmup_steps = 0;  ///< 0: the target from the first step

    /// Coefficient for the step with 0-based index `step`: target * min(1, (step+1)/warmup_steps).
    double at(std::size_t step) const {
        if (step >= warmup_steps) return target;
        return target * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    }

    /// Throws config_error unless target is finite and >= 0 (loss coefficients are penalties).
    void validate() const {
        if (!(std::isfinite(target) && target >= 0.0)) {
            throw config_error("CoefficientWarmup.target must be finite and >= 0, got " + std::to_string(target));
        }
    }
};

/// MFR's penalty weight: w(t) = 0.5 (1 + cos(pi (W - t) / W)) for t < W, else 1, where t
/// is the 1-based step count (the authors increment their counter before using it), so
/// the ramp rises from w(0) = 0 to 1 over W steps. W = 0 means no ramp.
inline double cosine_ramp(std::size_t step, std::size_t warmup_steps) {
    if (step >= warmup_steps) return 1.0;
    const double w = static_cast<double>(warmup_steps);
    return 0.5 * (1.0 + std::cos(detail::schedule_pi * (w - static_cast<double>(step)) / w));
}

/// Scales all gradients by max_norm / norm when their global L2 norm exceeds max_norm
/// (max_norm <= 0: never). Returns the norm before clipping. Unlike torch's
/// clip_grad_norm_ no 1e-6 is added to the norm, so a clipped norm equals max_norm.
/// Throws numeric_error, naming the first offending parameter, when the norm is not finite.
template <class Scalar>
double clip_gradient_norm(const std::vector<ParameterView<Scalar>>& parameters, double max_norm) {
    double squared_norm = 0.0;
    for (const ParameterView<Scalar>& parameter : parameters) {
        // Accumulate in double: a float sum of squares over millions of entries loses digits.
        squared_norm += parameter.gradient.template cast<double>().square().sum();
    }
    const double norm = std::sqrt(squared_norm);
    if (!std::isfinite(norm)) {
        for (const ParameterView<Scalar>& parameter : parameters) {
            if (!parameter.gradient.allFinite()) {
                throw numeric_error("clip_gradient_norm: gradient of '" + parameter.name + "' contains NaN or Inf");
            }
        }
        throw numeric_error("clip_gradient_norm: the global gradient norm overflows");
    }
    if (max_norm > 0.0 && norm > max_norm) {
        const Scalar scale = static_cast<Scalar>(max_norm / norm);
        for (const ParameterView<Scalar>& parameter : parameters) {
            typename ParameterView<Scalar>::Flat gradient = parameter.gradient;  // a Map: writes the caller's memory
            gradient *= scale;
        }
    }
    return norm;
}

}  // namespace sae
