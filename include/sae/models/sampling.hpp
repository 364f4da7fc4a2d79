#pragma once
/// \file sampling.hpp
/// Seeded, reproducible sampling of continuations from a Gpt2.
///
///   sample_next_token(logits row, temperature, top_k, rng)
///       temperature == 0: the argmax (lowest id on ties), no random draw.
///       temperature > 0:  softmax(logits / temperature) restricted to the top_k largest
///       logits (top_k == 0 or >= vocab: all; ties at the cut go to the lower id), then one
///       inverse-CDF draw over the kept ids in increasing id order with a 53-bit uniform
///       from the mt19937_64 output. The distribution code is written here, not taken
///       from <random>, so a seed gives the same tokens with every standard library.
///   sample_continuation(model, prompt, n_new, temperature, top_k, seed)
///       the n_new generated ids (the prompt is not repeated), using std::mt19937_64(seed).
///       When prompt + generated exceeds n_ctx, the model sees the last n_ctx tokens
///       (minGPT's rule). Each step recomputes the whole forward pass over the window (no
///       key/value cache): O(n_new * window^2) attention, fine for the small models this
///       is for, slow for GPT-2 Small at long windows.
///   sample_continuations(model, prompts, n_new, temperature, top_k, seed)
///       prompt i sampled with std::mt19937_64(seed + i); prompts of equal length share
///       each step's forward pass. Equals sample_continuation(model, prompts[i], ...,
///       seed + i) up to rounding differences between a batched and a single GEMM.
/// Errors: config_error for temperature < 0 or not finite, top_k < 0, n_new < 0;
/// shape_error for an empty prompt; numeric_error for logits holding NaN or +inf (-inf is
/// a token that cannot be drawn); the model's errors for ids out of range.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "gpt2.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace sae::models {

namespace detail {

inline void check_sampling_settings(int n_new, double temperature, int top_k) {
    if (!std::isfinite(temperature) || temperature < 0.0) {
        throw config_error("sampling: temperature = " + std::to_string(temperature) + " must be finite and >= 0");
    }
    if (top_k < 0) throw config_error("sampling: top_k = " + std::to_string(top_k) + " must be >= 0 (0: no limit)");
    if (n_new < 0) throw config_error("sampling: n_new = " + std::to_string(n_new) + " must be >= 0");
}

}  // namespace detail

template <class Derived>
int sample_next_token(const Eigen::MatrixBase<Derived>& logits, double temperature, int top_k, std::mt19937_64& rng) {
    detail::check_sampling_settings(0, temperature, top_k);
    const Index vocab = logits.size();
    if (vocab == 0) throw shape_error("sampling: empty logits");
    const Eigen::RowVectorXd z = logits.template cast<double>();
    if (z.array().isNaN().any() || (z.array() == std::numeric_limits<double>::infinity()).any() ||
        (z.array() == -std::numeric_limits<double>::infinity()).all()) {
        throw numeric_error("sampling: the logits hold NaN or +inf, or are all -inf");
    }
    if (temperature == 0.0) {
        Index best = 0;
        for (Index i = 1; i < vocab; ++i) {
            if (z(i) > z(best)) best = i;
        }
        return static_cast<int>(best);
    }
    std::vector<int> kept(static_cast<std::size_t>(vocab));
    for (Index i = 0; i < vocab; ++i) kept[static_cast<std::size_t>(i)] = static_cast<int>(i);
    if (top_k > 0 && top_k < vocab) {
        const auto larger = [&z](int a, int b) { return z(a) > z(b) || (z(a) == z(b) && a < b); };
        std::nth_element(kept.begin(), kept.begin() + (top_k - 1), kept.end(), larger);
        kept.resize(static_cast<std::size_t>(top_k));
        std::sort(kept.begin(), kept.end());
    }
    double peak = -std::numeric_limits<double>::infinity();
    for (int id : kept) peak = std::max(peak, z(id));
    std::vector<double> weights;
    weights.reserve(kept.size());
    double total = 0.0;
    for (int id : kept) {
        weights.push_back(std::exp((z(id) - peak) / temperature));
        total += weights.back();
    }
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    const double target = u * total;
    double cumulative = 0.0;
    for (std::size_t i = 0; i < kept.size(); ++i) {
        cumulative += weights[i];
        if (target < cumulative) return kept[i];
    }
    return kept.back();  // u * total rounded up to the full sum
}

template <class Scalar>
std::vector<std::vector<int>> sample_continuations(const Gpt2<Scalar>& model, const std::vector<std::vector<int>>& prompts,
                                                   int n_new, double temperature, int top_k, std::uint64_t seed) {
    detail::check_sampling_settings(n_new, temperature, top_k);
    std::map<std::size_t, std::vector<std::size_t>> by_length;  // prompts of one length share a batch
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        if (prompts[i].empty()) throw shape_error("sampling: prompt " + std::to_string(i) + " is empty");
        by_length[prompts[i].size()].push_back(i);
    }
    std::vector<std::mt19937_64> rngs;
    for (std::size_t i = 0; i < prompts.size(); ++i) rngs.emplace_back(seed + i);

    std::vector<std::vector<int>> generated(prompts.size());
    const Index context = model.config().n_ctx;
    for (const auto& [length, members] : by_length) {
        std::vector<std::vector<int>> sequences;
        for (std::size_t i : members) sequences.push_back(prompts[i]);
        for (int step = 0; step < n_new; ++step) {
            const Index total = static_cast<Index>(length) + step;
            const Index window = std::min(total, context);
            TokenBatch tokens(static_cast<Index>(members.size()), window);
            for (std::size_t m = 0; m < members.size(); ++m) {
                for (Index t = 0; t < window; ++t) {
                    tokens(static_cast<Index>(m), t) = sequences[m][static_cast<std::size_t>(total - window + t)];
                }
            }
            const Matrix<Scalar> logits = model.last_token_logits(tokens);
            for (std::size_t m = 0; m < members.size(); ++m) {
                const int next = sample_next_token(logits.row(static_cast<Index>(m)), temperature, top_k, rngs[members[m]]);
                sequences[m].push_back(next);
                generated[members[m]].push_back(next);
            }
        }
    }
    return generated;
}

template <class Scalar>
std::vector<int> sample_continuation(const Gpt2<Scalar>& model, const std::vector<int>& prompt, int n_new,
                                     double temperature, int top_k, std::uint64_t seed) {
    return sample_continuations(model, std::vector<std::vector<int>>{prompt}, n_new, temperature, top_k, seed).front();
}

}  // namespace sae::models
