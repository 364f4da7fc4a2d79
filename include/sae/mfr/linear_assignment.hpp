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
///   solve_linear_assignment(cost, &warm), solve_linear_assignment_max(score, &warm)
///     warm: AssignmentWarmStart, the state of an earlier solve to start from; filled on
///     return for the next call. Null, empty, of another shape or non-finite = cold start.
///     ensures: the same as without it: an optimal assignment, whatever `warm` holds
///              (a state from an unrelated matrix or the other objective only costs time).
///              When several assignments are optimal, a warm start may pick another of
///              them than the cold solve; otherwise the pairs are the same.
///     warm on return: the dual solution of the solve, in the caller's orientation.
///       With s = +1 (minimise) or -1 (maximise): u_r + v_c <= s * entry(r, c) for
///       every entry, with equality on the chosen pairs (up to rounding), so
///       sum(u) + sum(v) = s * total_cost; the potentials of the longer side are <= 0
///       and 0 where unpaired. row_to_col as in the Assignment.
///     Use: re-solving a matrix that changed a little (MFR's matching refresh). The old
///       column potentials v are kept, each row takes u_r = min_c (s * entry - v_c),
///       which is dual feasible by construction, and keeps its old column if that
///       column still attains the minimum exactly; only the other rows are searched
///       for. Rectangular: v is clamped to <= 0 and set to 0 on the columns left free
///       (with the rows they undercut re-minimised), the condition a rectangular
///       optimum needs; then the cold method's phases run on the rows still free.
///       Cost: O(rows * cols) for the restart plus the searches of the rows that moved.
///
/// Cost: O(n^2 m) time in the worst case, n = min(rows, cols), m = max(rows, cols), much
/// less when most rows have a distinct cheapest column (e.g. two similar dictionaries).
/// Square float or double matrices from 128 rows on (MFR's cosine matrices) are solved
/// by the candidate-list method of candidate_assignment.hpp: the searches run on each
/// row's few cheapest entries and whole-matrix passes prove the result optimal (or
/// add the entries that were missing), so a solve reads the matrix a few times instead
/// of once per search step (measured against SciPy: README, Performance). Same
/// guarantees; if its rounds do not prove optimality, the dense method below finishes
/// from its state. Which of several optimal assignments is returned may
/// differ between the two methods (and between warm and cold starts), never the total.
/// All arithmetic is in double whatever the input Scalar; entries are converted as they
/// are read, so a row-major matrix with rows <= cols (or a row block of one) is used in
/// place. Any other input is copied once, in its own Scalar (a tall matrix transposed).
/// O(m) work vectors are allocated once per call, never inside the search loops.

#include "sae/core/error.hpp"
#include "sae/core/types.hpp"
#include "sae/mfr/augmenting_row_reduction.hpp"
#include "sae/mfr/candidate_assignment.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

/// The pairs chosen by a linear assignment and their summed cost (or score).
struct Assignment {
    std::vector<Index> row_to_col;  ///< [rows]; -1 for a row left unpaired (rows > cols)
    std::vector<Index> col_to_row;  ///< [cols]; -1 for a column left unpaired (cols > rows)
    double total_cost = 0.0;        ///< sum of the input entries over the chosen pairs
};

/// What a solve leaves for the next solve of a similar matrix of the same shape: its
/// dual potentials and pairs (see the file abstract). Default-constructed = cold start.
struct AssignmentWarmStart {
    Eigen::VectorXd row_potential;  ///< [rows] u
    Eigen::VectorXd col_potential;  ///< [cols] v
    std::vector<Index> row_to_col;  ///< [rows]; -1 for an unpaired row
};

namespace detail {

/// Throw numeric_error naming the first non-finite entry of `m`; `context` says which
/// function and which matrix, so the message points at the caller's argument.
template <class Derived>
void assignment_require_finite(const Eigen::MatrixBase<Derived>& m, const std::string& context) {
    using Scalar = typename Derived::Scalar;
    if constexpr (!std::is_floating_point_v<Scalar>) {
        return;  // integers are always finite
    } else {
        // x * 0 sums to 0 exactly when every x is finite; a reduction that vectorises
        // (Eigen's allFinite does not), so the check costs little next to the solve.
        bool finite = true;
        for (Index r = 0; r < m.rows() && finite; ++r) finite = (m.row(r).array() * Scalar(0)).sum() == Scalar(0);
        if (finite) return;
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

    /// Column paired with each row (every row is paired, since rows <= cols). With
    /// `previous_col_potential` and `previous_pairs` (v and the row -> column pairs of
    /// an earlier solve, [cols] and [rows]), starts from them (restart_from_previous)
    /// when they fit; otherwise from scratch.
    const IndexVector& solve(const Eigen::VectorXd* previous_col_potential = nullptr,
                             const IndexVector* previous_pairs = nullptr) {
        const bool warm = previous_col_potential != nullptr && previous_pairs != nullptr &&
                          restart_from_previous(*previous_col_potential, *previous_pairs);
        if (!warm) {
            row_potential_.setZero();
            col_potential_.setZero();
            col_for_row_.setConstant(-1);
            row_for_col_.setConstant(-1);
            if (n_rows_ == n_cols_) {
                reduce_square();
            } else {
                pair_rows_with_their_cheapest_cols();
            }
        }
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

    /// The dual potentials after solve(): u [rows] and v [cols] (see the file abstract).
    const Eigen::VectorXd& row_potential() const { return row_potential_; }
    const Eigen::VectorXd& col_potential() const { return col_potential_; }

private:
    static constexpr double infinity = std::numeric_limits<double>::infinity();

    const Scalar* row_data(Index row) const { return cost_.data() + row * cost_.outerStride(); }

    Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> row_entries(Index row) const {
        return {row_data(row), n_cols_};
    }

    /// reduced_ = sign * cost(row, :) - v, the row's reduced costs with u = 0.
    void load_reduced_costs(Index row) {
        reduced_ = sign_ * row_entries(row).template cast<double>() - col_potential_.array();
    }

    /// Warm start from an earlier solve's column potentials v and pairs. Each row takes
    /// u = min over columns of (reduced cost with u = 0), so every reduced cost is >= 0,
    /// and keeps its old column when that column attains the minimum exactly (and no
    /// row before it took the column): those edges are tight. Rectangular (rows < cols)
    /// optima also need v <= 0 everywhere and v = 0 on the free columns: v is clamped,
    /// then each free column with v < 0 is raised to 0, which lowers u of every row it
    /// now undercuts and frees that row's column in turn (each column is raised at most
    /// once). A free row whose cheapest column is free then takes it. Square matrices
    /// go on with the cold method's augmenting row reduction instead. False (state to
    /// be reset) when the inputs do not fit this matrix, give non-finite potentials, or
    /// have potentials beyond n_cols times the largest |entry| (an earlier solve of a
    /// matrix of this scale leaves a few times it; larger ones would cost precision).
    bool restart_from_previous(const Eigen::VectorXd& previous_col_potential, const IndexVector& previous_pairs) {
        if (previous_col_potential.size() != n_cols_ || previous_pairs.size() != n_rows_ ||
            !previous_col_potential.allFinite()) {
            return false;
        }
        const bool square = n_rows_ == n_cols_;
        Eigen::VectorXd& v = col_potential_;
        v = square ? previous_col_potential : previous_col_potential.cwiseMin(0.0);
        col_for_row_.setConstant(-1);
        row_for_col_.setConstant(-1);
        IndexVector cheapest(n_rows_);  // a column attaining each row's minimum
        double largest_entry = 0.0;
        for (Index row = 0; row < n_rows_; ++row) {
            load_reduced_costs(row);
            largest_entry = std::max(largest_entry, static_cast<double>(row_entries(row).abs().maxCoeff()));
            Index best = 0;
            row_potential_(row) = reduced_.minCoeff(&best);
            cheapest(row) = best;
            if (!std::isfinite(row_potential_(row))) return false;
            const Index old_col = previous_pairs(row);
            if (old_col >= 0 && old_col < n_cols_ && row_for_col_(old_col) < 0 && reduced_(old_col) == row_potential_(row)) {
                col_for_row_(row) = old_col;
                row_for_col_(old_col) = row;
            }
        }
        if (v.cwiseAbs().maxCoeff() > static_cast<double>(n_cols_) * largest_entry) return false;
        if (square) {
            std::vector<Index> free_rows;
            for (Index row = 0; row < n_rows_; ++row) {
                if (col_for_row_(row) < 0) free_rows.push_back(row);
            }
            if (n_rows_ > 1) {
                for (int round = 0; round < 2 && !free_rows.empty(); ++round) augmenting_row_reduction(free_rows);
            }
            set_row_potentials_to_reduced_minima();
        } else {
            raise_free_col_potentials_to_zero(cheapest);
            for (Index row = 0; row < n_rows_; ++row) {
                const Index col = cheapest(row);
                if (col_for_row_(row) < 0 && row_for_col_(col) < 0) {
                    col_for_row_(row) = col;
                    row_for_col_(col) = row;
                }
            }
        }
        return true;
    }

    /// See restart_from_previous: v = 0 on every free column, u and `cheapest` kept the
    /// row minima, and a paired row whose column stops being a cheapest one is freed.
    void raise_free_col_potentials_to_zero(IndexVector& cheapest) {
        std::vector<Index> raise;
        for (Index col = 0; col < n_cols_; ++col) {
            if (row_for_col_(col) < 0 && col_potential_(col) < 0.0) raise.push_back(col);
        }
        while (!raise.empty()) {
            const Index col = raise.back();
            raise.pop_back();
            col_potential_(col) = 0.0;
            for (Index row = 0; row < n_rows_; ++row) {
                const double value = sign_ * static_cast<double>(row_data(row)[col]);
                if (!(value < row_potential_(row))) continue;
                row_potential_(row) = value;
                cheapest(row) = col;
                const Index held = col_for_row_(row);
                if (held < 0) continue;
                col_for_row_(row) = -1;
                row_for_col_(held) = -1;
                if (col_potential_(held) < 0.0) raise.push_back(held);
            }
        }
    }

    /// u = the reduced cost of each paired row's column, the row minimum for a free row.
    void set_row_potentials_to_reduced_minima() {
        for (Index row = 0; row < n_rows_; ++row) {
            const Index col = col_for_row_(row);
            if (col >= 0) {
                row_potential_(row) = sign_ * static_cast<double>(row_data(row)[col]) - col_potential_(col);
            } else {
                load_reduced_costs(row);
                row_potential_(row) = reduced_.minCoeff();
            }
        }
    }

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

    /// Warm start of a square matrix, Jonker & Volgenant's initialisation (1987): column
    /// reduction (v = column minima, each column's cheapest row takes it if still free),
    /// reduction transfer (a row that took a single column lowers that column's v to
    /// its second-cheapest reduced cost), then two rounds of augmenting row reduction
    /// (each free row takes its cheapest column, lowering v so that the column's reduced
    /// cost for it equals its second cheapest, and evicts the column's previous row, which
    /// tries again). Every paired row's column stays a cheapest one for it, so with
    /// u = that reduced cost (the row minimum for rows left free) every reduced cost is
    /// >= 0 and the matched ones are 0, which is what the shortest-path phase needs.
    /// (A rectangular optimum needs v = 0 on the columns left free, which this does not
    /// keep; rows < cols use pair_rows_with_their_cheapest_cols.)
    void reduce_square() {
        const Index n = n_rows_;
        Eigen::VectorXd& v = col_potential_;
        v.setConstant(infinity);
        for (Index row = 0; row < n; ++row) {
            const Scalar* cost_row = row_data(row);
            for (Index col = 0; col < n; ++col) {
                const double value = sign_ * static_cast<double>(cost_row[col]);
                const bool lower = value < v(col);
                v(col) = lower ? value : v(col);
                row_for_col_(col) = lower ? row : row_for_col_(col);
            }
        }
        std::vector<char> single(static_cast<std::size_t>(n), 1);
        for (Index col = n - 1; col >= 0; --col) {
            const Index row = row_for_col_(col);
            if (col_for_row_(row) < 0) {
                col_for_row_(row) = col;
            } else {
                single[static_cast<std::size_t>(row)] = 0;
                row_for_col_(col) = -1;
            }
        }
        std::vector<Index> free_rows;
        for (Index row = 0; row < n; ++row) {
            const Index col = col_for_row_(row);
            if (col < 0) {
                free_rows.push_back(row);
            } else if (single[static_cast<std::size_t>(row)] && n > 1) {
                const Scalar* cost_row = row_data(row);
                double second = infinity;
                for (Index other = 0; other < n; ++other) {
                    const double reduced = sign_ * static_cast<double>(cost_row[other]) - v(other);
                    second = other == col ? second : std::min(second, reduced);
                }
                v(col) -= second;
            }
        }
        for (int round = 0; round < 2 && !free_rows.empty(); ++round) augmenting_row_reduction(free_rows);
        set_row_potentials_to_reduced_minima();
    }

    /// One round of augmenting_row_reduction.hpp over whole rows (n >= 2).
    void augmenting_row_reduction(std::vector<Index>& free_rows) {
        detail::augmenting_row_reduction(free_rows, n_rows_, col_potential_, col_for_row_, row_for_col_,
                                         [&](Index row) { return two_smallest_reduced(row); });
    }

    /// The smallest and second smallest reduced cost sign * cost - v of a row,
    /// in three vectorised steps: the row's reduced costs into a buffer, their minimum in
    /// every piece of 64 columns, and the two smallest among those minima; then only the
    /// (at most two) pieces holding the answers are searched column by column. Ties go to
    /// the lower column, as a left-to-right scan would give them.
    TwoSmallest two_smallest_reduced(Index row) {
        constexpr Index piece = 64;
        const Index n = n_cols_;
        const Index pieces = (n + piece - 1) / piece;
        load_reduced_costs(row);
        TwoSmallest pieces_minima;  // "columns" here are pieces
        for (Index p = 0; p < pieces; ++p) {
            pieces_minima.offer(reduced_.segment(p * piece, std::min(piece, n - p * piece)).minCoeff(), p);
        }
        const Index best_piece = pieces_minima.first_col, runner_up_piece = pieces_minima.second_col;
        const double runner_up = pieces_minima.second;
        // The first minimum and the smallest other value inside the best piece.
        TwoSmallest result;
        const Index begin = best_piece * piece, end = std::min(n, begin + piece);
        for (Index col = begin; col < end; ++col) result.offer(reduced_(col), col);
        // A smaller second, or an equal one at a lower column, in the runner-up piece.
        if (runner_up_piece >= 0 && (runner_up < result.second || (runner_up == result.second && runner_up_piece < best_piece))) {
            const Index first_col = runner_up_piece * piece;
            for (Index col = first_col; col < std::min(n, first_col + piece); ++col) {
                if (reduced_(col) == runner_up) {
                    result.second = runner_up;
                    result.second_col = col;
                    break;
                }
            }
        }
        return result;
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
    Eigen::ArrayXd reduced_;         // scratch of two_smallest_reduced
    IndexVector path_row_;           // predecessor row of each column in the search tree
    IndexVector col_for_row_;
    IndexVector row_for_col_;
    IndexVector tree_rows_;  // rows reached by the current search, start row first
    Index n_tree_rows_ = 0;
};

/// Solve a finite matrix with rows <= cols, `wide`, and write its pairs into `result`
/// (swapped back to the caller's orientation when `wide` is the caller's transpose).
/// `warm` (may be null) is read in the caller's orientation before the solve and
/// written after it.
template <class Scalar>
void assign_wide(const Eigen::Ref<const Matrix<Scalar>>& wide, AssignmentObjective objective, bool transposed,
                 AssignmentWarmStart* warm, Assignment& result) {
    using Solver = AugmentingPathSolver<Scalar>;
    const Index rows = transposed ? wide.cols() : wide.rows();
    const Index cols = transposed ? wide.rows() : wide.cols();
    // The solver's columns are the caller's rows when `wide` is transposed.
    const bool fits = warm != nullptr && warm->row_potential.size() == rows && warm->col_potential.size() == cols &&
                      warm->row_to_col.size() == static_cast<std::size_t>(rows);
    typename Solver::IndexVector previous_pairs;
    if (fits) {
        previous_pairs.setConstant(wide.rows(), -1);
        for (Index row = 0; row < rows; ++row) {
            const Index col = warm->row_to_col[static_cast<std::size_t>(row)];
            if (col < 0 || col >= cols) continue;  // out-of-range pairs are ignored
            Index& slot = transposed ? previous_pairs(col) : previous_pairs(row);
            if (slot < 0) slot = transposed ? row : col;
        }
    }
    const Eigen::VectorXd* previous_col_potential =
        fits ? (transposed ? &warm->row_potential : &warm->col_potential) : nullptr;
    Solver solver(wide, objective);
    const typename Solver::IndexVector* solved = nullptr;
    // Large square matrices (MFR's) go through the candidate-list method first.
    std::optional<CandidateAssignmentSolver<Scalar>> candidates;
    if constexpr (std::is_floating_point_v<Scalar>) {
        if (wide.rows() == wide.cols() && wide.rows() >= candidate_assignment_min_size) {
            candidates.emplace(wide, objective == AssignmentObjective::minimise ? 1.0 : -1.0);
            if (candidates->solve(previous_col_potential, fits ? &previous_pairs : nullptr)) {
                solved = &candidates->col_for_row();
            } else {
                // Not proven optimal within its rounds: the dense method finishes from there.
                solved = &solver.solve(&candidates->col_potential(), &candidates->col_for_row());
                candidates.reset();
            }
        }
    }
    if (solved == nullptr) {
        solved = fits ? &solver.solve(previous_col_potential, &previous_pairs) : &solver.solve();
    }
    const typename Solver::IndexVector& pairs = *solved;
    for (Index k = 0; k < pairs.size(); ++k) {
        const Index row = transposed ? pairs(k) : k;
        const Index col = transposed ? k : pairs(k);
        result.row_to_col[static_cast<std::size_t>(row)] = col;
        result.col_to_row[static_cast<std::size_t>(col)] = row;
        result.total_cost += static_cast<double>(wide(k, pairs(k)));
    }
    if (warm != nullptr) {
        const Eigen::VectorXd& u = candidates ? candidates->row_potential() : solver.row_potential();
        const Eigen::VectorXd& v = candidates ? candidates->col_potential() : solver.col_potential();
        warm->row_potential = transposed ? v : u;
        warm->col_potential = transposed ? u : v;
        warm->row_to_col = result.row_to_col;
    }
}

/// Optimal assignment of a finite matrix of any shape. The solver needs rows <= cols,
/// so a tall matrix is solved transposed.
template <class Derived>
Assignment solve_finite_assignment(const Eigen::MatrixBase<Derived>& cost, AssignmentObjective objective,
                                   AssignmentWarmStart* warm = nullptr) {
    using Scalar = typename Derived::Scalar;
    Assignment result{std::vector<Index>(static_cast<std::size_t>(cost.rows()), -1),
                      std::vector<Index>(static_cast<std::size_t>(cost.cols()), -1), 0.0};
    if (cost.rows() == 0 || cost.cols() == 0) {
        if (warm != nullptr) {
            *warm = AssignmentWarmStart{Eigen::VectorXd::Zero(cost.rows()), Eigen::VectorXd::Zero(cost.cols()), result.row_to_col};
        }
        return result;
    }
    if (cost.rows() <= cost.cols()) {
        // No copy when `cost` is a row-major Matrix<Scalar> or a row block of one.
        const Eigen::Ref<const Matrix<Scalar>> wide(cost.derived());
        assign_wide<Scalar>(wide, objective, false, warm, result);
    } else {
        const Matrix<Scalar> wide = cost.transpose();
        assign_wide<Scalar>(wide, objective, true, warm, result);
    }
    return result;
}

}  // namespace detail

/// Pair rows with columns so that the summed cost is minimal (see the file abstract);
/// `warm`, when given, is the previous solve's state to start from and receives this one's.
template <class Derived>
Assignment solve_linear_assignment(const Eigen::MatrixBase<Derived>& cost, AssignmentWarmStart* warm = nullptr) {
    detail::assignment_require_finite(cost, "solve_linear_assignment: cost");
    return detail::solve_finite_assignment(cost, detail::AssignmentObjective::minimise, warm);
}

/// Pair rows with columns so that the summed score is maximal; total_cost holds that
/// maximal summed score. `warm` as for solve_linear_assignment.
template <class Derived>
Assignment solve_linear_assignment_max(const Eigen::MatrixBase<Derived>& score, AssignmentWarmStart* warm = nullptr) {
    detail::assignment_require_finite(score, "solve_linear_assignment_max: score");
    return detail::solve_finite_assignment(score, detail::AssignmentObjective::maximise, warm);
}

}  // namespace sae
