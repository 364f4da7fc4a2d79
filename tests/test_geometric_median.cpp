// Tests for geometric_median: known medians (middle of collinear points, centre of a
// square, diagonal crossing of a convex quadrilateral, a repeated data point), robustness
// to an outlier, the first-order optimality condition, and input validation.
#include <sae/core/geometric_median.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_geometric_median_cases {

using Catch::Matchers::WithinAbs;

namespace {


// Sum of distances from y to the rows of points (the objective being minimised).
double sum_of_distances(const sae::Matrix<double>& points, const Eigen::RowVectorXd& y) {
    return (points.rowwise() - y).rowwise().norm().sum();
}

// Sum of unit vectors from y to the rows of points: the objective's negative gradient,
// zero at the median when y is not a data point.
Eigen::RowVectorXd sum_of_unit_vectors(const sae::Matrix<double>& points, const Eigen::RowVectorXd& y) {
    const sae::Matrix<double> diff = points.rowwise() - y;
    return (diff.array().colwise() / diff.rowwise().norm().array()).colwise().sum();
}

template <class Scalar>
double tolerance() {
    return std::is_same<Scalar, float>::value ? 1e-4 : 1e-7;
}

}  // namespace

TEMPLATE_TEST_CASE("geometric_median: collinear odd points give the middle one", "[geometric_median]", float, double) {
    using Scalar = TestType;
    // points a + t u with t = 30, -1, 2, -5, 0.5 (unsorted): the median of a line is the
    // 1-D median, t = 0.5, while the mean is t = 5.3.
    const Eigen::RowVector3d a(1.0, -2.0, 0.5);
    const Eigen::RowVector3d u = Eigen::RowVector3d(2.0, 1.0, -2.0) / 3.0;
    const double t[] = {30.0, -1.0, 2.0, -5.0, 0.5};
    sae::Matrix<Scalar> points(5, 3);
    for (int i = 0; i < 5; ++i) points.row(i) = (a + t[i] * u).cast<Scalar>();
    const sae::RowVector<Scalar> median = sae::geometric_median(points);
    const Eigen::RowVector3d expected = a + 0.5 * u;
    for (int j = 0; j < 3; ++j) CHECK_THAT(static_cast<double>(median(j)), WithinAbs(expected(j), tolerance<Scalar>()));
}

TEMPLATE_TEST_CASE("geometric_median: the corners of a square give its centre", "[geometric_median]", float, double) {
    using Scalar = TestType;
    sae::Matrix<Scalar> corners(4, 2);
    corners << 0, 0, 2, 0, 2, 2, 0, 2;
    const sae::RowVector<Scalar> median = sae::geometric_median(corners);
    CHECK_THAT(static_cast<double>(median(0)), WithinAbs(1.0, tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(median(1)), WithinAbs(1.0, tolerance<Scalar>()));
}

TEMPLATE_TEST_CASE("geometric_median: a convex quadrilateral gives its diagonals' crossing", "[geometric_median]", float,
                   double) {
    using Scalar = TestType;
    // For 4 points in convex position the median is where the diagonals cross (each
    // diagonal's points pull in opposite directions along it). Diagonals (0,0)-(5,3) and
    // (4,0)-(1,5): s (5,3) = (4,0) + r (-3,5) gives 3s = 5r, 5s = 4 - 3r, so s = 4/6.8.
    // The mean (2.5, 2) is elsewhere.
    sae::Matrix<Scalar> quad(4, 2);
    quad << 0, 0, 4, 0, 5, 3, 1, 5;
    const double s = 4.0 / 6.8;
    const sae::RowVector<Scalar> median = sae::geometric_median(quad, 1000, 1e-12);
    CHECK_THAT(static_cast<double>(median(0)), WithinAbs(5.0 * s, 10 * tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(median(1)), WithinAbs(3.0 * s, 10 * tolerance<Scalar>()));
}

TEMPLATE_TEST_CASE("geometric_median: a repeated data point can be the median", "[geometric_median]", float, double) {
    using Scalar = TestType;
    // The origin three times plus (1,0), (0,2), (3,3): the other points' unit vectors sum
    // to a norm <= 3 = multiplicity, so the origin is optimal (Vardi & Zhang). The mean
    // (2/3, 5/6) is not; plain Weiszfeld would divide by zero on reaching the origin.
    sae::Matrix<Scalar> points(6, 2);
    points << 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 3, 3;
    const sae::RowVector<Scalar> median = sae::geometric_median(points, 500, 1e-12);
    REQUIRE(median.allFinite());
    CHECK_THAT(static_cast<double>(median(0)), WithinAbs(0.0, tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(median(1)), WithinAbs(0.0, tolerance<Scalar>()));

    // One point, or all points equal: that point.
    const sae::Matrix<Scalar> same = sae::Matrix<Scalar>::Constant(3, 4, Scalar(1.5));
    CHECK(sae::geometric_median(same).isApprox(same.row(0)));
    CHECK(sae::geometric_median(points.topRows(1)).isApprox(points.row(0)));
}

TEMPLATE_TEST_CASE("geometric_median: one huge outlier barely moves it", "[geometric_median]", float, double) {
    using Scalar = TestType;
    const sae::Matrix<Scalar> cloud = sae::test::gaussian_matrix<Scalar>(200, 5, 7);
    sae::Matrix<Scalar> with_outlier(201, 5);
    with_outlier.topRows(200) = cloud;
    with_outlier.row(200).setConstant(Scalar(1e6));

    const Eigen::RowVectorXd clean = sae::geometric_median(cloud).template cast<double>();
    const Eigen::RowVectorXd robust = sae::geometric_median(with_outlier).template cast<double>();
    const Eigen::RowVectorXd mean_shift =
        with_outlier.template cast<double>().colwise().mean() - cloud.template cast<double>().colwise().mean();
    // The outlier moves the mean by ~1e6 sqrt(5) / 201 ~ 1e4, the median by O(1 / n).
    CHECK(mean_shift.norm() > 1e4);
    CHECK((robust - clean).norm() < 0.05);
}

TEMPLATE_TEST_CASE("geometric_median: asymmetric points satisfy the optimality condition", "[geometric_median]", float,
                   double) {
    using Scalar = TestType;
    // A skewed 2-D cloud: Gaussian, stretched, with an exponential tail on one axis.
    sae::Matrix<Scalar> points = sae::test::gaussian_matrix<Scalar>(60, 2, 11);
    points.col(0) = points.col(0).array().exp() * Scalar(3);
    points.col(1) = points.col(1) * Scalar(0.5) + points.col(0) * Scalar(0.2);
    const sae::Matrix<double> as_double = points.template cast<double>();

    const Eigen::RowVectorXd median = sae::geometric_median(points, 1000, 1e-12).template cast<double>();
    // The gradient of the sum of distances is minus the sum of unit vectors; each unit
    // vector has norm 1, so compare against the number of points.
    CHECK(sum_of_unit_vectors(as_double, median).norm() < 60 * (std::is_same<Scalar, float>::value ? 1e-4 : 1e-8));
    // And no nearby point does better (a brute-force check of the minimum).
    const double best = sum_of_distances(as_double, median);
    for (double dx : {-1e-2, 0.0, 1e-2}) {
        for (double dy : {-1e-2, 0.0, 1e-2}) {
            CHECK(sum_of_distances(as_double, median + Eigen::RowVector2d(dx, dy)) >= best - 1e-9);
        }
    }
    const Eigen::RowVectorXd mean = as_double.colwise().mean();
    CHECK(sum_of_distances(as_double, mean) > best);

    // With the default settings the condition holds to the default tolerance's accuracy.
    const Eigen::RowVectorXd quick = sae::geometric_median(points).template cast<double>();
    CHECK(sum_of_unit_vectors(as_double, quick).norm() < 60 * 1e-3);
}

TEMPLATE_TEST_CASE("geometric_median: rejects bad input", "[geometric_median]", float, double) {
    using Scalar = TestType;
    sae::Matrix<Scalar> points = sae::test::gaussian_matrix<Scalar>(5, 3, 1);
    CHECK_THROWS_AS(sae::geometric_median(sae::Matrix<Scalar>(0, 3)), sae::shape_error);
    CHECK_THROWS_AS(sae::geometric_median(sae::Matrix<Scalar>(4, 0)), sae::shape_error);
    CHECK_THROWS_AS(sae::geometric_median(points, 0), sae::config_error);
    CHECK_THROWS_AS(sae::geometric_median(points, 10, -1.0), sae::config_error);
    points(2, 1) = GENERATE(std::numeric_limits<Scalar>::quiet_NaN(), std::numeric_limits<Scalar>::infinity());
    CHECK_THROWS_AS(sae::geometric_median(points), sae::numeric_error);
}

}  // namespace test_geometric_median_cases
