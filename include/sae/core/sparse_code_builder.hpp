#pragma once
/// \file sparse_code_builder.hpp
/// Builds a row-major SparseCode row by row, straight into compressed storage.
///
/// Requires: rows are appended in order, each with strictly increasing column indices.
/// Ensures:  `finish()` yields a compressed SparseCode whose row r holds exactly the
///           entries appended for r (possibly none).
/// Why: activation functions know each row's active set at once; pushing whole rows
/// avoids Eigen's generic insertion (and its per-element binary searches).
///
/// `join_code_blocks` assembles one code from builders that each hold a consecutive block
/// of rows (built on different threads), in block order.

#include "types.hpp"

#include <algorithm>
#include <cstring>
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

    /// Append `count` entries of the current row at once (columns increasing, and above
    /// those pushed before); a bulk copy where push would check capacity per entry.
    void append(const int* cols, const Scalar* values, Index count) {
        inner_.insert(inner_.end(), cols, cols + count);
        values_.insert(values_.end(), values, values + count);
    }

    /// Close the current row and move to the next one.
    void end_row() { outer_.push_back(static_cast<int>(inner_.size())); }

    /// Copy the buffers into `code` (compressed). Buffers are kept for reuse.
    void finish(SparseCode<Scalar>& code) const {
        const Eigen::Map<const SparseCode<Scalar>> view(rows_, cols_, static_cast<Index>(inner_.size()),
                                                        outer_.data(), inner_.data(), values_.data());
        code = view;
    }

    Index rows() const { return rows_; }
    Index nonzeros() const { return static_cast<Index>(inner_.size()); }
    const std::vector<int>& outer() const { return outer_; }
    const std::vector<int>& inner() const { return inner_; }
    const std::vector<Scalar>& values() const { return values_; }

private:
    Index rows_ = 0;
    Index cols_ = 0;
    std::vector<int> outer_;
    std::vector<int> inner_;
    std::vector<Scalar> values_;
};

/// `code` = the rows of blocks[0], then blocks[1], ... (each started with `cols` columns
/// and finished row by row), compressed. The code's storage is reused when large enough.
template <class Scalar>
void join_code_blocks(const std::vector<SparseCodeBuilder<Scalar>>& blocks, Index cols, SparseCode<Scalar>& code) {
    Index rows = 0, nonzeros = 0;
    for (const SparseCodeBuilder<Scalar>& block : blocks) {
        rows += block.rows();
        nonzeros += block.nonzeros();
    }
    code.resize(rows, cols);  // compressed and empty; keeps the value storage for reuse
    code.resizeNonZeros(nonzeros);
    int* outer = code.outerIndexPtr();
    int* inner = code.innerIndexPtr();
    Scalar* values = code.valuePtr();
    Index row = 0, offset = 0;
    outer[0] = 0;
    for (const SparseCodeBuilder<Scalar>& block : blocks) {
        for (Index r = 0; r < block.rows(); ++r) outer[row + r + 1] = static_cast<int>(offset) + block.outer()[static_cast<std::size_t>(r + 1)];
        const std::size_t count = static_cast<std::size_t>(block.nonzeros());
        if (count > 0) {
            std::memcpy(inner + offset, block.inner().data(), count * sizeof(int));
            std::memcpy(values + offset, block.values().data(), count * sizeof(Scalar));
        }
        row += block.rows();
        offset += block.nonzeros();
    }
}

}  // namespace sae
