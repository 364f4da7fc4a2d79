#pragma once
/// \file linear_assignment.hpp
/// Exact linear assignment on a dense rectangular matrix: the shortest-augmenting-path
/// method of Jonker & Volgenant in the rectangular form of Crouse (2016, "On implementing
/// 2D rectangular assignment algorithms"), the algorithm behind SciPy's
/// linear_sum_assignment. MFR uses it to pair the features of two dictionaries.
///
/// Abstract:
///   Assignment solve_linear_assignment(cost)        cost: any dense matrix [rows, cols]
///                                                   (any Scalar, rows and cols independent,
///                                                   0 allowed).
///     requires: every entry finite, else numeric_error naming the (row, col) at fault.
///     ensures:  exactly min(rows, cols) (row, col) pairs, no row or column used twice;
///               the sum of their costs (total_cost) is minimal over all such pair sets.
///               row_to_col[r] / col_to_row[c] is -1 for the unpaired rows / columns.
///   Assignment solve_linear_assignment_max(score)   the same with total_cost maximal.
///
/// Cost: O(n^2 m) time in the worst case, n = min(rows, cols), m = max(rows, cols), much
/// less when most rows have a distinct cheapest column (e.g. two similar dictionaries).
/// All arithmetic is in double whatever the input Scalar; entries are converted as they
/// are read, so a row-major matrix with rows <= cols (or a row block of one) is used in
/// place. Any other input is copied once, in its own Scalar (a tall matrix transposed).
/// O(m) work vectors are allocated once per call, never inside the search loops.

#include "sae/core/error.hpp"
#include "sae/core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace sae {

/// The pairs chosen by a linear assignment and their summed cost (or score).
struct Assignment {
    std::vector<Index> row_to_col;  ///< [rows]; -1 for a row left unpaired (rows > cols)
    std::vector<Index> col_to_row;  ///< [cols]; -1 for a column left unpaired (cols > rows)
    double total_cost = 0.0;        ///< sum of the input entries over the chosen pairs
};

namespace detail {

/// Throw numeric_error naming the first non-finite entry of `m`; `context` says which
/// function and which matrix, so the message points at the caller's argument.
template <class Derived>
void assignment_require_finite(const Eigen::MatrixBase<Derived>& m, const std::string& context) {
    if (m.allFinite()) {
        return;
    }
    for (Index r = 0; r < m.rows(); ++r) {
        for (Index c = 0; c < m.cols(); ++c) {
            const double value = static_cast<double>(m(r, c));
            if (!std::isfinite(value)) {
                throw numeric_error(context + "(" + std::to_string(r) + ", " + std::to_string(c) +
                                    ") = " + std::to_string(value) + " is not finite");
            }
        }
    }
}

/// Whether the sum over the pairs is to be made as small or as large as possible.
enum class AssignmentObjective { minimise, maximise };

/// Shortest-augmenting-path solver for a row-major matrix with rows <= cols. It
/// minimises sign * entry (sign = -1 maximises; multiplying by -1 is exact).
/// Rows join the assignment one at a time: a Dijkstra search over reduced costs
/// (cost - u[row] - v[col], kept non-negative on the paired rows by the dual potentials
/// u, v) finds the cheapest path from the new row to a free column, the potentials are
/// updated so the reduced costs stay non-negative, and the path is flipped.
///
/// Speed: the inner loop sweeps whole contiguous rows instead of a list of unscanned
/// columns, so it has no gathers and few branches. A column already in the search tree
/// is masked by adding +inf to its reduced cost (tree_mask_), which keeps it out of both
/// the relaxation and the minimum without a test.
template <class Scalar>
class AugmentingPathSolver {
public:
    using CostRef = Eigen::Ref<const Matrix<Scalar>>;
    using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

    /// `cost` must outlive the solver (it is read in place).
    AugmentingPathSolver(const CostRef& cost, AssignmentObjective objective)
        : cost_(cost),
          sign_(objective == AssignmentObjective::minimise ? 1.0 : -1.0),
          n_rows_(cost.rows()),
          n_cols_(cost.cols()),
          row_potential_(Eigen::VectorXd::Zero(n_rows_)),
          col_potential_(Eigen::VectorXd::Zero(n_cols_)),
          path_cost_(n_cols_),
          tree_mask_(n_cols_),
          path_row_(IndexVector::Constant(n_cols_, -1)),
          col_for_row_(IndexVector::Constant(n_rows_, -1)),
          row_for_col_(IndexVector::Constant(n_cols_, -1)),
          tree_rows_(n_rows_) {}

    /// Column paired with each row (every row is paired, since rows <= cols).
    const IndexVector& solve() {
        pair_rows_with_their_cheapest_cols();
        for (Index row = 0; row < n_rows_; ++row) {
            if (col_for_row_(row) < 0) {
                double path_length = 0.0;
                const Index free_col = shortest_path_to_free_col(row, path_length);
                update_potentials(path_length);
                flip_path(row, free_col);
            }
        }
        return col_for_row_;
    }

private:
    static constexpr double infinity = std::numeric_limits<double>::infinity();

    const Scalar* row_data(Index row) const { return cost_.data() + row * cost_.outerStride(); }

    /// Warm start: u = row minima, v = 0 is dual feasible (every reduced cost >= 0, and
    /// v = 0 on the free columns as the rectangular optimum requires), and each row whose
    /// cheapest column is still free takes it along a tight (zero reduced cost) edge.
    /// When most rows have a distinct cheapest column, as for two similar dictionaries,
    /// this pairs them without any search.
    void pair_rows_with_their_cheapest_cols() {
        for (Index row = 0; row < n_rows_; ++row) {
            const Scalar* cost_row = row_data(row);
            Index cheapest = 0;
            for (Index col = 1; col < n_cols_; ++col) {
                cheapest = sign_ * static_cast<double>(cost_row[col]) < sign_ * static_cast<double>(cost_row[cheapest])
                               ? col
                               : cheapest;
            }
            row_potential_(row) = sign_ * static_cast<double>(cost_row[cheapest]);
            if (row_for_col_(cheapest) < 0) {
                row_for_col_(cheapest) = row;
                col_for_row_(row) = cheapest;
            }
        }
    }

    /// Dijkstra from `start_row`; returns the free column reached first and sets
    /// `path_length` to its reduced path cost. path_row_ records the search tree and
    /// tree_rows_[0, n_tree_rows_) the rows it reached.
    Index shortest_path_to_free_col(Index start_row, double& path_length) {
        path_cost_.setConstant(infinity);
        tree_mask_.setZero();
        n_tree_rows_ = 0;
        path_length = 0.0;
        Index row = start_row;
        for (;;) {
            tree_rows_(n_tree_rows_++) = row;
            const double nearest = relax_row(row, path_length);
            if (!(nearest < infinity)) {
                // Only finite inputs whose differences overflow double (|cost| near 1e308) get here.
                throw numeric_error("solve_linear_assignment: cost magnitudes overflow double arithmetic");
            }
            const Index col = pick_nearest_col(nearest);
            path_length = nearest;
            tree_mask_(col) = infinity;
            if (row_for_col_(col) < 0) {
                return col;
            }
            row = row_for_col_(col);
        }
    }

    /// Relax the edges of `row` to every column outside the tree; return the smallest
    /// path cost among those columns. This is the O(cols) inner loop.
    double relax_row(Index row, double path_length) {
        const Scalar* cost_row = row_data(row);
        const double* col_potential = col_potential_.data();
        const double* mask = tree_mask_.data();
        double* path_cost = path_cost_.data();
        Index* path_row = path_row_.data();
        const double offset = path_length - row_potential_(row);
        double nearest = infinity;
        for (Index col = 0; col < n_cols_; ++col) {
            const double reduced = offset + sign_ * static_cast<double>(cost_row[col]) - col_potential[col] + mask[col];
            const bool shorter = reduced < path_cost[col];
            path_cost[col] = shorter ? reduced : path_cost[col];
            path_row[col] = shorter ? row : path_row[col];
            nearest = std::min(nearest, path_cost[col] + mask[col]);
        }
        return nearest;
    }

    /// A column outside the tree at distance `nearest`, a free one if there is one:
    /// the search ends there instead of growing the tree by another row.
    Index pick_nearest_col(double nearest) const {
        Index first = -1;
        for (Index col = 0; col < n_cols_; ++col) {
            if (path_cost_(col) + tree_mask_(col) == nearest) {
                if (row_for_col_(col) < 0) {
                    return col;
                }
                first = first < 0 ? col : first;
            }
        }
        return first;
    }

    /// Keep every reduced cost non-negative and make the new tree's edges tight (zero).
    /// The start row is the one tree row not yet paired; its path cost is 0 by definition.
    void update_potentials(double path_length) {
        row_potential_(tree_rows_(0)) += path_length;
        for (Index k = 1; k < n_tree_rows_; ++k) {
            const Index row = tree_rows_(k);
            row_potential_(row) += path_length - path_cost_(col_for_row_(row));
        }
        col_potential_.array() -= (tree_mask_.array() > 0.0).select(path_length - path_cost_.array(), 0.0);
    }

    /// Walk back from the free column to the start row, re-pairing along the path.
    void flip_path(Index start_row, Index free_col) {
        Index col = free_col;
        for (;;) {
            const Index row = path_row_(col);
            row_for_col_(col) = row;
            std::swap(col_for_row_(row), col);
            if (row == start_row) {
                return;
            }
        }
    }

    const CostRef& cost_;
    double sign_;
    Index n_rows_;
    Index n_cols_;
    Eigen::VectorXd row_potential_;  // u
    Eigen::VectorXd col_potential_;  // v
    Eigen::VectorXd path_cost_;      // reduced distance from the start row to each column
    Eigen::VectorXd tree_mask_;      // +inf for a column in the search tree, else 0
    IndexVector path_row_;           // predecessor row of each column in the search tree
    IndexVector col_for_row_;
    IndexVector row_for_col_;
    IndexVector tree_rows_;  // rows reached by the current search, start row first
    Index n_tree_rows_ = 0;
};

/// Solve a finite matrix with rows <= cols, `wide`, and write its pairs into `result`
/// (swapped back to the caller's orientation when `wide` is the caller's transpose).
template <class Scalar>
void assign_wide(const Eigen::Ref<const Matrix<Scalar>>& wide, AssignmentObjective objective, bool transposed,
                 Assignment& result) {
    AugmentingPathSolver<Scalar> solver(wide, objective);
    const typename AugmentingPathSolver<Scalar>::IndexVector& pairs = solver.solve();
    for (Index k = 0; k < pairs.size(); ++k) {
        const Index row = transposed ? pairs(k) : k;
        const Index col = transposed ? k : pairs(k);
        result.row_to_col[static_cast<std::size_t>(row)] = col;
        result.col_to_row[static_cast<std::size_t>(col)] = row;
        result.total_cost += static_cast<double>(wide(k, pairs(k)));
    }
}

/// Optimal assignment of a finite matrix of any shape. The solver needs rows <= cols,
/// so a tall matrix is solved transposed.
template <class Derived>
Assignment solve_finite_assignment(const Eigen::MatrixBase<Derived>& cost, AssignmentObjective objective) {
    using Scalar = typename Derived::Scalar;
    Assignment result{std::vector<Index>(static_cast<std::size_t>(cost.rows()), -1),
                      std::vector<Index>(static_cast<std::size_t>(cost.cols()), -1), 0.0};
    if (cost.rows() == 0 || cost.cols() == 0) {
        return result;
    }
    if (cost.rows() <= cost.cols()) {
        // No copy when `cost` is a row-major Matrix<Scalar> or a row block of one.
        const Eigen::Ref<const Matrix<Scalar>> wide(cost.derived());
        assign_wide<Scalar>(wide, objective, false, result);
    } else {
        const Matrix<Scalar> wide = cost.transpose();
        assign_wide<Scalar>(wide, objective, true, result);
    }
    return result;
}

}  // namespace detail

/// Pair rows with columns so that the summed cost is minimal (see the file abstract).
template <class Derived>
Assignment solve_linear_assignment(const Eigen::MatrixBase<Derived>& cost) {
    detail::assignment_require_finite(cost, "solve_linear_assignment: cost");
    return detail::solve_finite_assignment(cost, detail::AssignmentObjective::minimise);
}

/// Pair rows with columns so that the summed score is maximal; total_cost holds that
/// maximal summed score.
template <class Derived>
Assignment solve_linear_assignment_max(const Eigen::MatrixBase<Derived>& score) {
    detail::assignment_require_finite(score, "solve_linear_assignment_max: score");
    return detail::solve_finite_assignment(score, detail::AssignmentObjective::maximise);
}

}  // namespace sae
