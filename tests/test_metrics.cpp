// Tests for metrics.hpp: MSE and FVU against hand sums and brute-force loops, L0 with
// explicit zeros, the firing tracker's dead-latent window, and the density histogram.
#include <sae/core/metrics.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_metrics_cases {

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

namespace {


// A code from a dense matrix, storing only its non-zeros.
template <class Scalar>
sae::SparseCode<Scalar> sparse_from(const sae::Matrix<Scalar>& dense) {
    return dense.sparseView();
}

}  // namespace

TEMPLATE_TEST_CASE("mean_squared_error: hand example and brute force", "[metrics]", float, double) {
    using Scalar = TestType;
    sae::Matrix<Scalar> x(2, 2), x_hat(2, 2);
    x << 1, 2, 3, 4;
    x_hat << 1, 0, 4, 4;
    // differences 0, 2, -1, 0 -> squares sum 5 over 4 elements
    CHECK_THAT(sae::mean_squared_error(x, x_hat), WithinRel(1.25, 1e-12));
    CHECK(sae::mean_squared_error(x, x) == 0.0);

    const sae::Matrix<Scalar> a = sae::test::gaussian_matrix<Scalar>(37, 11, 1);
    const sae::Matrix<Scalar> b = sae::test::gaussian_matrix<Scalar>(37, 11, 2);
    double sum = 0.0;
    for (sae::Index i = 0; i < a.rows(); ++i) {
        for (sae::Index j = 0; j < a.cols(); ++j) {
            const double d = static_cast<double>(a(i, j)) - static_cast<double>(b(i, j));
            sum += d * d;
        }
    }
    CHECK_THAT(sae::mean_squared_error(a, b), WithinRel(sum / (37.0 * 11.0), 1e-12));
    // Expressions and blocks are accepted without copying into a Matrix first.
    CHECK_THAT(sae::mean_squared_error(a.topRows(5), b.topRows(5)),
               WithinRel(sae::mean_squared_error(sae::Matrix<Scalar>(a.topRows(5)), sae::Matrix<Scalar>(b.topRows(5))), 1e-12));

    CHECK_THROWS_AS(sae::mean_squared_error(a, b.leftCols(10)), sae::shape_error);
    CHECK_THROWS_WITH(sae::mean_squared_error(a, b.topRows(3)), Catch::Matchers::Contains("[37, 11]"));
    CHECK_THROWS_AS(sae::mean_squared_error(sae::Matrix<Scalar>(0, 3), sae::Matrix<Scalar>(0, 3)), sae::shape_error);
}

TEMPLATE_TEST_CASE("fraction_of_variance_unexplained: hand example and limits", "[metrics]", float, double) {
    using Scalar = TestType;
    sae::Matrix<Scalar> x(3, 2);
    x << 1, 2, 3, 4, 5, 9;
    // column means (3, 5); deviations column 0: -2, 0, 2 -> 8; column 1: -3, -1, 4 -> 26; total 34
    sae::Matrix<Scalar> x_hat = x;
    x_hat(0, 0) += 1;  // error 1
    x_hat(1, 1) -= 1;  // error 1 -> numerator 2
    CHECK_THAT(sae::fraction_of_variance_unexplained(x, x_hat), WithinRel(2.0 / 34.0, 1e-7));
    CHECK(sae::fraction_of_variance_unexplained(x, x) == 0.0);

    // Predicting the mean of every column explains nothing: FVU = 1.
    const sae::Matrix<Scalar> data = sae::test::gaussian_matrix<Scalar>(50, 8, 3);
    const sae::Matrix<Scalar> mean_prediction = data.colwise().mean().replicate(50, 1);
    CHECK_THAT(sae::fraction_of_variance_unexplained(data, mean_prediction), WithinRel(1.0, 1e-5));

    CHECK_THROWS_AS(sae::fraction_of_variance_unexplained(x, x.leftCols(1)), sae::shape_error);
    CHECK_THROWS_AS(sae::fraction_of_variance_unexplained(x.topRows(1), x.topRows(1)), sae::shape_error);
    const sae::Matrix<Scalar> constant = sae::Matrix<Scalar>::Constant(4, 3, Scalar(2));
    CHECK_THROWS_AS(sae::fraction_of_variance_unexplained(constant, constant), sae::numeric_error);
}

TEMPLATE_TEST_CASE("mean_l0: explicit non-zeros per row", "[metrics]", float, double) {
    using Scalar = TestType;
    sae::SparseCode<Scalar> code(3, 5);
    code.insert(0, 1) = Scalar(0.5);
    code.insert(0, 4) = Scalar(-1);
    code.insert(2, 0) = Scalar(2);
    code.insert(2, 2) = Scalar(0);  // stored but zero: not active
    code.insert(2, 3) = Scalar(1);
    code.insert(2, 4) = Scalar(3);
    REQUIRE(code.nonZeros() == 6);
    // rows hold 2, 0 and 3 active latents -> 5 / 3 (uncompressed, then compressed storage)
    CHECK_THAT(sae::mean_l0(code), WithinRel(5.0 / 3.0, 1e-12));
    code.makeCompressed();
    CHECK_THAT(sae::mean_l0(code), WithinRel(5.0 / 3.0, 1e-12));

    const sae::Matrix<Scalar> dense = sae::test::gaussian_matrix<Scalar>(40, 30, 4).unaryExpr([](Scalar v) { return v > Scalar(1) ? v : Scalar(0); });
    const double expected = static_cast<double>((dense.array() != Scalar(0)).count()) / 40.0;
    CHECK_THAT(sae::mean_l0(sparse_from(dense)), WithinRel(expected, 1e-12));
    CHECK_THROWS_AS(sae::mean_l0(sae::SparseCode<Scalar>(0, 5)), sae::shape_error);
}

TEMPLATE_TEST_CASE("FiringTracker: tokens since fired and the dead window", "[metrics][firing]", float, double) {
    using Scalar = TestType;
    sae::FiringTracker tracker(4, 5);
    CHECK(tracker.dead_after_tokens() == 5);
    CHECK(tracker.firing_rate().isZero());

    sae::Matrix<Scalar> batch1 = sae::Matrix<Scalar>::Zero(2, 4);  // latent 0 in row 0, latent 2 in row 1
    batch1(0, 0) = 1;
    batch1(1, 2) = 1;
    tracker.update(sparse_from(batch1));
    CHECK((tracker.tokens_since_fired() == (Eigen::Array<std::int64_t, 4, 1>() << 0, 2, 0, 2).finished()).all());

    sae::Matrix<Scalar> batch2 = sae::Matrix<Scalar>::Zero(3, 4);  // latent 1 in two rows
    batch2(0, 1) = 2;
    batch2(2, 1) = 3;
    tracker.update(sparse_from(batch2));
    CHECK((tracker.tokens_since_fired() == (Eigen::Array<std::int64_t, 4, 1>() << 3, 0, 3, 5).finished()).all());
    CHECK(tracker.dead_fraction() == 0.0);  // 5 is not more than 5

    sae::SparseCode<Scalar> batch3(1, 4);  // latent 0 fires; latent 3 holds a stored zero (not a firing)
    batch3.insert(0, 0) = 1;
    batch3.insert(0, 3) = 0;
    tracker.update(batch3);
    CHECK((tracker.tokens_since_fired() == (Eigen::Array<std::int64_t, 4, 1>() << 0, 1, 4, 6).finished()).all());
    CHECK((tracker.dead_mask() == (Eigen::Array<bool, 4, 1>() << false, false, false, true).finished()).all());
    CHECK(tracker.dead_fraction() == 0.25);

    // fires: latent 0 twice, latent 1 twice, latent 2 once, latent 3 never, over 6 tokens
    CHECK(tracker.tokens_seen() == 6);
    const Eigen::ArrayXd expected_rate = (Eigen::ArrayXd(4) << 2.0 / 6, 2.0 / 6, 1.0 / 6, 0.0).finished();
    CHECK(tracker.firing_rate().isApprox(expected_rate));

    tracker.reset_density();
    CHECK(tracker.tokens_seen() == 0);
    CHECK(tracker.firing_rate().isZero());
    CHECK(tracker.tokens_since_fired()(3) == 6);  // the dead window survives a density reset

    tracker.reset();
    CHECK((tracker.tokens_since_fired() == 0).all());
    CHECK_THROWS_AS(tracker.update(sparse_from(sae::Matrix<Scalar>(sae::Matrix<Scalar>::Zero(2, 5)))), sae::shape_error);
}

TEMPLATE_TEST_CASE("FiringTracker: fire counts match a dense count over random batches", "[metrics][firing]", float, double) {
    using Scalar = TestType;
    const sae::Index latents = 64;
    sae::FiringTracker tracker(latents, 100);
    Eigen::Array<std::int64_t, Eigen::Dynamic, 1> expected = Eigen::Array<std::int64_t, Eigen::Dynamic, 1>::Zero(latents);
    std::int64_t tokens = 0;
    for (std::uint64_t seed = 10; seed < 20; ++seed) {
        const sae::Matrix<Scalar> dense =
            sae::test::gaussian_matrix<Scalar>(17, latents, seed).unaryExpr([](Scalar v) { return v > Scalar(1.5) ? v : Scalar(0); });
        expected += (dense.array() != Scalar(0)).colwise().count().transpose().template cast<std::int64_t>();
        tokens += dense.rows();
        tracker.update(sparse_from(dense));
    }
    CHECK((tracker.fire_counts() == expected).all());
    CHECK(tracker.tokens_seen() == tokens);
    CHECK(tracker.firing_rate().isApprox(expected.cast<double>() / static_cast<double>(tokens)));
}

TEST_CASE("FiringTracker: checkpoint setters validate", "[metrics][firing]") {
    sae::FiringTracker tracker(3, 10);
    using Counts = sae::FiringTracker::Counts;
    tracker.set_tokens_since_fired((Counts(3) << 4, 0, 11).finished());
    CHECK_THAT(tracker.dead_fraction(), WithinRel(1.0 / 3.0, 1e-12));
    tracker.set_density_counts((Counts(3) << 1, 2, 0).finished(), 8);
    CHECK(tracker.firing_rate().isApprox((Eigen::ArrayXd(3) << 0.125, 0.25, 0.0).finished()));
    CHECK_THROWS_AS(tracker.set_tokens_since_fired(Counts::Zero(2)), sae::shape_error);
    CHECK_THROWS_AS(tracker.set_tokens_since_fired((Counts(3) << 0, -1, 0).finished()), sae::config_error);
    CHECK_THROWS_AS(tracker.set_density_counts((Counts(3) << 9, 0, 0).finished(), 8), sae::config_error);
    CHECK_THROWS_AS(sae::FiringTracker(-1), sae::config_error);
    CHECK(sae::FiringTracker().dead_fraction() == 0.0);
}

TEST_CASE("feature_density_histogram: log10 bins, clamping and never-fired", "[metrics][density]") {
    // bins of width 1 on [-8, 0]: log10 of 1 -> 0 (last bin), 0.5 -> -0.30 (bin 7),
    // 2e-3 -> -2.70 (bin 5), 2e-5 -> -4.70 (bin 3), 1e-9 -> below the range (bin 0)
    const Eigen::ArrayXd rates = (Eigen::ArrayXd(7) << 0.0, 1.0, 0.5, 2e-3, 1e-9, 2e-5, 0.0).finished();
    const sae::DensityHistogram histogram = sae::feature_density_histogram(rates, 8, -8.0);
    REQUIRE(histogram.edges.size() == 9);
    CHECK(histogram.edges.front() == -8.0);
    CHECK_THAT(histogram.edges[3], WithinAbs(-5.0, 1e-12));
    CHECK(histogram.edges.back() == 0.0);
    CHECK(histogram.counts == std::vector<std::int64_t>{1, 0, 0, 1, 0, 1, 0, 2});
    CHECK(histogram.never_fired == 2);

    const sae::DensityHistogram defaults = sae::feature_density_histogram(rates);
    CHECK(defaults.counts.size() == 50);
    std::int64_t total = defaults.never_fired;
    for (std::int64_t count : defaults.counts) total += count;
    CHECK(total == rates.size());
}

TEST_CASE("feature_density_histogram: rejects bad settings and rates", "[metrics][density]") {
    const Eigen::ArrayXd fine = Eigen::ArrayXd::Constant(3, 0.1);
    CHECK_THROWS_AS(sae::feature_density_histogram(fine, 0), sae::config_error);
    CHECK_THROWS_AS(sae::feature_density_histogram(fine, 10, 0.0), sae::config_error);
    CHECK_THROWS_AS(sae::feature_density_histogram(fine, 10, std::numeric_limits<double>::quiet_NaN()), sae::config_error);
    const double bad = GENERATE(-0.1, 1.5, std::numeric_limits<double>::quiet_NaN());
    Eigen::ArrayXd rates = fine;
    rates(1) = bad;
    CHECK_THROWS_WITH(sae::feature_density_histogram(rates), Catch::Matchers::Contains("firing_rate[1]"));
}

}  // namespace test_metrics_cases
