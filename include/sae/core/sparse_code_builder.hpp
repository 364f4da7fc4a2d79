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
/// `RowBlockCode` is how every code made in blocks of rows on the threads is assembled
/// (the streamed encode, training's forward pass, TopK over dense pre-activations). Where
/// every row has at most `bound` entries (TopK: k), `BoundedRowsWriter` writes rows
/// straight into the code, row r at entry r * bound, and `close_bounded_rows` closes the
/// gaps that short rows leave: no per-block buffers, and no copy when every row is full.
/// Otherwise (ReLU + L1: any number per row) each block fills a builder of its own and
/// `join_code_blocks` copies them into the code, in block order.

#include "parallel.hpp"
#include "types.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
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
    outer[0] = 0;
    // The copy runs on the threads, each over a run of consecutive blocks: on one thread
    // it had left the others waiting (2.5 MB at 10,000 rows with k = 32; 3% of an encode
    // at 256 -> 512 before TopK codes were written in place, BoundedRowsWriter).
    const Index count = static_cast<Index>(blocks.size());
    const Index runs = std::min<Index>(count, detail::available_threads());
    detail::parallel_for(runs, [&](Index run, int) {
        const Index begin = count * run / runs, end = count * (run + 1) / runs;
        Index row = 0, offset = 0;
        for (Index b = 0; b < begin; ++b) {
            row += blocks[static_cast<std::size_t>(b)].rows();
            offset += blocks[static_cast<std::size_t>(b)].nonzeros();
        }
        for (Index b = begin; b < end; ++b) {
            const SparseCodeBuilder<Scalar>& block = blocks[static_cast<std::size_t>(b)];
            for (Index r = 0; r < block.rows(); ++r) {
                outer[row + r + 1] = static_cast<int>(offset) + block.outer()[static_cast<std::size_t>(r + 1)];
            }
            const std::size_t entries = static_cast<std::size_t>(block.nonzeros());
            if (entries > 0) {
                std::memcpy(inner + offset, block.inner().data(), entries * sizeof(int));
                std::memcpy(values + offset, block.values().data(), entries * sizeof(Scalar));
            }
            row += block.rows();
            offset += block.nonzeros();
        }
    });
}

/// Sizes `code` [rows, cols] for BoundedRowsWriter: rows * bound entries, row r's
/// from entry r * bound. The storage is reused when large enough.
/// Throws: shape_error if rows * bound entries exceed what a code's int indices address.
template <class Scalar>
void open_bounded_rows(SparseCode<Scalar>& code, Index rows, Index cols, Index bound) {
    if (bound > 0 && rows > Index(std::numeric_limits<int>::max()) / bound) {
        throw shape_error("sparse code: " + std::to_string(rows) + " rows of up to " + std::to_string(bound) +
                          " entries exceed the " + std::to_string(std::numeric_limits<int>::max()) +
                          " entries a code's int indices address; encode the batch in parts");
    }
    code.resize(rows, cols);  // compressed and empty, outer indices zero; keeps the storage
    code.resizeNonZeros(rows * bound);
}

/// Writes consecutive rows of a code opened by open_bounded_rows, from row `first_row`:
/// row r's entries go to [r * bound, r * bound + count) and its end to outer[r + 1].
/// Writers of disjoint rows may run on different threads. The same append / end_row /
/// rows interface as SparseCodeBuilder, so an activation's emit code serves both.
template <class Scalar>
class BoundedRowsWriter {
public:
    BoundedRowsWriter(SparseCode<Scalar>& code, Index first_row, Index rows, Index bound)
        : outer_(code.outerIndexPtr()), inner_(code.innerIndexPtr()), values_(code.valuePtr()),
          rows_(rows), row_(first_row), bound_(bound), next_(first_row * bound) {}

    /// Append `count` entries of the current row (columns increasing).
    /// Throws: error if the row would hold more than `bound` entries (a broken caller:
    ///         the entries would overwrite the next row's).
    void append(const int* cols, const Scalar* values, Index count) {
        if (next_ + count > (row_ + 1) * bound_) {
            throw error("BoundedRowsWriter: row " + std::to_string(row_) + " holds more than its bound of " +
                        std::to_string(bound_) + " entries");
        }
        if (count == 0) return;
        std::memcpy(inner_ + next_, cols, static_cast<std::size_t>(count) * sizeof(int));
        std::memcpy(values_ + next_, values, static_cast<std::size_t>(count) * sizeof(Scalar));
        next_ += count;
    }

    /// Close the current row and move to the next one.
    void end_row() {
        outer_[row_ + 1] = static_cast<int>(next_);
        ++row_;
        next_ = row_ * bound_;
    }

    /// Rows this writer was given.
    Index rows() const { return rows_; }

private:
    int* outer_;
    int* inner_;
    Scalar* values_;
    Index rows_, row_, bound_, next_;
};

/// Makes a code whose every row was written by a BoundedRowsWriter compressed: moves
/// each row's entries down behind the previous row's where rows fell short of `bound`
/// (nothing moves when every row is full), and sets the number of entries.
template <class Scalar>
void close_bounded_rows(SparseCode<Scalar>& code, Index bound) {
    int* outer = code.outerIndexPtr();
    int* inner = code.innerIndexPtr();
    Scalar* values = code.valuePtr();
    Index offset = 0;
    for (Index r = 0; r < code.rows(); ++r) {
        const Index start = r * bound, count = Index(outer[r + 1]) - start;
        if (offset != start && count > 0) {
            std::memmove(inner + offset, inner + start, static_cast<std::size_t>(count) * sizeof(int));
            std::memmove(values + offset, values + start, static_cast<std::size_t>(count) * sizeof(Scalar));
        }
        offset += count;
        outer[r + 1] = static_cast<int>(offset);
    }
    code.resizeNonZeros(offset);
}

/// A code of consecutive blocks of rows that are filled in any order, concurrently:
///   open(code, rows, cols, blocks, bound); fill(block, first, count, write_rows) once per
///   block (any thread; write_rows(out) writes rows first .. first + count - 1 through
///   out's append / end_row / rows); close().
/// With `Bounded` (every row holds at most `bound` entries) `out` is a BoundedRowsWriter
/// into the code itself; without, the block's own SparseCodeBuilder, joined by close().
/// `code` must not be touched between open and close. The builders are kept for the next
/// code (release_builders frees them).
template <class Scalar, bool Bounded>
class RowBlockCode {
public:
    /// Starts `code` as [rows, cols] in `blocks` blocks. `bound` is used only when Bounded.
    /// Throws: shape_error if rows * bound entries exceed a code's int indices (Bounded).
    void open(SparseCode<Scalar>& code, Index rows, Index cols, Index blocks, Index bound) {
        code_ = &code;
        cols_ = cols;
        bound_ = bound;
        if constexpr (Bounded) {
            open_bounded_rows(code, rows, cols, bound);
        } else {
            builders_.resize(static_cast<std::size_t>(std::max<Index>(blocks, 1)));
            if (blocks == 0) builders_[0].start(0, cols);  // so the join gives a 0 x cols code
        }
    }

    /// Calls write_rows(out) for block `block`, rows first .. first + count - 1.
    template <class WriteRows>
    void fill(Index block, Index first, Index count, WriteRows&& write_rows) {
        if constexpr (Bounded) {
            BoundedRowsWriter<Scalar> out(*code_, first, count, bound_);
            write_rows(out);
        } else {
            SparseCodeBuilder<Scalar>& out = builders_[static_cast<std::size_t>(block)];
            out.start(count, cols_);
            write_rows(out);
        }
    }

    /// Makes the code compressed; every block must have been filled.
    void close() {
        if constexpr (Bounded) {
            close_bounded_rows(*code_, bound_);
        } else {
            join_code_blocks(builders_, cols_, *code_);
        }
    }

    /// Frees the per-block builders (none exist when Bounded).
    void release_builders() { std::vector<SparseCodeBuilder<Scalar>>().swap(builders_); }

private:
    SparseCode<Scalar>* code_ = nullptr;
    Index cols_ = 0;
    Index bound_ = 0;
    std::vector<SparseCodeBuilder<Scalar>> builders_;  ///< per block; only without Bounded
};

}  // namespace sae
