#pragma once
/// \file geometric_median.hpp
/// Geometric median of a set of points (the rows of a matrix): the point minimising the
/// sum of Euclidean distances to them. SAE training initialises b_dec with it because,
/// unlike the mean, a few outlying activations barely move it.
///
/// Abstract:
///   geometric_median(points, max_iterations, tolerance)
///     requires points has >= 1 row and >= 1 column (shape_error), all entries finite
///              (numeric_error), max_iterations >= 1 and tolerance finite and >= 0
///              (config_error).
///     ensures  the Weiszfeld iterate, started from the mean and computed in double, after
///              the step length falls to tolerance * (mean distance of the points to the
///              iterate) or after max_iterations steps.
///
/// When the iterate lands on a data point, plain Weiszfeld divides by zero; the
/// Vardi & Zhang (2000) modification is used instead: the coincident points are left out
/// of the weighted mean T, and with R = sum of the unit vectors from the iterate y to the
/// other points and eta the number of coincident points, y stays put when ||R|| <= eta (y
/// is then optimal) and otherwise moves to (1 - eta/||R||) T + (eta/||R||) y.

#include "error.hpp"
#include "types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <string>

namespace sae {

namespace detail {

/// One Vardi-Zhang-guarded Weiszfeld step from `y`; returns the next iterate and sets
/// `mean_distance` to the mean distance of the points to `y`.
inline Eigen::RowVectorXd weiszfeld_step(const Eigen::Ref<const Matrix<double>>& points,
                                         const Eigen::RowVectorXd& y, double& mean_distance) {
    const Eigen::ArrayXd distances = (points.rowwise() - y).rowwise().norm().array();
    mean_distance = distances.mean();
    // Distances this small relative to the spread count as "on a data point": 1/d would
    // overflow or swamp every other weight.
    const double coincident_below = 1e-12 * mean_distance;
    const Eigen::Array<bool, Eigen::Dynamic, 1> coincident = distances <= coincident_below;
    const Eigen::ArrayXd weights = coincident.select(0.0, distances.max(coincident_below).inverse());
    const double weight_sum = weights.sum();
    if (weight_sum == 0.0) return y;  // every point sits on y

    Eigen::RowVectorXd weighted_mean(points.cols());
    weighted_mean.noalias() = weights.matrix().transpose() * points;
    weighted_mean /= weight_sum;
    const double eta = static_cast<double>(coincident.count());
    if (eta == 0.0) return weighted_mean;

    // R = sum_i w_i (x_i - y) = weight_sum (T - y), summed over the other points.
    const double pull = weight_sum * (weighted_mean - y).norm();
    if (pull <= eta) return y;  // the coincident point is the median
    const double keep = eta / pull;
    return (1.0 - keep) * weighted_mean + keep * y;
}

inline Eigen::RowVectorXd weiszfeld(const Eigen::Ref<const Matrix<double>>& points, int max_iterations,
                                    double tolerance) {
    Eigen::RowVectorXd y = points.colwise().mean();
    for (int iteration = 0; iteration < max_iterations; ++iteration) {
        double mean_distance = 0.0;
        Eigen::RowVectorXd next = weiszfeld_step(points, y, mean_distance);
        const double moved = (next - y).norm();
        y.swap(next);
        if (moved <= tolerance * mean_distance) break;
    }
    return y;
}

template <class Derived>
void check_geometric_median_inputs(const Eigen::MatrixBase<Derived>& points, int max_iterations, double tolerance) {
    if (points.rows() == 0 || points.cols() == 0) {
        throw shape_error("geometric_median: points must have >= 1 row and >= 1 column, got [" +
                          std::to_string(points.rows()) + ", " + std::to_string(points.cols()) + "]");
    }
    if (max_iterations < 1) {
        throw config_error("geometric_median: max_iterations must be >= 1, got " + std::to_string(max_iterations));
    }
    if (!(std::isfinite(tolerance) && tolerance >= 0.0)) {
        throw config_error("geometric_median: tolerance must be finite and >= 0, got " + std::to_string(tolerance));
    }
    if (!points.allFinite()) throw numeric_error("geometric_median: points contain NaN or Inf");
}

}  // namespace detail

/// Geometric median of the rows of `points` (see the abstract above).
template <class Derived>
RowVector<typename Derived::Scalar> geometric_median(const Eigen::MatrixBase<Derived>& points,
                                                     int max_iterations = 100, double tolerance = 1e-5) {
    using Scalar = typename Derived::Scalar;
    detail::check_geometric_median_inputs(points, max_iterations, tolerance);
    // Ref binds a row-major double matrix without a copy and evaluates anything else
    // (float input, column-major, expressions) once into double.
    const Eigen::Ref<const Matrix<double>> as_double(points.template cast<double>());
    return detail::weiszfeld(as_double, max_iterations, tolerance).template cast<Scalar>();
}

}  // namespace sae
