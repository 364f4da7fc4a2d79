#pragma once
/// \file feature_classification.hpp
/// What the SAE features behind an implicit reward model encode: for each feature, the
/// inputs that activate it most, its weight in the probe, and whether it lines up with
/// positive or negative utility. (The IRM authors label features with an LLM; here the
/// label is computed from the data.)
///
/// Abstract:
///   TopActivations(features, k)   streaming: keeps, per feature, the k rows with the
///     largest strictly positive activation seen by add(codes, first_row) (codes [batch,
///     features], row r of the batch is global row first_row + r). top(f): those rows,
///     largest first, ties by row. O(features * k) memory.
///     requires: k >= 1, features >= 0 (config_error); codes of width `features`
///     (shape_error) and finite (numeric_error); f in range (shape_error).
///   classify_features(weights [m], positive_codes [n, m], negative_codes [n', m])
///     per feature j: weight w_j, mean activation and firing rate (fraction of rows > 0) on
///     the rows of positive and of negative words, contribution
///       c_j = w_j (mean_positive_j - mean_negative_j)
///     (how far feature j alone lifts the probe's mean prediction on positive words above
///     that on negative words), and alignment:
///       positive  w_j > 0 and mean_positive_j > mean_negative_j (fires on positive words,
///                 raises the prediction);
///       negative  w_j < 0 and mean_negative_j > mean_positive_j (fires on negative words,
///                 lowers it);
///       inactive  never active on either set;
///       mixed     otherwise (its weight works against how it fires, or it is neutral).
///     Aligned features have c_j > 0.
///     requires: both code matrices with m columns (shape_error) and at least one row
///     (shape_error); everything finite (numeric_error).
///   strongest(classes, alignment, count)  the features of that alignment with the
///     largest contribution, at most `count`, largest first (ties by feature index).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "input_checks.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace sae::irm {

/// One row's activation of one feature.
struct FeatureActivation {
    Index row = 0;
    double value = 0.0;
};

/// Per-feature top-k activating rows over a stream of code batches.
class TopActivations {
public:
    TopActivations(Index features, std::size_t k) : k_(k) {
        if (features < 0) throw config_error("TopActivations: features = " + std::to_string(features) + " must be >= 0");
        if (k == 0) throw config_error("TopActivations: k = 0; at least one row per feature must be kept");
        heaps_.resize(static_cast<std::size_t>(features));
    }

    /// Offers every positive entry of `codes` [batch, features]; row r is first_row + r.
    template <class Derived>
    void add(const Eigen::MatrixBase<Derived>& codes, Index first_row) {
        if (codes.cols() != features()) {
            throw shape_error("TopActivations::add: codes have " + std::to_string(codes.cols()) + " columns but " +
                              std::to_string(features()) + " features are tracked");
        }
        detail::require_finite(codes, "TopActivations::add: codes");
        for (Index r = 0; r < codes.rows(); ++r) {
            for (Index f = 0; f < codes.cols(); ++f) {
                const double value = static_cast<double>(codes(r, f));
                if (value > 0.0) offer(heaps_[static_cast<std::size_t>(f)], FeatureActivation{first_row + r, value});
            }
        }
    }

    /// The kept rows of `feature`, largest activation first, ties by row.
    std::vector<FeatureActivation> top(Index feature) const {
        if (feature < 0 || feature >= features()) {
            throw shape_error("TopActivations::top: feature " + std::to_string(feature) + " is outside [0, " +
                              std::to_string(features()) + ")");
        }
        std::vector<FeatureActivation> rows = heaps_[static_cast<std::size_t>(feature)];
        std::sort(rows.begin(), rows.end(), better);
        return rows;
    }

    Index features() const { return static_cast<Index>(heaps_.size()); }
    std::size_t k() const { return k_; }

private:
    /// a ranks above b: larger value, or equal value and earlier row.
    static bool better(const FeatureActivation& a, const FeatureActivation& b) {
        return a.value > b.value || (a.value == b.value && a.row < b.row);
    }

    void offer(std::vector<FeatureActivation>& heap, const FeatureActivation& candidate) const {
        // With `better` as the heap order, the front is the worst kept row.
        if (heap.size() < k_) {
            heap.push_back(candidate);
            std::push_heap(heap.begin(), heap.end(), better);
        } else if (better(candidate, heap.front())) {
            std::pop_heap(heap.begin(), heap.end(), better);
            heap.back() = candidate;
            std::push_heap(heap.begin(), heap.end(), better);
        }
    }

    std::size_t k_;
    std::vector<std::vector<FeatureActivation>> heaps_;
};

/// How a feature relates to the explicit reward (see the file abstract).
enum class UtilityAlignment { positive, negative, mixed, inactive };

inline const char* to_string(UtilityAlignment alignment) {
    switch (alignment) {
        case UtilityAlignment::positive: return "positive";
        case UtilityAlignment::negative: return "negative";
        case UtilityAlignment::mixed: return "mixed";
        case UtilityAlignment::inactive: return "inactive";
    }
    return "unknown";
}

/// One feature's probe weight and behaviour on positive and negative words.
struct FeatureClassification {
    Index feature = 0;
    double weight = 0.0;
    double mean_positive = 0.0;    ///< mean activation on rows of positive words
    double mean_negative = 0.0;    ///< on rows of negative words
    double firing_positive = 0.0;  ///< fraction of positive-word rows where it is > 0
    double firing_negative = 0.0;
    double contribution = 0.0;     ///< weight * (mean_positive - mean_negative)
    UtilityAlignment alignment = UtilityAlignment::inactive;
};

/// Classifies every probe feature (see the file abstract).
template <class DP, class DN>
std::vector<FeatureClassification> classify_features(const ConstVectorRef& weights, const Eigen::MatrixBase<DP>& positive_codes,
                                                     const Eigen::MatrixBase<DN>& negative_codes) {
    const Index m = weights.size();
    detail::require_same_length(positive_codes.cols(), m, "classify_features: positive_codes (columns)", "weights");
    detail::require_same_length(negative_codes.cols(), m, "classify_features: negative_codes (columns)", "weights");
    detail::require_not_empty(positive_codes.rows(), "classify_features: positive_codes (rows)");
    detail::require_not_empty(negative_codes.rows(), "classify_features: negative_codes (rows)");
    detail::require_finite(weights, "classify_features: weights");
    detail::require_finite(positive_codes, "classify_features: positive_codes");
    detail::require_finite(negative_codes, "classify_features: negative_codes");

    const Eigen::MatrixXd positive = positive_codes.template cast<double>();
    const Eigen::MatrixXd negative = negative_codes.template cast<double>();
    const Eigen::RowVectorXd mean_positive = positive.colwise().mean();
    const Eigen::RowVectorXd mean_negative = negative.colwise().mean();
    const Eigen::RowVectorXd firing_positive = (positive.array() > 0.0).cast<double>().colwise().mean();
    const Eigen::RowVectorXd firing_negative = (negative.array() > 0.0).cast<double>().colwise().mean();
    std::vector<FeatureClassification> classes(static_cast<std::size_t>(m));
    for (Index j = 0; j < m; ++j) {
        FeatureClassification& c = classes[static_cast<std::size_t>(j)];
        c.feature = j;
        c.weight = weights(j);
        c.mean_positive = mean_positive(j);
        c.mean_negative = mean_negative(j);
        c.firing_positive = firing_positive(j);
        c.firing_negative = firing_negative(j);
        c.contribution = c.weight * (c.mean_positive - c.mean_negative);
        if (c.firing_positive == 0.0 && c.firing_negative == 0.0) {
            c.alignment = UtilityAlignment::inactive;
        } else if (c.weight > 0.0 && c.mean_positive > c.mean_negative) {
            c.alignment = UtilityAlignment::positive;
        } else if (c.weight < 0.0 && c.mean_negative > c.mean_positive) {
            c.alignment = UtilityAlignment::negative;
        } else {
            c.alignment = UtilityAlignment::mixed;
        }
    }
    return classes;
}

/// The `count` features of `alignment` with the largest contribution.
inline std::vector<FeatureClassification> strongest(const std::vector<FeatureClassification>& classes,
                                                    UtilityAlignment alignment, std::size_t count) {
    std::vector<FeatureClassification> chosen;
    for (const FeatureClassification& c : classes) {
        if (c.alignment == alignment) chosen.push_back(c);
    }
    std::sort(chosen.begin(), chosen.end(), [](const FeatureClassification& a, const FeatureClassification& b) {
        return a.contribution > b.contribution || (a.contribution == b.contribution && a.feature < b.feature);
    });
    if (chosen.size() > count) chosen.resize(count);
    return chosen;
}

}  // namespace sae::irm
