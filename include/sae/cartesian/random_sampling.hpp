#pragma once
/// \file random_sampling.hpp
/// Sampling written out from raw std::mt19937_64 output, so that a seed gives the same
/// draws with every standard library (std::uniform_real_distribution and
/// std::discrete_distribution are implementation-defined; the engine is not).
///
/// Abstract:
///   uniform_unit(rng)               u in [0, 1): the top 53 bits of one draw times 2^-53.
///   uniform_index(rng, n)           an index in [0, n) with no modulo bias (rejection of
///                                   the last partial block of 2^64); n >= 1 (config_error).
///   sample_categorical(weights, rng)
///     index k with probability weights[k] / Σ weights, by inverting the cumulative sum at
///     u · Σ weights with one uniform_unit draw. Weights may be any unnormalised
///     non-negative finite numbers (float, double, an Eigen vector: anything with size()
///     and operator[]); a zero weight is never chosen. Empty, negative, non-finite or
///     all-zero weights: numeric_error / config_error naming the entry.

#include "sae/core/error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace sae {
namespace cartesian {

/// u in [0, 1) with 53 random bits.
inline double uniform_unit(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11U) * (1.0 / 9007199254740992.0);  // 2^-53
}

/// Uniform index in [0, n).
inline std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
    if (n == 0) {
        throw config_error("uniform_index: n = 0, there is no index to draw");
    }
    const std::uint64_t range = static_cast<std::uint64_t>(n);
    // Largest multiple of n that fits in 2^64: draws at or above it are rejected.
    const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                                (std::numeric_limits<std::uint64_t>::max() % range + 1) % range;
    std::uint64_t draw = rng();
    while (draw > limit) {
        draw = rng();
    }
    return static_cast<std::size_t>(draw % range);
}

/// k with probability weights[k] / Σ weights.
template <class Weights>
std::size_t sample_categorical(const Weights& weights, std::mt19937_64& rng) {
    const std::size_t n = static_cast<std::size_t>(weights.size());
    if (n == 0) {
        throw config_error("sample_categorical: no weights");
    }
    double total = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
        const double w = static_cast<double>(weights[k]);
        if (!std::isfinite(w)) {
            throw numeric_error("sample_categorical: weight[" + std::to_string(k) + "] = " + std::to_string(w) +
                                " is not finite");
        }
        if (w < 0.0) {
            throw config_error("sample_categorical: weight[" + std::to_string(k) + "] = " + std::to_string(w) +
                               " is negative");
        }
        total += w;
    }
    if (!(total > 0.0)) {
        throw config_error("sample_categorical: all " + std::to_string(n) + " weights are zero");
    }
    const double target = uniform_unit(rng) * total;
    double cumulative = 0.0;
    std::size_t last_positive = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const double w = static_cast<double>(weights[k]);
        if (w > 0.0) {
            cumulative += w;
            last_positive = k;
            if (target < cumulative) {
                return k;
            }
        }
    }
    return last_positive;  // rounding left target at the very top of the sum
}

}  // namespace cartesian
}  // namespace sae
