#pragma once
/// \file utility_scale.hpp
/// Putting a probe's predictions on the scale of the explicit reward. A linear probe's
/// output has an arbitrary offset and unit; the IRM authors map it onto the token-utility
/// scale by its own spread: the 10th percentile of the predictions goes to the lowest
/// utility, the 90th to the highest, and values beyond are clamped.
///
/// Abstract:
///   percentile(values, q)       NumPy's np.percentile(values, q) with its default "linear"
///                               method: sorted v, position h = (n - 1) q / 100, result
///                               v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h]).
///     requires: values not empty (shape_error) and finite (numeric_error); q in [0, 100]
///               (config_error).
///   UtilityScale                the target interval [low, high] (default [-3.9, 3.4], the
///                               smallest and largest valence of the VADER lexicon) and the
///                               two percentiles that are mapped onto its ends (10, 90).
///     validate(): config_error unless low < high, both finite, and 0 <= lower_percentile <
///                 upper_percentile <= 100.
///   UtilityMapping::fit(reference, scale)
///                               the affine map that sends the scale's percentiles of
///                               `reference` to low and high; numeric_error when those two
///                               percentiles are equal (the reference has no spread there,
///                               so no affine map exists).
///   UtilityMapping::apply(v)    low + (v - p_lower) / (p_upper - p_lower) (high - low),
///                               clamped to [low, high], element-wise.
///   map_to_utility_scale(predictions, scale)
///                               fit on the predictions themselves, then apply: what the
///                               authors do with the held-out predictions.

#include "input_checks.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace sae::irm {

/// The q-th percentile of `values` (NumPy's default linear interpolation).
inline double percentile(const ConstVectorRef& values, double q) {
    detail::require_not_empty(values.size(), "percentile: values");
    detail::require_finite(values, "percentile: values");
    if (!(q >= 0.0 && q <= 100.0)) throw config_error("percentile: q = " + detail::number_text(q) + " is not in [0, 100]");
    std::vector<double> sorted(values.data(), values.data() + values.size());
    std::sort(sorted.begin(), sorted.end());
    const double position = static_cast<double>(sorted.size() - 1) * q / 100.0;
    const std::size_t below = static_cast<std::size_t>(std::floor(position));
    if (below + 1 >= sorted.size()) return sorted.back();
    const double fraction = position - static_cast<double>(below);
    return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

/// The interval of the explicit reward and the percentiles mapped onto its ends.
struct UtilityScale {
    double low = -3.9;  ///< the VADER lexicon's smallest valence
    double high = 3.4;  ///< its largest
    double lower_percentile = 10.0;
    double upper_percentile = 90.0;

    void validate() const {
        detail::require_finite_setting(low, "UtilityScale.low");
        detail::require_finite_setting(high, "UtilityScale.high");
        if (!(low < high)) {
            throw config_error("UtilityScale: low = " + detail::number_text(low) + " must be below high = " + detail::number_text(high));
        }
        if (!(lower_percentile >= 0.0 && lower_percentile < upper_percentile && upper_percentile <= 100.0)) {
            throw config_error("UtilityScale: percentiles " + detail::number_text(lower_percentile) + " and " +
                               detail::number_text(upper_percentile) + " must satisfy 0 <= lower < upper <= 100");
        }
    }
};

/// An affine map of probe outputs onto a UtilityScale, clamped at its ends.
class UtilityMapping {
public:
    /// Sends the scale's lower/upper percentiles of `reference` to scale.low/high.
    static UtilityMapping fit(const ConstVectorRef& reference, const UtilityScale& scale = UtilityScale()) {
        scale.validate();
        UtilityMapping mapping;
        mapping.scale_ = scale;
        mapping.from_low_ = percentile(reference, scale.lower_percentile);
        mapping.from_high_ = percentile(reference, scale.upper_percentile);
        if (!(mapping.from_high_ > mapping.from_low_)) {
            throw numeric_error("UtilityMapping::fit: the " + detail::number_text(scale.lower_percentile) + "th and " +
                                detail::number_text(scale.upper_percentile) + "th percentiles of the " +
                                std::to_string(reference.size()) + " reference values are both " +
                                detail::number_text(mapping.from_low_) + "; they have no spread to map");
        }
        return mapping;
    }

    /// The mapped and clamped values.
    Eigen::VectorXd apply(const ConstVectorRef& values) const {
        detail::require_finite(values, "UtilityMapping::apply: values");
        const double slope = (scale_.high - scale_.low) / (from_high_ - from_low_);
        return ((values.array() - from_low_) * slope + scale_.low).cwiseMax(scale_.low).cwiseMin(scale_.high).matrix();
    }

    double from_low() const { return from_low_; }    ///< the reference's lower percentile
    double from_high() const { return from_high_; }  ///< the reference's upper percentile
    const UtilityScale& scale() const { return scale_; }

private:
    UtilityMapping() = default;
    UtilityScale scale_;
    double from_low_ = 0.0, from_high_ = 1.0;
};

/// The predictions mapped onto the scale by their own percentiles.
inline Eigen::VectorXd map_to_utility_scale(const ConstVectorRef& predictions, const UtilityScale& scale = UtilityScale()) {
    return UtilityMapping::fit(predictions, scale).apply(predictions);
}

}  // namespace sae::irm
