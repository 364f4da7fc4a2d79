#pragma once
/// \file candidate_assignment.hpp
/// Exact linear assignment of a large square matrix that reads most entries only in
/// vectorised passes: the shortest augmenting paths run on a few candidate entries per
/// row, and a pass over the whole matrix then proves the result optimal or adds the
/// entries that disprove it. linear_assignment.hpp uses it for square matrices from
/// `candidate_assignment_min_size` rows on (MFR's cosine matrices, SciPy-sized tests).
///
/// Why it is exact. The search keeps dual potentials u (rows), v (columns) with every
/// candidate's reduced cost c - u - v >= 0 and the paired entries at 0, as the dense
/// method does on all entries. When the pairs are complete, a pass over the whole
/// matrix checks that no other entry has a negative reduced cost either; then (u, v) is
/// a dual solution of equal value and the pairs are optimal by LP duality. A row that
/// fails the check takes its most negative entries as new candidates and u = its
/// row minimum of c - v (which makes the whole row feasible again); if that unpairs it,
/// it is paired again by a search, and the check repeats. Every round adds candidates
/// that were not there before, so the rounds end; after `max_rounds` the caller falls
/// back to the dense method, started from this state.
///
/// Why it is fast. The optimal partner of a row is almost always among its few cheapest
/// entries of c - v (with v the column minima, or an earlier solve's v): the searches
/// then visit ~10 entries per row instead of n, and the matrix is read in three to four
/// passes that vectorise (column minima, candidates, one or two checks).
///
/// A perfect matching always exists among the candidates (the earlier solve's pairs,
/// completed in column order, are always candidates), so a search cannot get stuck.
///
/// Costs are `sign * entry` in double (sign = -1 maximises), as in the dense solver.

#include "sae/core/types.hpp"
#include "sae/mfr/augmenting_row_reduction.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae::detail {

/// Square matrices from this many rows on go through CandidateAssignmentSolver; below
/// it the dense solver's O(n^2) passes are too cheap to be worth the bookkeeping.
inline constexpr Index candidate_assignment_min_size = 128;

template <class Scalar>
class CandidateAssignmentSolver {
public:
    using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

    /// `cost` (square, row-major, finite) must outlive the solver (it is read in place).
    /// `max_rounds`: how many checks solve() makes before it gives up (see the file comment).
    CandidateAssignmentSolver(const Eigen::Ref<const Matrix<Scalar>>& cost, double sign, int max_rounds = 12)
        : cost_(cost),
          sign_(sign),
          max_rounds_(max_rounds),
          n_(cost.rows()),
          row_potential_(Eigen::VectorXd::Zero(n_)),
          col_potential_(Eigen::VectorXd::Zero(n_)),
          outside_bound_(Eigen::VectorXd::Constant(n_, -infinity)),
          col_for_row_(IndexVector::Constant(n_, -1)),
          row_for_col_(IndexVector::Constant(n_, -1)),
          candidates_(static_cast<std::size_t>(n_)),
          reduced_(n_),
          piece_minima_((n_ + piece - 1) / piece),
          path_cost_(Eigen::VectorXd::Constant(n_, infinity)),
          path_row_(IndexVector::Constant(n_, -1)),
          scanned_(static_cast<std::size_t>(n_), 0) {}

    /// Pairs every row and returns true with pairs proven optimal; false when
    /// `max_rounds` checks did not prove them, or when a double matrix holds entries
    /// beyond float's range (the passes run in float). The state is then a sound warm
    /// start for the dense solver (potentials and the pairs made so far).
    /// previous_col_potential / previous_pairs: an earlier solve's v [n] and row -> column
    /// pairs [n], or null for a cold start (v = column minima).
    bool solve(const Eigen::VectorXd* previous_col_potential, const IndexVector* previous_pairs) {
        if constexpr (!std::is_same_v<Scalar, float>) {
            if (!(cost_.cwiseAbs().maxCoeff() <= static_cast<Scalar>(float_safe_magnitude))) return false;
        }
        const IndexVector seed = seed_pairs(previous_pairs);
        const bool warm = previous_col_potential != nullptr && previous_col_potential->size() == n_ &&
                          previous_col_potential->allFinite();
        if (warm) {
            col_potential_ = *previous_col_potential;
            select_candidates(seed);
        }
        // Potentials far beyond this matrix's scale (from an unrelated matrix) would cost
        // precision, as in the dense restart: start cold instead.
        if (!warm || col_potential_.cwiseAbs().maxCoeff() > static_cast<double>(n_) * largest_entry_) {
            set_col_potentials_to_column_minima();
            select_candidates(seed);
        }
        tolerance_ = 1e-12 * (1.0 + largest_entry_);
        reduce_free_rows();
        unchecked_.assign(static_cast<std::size_t>(n_), 0);
        for (Index row = 0; row < n_; ++row) {
            unchecked_[static_cast<std::size_t>(row)] = !(row_potential_(row) < outside_bound_(row));
        }
        for (int round = 0; round < max_rounds_; ++round) {
            for (Index row = 0; row < n_; ++row) {
                if (col_for_row_(row) < 0 && !augment_from(row)) return false;
            }
            if (!add_violated_candidates()) return true;
        }
        return false;
    }

    const IndexVector& col_for_row() const { return col_for_row_; }
    const Eigen::VectorXd& row_potential() const { return row_potential_; }
    const Eigen::VectorXd& col_potential() const { return col_potential_; }

private:
    static constexpr double infinity = std::numeric_limits<double>::infinity();
    /// Candidates per row at the start: the entries up to the k-th smallest minimum of
    /// the row's pieces, so at least this many (more only within a piece).
    static constexpr Index initial_candidates = 16;
    /// Most candidates a row gains in one check (its most negative reduced costs).
    static constexpr Index added_per_round = 32;
    /// Columns per piece: a row's passes keep the minimum of each piece, so that only the
    /// pieces that can hold a candidate (or a violation) are searched entry by entry.
    static constexpr Index piece = 32;
    /// Entries and potentials stay far inside float's range (about 3.4e38).
    static constexpr double float_safe_magnitude = 1e30;

    struct Candidate {
        Index col;
        double cost;  ///< sign * entry
    };

    const Scalar* row_data(Index row) const { return cost_.data() + row * cost_.outerStride(); }

    Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> row_entries(Index row) const { return {row_data(row), n_}; }

    double exact_cost(Index row, Index col) const { return sign_ * static_cast<double>(row_data(row)[col]); }

    /// The passes over the whole matrix run in float, 16 entries at a time with AVX-512,
    /// on reduced_ = sign * cost(row, :) - v rounded to float; every decision that needs
    /// the exact value (a row minimum, a violation) re-reads the few entries concerned in
    /// double (exact_cost). Also fills piece_minima_.
    void load_rounded_reduced_costs(Index row) {
        reduced_ = float(sign_) * float_entries(row) - rounded_col_potential_;
        const Index full = n_ / piece;
        piece_minima_.head(full) =
            Eigen::Map<const Eigen::Array<float, piece, Eigen::Dynamic>>(reduced_.data(), piece, full).colwise().minCoeff().transpose();
        if (full * piece < n_) piece_minima_(full) = reduced_.tail(n_ - full * piece).minCoeff();
    }

    /// The row's entries as float (an expression, read as it is used). No cast for a
    /// float matrix: Eigen's float -> float cast does not vectorise.
    auto float_entries(Index row) const {
        if constexpr (std::is_same_v<Scalar, float>) {
            return row_entries(row);
        } else {
            return row_entries(row).template cast<float>();
        }
    }

    void round_col_potentials() {
        rounded_col_potential_ = col_potential_.cast<float>().array();
        largest_potential_ = col_potential_.cwiseAbs().maxCoeff();
    }

    /// v = the column minima of sign * cost (the cold start).
    void set_col_potentials_to_column_minima() {
        Eigen::ArrayXf minima = Eigen::ArrayXf::Constant(n_, std::numeric_limits<float>::infinity());
        for (Index row = 0; row < n_; ++row) minima = minima.min(float(sign_) * float_entries(row));
        // Rounded for a double matrix: any finite v is a valid start (u is then set to
        // the candidates' minimum of the exact c - v).
        col_potential_ = minima.template cast<double>().matrix();
    }

    /// A perfect matching to keep among the candidates: the earlier pairs that are in
    /// range and claim distinct columns, the other rows given the unclaimed columns in order.
    IndexVector seed_pairs(const IndexVector* previous_pairs) const {
        IndexVector seed = IndexVector::Constant(n_, -1);
        std::vector<char> taken(static_cast<std::size_t>(n_), 0);
        if (previous_pairs != nullptr && previous_pairs->size() == n_) {
            for (Index row = 0; row < n_; ++row) {
                const Index col = (*previous_pairs)(row);
                if (col < 0 || col >= n_ || taken[static_cast<std::size_t>(col)] != 0) continue;
                seed(row) = col;
                taken[static_cast<std::size_t>(col)] = 1;
            }
        }
        Index next_free = 0;
        for (Index row = 0; row < n_; ++row) {
            if (seed(row) >= 0) continue;
            while (taken[static_cast<std::size_t>(next_free)] != 0) ++next_free;
            seed(row) = next_free;
            taken[static_cast<std::size_t>(next_free)] = 1;
        }
        return seed;
    }

    /// Each row's candidates: the entries of c - v (as rounded) up to the
    /// `initial_candidates`-th smallest minimum of its pieces, at most 2x that many
    /// with ties at that value, and its seed column. u = the smallest exact c - v among
    /// them; the row keeps its seed column when that attains it and no earlier row took it.
    void select_candidates(const IndexVector& seed) {
        col_for_row_.setConstant(-1);
        row_for_col_.setConstant(-1);
        round_col_potentials();
        const Index pieces = (n_ + piece - 1) / piece;
        const Index wanted = std::min(initial_candidates, pieces);
        std::vector<float> order(static_cast<std::size_t>(pieces));
        largest_entry_ = 0.0;
        for (Index row = 0; row < n_; ++row) {
            load_rounded_reduced_costs(row);
            const double row_largest = static_cast<double>(row_entries(row).abs().maxCoeff());
            largest_entry_ = std::max(largest_entry_, row_largest);
            std::copy(piece_minima_.data(), piece_minima_.data() + pieces, order.begin());
            std::nth_element(order.begin(), order.begin() + (wanted - 1), order.end());
            const float bound = order[static_cast<std::size_t>(wanted - 1)];
            std::vector<Candidate>& list = candidates_[static_cast<std::size_t>(row)];
            list.clear();
            Index ties = 0;
            for (Index p = 0; p < pieces; ++p) {
                if (piece_minima_(p) > bound) continue;
                for (Index col = p * piece; col < std::min(n_, (p + 1) * piece); ++col) {
                    if (reduced_(col) < bound || (reduced_(col) == bound && ties++ < wanted)) {
                        list.push_back({col, exact_cost(row, col)});
                    }
                }
            }
            const Index seed_col = seed(row);
            if (!holds(list, seed_col)) list.push_back({seed_col, exact_cost(row, seed_col)});
            record_outside_bound(row, row_largest);
            const double minimum = cheapest_candidate(row);
            row_potential_(row) = minimum;
            if (exact_cost(row, seed_col) - col_potential_(seed_col) == minimum && row_for_col_(seed_col) < 0) {
                pair(row, seed_col);
            }
        }
    }

    /// Jonker & Volgenant's augmenting row reduction on the candidates (two rounds, as
    /// the dense solver's): each free row takes its cheapest candidate column, lowering
    /// that column's v so its reduced cost for the row equals the row's second cheapest,
    /// and evicts the column's previous row, which tries again. Most rows are then paired
    /// without a search. Afterwards every paired row's column is a cheapest candidate
    /// for it, u = that reduced cost, and a free row's u = its cheapest candidate.
    void reduce_free_rows() {
        std::vector<Index> free_rows;
        for (Index row = 0; row < n_; ++row) {
            if (col_for_row_(row) < 0) free_rows.push_back(row);
        }
        const auto two_smallest = [&](Index row) {
            TwoSmallest result;
            for (const Candidate& c : candidates_[static_cast<std::size_t>(row)]) result.offer(c.cost - col_potential_(c.col), c.col);
            return result;
        };
        for (int round = 0; round < 2 && !free_rows.empty(); ++round) {
            augmenting_row_reduction(free_rows, n_, col_potential_, col_for_row_, row_for_col_, two_smallest);
        }
        for (Index row = 0; row < n_; ++row) {
            const Index col = col_for_row_(row);
            row_potential_(row) = col >= 0 ? exact_cost(row, col) - col_potential_(col) : cheapest_candidate(row);
        }
    }

    /// The smallest reduced cost c - v (exact) among the row's candidates.
    double cheapest_candidate(Index row) const {
        double minimum = infinity;
        for (const Candidate& c : candidates_[static_cast<std::size_t>(row)]) minimum = std::min(minimum, c.cost - col_potential_(c.col));
        return minimum;
    }

    static bool holds(const std::vector<Candidate>& list, Index col) {
        return std::any_of(list.begin(), list.end(), [&](const Candidate& c) { return c.col == col; });
    }

    void pair(Index row, Index col) {
        col_for_row_(row) = col;
        row_for_col_(col) = row;
    }

    /// Dijkstra over the candidates from the free `start_row` to the nearest free
    /// column, then the dense method's potential update and path flip (restricted to the
    /// rows and columns the search reached). False only if no free column is reachable,
    /// which the seed matching rules out.
    bool augment_from(Index start_row) {
        heap_.clear();
        touched_cols_.clear();
        tree_rows_.clear();
        tree_rows_.push_back(start_row);
        Index row = start_row;
        double row_distance = 0.0;
        Index sink = -1;
        double sink_distance = 0.0;
        while (sink < 0) {
            const double row_offset = row_distance - row_potential_(row);
            for (const Candidate& c : candidates_[static_cast<std::size_t>(row)]) {
                if (scanned_[static_cast<std::size_t>(c.col)] != 0) continue;
                const double distance = row_offset + c.cost - col_potential_(c.col);
                if (distance < path_cost_(c.col)) {
                    if (path_cost_(c.col) == infinity) touched_cols_.push_back(c.col);
                    path_cost_(c.col) = distance;
                    path_row_(c.col) = row;
                    heap_.push_back({distance, c.col});
                    std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
                }
            }
            Index col = -1;
            while (!heap_.empty() && col < 0) {
                std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
                const auto [distance, popped] = heap_.back();
                heap_.pop_back();
                if (scanned_[static_cast<std::size_t>(popped)] == 0 && distance == path_cost_(popped)) col = popped;
            }
            if (col < 0) {
                reset_search();
                return false;
            }
            scanned_[static_cast<std::size_t>(col)] = 1;
            if (row_for_col_(col) < 0) {
                sink = col;
                sink_distance = path_cost_(col);
            } else {
                row = row_for_col_(col);
                row_distance = path_cost_(col);
                tree_rows_.push_back(row);
            }
        }
        // Keep the candidates' reduced costs >= 0 and make the tree's edges tight.
        raise_row_potential(start_row, sink_distance);
        for (std::size_t t = 1; t < tree_rows_.size(); ++t) {
            const Index tree_row = tree_rows_[t];
            raise_row_potential(tree_row, sink_distance - path_cost_(col_for_row_(tree_row)));
        }
        for (const Index col : touched_cols_) {
            if (scanned_[static_cast<std::size_t>(col)] != 0) col_potential_(col) -= sink_distance - path_cost_(col);
        }
        for (Index col = sink;;) {
            const Index from = path_row_(col);
            const Index previous = col_for_row_(from);
            pair(from, col);
            if (from == start_row) break;
            col = previous;
        }
        reset_search();
        return true;
    }

    /// u only ever rises in a search and v only falls, so a row's entries outside its
    /// candidates can turn infeasible only when its u rises: such a row is marked for
    /// the next check, and the others are not read again.
    void raise_row_potential(Index row, double by) {
        if (by > 0.0) {
            row_potential_(row) += by;
            if (!(row_potential_(row) < outside_bound_(row))) unchecked_[static_cast<std::size_t>(row)] = 1;
        }
    }

    /// outside_bound_(row) = a lower bound on c - v over the row's entries that are not
    /// candidates, from the rounded values in reduced_ (v only falls, so it stays one):
    /// while u stays below it, no entry outside the candidates can be violated, and a
    /// search that raises u less than that does not send the row to the next check.
    /// `largest_entry` bounds |entry| in the row (for the rounding margin).
    void record_outside_bound(Index row, double largest_entry) {
        for (const Candidate& c : candidates_[static_cast<std::size_t>(row)]) reduced_(c.col) = std::numeric_limits<float>::infinity();
        const double rounding = 1.2e-7 * (largest_entry + 2.0 * largest_potential_);
        outside_bound_(row) = static_cast<double>(reduced_.minCoeff()) - rounding;
    }

    void reset_search() {
        for (const Index col : touched_cols_) {
            path_cost_(col) = infinity;
            scanned_[static_cast<std::size_t>(col)] = 0;
        }
    }

    /// The check over the whole matrix (see the file comment). In float, an entry whose
    /// rounded c - v lies above u + `margin` (a bound on the rounding) is certainly
    /// feasible; the others (the row's paired column among them) are checked exactly.
    /// Every row with a reduced cost below -tolerance gains up to `added_per_round` of
    /// its most negative entries as candidates and u = its minimum of c - v, and is
    /// unpaired unless its column is still tight. Returns whether any row failed.
    bool add_violated_candidates() {
        round_col_potentials();
        const Index pieces = (n_ + piece - 1) / piece;
        bool any = false;
        std::vector<std::pair<double, Index>> violations;
        for (Index row = 0; row < n_; ++row) {
            if (unchecked_[static_cast<std::size_t>(row)] == 0) continue;
            unchecked_[static_cast<std::size_t>(row)] = 0;
            load_rounded_reduced_costs(row);
            const double u = row_potential_(row);
            // |rounded - exact| <= 2^-24 (|c| + 2 |v|), and float(u + margin) may round down.
            const double margin = 1.2e-7 * (largest_entry_ + 2.0 * largest_potential_ + std::abs(u)) + tolerance_;
            const float suspect = static_cast<float>(u + margin);
            violations.clear();
            double minimum = infinity;
            for (Index p = 0; p < pieces; ++p) {
                if (!(piece_minima_(p) < suspect)) continue;
                for (Index col = p * piece; col < std::min(n_, (p + 1) * piece); ++col) {
                    if (!(reduced_(col) < suspect)) continue;
                    const double exact = exact_cost(row, col) - col_potential_(col);
                    minimum = std::min(minimum, exact);
                    if (exact - u < -tolerance_) violations.push_back({exact, col});
                }
            }
            if (violations.empty()) {
                record_outside_bound(row, largest_entry_);
                continue;
            }
            any = true;
            const std::size_t keep = std::min(violations.size(), static_cast<std::size_t>(added_per_round));
            std::partial_sort(violations.begin(), violations.begin() + static_cast<std::ptrdiff_t>(keep), violations.end());
            std::vector<Candidate>& list = candidates_[static_cast<std::size_t>(row)];
            for (std::size_t k = 0; k < keep; ++k) {
                const Index col = violations[k].second;
                if (!holds(list, col)) list.push_back({col, exact_cost(row, col)});
            }
            record_outside_bound(row, largest_entry_);
            row_potential_(row) = minimum;  // the row minimum: every violation was seen
            const Index col = col_for_row_(row);
            if (col >= 0 && exact_cost(row, col) - col_potential_(col) != minimum) {
                col_for_row_(row) = -1;
                row_for_col_(col) = -1;
            }
        }
        return any;
    }

    Eigen::Ref<const Matrix<Scalar>> cost_;
    double sign_;
    int max_rounds_;
    Index n_;
    double tolerance_ = 0.0;
    double largest_entry_ = 0.0;      // max |entry|, found by select_candidates
    double largest_potential_ = 0.0;  // max |v| when it was last rounded
    Eigen::VectorXd row_potential_;  // u
    Eigen::VectorXd col_potential_;  // v
    Eigen::VectorXd outside_bound_;  // see record_outside_bound
    IndexVector col_for_row_;
    IndexVector row_for_col_;
    std::vector<std::vector<Candidate>> candidates_;
    Eigen::ArrayXf rounded_col_potential_;  // v as float, for the passes
    Eigen::ArrayXf reduced_;                // one row's c - v, rounded
    Eigen::ArrayXf piece_minima_;           // and the minimum of each of its pieces
    // Search state, reset after each search on the columns it touched.
    Eigen::VectorXd path_cost_;  // distance from the start row; +inf = not reached
    IndexVector path_row_;       // predecessor row of each reached column
    std::vector<char> scanned_;
    std::vector<char> unchecked_;  // rows whose u rose since their last check
    std::vector<Index> touched_cols_;
    std::vector<Index> tree_rows_;  // start row first
    std::vector<std::pair<double, Index>> heap_;
};

}  // namespace sae::detail
