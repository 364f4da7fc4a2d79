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
///     ensures  the Weiszfeld iterate, started from the mean and computed in double (the
///              points read in blocks of 256 rows, never copied whole), after
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

/// Rows per block in which the points are read into double: the iteration never holds a
/// double copy of them all (a float batch of 10,000 x 256 would double its memory).
inline constexpr Index median_block_rows = 256;

/// `visit(first, block)` for consecutive blocks of up to median_block_rows rows of
/// `points`, each evaluated into double.
template <class Points, class Visit>
void for_each_double_block(const Points& points, Visit&& visit) {
    Matrix<double> block;
    for (Index first = 0; first < points.rows(); first += median_block_rows) {
        const Index count = std::min(median_block_rows, points.rows() - first);
        block = points.middleRows(first, count).template cast<double>();
        visit(first, block);
    }
}

/// One Vardi-Zhang-guarded Weiszfeld step from `y`; returns the next iterate and sets
/// `mean_distance` to the mean distance of the points to `y`.
template <class Points>
Eigen::RowVectorXd weiszfeld_step(const Points& points, const Eigen::RowVectorXd& y, double& mean_distance) {
    Eigen::ArrayXd distances(points.rows());
    for_each_double_block(points, [&](Index first, const Matrix<double>& block) {
        distances.segment(first, block.rows()) = (block.rowwise() - y).rowwise().norm().array();
    });
    mean_distance = distances.mean();
    // Distances this small relative to the spread count as "on a data point": 1/d would
    // overflow or swamp every other weight.
    const double coincident_below = 1e-12 * mean_distance;
    const Eigen::Array<bool, Eigen::Dynamic, 1> coincident = distances <= coincident_below;
    const Eigen::ArrayXd weights = coincident.select(0.0, distances.max(coincident_below).inverse());
    const double weight_sum = weights.sum();
    if (weight_sum == 0.0) return y;  // every point sits on y

    Eigen::RowVectorXd weighted_mean = Eigen::RowVectorXd::Zero(points.cols());
    for_each_double_block(points, [&](Index first, const Matrix<double>& block) {
        weighted_mean.noalias() += weights.segment(first, block.rows()).matrix().transpose() * block;
    });
    weighted_mean /= weight_sum;
    const double eta = static_cast<double>(coincident.count());
    if (eta == 0.0) return weighted_mean;

    // R = sum_i w_i (x_i - y) = weight_sum (T - y), summed over the other points.
    const double pull = weight_sum * (weighted_mean - y).norm();
    if (pull <= eta) return y;  // the coincident point is the median
    const double keep = eta / pull;
    return (1.0 - keep) * weighted_mean + keep * y;
}

template <class Points>
Eigen::RowVectorXd weiszfeld(const Points& points, int max_iterations, double tolerance) {
    Eigen::RowVectorXd y = Eigen::RowVectorXd::Zero(points.cols());
    for_each_double_block(points, [&](Index, const Matrix<double>& block) { y += block.colwise().sum(); });
    y /= static_cast<double>(points.rows());
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
    return detail::weiszfeld(points.derived(), max_iterations, tolerance).template cast<Scalar>();
}

}  // namespace sae
