#pragma once
/// \file reward_agreement.hpp
/// How well an implicit reward model (a probe's predictions, mapped onto the reward's
/// scale) agrees with the explicit reward, token by token, and what a probe with random
/// weights scores on the same data.
///
/// Abstract:
///   reward_agreement(table, threshold = 2)     on a recovered token-utility table:
///     kendall_tau_b, spearman_rho               over all tokens, true vs predicted utility;
///     kendall_tau_b_positive / _negative        within the tokens whose true utility is
///                                               > 0 / < 0 (NaN with fewer than two, or
///                                               when one side is constant): the ordering
///                                               beyond the sign, which the probe's signed
///                                               targets give away;
///     recovered_positive                        tokens with true >= threshold and
///                                               predicted >= threshold (the authors'
///                                               "recovered", threshold 2.0), out of
///                                               strongly_positive (true >= threshold);
///     recovered_negative                        the same at <= -threshold;
///     wrong_sign                                true > 0 and predicted < 0, or true < 0
///                                               and predicted > 0;
///     mean_absolute_error                       mean |predicted - true|.
///     requires: a non-empty table (shape_error), threshold finite and > 0 (config_error).
///   evaluate_predictions(tokens, true_utility, raw_predictions, scale, threshold)
///     maps raw probe outputs onto the scale by their own percentiles (utility_scale.hpp),
///     builds the table and its agreement: the whole evaluation of one probe on one split.
///   random_probe_baseline(features, tokens, true_utility, probes, seed, scale, threshold)
///     the same evaluation for `probes` probes whose weights are independent N(0, 1) draws
///     (no intercept: the percentile mapping removes any offset and positive scale), on the
///     same feature rows. A probe whose outputs have no spread between the two percentiles
///     (possible on very sparse features) cannot be mapped; it is counted in `degenerate`
///     and left out. Seeded: the same seed gives the same probes (std::mt19937_64 and
///     std::normal_distribution of the standard library in use).
///     requires: features [n, m] with n = tokens.size() = true_utility.size()
///     (shape_error), finite (numeric_error); probes >= 1 (config_error).

#include "input_checks.hpp"
#include "rank_correlation.hpp"
#include "utility_scale.hpp"
#include "utility_table.hpp"

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace sae::irm {

/// Agreement of a recovered token-utility table with the explicit reward.
struct RewardAgreement {
    std::size_t tokens = 0;
    std::size_t positive_tokens = 0;  ///< true utility > 0
    std::size_t negative_tokens = 0;  ///< true utility < 0
    double kendall_tau_b = 0.0;
    double spearman_rho = 0.0;
    double kendall_tau_b_positive = 0.0;
    double kendall_tau_b_negative = 0.0;
    double threshold = 2.0;
    std::size_t strongly_positive = 0;   ///< true >= threshold
    std::size_t recovered_positive = 0;  ///< true >= threshold and predicted >= threshold
    std::size_t strongly_negative = 0;   ///< true <= -threshold
    std::size_t recovered_negative = 0;  ///< true <= -threshold and predicted <= -threshold
    std::size_t wrong_sign = 0;          ///< true and predicted of opposite signs
    double mean_absolute_error = 0.0;
};

/// One probe's evaluation: its mapped table and the agreement.
struct ProbeEvaluation {
    std::vector<TokenUtility> table;
    RewardAgreement agreement;
};

namespace detail {

/// tau-b of the rows of `table` that `keep` selects; NaN with fewer than two.
template <class Keep>
double kendall_tau_b_where(const std::vector<TokenUtility>& table, Keep&& keep) {
    std::vector<double> x, y;
    for (const TokenUtility& row : table) {
        if (keep(row)) {
            x.push_back(row.true_utility);
            y.push_back(row.predicted_utility);
        }
    }
    if (x.size() < 2) return std::numeric_limits<double>::quiet_NaN();
    const Eigen::Map<const Eigen::VectorXd> xs(x.data(), static_cast<Index>(x.size()));
    const Eigen::Map<const Eigen::VectorXd> ys(y.data(), static_cast<Index>(y.size()));
    return kendall_tau_b(xs, ys);
}

}  // namespace detail

/// The statistics of the file abstract on one table.
inline RewardAgreement reward_agreement(const std::vector<TokenUtility>& table, double threshold = 2.0) {
    detail::require_not_empty(static_cast<Index>(table.size()), "reward_agreement: table");
    detail::require_finite_setting(threshold, "reward_agreement: threshold");
    if (!(threshold > 0.0)) throw config_error("reward_agreement: threshold = " + detail::number_text(threshold) + " must be > 0");
    RewardAgreement a;
    a.tokens = table.size();
    a.threshold = threshold;
    const Eigen::VectorXd truth = true_utilities(table), predicted = predicted_utilities(table);
    a.kendall_tau_b = kendall_tau_b(truth, predicted);
    a.spearman_rho = spearman_rho(truth, predicted);
    a.kendall_tau_b_positive = detail::kendall_tau_b_where(table, [](const TokenUtility& r) { return r.true_utility > 0.0; });
    a.kendall_tau_b_negative = detail::kendall_tau_b_where(table, [](const TokenUtility& r) { return r.true_utility < 0.0; });
    double absolute_error = 0.0;
    for (const TokenUtility& row : table) {
        const double t = row.true_utility, p = row.predicted_utility;
        a.positive_tokens += t > 0.0;
        a.negative_tokens += t < 0.0;
        a.strongly_positive += t >= threshold;
        a.recovered_positive += t >= threshold && p >= threshold;
        a.strongly_negative += t <= -threshold;
        a.recovered_negative += t <= -threshold && p <= -threshold;
        a.wrong_sign += (t > 0.0 && p < 0.0) || (t < 0.0 && p > 0.0);
        absolute_error += std::abs(p - t);
    }
    a.mean_absolute_error = absolute_error / static_cast<double>(table.size());
    return a;
}

/// Raw probe outputs -> mapped utilities -> table -> agreement.
inline ProbeEvaluation evaluate_predictions(const std::vector<std::string>& tokens, const ConstVectorRef& true_utility,
                                            const ConstVectorRef& raw_predictions, const UtilityScale& scale = UtilityScale(),
                                            double threshold = 2.0) {
    detail::require_same_length(static_cast<Index>(tokens.size()), raw_predictions.size(), "evaluate_predictions: tokens",
                                "raw_predictions");
    ProbeEvaluation evaluation;
    evaluation.table = token_utility_table(tokens, true_utility, map_to_utility_scale(raw_predictions, scale));
    evaluation.agreement = reward_agreement(evaluation.table, threshold);
    return evaluation;
}

/// The agreements of random probes on one set of feature rows.
struct RandomProbeBaseline {
    std::vector<RewardAgreement> probes;  ///< one per probe that could be mapped
    std::size_t degenerate = 0;           ///< probes left out: no spread to map

    /// Mean over the probes of `field(agreement)`; NaN without probes.
    template <class Field>
    double mean(Field&& field) const {
        double sum = 0.0;
        for (const RewardAgreement& a : probes) sum += static_cast<double>(field(a));
        return probes.empty() ? std::numeric_limits<double>::quiet_NaN() : sum / static_cast<double>(probes.size());
    }
    /// Sample standard deviation (n - 1) over the probes; NaN with fewer than two.
    template <class Field>
    double standard_deviation(Field&& field) const {
        if (probes.size() < 2) return std::numeric_limits<double>::quiet_NaN();
        const double m = mean(field);
        double sum = 0.0;
        for (const RewardAgreement& a : probes) sum += std::pow(static_cast<double>(field(a)) - m, 2);
        return std::sqrt(sum / static_cast<double>(probes.size() - 1));
    }
    /// Fraction of the probes with field(agreement) >= value (an empirical p-value).
    template <class Field>
    double fraction_at_least(Field&& field, double value) const {
        std::size_t count = 0;
        for (const RewardAgreement& a : probes) count += static_cast<double>(field(a)) >= value;
        return probes.empty() ? std::numeric_limits<double>::quiet_NaN()
                              : static_cast<double>(count) / static_cast<double>(probes.size());
    }
};

/// `probes` random probes on `features` [n, m], evaluated like a fitted one.
template <class Derived>
RandomProbeBaseline random_probe_baseline(const Eigen::MatrixBase<Derived>& features, const std::vector<std::string>& tokens,
                                          const ConstVectorRef& true_utility, std::size_t probes, std::uint64_t seed,
                                          const UtilityScale& scale = UtilityScale(), double threshold = 2.0) {
    detail::require_same_length(features.rows(), static_cast<Index>(tokens.size()), "random_probe_baseline: features rows",
                                "tokens");
    detail::require_same_length(features.rows(), true_utility.size(), "random_probe_baseline: features rows",
                                "true_utility");
    detail::require_not_empty(features.rows(), "random_probe_baseline: features");
    detail::require_finite(features, "random_probe_baseline: features");
    detail::require_finite(true_utility, "random_probe_baseline: true_utility");
    if (probes == 0) throw config_error("random_probe_baseline: probes = 0; at least one is needed");
    scale.validate();
    const Eigen::MatrixXd x = features.template cast<double>();
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    RandomProbeBaseline baseline;
    Eigen::VectorXd weights(x.cols());
    for (std::size_t p = 0; p < probes; ++p) {
        for (Index j = 0; j < weights.size(); ++j) weights(j) = normal(rng);
        const Eigen::VectorXd outputs = x * weights;
        try {
            baseline.probes.push_back(evaluate_predictions(tokens, true_utility, outputs, scale, threshold).agreement);
        } catch (const numeric_error&) {
            ++baseline.degenerate;  // UtilityMapping::fit: every other input was checked above
        }
    }
    return baseline;
}

}  // namespace sae::irm
