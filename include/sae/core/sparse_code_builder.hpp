#pragma once
/// \file sparse_code_builder.hpp
/// Builds a row-major SparseCode row by row, straight into compressed storage.
///
/// Requires: rows are appended in order, each with strictly increasing column indices.
/// Ensures:  `finish()` yields a compressed SparseCode whose row r holds exactly the
///           entries appended for r (possibly none).
/// Why: activation functions know each row's active set at once; pushing whole rows
/// avoids Eigen's generic insertion (and its per-element binary searches).

#include "types.hpp"

#include <vector>

namespace sae {

template <class Scalar>
class SparseCodeBuilder {
public:
    /// Start a code of shape [rows, cols]; `expected_nonzeros` only pre-sizes buffers.
    void start(Index rows, Index cols, Index expected_nonzeros = 0) {
        rows_ = rows;
        cols_ = cols;
        outer_.clear();
        inner_.clear();
        values_.clear();
        outer_.reserve(static_cast<std::size_t>(rows + 1));
        inner_.reserve(static_cast<std::size_t>(expected_nonzeros));
        values_.reserve(static_cast<std::size_t>(expected_nonzeros));
        outer_.push_back(0);
    }

    /// Append one entry of the current row (columns increasing within a row).
    void push(Index col, Scalar value) {
        inner_.push_back(static_cast<int>(col));
        values_.push_back(value);
    }

    /// Close the current row and move to the next one.
    void end_row() { outer_.push_back(static_cast<int>(inner_.size())); }

    /// Copy the buffers into `code` (compressed). Buffers are kept for reuse.
    void finish(SparseCode<Scalar>& code) const {
        const Eigen::Map<const SparseCode<Scalar>> view(rows_, cols_, static_cast<Index>(inner_.size()),
                                                        outer_.data(), inner_.data(), values_.data());
        code = view;
    }

private:
    Index rows_ = 0;
    Index cols_ = 0;
    std::vector<int> outer_;
    std::vector<int> inner_;
    std::vector<Scalar> values_;
};

}  // namespace sae
