#pragma once
/// \file simulation_complexity.hpp
/// A computable proxy for the simulation complexity of arXiv 2401.16426 (Marks 2023, "A
/// Mathematical Model for Simulators": the Kolmogorov complexity K_U of the simulacra and
/// of the simulation). K is uncomputable; what is computed here is the length in bits of
/// an explicit description: a header with the shape of the object, the world tensor and
/// a description of the per-step policy, each compressed by the better of two simple
/// codes. Every part is (up to the rounding noted below) the length of a prefix code a
/// decoder could invert, so the total bounds K from above up to an additive constant —
/// it is a proxy, not K: it cannot see structure the two codes miss.
///
/// The codes, for a sequence x of n symbols (unsigned integers) with m distinct values:
///   gamma(k)            Elias gamma length of k >= 1: 2 floor(log2 k) + 1 bits.
///   alphabet header     gamma(n + 1) + gamma(m + 1) + Σ_v gamma(v + 1) over the distinct v.
///   order0_code_bits    alphabet header + m · ceil(log2(n + 1)) (the count of each value)
///                       + n · H0(x), H0 the empirical entropy of x in bits: the ideal
///                       arithmetic-code length given the counts (a real coder is within
///                       2 bits of it).
///   lz78_code_bits      alphabet header + Σ_{i=1..c} (ceil(log2 i) + ceil(log2 m)) for the
///                       c phrases of the LZ78 parse (Ziv & Lempel 1978): phrase i names its
///                       prefix among the i earlier phrases (the empty phrase included)
///                       and one new symbol; a last phrase cut short by the end of x is
///                       counted like the others.
///   description_length_bits(x) = 1 + min(order0, lz78)   (1 bit says which code).
///
/// simulation_complexity(object, steps, policy_description) reports
///   header_bits        gamma(#axes) + Σ_i (gamma(|X_i|) + 2 bits for the axis kind)
///                      + gamma(|W| + 1)
///   structure_bits     Σ_i log2 |X_i|: bits to name one cell (DESIGN.md's size measure),
///                      reported for reference, not added to the total
///   world_tensor_bits  description_length_bits of the worlds, row-major
///   policy_bits        description_length_bits(policy_description), 0 when empty
///   step_bits          gamma(steps + 1)
///   total_bits         header + world tensor + policy + steps
///   axis_count, agent_axis_count, step_count.
/// What describes a policy is the caller's choice: its parameters serialised, or
/// tabulate_policy(simulation, trajectory, levels), the policy's distributions along a
/// trajectory quantised to `levels` levels (levels >= 2, config_error otherwise).

#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/token_selection.hpp"
#include "sae/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// Elias gamma code length of k >= 1 (config_error for 0).
inline double elias_gamma_bits(std::uint64_t k) {
    if (k == 0) {
        throw config_error("elias_gamma_bits: the Elias gamma code starts at 1, got 0");
    }
    unsigned floor_log2 = 0;
    while ((k >> (floor_log2 + 1U)) != 0) {
        ++floor_log2;
    }
    return 2.0 * floor_log2 + 1.0;
}

namespace detail {

/// ceil(log2 k) for k >= 1 (0 for k = 1).
inline double ceil_log2(std::uint64_t k) {
    unsigned bits = 0;
    while ((std::uint64_t{1} << bits) < k) {
        ++bits;
    }
    return static_cast<double>(bits);
}

/// The distinct values of x and their counts, by increasing value.
inline std::vector<std::pair<std::uint64_t, std::uint64_t>> value_counts(const std::vector<std::uint64_t>& x) {
    std::vector<std::uint64_t> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> counts;
    for (std::uint64_t v : sorted) {
        if (counts.empty() || counts.back().first != v) {
            counts.emplace_back(v, 0);
        }
        ++counts.back().second;
    }
    return counts;
}

inline double alphabet_header_bits(const std::vector<std::uint64_t>& x,
                                   const std::vector<std::pair<std::uint64_t, std::uint64_t>>& counts) {
    double bits = elias_gamma_bits(x.size() + 1) + elias_gamma_bits(counts.size() + 1);
    for (const auto& value_count : counts) {
        if (value_count.first == ~std::uint64_t{0}) {
            throw config_error("description length: the symbol 2^64 - 1 is reserved");
        }
        bits += elias_gamma_bits(value_count.first + 1);
    }
    return bits;
}

}  // namespace detail

/// n · H0(x): the order-0 empirical entropy of x times its length, in bits.
inline double empirical_entropy_bits(const std::vector<std::uint64_t>& x) {
    const double n = static_cast<double>(x.size());
    double bits = 0.0;
    for (const auto& value_count : detail::value_counts(x)) {
        const double c = static_cast<double>(value_count.second);
        bits -= c * std::log2(c / n);
    }
    return bits;
}

/// Two-part order-0 code length (see the file comment).
inline double order0_code_bits(const std::vector<std::uint64_t>& x) {
    const auto counts = detail::value_counts(x);
    return detail::alphabet_header_bits(x, counts) +
           static_cast<double>(counts.size()) * detail::ceil_log2(x.size() + 1) + empirical_entropy_bits(x);
}

/// The number of phrases of the LZ78 parse of x (a trailing partial phrase counts).
inline std::size_t lz78_phrase_count(const std::vector<std::uint64_t>& x) {
    std::map<std::pair<std::size_t, std::uint64_t>, std::size_t> trie;  // (phrase, symbol) -> phrase
    std::size_t phrases = 0;
    std::size_t node = 0;  // 0 = the empty phrase
    bool pending = false;
    for (std::uint64_t symbol : x) {
        const auto found = trie.find({node, symbol});
        if (found != trie.end()) {
            node = found->second;
            pending = true;
        } else {
            trie.emplace(std::make_pair(node, symbol), ++phrases);
            node = 0;
            pending = false;
        }
    }
    return phrases + (pending ? 1 : 0);
}

/// LZ78 code length (see the file comment).
inline double lz78_code_bits(const std::vector<std::uint64_t>& x) {
    const auto counts = detail::value_counts(x);
    const std::size_t phrases = lz78_phrase_count(x);
    const double symbol_bits = detail::ceil_log2(counts.empty() ? 1 : counts.size());
    double bits = detail::alphabet_header_bits(x, counts);
    for (std::size_t i = 1; i <= phrases; ++i) {
        bits += detail::ceil_log2(i) + symbol_bits;
    }
    return bits;
}

/// 1 + the shorter of the two codes.
inline double description_length_bits(const std::vector<std::uint64_t>& x) {
    return 1.0 + std::min(order0_code_bits(x), lz78_code_bits(x));
}

/// The parts of the complexity proxy (see the file comment).
struct SimulationComplexity {
    double header_bits = 0.0;
    double structure_bits = 0.0;
    double world_tensor_bits = 0.0;
    double policy_bits = 0.0;
    double step_bits = 0.0;
    double total_bits = 0.0;
    std::size_t axis_count = 0;
    std::size_t agent_axis_count = 0;
    std::size_t step_count = 0;
};

/// The complexity proxy of running `object` for `steps` steps under a policy described by
/// `policy_description`.
inline SimulationComplexity simulation_complexity(const CartesianObject& object, std::size_t steps,
                                                  const std::vector<std::uint64_t>& policy_description = {}) {
    SimulationComplexity c;
    c.axis_count = object.axis_count();
    c.agent_axis_count = object.axes_of_kind(AxisKind::agent).size();
    c.step_count = steps;
    c.header_bits = elias_gamma_bits(object.axis_count()) + elias_gamma_bits(object.world_count() + 1);
    for (const Axis& axis : object.axes()) {
        c.header_bits += elias_gamma_bits(axis.size) + 2.0;
        c.structure_bits += std::log2(static_cast<double>(axis.size));
    }
    const std::vector<std::uint64_t> worlds(object.worlds().begin(), object.worlds().end());
    c.world_tensor_bits = description_length_bits(worlds);
    c.policy_bits = policy_description.empty() ? 0.0 : description_length_bits(policy_description);
    c.step_bits = elias_gamma_bits(steps + 1);
    c.total_bits = c.header_bits + c.world_tensor_bits + c.policy_bits + c.step_bits;
    return c;
}

/// The policy's normalised distributions at every step of `trajectory` (given the history
/// before that step), each probability quantised to round(p · (levels - 1)).
inline std::vector<std::uint64_t> tabulate_policy(const TokenSimulation& simulation, const Trajectory& trajectory,
                                                  std::size_t levels) {
    if (levels < 2) {
        throw config_error("tabulate_policy: levels = " + std::to_string(levels) + " must be at least 2");
    }
    std::vector<std::uint64_t> symbols;
    Trajectory history;
    for (std::size_t step = 0; step < trajectory.steps(); ++step) {
        const std::vector<std::vector<double>> distributions = simulation.policy()(step, history);
        for (const std::vector<double>& weights : distributions) {
            double total = 0.0;
            for (double w : weights) {
                if (!std::isfinite(w) || w < 0.0) {
                    throw numeric_error("tabulate_policy: policy weight " + std::to_string(w) + " at step " +
                                        std::to_string(step) + " is not a finite non-negative number");
                }
                total += w;
            }
            if (!(total > 0.0)) {
                throw config_error("tabulate_policy: the policy gave all-zero weights at step " +
                                   std::to_string(step));
            }
            for (double w : weights) {
                symbols.push_back(static_cast<std::uint64_t>(std::lround(w / total * static_cast<double>(levels - 1))));
            }
        }
        history.actions.push_back(trajectory.actions[step]);
        history.worlds.push_back(trajectory.worlds[step]);
    }
    return symbols;
}

}  // namespace cartesian
}  // namespace sae
