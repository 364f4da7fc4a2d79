// Tests for sae/mfr/linear_assignment.hpp: exact rectangular linear assignment.
// Expected optima come from brute force over all injective maps, hand enumeration,
// planted solutions and the sorted-matching property of convex 1-D costs; warm starts
// are checked against cold solves, brute force and their own LP-duality certificate.
#include "sae/mfr/linear_assignment.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_linear_assignment_cases {

namespace {

using sae::Index;

/// Minimum (or maximum) total over every injective map from the shorter side of `cost`
/// to the longer one, by exhaustive depth-first enumeration.
class BruteForce {
public:
    BruteForce(const sae::Matrix<double>& cost, bool maximise)
        : cost_(cost.rows() <= cost.cols() ? cost : sae::Matrix<double>(cost.transpose())),
          sign_(maximise ? -1.0 : 1.0),
          used_(static_cast<std::size_t>(cost_.cols()), false) {}

    double best_total() {
        best_ = std::numeric_limits<double>::infinity();
        extend(0, 0.0);
        return sign_ * best_;
    }

private:
    void extend(Index row, double partial) {
        if (row == cost_.rows()) {
            best_ = std::min(best_, partial);
            return;
        }
        for (Index col = 0; col < cost_.cols(); ++col) {
            if (!used_[static_cast<std::size_t>(col)]) {
                used_[static_cast<std::size_t>(col)] = true;
                extend(row + 1, partial + sign_ * cost_(row, col));
                used_[static_cast<std::size_t>(col)] = false;
            }
        }
    }

    sae::Matrix<double> cost_;
    double sign_;
    std::vector<bool> used_;
    double best_ = 0.0;
};

/// The assignment is a valid matching of min(rows, cols) pairs and total_cost is the
/// sum of `cost` over those pairs.
template <class Derived>
void check_valid(const Eigen::MatrixBase<Derived>& cost, const sae::Assignment& result) {
    REQUIRE(result.row_to_col.size() == static_cast<std::size_t>(cost.rows()));
    REQUIRE(result.col_to_row.size() == static_cast<std::size_t>(cost.cols()));
    Index n_pairs = 0;
    double total = 0.0;
    for (Index row = 0; row < cost.rows(); ++row) {
        const Index col = result.row_to_col[static_cast<std::size_t>(row)];
        if (col < 0) {
            CHECK(col == -1);
            continue;
        }
        REQUIRE(col < cost.cols());
        CHECK(result.col_to_row[static_cast<std::size_t>(col)] == row);
        total += static_cast<double>(cost(row, col));
        ++n_pairs;
    }
    const Index n_assigned_cols = static_cast<Index>(
        std::count_if(result.col_to_row.begin(), result.col_to_row.end(), [](Index r) { return r >= 0; }));
    CHECK(n_pairs == std::min(cost.rows(), cost.cols()));
    CHECK(n_assigned_cols == n_pairs);
    CHECK_THAT(result.total_cost, Catch::Matchers::WithinAbs(total, 1e-9));
}

sae::Matrix<double> random_matrix(Index rows, Index cols, std::mt19937_64& rng, double low, double high) {
    std::uniform_real_distribution<double> uniform(low, high);
    sae::Matrix<double> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) {
        m.data()[i] = uniform(rng);
    }
    return m;
}

sae::Matrix<double> random_integer_matrix(Index rows, Index cols, std::mt19937_64& rng, int max_value) {
    std::uniform_int_distribution<int> uniform(0, max_value);
    sae::Matrix<double> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) {
        m.data()[i] = uniform(rng);
    }
    return m;
}

/// `warm` (as filled by the solve that gave `result`) is an optimality certificate: a
/// dual solution of min s * cost (s = -1 when maximising) with u_r + v_c <= s * cost
/// everywhere, the longer side's potentials <= 0, and sum(u) + sum(v) = s * total_cost.
/// By LP duality no pairing of min(rows, cols) pairs can do better than that sum.
void check_certificate(const sae::Matrix<double>& cost, bool maximise, const sae::Assignment& result,
                       const sae::AssignmentWarmStart& warm) {
    const double sign = maximise ? -1.0 : 1.0;
    REQUIRE(warm.row_potential.size() == cost.rows());
    REQUIRE(warm.col_potential.size() == cost.cols());
    CHECK(warm.row_to_col == result.row_to_col);
    const sae::Matrix<double> slack = (sign * cost).colwise() - warm.row_potential;
    // Rounding scales with the entries (1e-9 absolute for the unit-scale matrices).
    const double scale = cost.size() == 0 ? 1.0 : std::max(1.0, cost.cwiseAbs().maxCoeff());
    CHECK((slack.rowwise() - warm.col_potential.transpose()).minCoeff() > -1e-9 * scale);
    if (cost.rows() != cost.cols()) {
        CHECK((cost.rows() < cost.cols() ? warm.col_potential : warm.row_potential).maxCoeff() <= 0.0);
    }
    const double dual = warm.row_potential.sum() + warm.col_potential.sum();
    CHECK_THAT(dual, Catch::Matchers::WithinAbs(sign * result.total_cost, 1e-9 * (scale + std::abs(result.total_cost))));
}

/// Solves `cost` warm from `warm` (then holding this solve's state) and cold; both must
/// be valid and equally good, and the warm state must certify the warm result.
void check_warm_equals_cold(const sae::Matrix<double>& cost, bool maximise, sae::AssignmentWarmStart& warm) {
    const sae::Assignment cold = maximise ? sae::solve_linear_assignment_max(cost) : sae::solve_linear_assignment(cost);
    const sae::Assignment warmed =
        maximise ? sae::solve_linear_assignment_max(cost, &warm) : sae::solve_linear_assignment(cost, &warm);
    check_valid(cost, warmed);
    CHECK_THAT(warmed.total_cost, Catch::Matchers::WithinRel(cold.total_cost, 1e-9) ||
                                      Catch::Matchers::WithinAbs(cold.total_cost, 1e-12));
    check_certificate(cost, maximise, warmed, warm);
}

/// Rows of a Gaussian dictionary in R^d, each scaled to unit length.
sae::Matrix<double> unit_rows(Index n, Index d, std::mt19937_64& rng) {
    std::normal_distribution<double> normal(0.0, 1.0);
    sae::Matrix<double> rows(n, d);
    for (Index i = 0; i < rows.size(); ++i) rows.data()[i] = normal(rng);
    return rows.rowwise().normalized();
}

/// Square matrices of the kinds the candidate-list method must get right (n >= 128):
///  0 uniform on [-1, 1];
///  1 integers 0..3 (many optimal assignments; sums exact);
///  2 constant (every permutation optimal);
///  3 a_i + b_j with integer a, b (every permutation optimal, and every row's cheapest
///    columns are the same few: the first candidates alone cannot pair the rows);
///  4 cosines between two random dictionaries (MFR's matrices at the start of training);
///  5 cosines between a dictionary and a shuffled, perturbed copy (two trained members);
///  6 uniform on [-1, 1] times 1e20 (the rounding margins scale with the entries).
sae::Matrix<double> square_of_kind(int kind, Index n, std::mt19937_64& rng) {
    switch (kind) {
        case 0:
            return random_matrix(n, n, rng, -1.0, 1.0);
        case 1:
            return random_integer_matrix(n, n, rng, 3);
        case 2:
            return sae::Matrix<double>::Constant(n, n, 2.0);
        case 3: {
            const sae::Matrix<double> a = random_integer_matrix(2, n, rng, 1000);
            sae::Matrix<double> sums(n, n);
            for (Index i = 0; i < n; ++i) sums.row(i) = a(0, i) + a.row(1).array();
            return sums;
        }
        case 4:
            return unit_rows(n, 32, rng) * unit_rows(n, 32, rng).transpose();
        case 5: {
            const sae::Matrix<double> first = unit_rows(n, 32, rng);
            std::vector<Index> order(static_cast<std::size_t>(n));
            std::iota(order.begin(), order.end(), Index{0});
            std::shuffle(order.begin(), order.end(), rng);
            sae::Matrix<double> second(n, 32);
            for (Index i = 0; i < n; ++i) second.row(i) = first.row(order[static_cast<std::size_t>(i)]);
            second = (second + 0.3 * unit_rows(n, 32, rng)).rowwise().normalized();
            return first * second.transpose();
        }
        default:
            return 1e20 * random_matrix(n, n, rng, -1.0, 1.0);
    }
}

/// The dense shortest-augmenting-path method alone, cold: an independent solve to
/// compare the candidate-list method against.
double dense_optimum(const sae::Matrix<double>& cost, bool maximise) {
    using Objective = sae::detail::AssignmentObjective;
    // The solvers keep a reference to the view they are given: it must outlive them.
    const Eigen::Ref<const sae::Matrix<double>> view(cost);
    sae::detail::AugmentingPathSolver<double> dense(view, maximise ? Objective::maximise : Objective::minimise);
    const auto& pairs = dense.solve();
    double total = 0.0;
    for (Index row = 0; row < cost.rows(); ++row) total += cost(row, pairs(row));
    return total;
}

}  // namespace

TEST_CASE("linear assignment matches brute force on small rectangular matrices", "[linear_assignment]") {
    const Index rows = GENERATE(range(1, 8));
    const Index cols = GENERATE(range(1, 8));
    std::mt19937_64 rng(1000 + static_cast<std::uint64_t>(rows * 10 + cols));
    for (int trial = 0; trial < 8; ++trial) {
        const sae::Matrix<double> cost = random_matrix(rows, cols, rng, -10.0, 10.0);
        const sae::Assignment result = sae::solve_linear_assignment(cost);
        check_valid(cost, result);
        CHECK_THAT(result.total_cost, Catch::Matchers::WithinAbs(BruteForce(cost, false).best_total(), 1e-9));

        const sae::Assignment best = sae::solve_linear_assignment_max(cost);
        check_valid(cost, best);
        CHECK_THAT(best.total_cost, Catch::Matchers::WithinAbs(BruteForce(cost, true).best_total(), 1e-9));
    }
}

TEST_CASE("linear assignment is exact on integer costs with many ties", "[linear_assignment]") {
    const Index rows = GENERATE(range(1, 8));
    const Index cols = GENERATE(range(1, 8));
    const int max_value = GENERATE(0, 1, 3);
    std::mt19937_64 rng(7 + static_cast<std::uint64_t>(rows * 100 + cols * 10 + max_value));
    for (int trial = 0; trial < 6; ++trial) {
        const sae::Matrix<double> cost = random_integer_matrix(rows, cols, rng, max_value);
        const sae::Assignment result = sae::solve_linear_assignment(cost);
        check_valid(cost, result);
        // Sums of small integers are exact in double: demand equality.
        CHECK(result.total_cost == BruteForce(cost, false).best_total());
    }
}

TEST_CASE("linear assignment of a hand-derived 3x3 example", "[linear_assignment]") {
    sae::Matrix<double> cost(3, 3);
    cost << 4, 1, 3,  //
        2, 0, 5,      //
        3, 2, 2;
    // The six permutations (column of row 0, 1, 2) and their totals:
    //   (0,1,2) 4+0+2 = 6   (0,2,1) 4+5+2 = 11   (1,0,2) 1+2+2 = 5
    //   (1,2,0) 1+5+3 = 9   (2,0,1) 3+2+2 = 7    (2,1,0) 3+0+3 = 6
    // so the unique optimum is rows -> cols (1, 0, 2) with total 5.
    const sae::Assignment result = sae::solve_linear_assignment(cost);
    CHECK(result.row_to_col == std::vector<Index>{1, 0, 2});
    CHECK(result.col_to_row == std::vector<Index>{1, 0, 2});
    CHECK(result.total_cost == 5.0);

    // Maximum: the permutation (0,2,1) with total 11.
    const sae::Assignment best = sae::solve_linear_assignment_max(cost);
    CHECK(best.row_to_col == std::vector<Index>{0, 2, 1});
    CHECK(best.total_cost == 11.0);
}

TEST_CASE("linear assignment of a hand-derived 2x3 example leaves a column free", "[linear_assignment]") {
    sae::Matrix<double> cost(2, 3);
    cost << 1, 2, 3,  //
        2, 4, 6;
    // Injective maps (column of row 0, column of row 1): (0,1) 5, (0,2) 7, (1,0) 4,
    // (1,2) 8, (2,0) 5, (2,1) 7: the unique optimum is (1,0) with total 4; column 2 unused.
    const sae::Assignment wide = sae::solve_linear_assignment(cost);
    CHECK(wide.row_to_col == std::vector<Index>{1, 0});
    CHECK(wide.col_to_row == std::vector<Index>{1, 0, -1});
    CHECK(wide.total_cost == 4.0);

    // The transposed (3x2) problem has the same pairs, with row 2 unassigned.
    const sae::Matrix<double> tall = cost.transpose();
    const sae::Assignment tall_result = sae::solve_linear_assignment(tall);
    CHECK(tall_result.row_to_col == std::vector<Index>{1, 0, -1});
    CHECK(tall_result.col_to_row == std::vector<Index>{1, 0});
    CHECK(tall_result.total_cost == 4.0);
}

TEMPLATE_TEST_CASE("linear assignment cost of A equals that of A transposed", "[linear_assignment]", float, double) {
    const Index rows = GENERATE(1, 5, 17, 40);
    const Index cols = GENERATE(1, 9, 23, 40);
    std::mt19937_64 rng(42 + static_cast<std::uint64_t>(rows * 1000 + cols));
    const sae::Matrix<TestType> cost = random_matrix(rows, cols, rng, -3.0, 5.0).cast<TestType>();
    const sae::Matrix<TestType> transposed = cost.transpose();
    const sae::Assignment direct = sae::solve_linear_assignment(cost);
    const sae::Assignment flipped = sae::solve_linear_assignment(transposed);
    check_valid(cost, direct);
    check_valid(transposed, flipped);
    CHECK_THAT(direct.total_cost, Catch::Matchers::WithinAbs(flipped.total_cost, 1e-9));
}

TEST_CASE("linear assignment recovers a planted permutation", "[linear_assignment]") {
    const Index n = GENERATE(50, 300);
    const Index extra_cols = GENERATE(0, 37);
    std::mt19937_64 rng(99 + static_cast<std::uint64_t>(n + extra_cols));
    // Every entry costs at least 1 except the planted pairs, which cost 0: the planted
    // permutation is the unique optimum, with total 0.
    sae::Matrix<double> cost = random_matrix(n, n + extra_cols, rng, 1.0, 2.0);
    std::vector<Index> planted(static_cast<std::size_t>(n));
    std::iota(planted.begin(), planted.end(), Index{0});
    std::shuffle(planted.begin(), planted.end(), rng);
    for (Index row = 0; row < n; ++row) {
        cost(row, planted[static_cast<std::size_t>(row)]) = 0.0;
    }
    const sae::Assignment result = sae::solve_linear_assignment(cost);
    CHECK(result.row_to_col == planted);
    CHECK(result.total_cost == 0.0);
}

TEST_CASE("linear assignment pairs sorted points for a convex 1-D cost", "[linear_assignment]") {
    // For cost (x_i - y_j)^2 (convex in x - y), pairing the k-th smallest x with the
    // k-th smallest y is optimal (the classic monotone-rearrangement result).
    const Index n = 200;
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> x(static_cast<std::size_t>(n));
    std::vector<double> y(static_cast<std::size_t>(n));
    for (std::size_t k = 0; k < x.size(); ++k) {
        x[k] = normal(rng);
        y[k] = 0.5 + 2.0 * normal(rng);
    }
    sae::Matrix<double> cost(n, n);
    for (Index i = 0; i < n; ++i) {
        for (Index j = 0; j < n; ++j) {
            const double gap = x[static_cast<std::size_t>(i)] - y[static_cast<std::size_t>(j)];
            cost(i, j) = gap * gap;
        }
    }
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    double sorted_total = 0.0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        sorted_total += (x[k] - y[k]) * (x[k] - y[k]);
    }
    const sae::Assignment result = sae::solve_linear_assignment(cost);
    check_valid(cost, result);
    CHECK_THAT(result.total_cost, Catch::Matchers::WithinRel(sorted_total, 1e-12));
}

TEST_CASE("linear assignment maximisation equals minimisation of the negated matrix", "[linear_assignment]") {
    std::mt19937_64 rng(11);
    const sae::Matrix<double> score = random_matrix(30, 45, rng, -1.0, 1.0);
    const sae::Matrix<double> negated = -score;
    const sae::Assignment best = sae::solve_linear_assignment_max(score);
    const sae::Assignment cheapest = sae::solve_linear_assignment(negated);
    check_valid(score, best);
    CHECK_THAT(best.total_cost, Catch::Matchers::WithinAbs(-cheapest.total_cost, 1e-12));
}

TEST_CASE("linear assignment accepts integer matrices and expressions", "[linear_assignment]") {
    Eigen::MatrixXi cost(3, 3);
    cost << 4, 1, 3,  //
        2, 0, 5,      //
        3, 2, 2;
    // Same matrix as the hand-derived 3x3 example (optimum 5), here column-major int,
    // and as an expression (2 * cost: optimum 10 on the same pairs).
    CHECK(sae::solve_linear_assignment(cost).total_cost == 5.0);
    const sae::Assignment doubled = sae::solve_linear_assignment(2 * cost);
    CHECK(doubled.row_to_col == std::vector<Index>{1, 0, 2});
    CHECK(doubled.total_cost == 10.0);
}

TEST_CASE("linear assignment reads a block of a larger matrix in place", "[linear_assignment]") {
    // A block of a row-major matrix has rows spaced by the parent's width (outer stride
    // 40, not 25); it must give the same answer as a compact copy of the block.
    std::mt19937_64 rng(8);
    const sae::Matrix<double> parent = random_matrix(30, 40, rng, 0.0, 1.0);
    const sae::Matrix<double> compact = parent.block(3, 5, 20, 25);
    const sae::Assignment from_block = sae::solve_linear_assignment(parent.block(3, 5, 20, 25));
    const sae::Assignment from_copy = sae::solve_linear_assignment(compact);
    check_valid(compact, from_block);
    CHECK(from_block.row_to_col == from_copy.row_to_col);
    CHECK(from_block.total_cost == from_copy.total_cost);
}

TEST_CASE("linear assignment of an empty matrix is empty", "[linear_assignment]") {
    const Index rows = GENERATE(0, 3);
    const Index cols = GENERATE(0, 2);
    if (rows != 0 && cols != 0) {
        return;
    }
    const sae::Matrix<double> cost(rows, cols);
    for (const sae::Assignment& result : {sae::solve_linear_assignment(cost), sae::solve_linear_assignment_max(cost)}) {
        CHECK(result.row_to_col == std::vector<Index>(static_cast<std::size_t>(rows), -1));
        CHECK(result.col_to_row == std::vector<Index>(static_cast<std::size_t>(cols), -1));
        CHECK(result.total_cost == 0.0);
    }
}

TEMPLATE_TEST_CASE("linear assignment rejects non-finite costs naming the entry", "[linear_assignment]", float,
                   double) {
    const TestType bad = GENERATE(std::numeric_limits<TestType>::quiet_NaN(), std::numeric_limits<TestType>::infinity(),
                                  -std::numeric_limits<TestType>::infinity());
    sae::Matrix<TestType> cost = sae::Matrix<TestType>::Ones(3, 4);
    cost(1, 2) = bad;
    CHECK_THROWS_AS(sae::solve_linear_assignment(cost), sae::numeric_error);
    CHECK_THROWS_WITH(sae::solve_linear_assignment(cost), Catch::Contains("cost(1, 2)"));
    CHECK_THROWS_AS(sae::solve_linear_assignment_max(cost), sae::numeric_error);
    CHECK_THROWS_WITH(sae::solve_linear_assignment_max(cost), Catch::Contains("score(1, 2)"));
}

TEST_CASE("warm-started linear assignment equals the cold optimum on slowly changing matrices",
          "[linear_assignment][warm_start]") {
    const Index n = GENERATE(1, 2, 50, 300);
    const bool maximise = GENERATE(false, true);
    std::mt19937_64 rng(300 + static_cast<std::uint64_t>(n));
    std::normal_distribution<double> noise(0.0, 0.01);
    sae::Matrix<double> cost = random_matrix(n, n, rng, -1.0, 1.0);
    sae::AssignmentWarmStart warm;
    check_warm_equals_cold(cost, maximise, warm);  // empty state: a cold start
    for (int step = 0; step < 5; ++step) {
        for (Index i = 0; i < cost.size(); ++i) cost.data()[i] += noise(rng);
        check_warm_equals_cold(cost, maximise, warm);
    }
}

TEST_CASE("warm-started linear assignment is optimal from any state", "[linear_assignment][warm_start]") {
    const bool maximise = GENERATE(false, true);
    std::mt19937_64 rng(17);
    const sae::Matrix<double> first = random_matrix(40, 40, rng, -1.0, 1.0);
    sae::AssignmentWarmStart warm;
    check_warm_equals_cold(first, maximise, warm);
    // A state from an unrelated matrix of another scale, then from the other objective.
    const sae::Matrix<double> unrelated = random_matrix(40, 40, rng, -50.0, 10.0);
    check_warm_equals_cold(unrelated, maximise, warm);
    check_warm_equals_cold(first, !maximise, warm);
    // Arbitrary potentials, pairs out of range and pairs that claim one column twice.
    warm.col_potential = 20.0 * Eigen::VectorXd::Random(40);
    for (std::size_t row = 0; row < warm.row_to_col.size(); ++row) warm.row_to_col[row] = static_cast<Index>(row % 7) * 9 - 9;
    check_warm_equals_cold(first, maximise, warm);
    // Non-finite potentials or another shape: a cold start.
    warm.col_potential(3) = std::numeric_limits<double>::quiet_NaN();
    check_warm_equals_cold(first, maximise, warm);
    const sae::Matrix<double> other_shape = random_matrix(41, 40, rng, -1.0, 1.0);
    check_warm_equals_cold(other_shape, maximise, warm);
}

TEST_CASE("warm-started rectangular assignment matches brute force", "[linear_assignment][warm_start]") {
    // A rectangular optimum needs v = 0 on the free columns of the longer side; a
    // previous solve's v does not have it once pairs change, so the restart must
    // restore it. Integer costs (many ties, exact sums) perturbed entry by entry.
    const Index rows = GENERATE(1, 3, 5, 6);
    const Index cols = GENERATE(2, 4, 6);
    if (rows == cols) return;
    std::mt19937_64 rng(50 + static_cast<std::uint64_t>(rows * 10 + cols));
    std::uniform_int_distribution<int> coin(0, 2);
    for (int trial = 0; trial < 4; ++trial) {
        const bool maximise = trial % 2 == 1;
        sae::Matrix<double> cost = random_integer_matrix(rows, cols, rng, 3);
        sae::AssignmentWarmStart warm;
        for (int step = 0; step < 4; ++step) {
            const sae::Assignment result =
                maximise ? sae::solve_linear_assignment_max(cost, &warm) : sae::solve_linear_assignment(cost, &warm);
            check_valid(cost, result);
            CHECK(result.total_cost == BruteForce(cost, maximise).best_total());
            check_certificate(cost, maximise, result, warm);
            for (Index i = 0; i < cost.size(); ++i) cost.data()[i] += coin(rng) == 0 ? coin(rng) - 1 : 0;
        }
    }
    // Larger, both orientations, slowly changing.
    std::normal_distribution<double> noise(0.0, 0.05);
    for (const auto& shape : {std::pair<Index, Index>{60, 90}, std::pair<Index, Index>{90, 60}}) {
        sae::Matrix<double> cost = random_matrix(shape.first, shape.second, rng, -1.0, 1.0);
        sae::AssignmentWarmStart warm;
        for (int step = 0; step < 4; ++step) {
            check_warm_equals_cold(cost, step % 2 == 0, warm);
            for (Index i = 0; i < cost.size(); ++i) cost.data()[i] += noise(rng);
        }
    }
}

TEST_CASE("a warm start keeps its pairs when they stay optimal among ties", "[linear_assignment][warm_start]") {
    // A constant matrix makes every permutation optimal: each old pair attains its row's
    // minimum, so the warm start keeps the old permutation (here the reversal), which the
    // cold solve has no reason to pick. Both are optimal: the documented tie caveat.
    const sae::Matrix<double> constant = sae::Matrix<double>::Constant(4, 4, 2.0);
    sae::AssignmentWarmStart warm{Eigen::VectorXd::Zero(4), Eigen::VectorXd::Zero(4), {3, 2, 1, 0}};
    const sae::Assignment warmed = sae::solve_linear_assignment(constant, &warm);
    CHECK(warmed.row_to_col == std::vector<Index>{3, 2, 1, 0});
    CHECK(warmed.total_cost == 8.0);
    CHECK(sae::solve_linear_assignment(constant).total_cost == 8.0);
}

}  // namespace test_linear_assignment_cases

namespace test_linear_assignment_cases {

TEMPLATE_TEST_CASE("the candidate-list method is optimal on large square matrices of many kinds",
                   "[linear_assignment][candidates]", float, double) {
    const int kind = GENERATE(range(0, 7));
    const Index n = sae::detail::candidate_assignment_min_size + GENERATE(Index{0}, Index{129});
    const bool maximise = GENERATE(false, true);
    std::mt19937_64 rng(4000 + static_cast<std::uint64_t>(kind * 1000 + n));
    // The solver reads the matrix in its own Scalar; the checks use the same values in double.
    const sae::Matrix<TestType> cost = square_of_kind(kind, n, rng).cast<TestType>();
    const sae::Matrix<double> exact = cost.template cast<double>();
    sae::AssignmentWarmStart warm;
    const sae::Assignment result =
        maximise ? sae::solve_linear_assignment_max(cost, &warm) : sae::solve_linear_assignment(cost, &warm);
    check_valid(cost, result);
    check_certificate(exact, maximise, result, warm);
    const double dense = dense_optimum(exact, maximise);
    const double scale = std::max(1.0, exact.cwiseAbs().maxCoeff());
    CHECK_THAT(result.total_cost, Catch::Matchers::WithinAbs(dense, 1e-9 * scale * static_cast<double>(n)));
    if (kind >= 1 && kind <= 3) CHECK(result.total_cost == dense);  // integer sums are exact
}

TEMPLATE_TEST_CASE("the candidate-list method stays optimal from warm starts as a dictionary pair drifts",
                   "[linear_assignment][candidates][warm_start]", float, double) {
    // MFR's refresh: the cosines of two dictionaries that move a little between solves,
    // each solve warm-started from the last one's state.
    const bool maximise = GENERATE(false, true);
    std::mt19937_64 rng(77);
    const Index n = 300, d = 24;
    sae::Matrix<double> first = unit_rows(n, d, rng), second = unit_rows(n, d, rng);
    std::normal_distribution<double> drift(0.0, 0.05);
    sae::AssignmentWarmStart warm;
    for (int step = 0; step < 5; ++step) {
        const sae::Matrix<TestType> cosines = (first * second.transpose()).cast<TestType>();
        const sae::Matrix<double> exact = cosines.template cast<double>();
        const sae::Assignment result =
            maximise ? sae::solve_linear_assignment_max(cosines, &warm) : sae::solve_linear_assignment(cosines, &warm);
        check_valid(cosines, result);
        check_certificate(exact, maximise, result, warm);
        CHECK_THAT(result.total_cost, Catch::Matchers::WithinAbs(dense_optimum(exact, maximise), 1e-9 * n));
        for (Index i = 0; i < first.size(); ++i) {
            first.data()[i] += drift(rng);
            second.data()[i] += drift(rng);
        }
        first = first.rowwise().normalized();
        second = second.rowwise().normalized();
    }
}

TEST_CASE("when the candidate-list method gives up, the dense method finishes from its state",
          "[linear_assignment][candidates]") {
    // With no rounds allowed nothing is proven; with one, a hard matrix (kind 3: every
    // row's cheapest columns are the same) may not be either. Either way the pairs and
    // potentials it leaves must start the dense method towards the same optimum.
    const int max_rounds = GENERATE(0, 1);
    const int kind = GENERATE(0, 3, 4);
    std::mt19937_64 rng(31 + static_cast<std::uint64_t>(kind));
    const sae::Matrix<double> cost = square_of_kind(kind, 200, rng);
    using Objective = sae::detail::AssignmentObjective;
    const Eigen::Ref<const sae::Matrix<double>> view(cost);  // outlives both solvers
    sae::detail::CandidateAssignmentSolver<double> candidates(view, 1.0, max_rounds);
    const bool proven = candidates.solve(nullptr, nullptr);
    if (max_rounds == 0) CHECK_FALSE(proven);
    double total = 0.0;
    if (proven) {
        for (Index row = 0; row < cost.rows(); ++row) total += cost(row, candidates.col_for_row()(row));
    } else {
        sae::detail::AugmentingPathSolver<double> dense(view, Objective::minimise);
        const auto& pairs = dense.solve(&candidates.col_potential(), &candidates.col_for_row());
        std::vector<char> used(static_cast<std::size_t>(cost.cols()), 0);
        for (Index row = 0; row < cost.rows(); ++row) {
            REQUIRE(pairs(row) >= 0);
            CHECK(used[static_cast<std::size_t>(pairs(row))] == 0);
            used[static_cast<std::size_t>(pairs(row))] = 1;
            total += cost(row, pairs(row));
        }
    }
    CHECK_THAT(total, Catch::Matchers::WithinAbs(dense_optimum(cost, false), 1e-9 * 200));
}

TEST_CASE("double entries beyond float's range are solved by the dense method", "[linear_assignment][candidates]") {
    // The candidate passes run in float: 1e200 would overflow them. A planted
    // permutation of zeros among entries in [1e200, 2e200] is the unique optimum.
    std::mt19937_64 rng(12);
    const Index n = 150;
    sae::Matrix<double> cost = 1e200 * random_matrix(n, n, rng, 1.0, 2.0);
    std::vector<Index> planted(static_cast<std::size_t>(n));
    std::iota(planted.begin(), planted.end(), Index{0});
    std::shuffle(planted.begin(), planted.end(), rng);
    for (Index row = 0; row < n; ++row) cost(row, planted[static_cast<std::size_t>(row)]) = 0.0;
    const sae::Assignment result = sae::solve_linear_assignment(cost);
    CHECK(result.row_to_col == planted);
    CHECK(result.total_cost == 0.0);
}

TEST_CASE("a warm start of the candidate-list method keeps its pairs among ties", "[linear_assignment][candidates]") {
    // As for the dense method: on a constant matrix every permutation is optimal, and the
    // old one (the reversal) is kept.
    const Index n = 200;
    const sae::Matrix<double> constant = sae::Matrix<double>::Constant(n, n, 2.0);
    std::vector<Index> reversal(static_cast<std::size_t>(n));
    for (Index row = 0; row < n; ++row) reversal[static_cast<std::size_t>(row)] = n - 1 - row;
    sae::AssignmentWarmStart warm{Eigen::VectorXd::Zero(n), Eigen::VectorXd::Zero(n), reversal};
    const sae::Assignment warmed = sae::solve_linear_assignment(constant, &warm);
    CHECK(warmed.row_to_col == reversal);
    CHECK(warmed.total_cost == 2.0 * static_cast<double>(n));
}

}  // namespace test_linear_assignment_cases
