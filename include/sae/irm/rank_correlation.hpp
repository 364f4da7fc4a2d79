#pragma once
/// \file rank_correlation.hpp
/// Rank agreement between two paired samples: how well the utilities a probe recovers
/// order the tokens the way the explicit reward does. Each statistic pairs x[i] with
/// y[i] (a token's true and predicted value), never the tokens' names.
///
/// Abstract:
///   average_ranks(v)          ranks 1..n, tied values sharing the mean of the ranks they
///                             span (scipy.stats.rankdata, method "average").
///   kendall_tau_b(x, y)       (C - D) / sqrt((n0 - n1)(n0 - n2)), n0 = n(n-1)/2, C and D
///                             the concordant and discordant pairs, n1 / n2 the pairs tied
///                             in x / in y (scipy.stats.kendalltau, variant "b").
///                             Knight's algorithm (1966): sort by (x, y), count tie runs,
///                             count discordant pairs as the inversions of a merge sort of
///                             y: O(n log n) time, O(n) memory.
///   spearman_rho(x, y)        Pearson correlation of average_ranks(x) and average_ranks(y)
///                             (scipy.stats.spearmanr).
///   pearson_correlation(x, y) sum (x - mean x)(y - mean y) / sqrt(sum (x - mean x)^2
///                             sum (y - mean y)^2), accumulated in double.
///   requires: x and y of equal length (shape_error), not empty (shape_error), every value
///             finite (numeric_error naming the entry).
///   ensures:  a value in [-1, 1]; NaN (quiet) when the statistic is undefined because x or
///             y is constant (every pair tied), one entry included, as SciPy returns NaN.

#include "input_checks.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace sae::irm {

namespace detail {

inline void check_paired(const ConstVectorRef& x, const ConstVectorRef& y, const char* name) {
    const std::string where(name);
    require_same_length(x.size(), y.size(), where + ": x", where + ": y");
    require_not_empty(x.size(), where + ": x");
    require_finite(x, where + ": x");
    require_finite(y, where + ": y");
}

/// Pairs among `count` equal values.
inline std::int64_t tied_pairs(std::int64_t count) { return count * (count - 1) / 2; }

/// Sorts `values` ascending with a bottom-up merge sort and returns the number of pairs
/// i < j with values[i] > values[j] (strictly: equal values are not inversions).
inline std::int64_t sort_counting_inversions(std::vector<double>& values) {
    const std::size_t n = values.size();
    std::vector<double> buffer(n);
    std::int64_t inversions = 0;
    for (std::size_t width = 1; width < n; width *= 2) {
        for (std::size_t left = 0; left < n; left += 2 * width) {
            const std::size_t middle = std::min(left + width, n);
            const std::size_t right = std::min(left + 2 * width, n);
            std::size_t i = left, j = middle, out = left;
            while (i < middle && j < right) {
                if (values[i] <= values[j]) {
                    buffer[out++] = values[i++];
                } else {
                    // values[j] is smaller than every value left in [i, middle).
                    inversions += static_cast<std::int64_t>(middle - i);
                    buffer[out++] = values[j++];
                }
            }
            while (i < middle) buffer[out++] = values[i++];
            while (j < right) buffer[out++] = values[j++];
        }
        values.swap(buffer);
    }
    return inversions;
}

/// Sum over the runs of equal adjacent elements of tied_pairs(run length).
template <class Equal>
std::int64_t tied_pairs_in_runs(std::size_t n, Equal&& equal_to_previous) {
    std::int64_t total = 0, run = 1;
    for (std::size_t i = 1; i < n; ++i) {
        if (equal_to_previous(i)) {
            ++run;
        } else {
            total += tied_pairs(run);
            run = 1;
        }
    }
    return total + tied_pairs(run);
}

inline double pearson_unchecked(const ConstVectorRef& x, const ConstVectorRef& y) {
    const Eigen::ArrayXd dx = x.array() - x.mean();
    const Eigen::ArrayXd dy = y.array() - y.mean();
    const double sxx = dx.square().sum(), syy = dy.square().sum();
    if (sxx == 0.0 || syy == 0.0) return std::numeric_limits<double>::quiet_NaN();
    // Rounding can push a perfect correlation a hair past 1.
    return std::clamp((dx * dy).sum() / std::sqrt(sxx * syy), -1.0, 1.0);
}

inline Eigen::VectorXd average_ranks_unchecked(const ConstVectorRef& values) {
    const Index n = values.size();
    std::vector<Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Index(0));
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return values(a) < values(b); });
    Eigen::VectorXd ranks(n);
    for (Index first = 0; first < n;) {
        Index last = first + 1;
        while (last < n && values(order[static_cast<std::size_t>(last)]) == values(order[static_cast<std::size_t>(first)])) ++last;
        // Positions first..last-1 hold ranks first+1..last; each gets their mean.
        const double shared = 0.5 * static_cast<double>(first + 1 + last);
        for (Index k = first; k < last; ++k) ranks(order[static_cast<std::size_t>(k)]) = shared;
        first = last;
    }
    return ranks;
}

}  // namespace detail

/// Ranks 1..n of `values`, ties sharing their average rank; numeric_error for NaN/Inf,
/// shape_error when empty.
inline Eigen::VectorXd average_ranks(const ConstVectorRef& values) {
    detail::require_not_empty(values.size(), "average_ranks: values");
    detail::require_finite(values, "average_ranks: values");
    return detail::average_ranks_unchecked(values);
}

/// Pearson's correlation of x and y; NaN when either is constant.
inline double pearson_correlation(const ConstVectorRef& x, const ConstVectorRef& y) {
    detail::check_paired(x, y, "pearson_correlation");
    return detail::pearson_unchecked(x, y);
}

/// Spearman's rho with average ranks for ties; NaN when either is constant.
inline double spearman_rho(const ConstVectorRef& x, const ConstVectorRef& y) {
    detail::check_paired(x, y, "spearman_rho");
    return detail::pearson_unchecked(detail::average_ranks_unchecked(x), detail::average_ranks_unchecked(y));
}

/// Kendall's tau-b in O(n log n) (Knight's algorithm); NaN when either is constant.
inline double kendall_tau_b(const ConstVectorRef& x, const ConstVectorRef& y) {
    detail::check_paired(x, y, "kendall_tau_b");
    const std::size_t n = static_cast<std::size_t>(x.size());
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    const auto xi = [&](std::size_t k) { return x(static_cast<Index>(order[k])); };
    const auto yi = [&](std::size_t k) { return y(static_cast<Index>(order[k])); };
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const double xa = x(static_cast<Index>(a)), xb = x(static_cast<Index>(b));
        return xa < xb || (xa == xb && y(static_cast<Index>(a)) < y(static_cast<Index>(b)));
    });
    const std::int64_t pairs = detail::tied_pairs(static_cast<std::int64_t>(n));
    const std::int64_t tied_x = detail::tied_pairs_in_runs(n, [&](std::size_t k) { return xi(k) == xi(k - 1); });
    const std::int64_t tied_xy =
        detail::tied_pairs_in_runs(n, [&](std::size_t k) { return xi(k) == xi(k - 1) && yi(k) == yi(k - 1); });

    // In (x, y) order a pair tied in x is already sorted by y, so the strict inversions of y
    // are exactly the discordant pairs.
    std::vector<double> y_sorted(n);
    for (std::size_t k = 0; k < n; ++k) y_sorted[k] = yi(k);
    const std::int64_t discordant = detail::sort_counting_inversions(y_sorted);
    const std::int64_t tied_y = detail::tied_pairs_in_runs(n, [&](std::size_t k) { return y_sorted[k] == y_sorted[k - 1]; });

    const double untied_x = static_cast<double>(pairs - tied_x), untied_y = static_cast<double>(pairs - tied_y);
    if (untied_x == 0.0 || untied_y == 0.0) return std::numeric_limits<double>::quiet_NaN();
    // concordant - discordant = (pairs - tied_x - tied_y + tied_xy) - 2 discordant.
    const double difference = static_cast<double>(pairs - tied_x - tied_y + tied_xy - 2 * discordant);
    return std::clamp(difference / std::sqrt(untied_x * untied_y), -1.0, 1.0);
}

}  // namespace sae::irm
