// Tests for sae/mfr/feature_matching.hpp: cosine matrices, one-to-one and max-cosine
// matching, MMCS and ground-truth recovery. Expected values are derived by hand in the
// comments, or come from a per-pair cosine computed independently of the GEMM path.
#include "sae/mfr/feature_matching.hpp"

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_feature_matching_cases {

namespace {

using sae::Index;
using Catch::Matchers::WithinAbs;

/// Tolerance for a cosine computed in Scalar: a few ulps of 1.
template <class Scalar>
double cosine_tolerance() {
    return 16.0 * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
}

using sae::test::gaussian_matrix;

/// The 3 x 3 example where the two modes differ. A's rows are unit vectors and B is the
/// identity, so cos(a_i, b_j) is simply entry j of a_i:
///   a0 = (0.8, 0.6, 0)   -> cosines (0.8, 0.6, 0  )
///   a1 = (0.8, 0,   0.6) -> cosines (0.8, 0,   0.6)
///   a2 = (0,   0.6, 0.8) -> cosines (0,   0.6, 0.8)
/// a0 and a1 are both closest to b0.
template <class Scalar>
sae::Matrix<Scalar> contested_rows() {
    sae::Matrix<Scalar> a(3, 3);
    a << Scalar(0.8), Scalar(0.6), Scalar(0),  //
        Scalar(0.8), Scalar(0), Scalar(0.6),   //
        Scalar(0), Scalar(0.6), Scalar(0.8);
    return a;
}

}  // namespace

TEMPLATE_TEST_CASE("cosine_similarity of a hand-computed example", "[feature_matching]", float, double) {
    sae::Matrix<TestType> a(3, 2);
    a << 1, 0,  //
        1, 1,   //
        0, 0;   // zero row: all its cosines are 0
    sae::Matrix<TestType> b(2, 2);
    b << 0, 2,  //
        3, 4;
    // |a0| = 1, |a1| = sqrt 2, |b0| = 2, |b1| = 5.
    // cos(a0,b0) = 0/2 = 0              cos(a0,b1) = 3/5 = 0.6
    // cos(a1,b0) = 2/(2 sqrt 2) = 1/sqrt 2   cos(a1,b1) = 7/(5 sqrt 2)
    const sae::Matrix<TestType> cosines = sae::cosine_similarity(a, b);
    REQUIRE(cosines.rows() == 3);
    REQUIRE(cosines.cols() == 2);
    const double tol = cosine_tolerance<TestType>();
    CHECK_THAT(static_cast<double>(cosines(0, 0)), WithinAbs(0.0, tol));
    CHECK_THAT(static_cast<double>(cosines(0, 1)), WithinAbs(0.6, tol));
    CHECK_THAT(static_cast<double>(cosines(1, 0)), WithinAbs(1.0 / std::sqrt(2.0), tol));
    CHECK_THAT(static_cast<double>(cosines(1, 1)), WithinAbs(7.0 / (5.0 * std::sqrt(2.0)), tol));
    CHECK(cosines(2, 0) == TestType(0));
    CHECK(cosines(2, 1) == TestType(0));
}

TEMPLATE_TEST_CASE("cosine_similarity agrees with per-pair dot products", "[feature_matching]", float, double) {
    const sae::Matrix<TestType> a = gaussian_matrix<TestType>(13, 7, 1);
    const sae::Matrix<TestType> b = gaussian_matrix<TestType>(9, 7, 2);
    const sae::Matrix<TestType> cosines = sae::cosine_similarity(a, b);
    const sae::Matrix<double> a64 = a.template cast<double>();
    const sae::Matrix<double> b64 = b.template cast<double>();
    for (Index i = 0; i < a.rows(); ++i) {
        for (Index j = 0; j < b.rows(); ++j) {
            const double expected = a64.row(i).dot(b64.row(j)) / (a64.row(i).norm() * b64.row(j).norm());
            CHECK_THAT(static_cast<double>(cosines(i, j)), WithinAbs(expected, cosine_tolerance<TestType>()));
        }
    }
}

TEMPLATE_TEST_CASE("identical dictionaries under a permutation have MMCS 1", "[feature_matching]", float, double) {
    const sae::MatchingMode mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    const Index n = 12;
    std::mt19937_64 rng(3);
    std::vector<Index> permutation(static_cast<std::size_t>(n));
    std::iota(permutation.begin(), permutation.end(), Index{0});
    std::shuffle(permutation.begin(), permutation.end(), rng);

    SECTION("scaled basis vectors: every cosine is exactly 0 or 1") {
        // Row i of A is 3 e_i; row permutation[i] of B is 0.5 e_i. Normalising gives
        // exact unit vectors, so the matched cosines are exactly 1.
        const sae::Matrix<TestType> a = TestType(3) * sae::Matrix<TestType>::Identity(n, n);
        sae::Matrix<TestType> b = sae::Matrix<TestType>::Zero(n, n);
        for (Index i = 0; i < n; ++i) {
            b(permutation[static_cast<std::size_t>(i)], i) = TestType(0.5);
        }
        CHECK(sae::mmcs(a, b, mode) == 1.0);
        const sae::FeatureMatch match = sae::match_features(sae::cosine_similarity(a, b), mode);
        std::vector<Index> in_order(static_cast<std::size_t>(n));
        std::iota(in_order.begin(), in_order.end(), Index{0});
        CHECK(match.a_index == in_order);
        CHECK(match.b_index == permutation);
    }
    SECTION("random directions with random positive scales") {
        const sae::Matrix<TestType> a = gaussian_matrix<TestType>(n, 20, 17);
        std::uniform_real_distribution<double> scale(0.1, 10.0);
        sae::Matrix<TestType> b(n, 20);
        for (Index i = 0; i < n; ++i) {
            b.row(permutation[static_cast<std::size_t>(i)]) = static_cast<TestType>(scale(rng)) * a.row(i);
        }
        CHECK_THAT(sae::mmcs(a, b, mode), WithinAbs(1.0, cosine_tolerance<TestType>()));
        const sae::FeatureMatch match = sae::match_features(sae::cosine_similarity(a, b), mode);
        CHECK(match.b_index == permutation);
    }
}

TEMPLATE_TEST_CASE("one-to-one and max-cosine differ when two rows want the same row", "[feature_matching]", float,
                   double) {
    const sae::Matrix<TestType> a = contested_rows<TestType>();
    const sae::Matrix<TestType> b = sae::Matrix<TestType>::Identity(3, 3);
    const sae::Matrix<TestType> cosines = sae::cosine_similarity(a, b);
    const double tol = cosine_tolerance<TestType>();

    // max_cosine: a0 -> b0 (0.8), a1 -> b0 (0.8), a2 -> b2 (0.8); MMCS = 0.8.
    const sae::FeatureMatch greedy = sae::match_features(cosines, sae::MatchingMode::max_cosine);
    CHECK(greedy.a_index == std::vector<Index>{0, 1, 2});
    CHECK(greedy.b_index == std::vector<Index>{0, 0, 2});
    CHECK_THAT(sae::mean_matched_cosine(cosines, greedy), WithinAbs(0.8, tol));
    CHECK_THAT(sae::mmcs(a, b, sae::MatchingMode::max_cosine), WithinAbs(0.8, tol));

    // one_to_one: sums of the six permutations (b index of a0, a1, a2):
    //   (0,1,2) .8+0+.8 = 1.6   (0,2,1) .8+.6+.6 = 2.0   (1,0,2) .6+.8+.8 = 2.2
    //   (1,2,0) .6+.6+0 = 1.2   (2,0,1) 0+.8+.6 = 1.4    (2,1,0) 0+0+0 = 0
    // The unique best is (1,0,2): MMCS = 2.2 / 3.
    const sae::FeatureMatch optimal = sae::match_features(cosines, sae::MatchingMode::one_to_one);
    CHECK(optimal.a_index == std::vector<Index>{0, 1, 2});
    CHECK(optimal.b_index == std::vector<Index>{1, 0, 2});
    CHECK_THAT(sae::mean_matched_cosine(cosines, optimal), WithinAbs(2.2 / 3.0, tol));
    CHECK_THAT(sae::mmcs(a, b), WithinAbs(2.2 / 3.0, tol));  // one_to_one is the default
}

TEMPLATE_TEST_CASE("matching rectangular dictionaries", "[feature_matching]", float, double) {
    // A = contested rows with a2 replaced by (0, 0.28, 0.96) (unit: .0784 + .9216 = 1);
    // B = [e0; e1] in R^3. Cosines [3, 2]:
    //   a0: (0.8, 0.6)   a1: (0.8, 0)   a2: (0, 0.28)
    sae::Matrix<TestType> a = contested_rows<TestType>();
    a.row(2) << TestType(0), TestType(0.28), TestType(0.96);
    const sae::Matrix<TestType> b = sae::Matrix<TestType>::Identity(2, 3);
    const double tol = cosine_tolerance<TestType>();

    SECTION("more rows in A than in B") {
        // one_to_one uses both rows of B once. The six injective maps (A row of b0, of b1):
        //   (a0,a1) .8+0 = .8   (a0,a2) .8+.28 = 1.08   (a1,a0) .8+.6 = 1.4
        //   (a1,a2) .8+.28 = 1.08   (a2,a0) 0+.6 = .6   (a2,a1) 0+0 = 0
        // Best: a0-b1, a1-b0 (a2 unmatched), MMCS 1.4 / 2 = 0.7.
        const sae::FeatureMatch optimal = sae::match_features(sae::cosine_similarity(a, b), sae::MatchingMode::one_to_one);
        CHECK(optimal.a_index == std::vector<Index>{0, 1});
        CHECK(optimal.b_index == std::vector<Index>{1, 0});
        CHECK_THAT(sae::mmcs(a, b), WithinAbs(0.7, tol));
        // max_cosine matches every row of A: .8, .8, .28, mean 1.88 / 3.
        const sae::FeatureMatch greedy = sae::match_features(sae::cosine_similarity(a, b), sae::MatchingMode::max_cosine);
        CHECK(greedy.b_index == std::vector<Index>{0, 0, 1});
        CHECK_THAT(sae::mmcs(a, b, sae::MatchingMode::max_cosine), WithinAbs(1.88 / 3.0, tol));
    }
    SECTION("fewer rows in A than in B") {
        // B -> A: b0 has cosines (.8, .8, 0) to a0..a2 and b1 has (.6, 0, .28).
        // one_to_one: best is b0-a1, b1-a0 (1.4), as above: MMCS 0.7.
        const sae::FeatureMatch optimal = sae::match_features(sae::cosine_similarity(b, a), sae::MatchingMode::one_to_one);
        CHECK(optimal.a_index == std::vector<Index>{0, 1});
        CHECK(optimal.b_index == std::vector<Index>{1, 0});
        CHECK_THAT(sae::mmcs(b, a), WithinAbs(0.7, tol));
        // max_cosine: b0 -> a0 (first of the tied .8), b1 -> a0 (.6): MMCS 0.7, both on a0.
        const sae::FeatureMatch greedy = sae::match_features(sae::cosine_similarity(b, a), sae::MatchingMode::max_cosine);
        CHECK(greedy.b_index == std::vector<Index>{0, 0});
        CHECK_THAT(sae::mmcs(b, a, sae::MatchingMode::max_cosine), WithinAbs(0.7, tol));
    }
}

TEMPLATE_TEST_CASE("one-to-one MMCS never exceeds max-cosine MMCS", "[feature_matching]", float, double) {
    // With na <= nb every row of A is matched in both modes, and its one-to-one partner
    // can be no more similar than its best partner.
    const Index na = GENERATE(1, 8, 30);
    const Index nb = GENERATE(30, 45);
    const sae::Matrix<TestType> a = gaussian_matrix<TestType>(na, 10, 100 + static_cast<std::uint64_t>(na));
    const sae::Matrix<TestType> b = gaussian_matrix<TestType>(nb, 10, 200 + static_cast<std::uint64_t>(nb));
    const double optimal = sae::mmcs(a, b, sae::MatchingMode::one_to_one);
    const double greedy = sae::mmcs(a, b, sae::MatchingMode::max_cosine);
    CHECK(optimal <= greedy + cosine_tolerance<TestType>());
    const sae::FeatureMatch match = sae::match_features(sae::cosine_similarity(a, b), sae::MatchingMode::one_to_one);
    CHECK(match.a_index.size() == static_cast<std::size_t>(na));
    std::vector<Index> partners = match.b_index;
    std::sort(partners.begin(), partners.end());
    CHECK(std::adjacent_find(partners.begin(), partners.end()) == partners.end());  // no B row twice
}

TEMPLATE_TEST_CASE("a zero row has cosine 0 and is matched without NaN", "[feature_matching]", float, double) {
    sae::Matrix<TestType> a(2, 2);
    a << 0, 0,  //
        1, 1;
    sae::Matrix<TestType> b(2, 2);
    b << 0, 5,  //
        -2, 0;
    // a1 = (1,1)/sqrt 2: cosines to b0 = (0,1) and b1 = (-1,0) are 1/sqrt 2 and -1/sqrt 2;
    // a0 has cosine 0 with both. one_to_one: a0-b0 + a1-b1 = -0.707 or a0-b1 + a1-b0 = 0.707,
    // so a1-b0, a0-b1 and MMCS = (0 + 1/sqrt 2) / 2. max_cosine: a0 -> b0 (first of the tie).
    const sae::Matrix<TestType> cosines = sae::cosine_similarity(a, b);
    CHECK(cosines.allFinite());
    CHECK(cosines(0, 0) == TestType(0));
    CHECK(cosines(0, 1) == TestType(0));
    const double tol = cosine_tolerance<TestType>();
    CHECK_THAT(sae::mmcs(a, b), WithinAbs(0.5 / std::sqrt(2.0), tol));
    CHECK_THAT(sae::mmcs(a, b, sae::MatchingMode::max_cosine), WithinAbs(0.5 / std::sqrt(2.0), tol));
    CHECK(sae::match_features(cosines, sae::MatchingMode::one_to_one).b_index == std::vector<Index>{1, 0});
    CHECK(sae::match_features(cosines, sae::MatchingMode::max_cosine).b_index == std::vector<Index>{0, 0});
}

TEMPLATE_TEST_CASE("feature_recovery on a constructed example", "[feature_matching]", float, double) {
    // True features: the three rows of the rectangular example (cosines to the learned
    // e0, e1 are a0 (.8, .6), a1 (.8, 0), a2 (0, .28)), scaled to show scale does not matter.
    sae::Matrix<TestType> truth = contested_rows<TestType>();
    truth.row(2) << TestType(0), TestType(0.28), TestType(0.96);
    truth *= TestType(4);
    const sae::Matrix<TestType> learned = sae::Matrix<TestType>::Identity(2, 3);
    const double tol = cosine_tolerance<TestType>();

    // one_to_one: pairs a0-b1 (.6) and a1-b0 (.8), a2 unmatched. Above 0.75: only a1,
    // so 1 of the 3 true features.
    const sae::Recovery optimal = sae::feature_recovery(truth, learned, sae::MatchingMode::one_to_one, 0.75);
    CHECK_THAT(optimal.mmcs, WithinAbs(0.7, tol));
    CHECK_THAT(optimal.fraction_above, WithinAbs(1.0 / 3.0, 1e-15));
    CHECK(optimal.threshold == 0.75);

    // max_cosine: .8, .8, .28: a0 and a1 above 0.75, so 2 of 3.
    const sae::Recovery greedy = sae::feature_recovery(truth, learned, sae::MatchingMode::max_cosine, 0.75);
    CHECK_THAT(greedy.mmcs, WithinAbs(1.88 / 3.0, tol));
    CHECK_THAT(greedy.fraction_above, WithinAbs(2.0 / 3.0, 1e-15));

    // Default threshold 0.9: no matched cosine exceeds it.
    const sae::Recovery strict = sae::feature_recovery(truth, learned);
    CHECK(strict.threshold == 0.9);
    CHECK(strict.fraction_above == 0.0);

    // A perfect learned dictionary (a shuffled, rescaled copy) recovers everything.
    sae::Matrix<TestType> perfect(3, 3);
    perfect << truth.row(2), TestType(0.1) * truth.row(0), truth.row(1);
    const sae::Recovery full = sae::feature_recovery(truth, perfect);
    CHECK_THAT(full.mmcs, WithinAbs(1.0, tol));
    CHECK(full.fraction_above == 1.0);
}

TEST_CASE("feature matching rejects bad input", "[feature_matching]") {
    const sae::Matrix<double> a = sae::Matrix<double>::Ones(2, 3);
    const sae::Matrix<double> b = sae::Matrix<double>::Ones(2, 4);
    CHECK_THROWS_AS(sae::cosine_similarity(a, b), sae::shape_error);
    CHECK_THROWS_WITH(sae::cosine_similarity(a, b), Catch::Contains("[2, 3]") && Catch::Contains("[2, 4]"));
    CHECK_THROWS_AS(sae::mmcs(a, b), sae::shape_error);
    CHECK_THROWS_AS(sae::feature_recovery(a, b), sae::shape_error);

    sae::Matrix<double> cosines = sae::Matrix<double>::Zero(2, 2);
    cosines(1, 0) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(sae::match_features(cosines, sae::MatchingMode::one_to_one), sae::numeric_error);
    CHECK_THROWS_AS(sae::match_features(cosines, sae::MatchingMode::max_cosine), sae::numeric_error);
    CHECK_THROWS_WITH(sae::match_features(cosines, sae::MatchingMode::max_cosine), Catch::Contains("cosines(1, 0)"));

    const sae::Matrix<double> good = sae::Matrix<double>::Identity(2, 2);
    CHECK_THROWS_AS(sae::mean_matched_cosine(good, sae::FeatureMatch{{0, 1}, {0, 2}}), sae::shape_error);
    CHECK_THROWS_AS(sae::mean_matched_cosine(good, sae::FeatureMatch{{0, 1}, {0}}), sae::shape_error);
    CHECK_THROWS_AS(sae::mean_matched_cosine(good, sae::FeatureMatch{}), sae::shape_error);
    CHECK_THROWS_AS(sae::feature_recovery(good, good, sae::MatchingMode::one_to_one,
                                          std::numeric_limits<double>::quiet_NaN()),
                    sae::config_error);

    // An empty dictionary has no pairs, so its MMCS is undefined.
    const sae::Matrix<double> empty(0, 2);
    CHECK(sae::match_features(sae::cosine_similarity(empty, good), sae::MatchingMode::one_to_one).a_index.empty());
    CHECK(sae::match_features(sae::cosine_similarity(good, empty), sae::MatchingMode::max_cosine).a_index.empty());
    CHECK_THROWS_AS(sae::mmcs(good, empty), sae::shape_error);
}

}  // namespace test_feature_matching_cases
