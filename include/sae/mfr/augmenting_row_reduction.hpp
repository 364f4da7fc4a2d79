#pragma once
/// \file augmenting_row_reduction.hpp
/// Jonker & Volgenant's augmenting row reduction (1987), the step shared by the dense
/// assignment solver (linear_assignment.hpp, over whole rows) and the candidate-list
/// solver (candidate_assignment.hpp, over each row's candidates): each free row takes
/// its cheapest column, lowering that column's potential v so that the column's reduced
/// cost for the row equals the row's second cheapest, and evicts the column's previous
/// row, which tries again. Most rows end up paired along tight edges without a search.

#include "sae/core/types.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <limits>
#include <vector>

namespace sae::detail {

/// The smallest and second smallest reduced cost (cost - v) of a row and their columns
/// (second_col = -1 when the row has one column).
struct TwoSmallest {
    double first = std::numeric_limits<double>::infinity();
    Index first_col = -1;
    double second = std::numeric_limits<double>::infinity();
    Index second_col = -1;

    /// Takes `value` at `col` into account; of equal values the one offered first ranks first.
    void offer(double value, Index col) {
        if (value < first) {
            second = first;
            second_col = first_col;
            first = value;
            first_col = col;
        } else if (value < second) {
            second = value;
            second_col = col;
        }
    }
};

/// One round over `free_rows`; leaves in it the rows still free. `two_smallest_of(row)`
/// gives the row's TwoSmallest under the current v. A row whose column's v was lowered
/// retries at once; the round stops after about (free rows) * n row scans, as Jonker &
/// Volgenant bound it (ties can otherwise keep it alive). Every row paired here holds a
/// column that was its cheapest when it took it.
template <class IndexVector, class TwoSmallestOf>
void augmenting_row_reduction(std::vector<Index>& free_rows, Index n, Eigen::VectorXd& v, IndexVector& col_for_row,
                              IndexVector& row_for_col, TwoSmallestOf&& two_smallest_of) {
    std::size_t current = 0, still_free = 0;
    std::size_t scans = 0;
    while (current < free_rows.size()) {
        ++scans;
        const Index row = free_rows[current++];
        const TwoSmallest smallest = two_smallest_of(row);
        Index best_col = smallest.first_col, second_col = smallest.second_col;
        Index evicted = row_for_col(best_col);
        const double lowered = v(best_col) - (smallest.second - smallest.first);
        const bool lowers = second_col >= 0 && lowered < v(best_col);
        if (scans < current * static_cast<std::size_t>(n)) {
            if (lowers) {
                v(best_col) = lowered;
            } else if (evicted >= 0 && second_col >= 0) {
                best_col = second_col;
                evicted = row_for_col(second_col);
            }
            if (evicted >= 0) {
                if (lowers) {
                    free_rows[--current] = evicted;
                } else {
                    free_rows[still_free++] = evicted;
                }
            }
        } else if (evicted >= 0) {
            free_rows[still_free++] = evicted;
        }
        if (evicted >= 0) col_for_row(evicted) = -1;
        col_for_row(row) = best_col;
        row_for_col(best_col) = row;
    }
    free_rows.resize(still_free);
}

}  // namespace sae::detail
