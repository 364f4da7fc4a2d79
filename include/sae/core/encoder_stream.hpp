#pragma once
/// \file encoder_stream.hpp
/// How libsae computes pre-activations, pre = (x - b_dec) W_enc + b_enc, without ever
/// holding the dense [batch, d_sae] matrix: the batch is cut into blocks of
/// `stream_block_rows` rows (one task each, in parallel), and each block's
/// pre-activations are made `stream_chunk_cols` latents at a time by a small GEMM whose
/// result stays in cache, then handed to the activation's streaming selection. Training
/// (loss.hpp, encode_stream) and inference (Autoencoder::encode_sparse) both go through
/// `pre_activation_chunks`, so they meet the same GEMM shapes and round identically.
///
/// An activation streams when it declares `selects_rows_independently = true` and
/// provides RowSelection, start_rows, select_chunk and finish_rows (see topk.hpp): a
/// row's selection may not depend on any other row.

#include "parallel.hpp"
#include "sparse_code_builder.hpp"
#include "tile_product.hpp"
#include "types.hpp"

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

namespace sae::detail {

/// Rows per encoder task and latents per GEMM chunk. Fixed (not derived from the thread
/// count) so that every row meets the same GEMM shapes, hence the same rounding, on any
/// machine. A 256 x 512 float tile (512 KiB) stays in L2, and both GEMM operands are
/// packed once per 256 rows or 512 latents, which measured as fast as one whole-batch GEMM.
inline constexpr Index stream_block_rows = 256;
inline constexpr Index stream_chunk_cols = 512;

/// Activations that declare `selects_rows_independently = true` and provide the
/// streaming members (RowSelection, start_rows, select_chunk, finish_rows; see topk.hpp).
template <class Act, class = void>
struct streams_rows : std::false_type {};
template <class Act>
struct streams_rows<Act, std::enable_if_t<Act::selects_rows_independently>> : std::true_type {};

/// The per-thread selection state of a streamed activation (a placeholder otherwise).
template <class Act, bool = streams_rows<Act>::value>
struct row_selection {
    using type = char;
};
template <class Act>
struct row_selection<Act, true> {
    using type = typename Act::RowSelection;
};

/// Throws numeric_error naming the first row of `rows` (numbered from `first_row`) that
/// holds NaN or Inf. x * 0 sums to 0 exactly when every entry is finite: a reduction the
/// compiler vectorises (Eigen's allFinite does not), so the check costs little next to
/// the GEMM that reads the same rows.
template <class Derived>
void require_finite_rows(const Eigen::MatrixBase<Derived>& rows, Index first_row, const char* where) {
    using Scalar = typename Derived::Scalar;
    for (Index r = 0; r < rows.rows(); ++r) {
        if ((rows.row(r).array() * Scalar(0)).sum() != Scalar(0)) {
            throw numeric_error(std::string(where) + ": input batch contains NaN or Inf (row " +
                                std::to_string(first_row + r) + ")");
        }
    }
}

/// One block of rows: for every chunk of `stream_chunk_cols` latents starting at c0,
/// chunk = centered W_enc[:, c0 .. c0 + width) + b_enc[c0 .. c0 + width) is written into
/// `chunk_of(c0, width)` (a writable [rows, width] block) and passed to
/// `consume(chunk, c0)`.
template <class Scalar, class Centered, class ChunkOf, class Consume>
void pre_activation_chunks(const Centered& centered, const Matrix<Scalar>& W_enc, const RowVector<Scalar>& b_enc,
                           ChunkOf&& chunk_of, Consume&& consume) {
    const Index d_sae = W_enc.cols();
    for (Index c0 = 0; c0 < d_sae; c0 += stream_chunk_cols) {
        const Index width = std::min(stream_chunk_cols, d_sae - c0);
        auto chunk = chunk_of(c0, width);
        // Starting from the bias saves a pass: Eigen's "=" product zeroes first anyway.
        chunk.rowwise() = b_enc.segment(c0, width);
        add_tile_product(centered, W_enc.middleCols(c0, width), chunk);  // chunk += ..., see tile_product.hpp
        consume(chunk, c0);
    }
}

/// Scratch of encode_streamed that a calling thread keeps from one call to the next:
/// made afresh each call, the tiles, selection buffers and code blocks (a few MiB at the
/// benchmark's shapes) cost page faults and their zeroing on every call, about 5% of an
/// encode of 10,000 rows. Code blocks of more than `kept_code_entries` entries in all
/// are released after the call, so a one-off huge batch does not pin its memory.
template <class Scalar, class Activation>
struct EncodeWorkspace {
    static constexpr Index kept_code_entries = Index(1) << 22;
    std::vector<Matrix<Scalar>> centered, tiles;  ///< per thread slot
    std::vector<typename Activation::RowSelection> selections;
    std::vector<SparseCodeBuilder<Scalar>> parts;  ///< per block of rows

    void prepare(std::size_t threads, std::size_t blocks) {
        if (centered.size() < threads) {
            centered.resize(threads);
            tiles.resize(threads);
            selections.resize(threads);
        }
        parts.resize(blocks);
    }
    void release_large_parts(Index entries) {
        if (entries > kept_code_entries) std::vector<SparseCodeBuilder<Scalar>>().swap(parts);
    }
};

/// centred = rows - b_dec, where `rows` are rows first, first + 1, ... of x and `centred`
/// is a writable block of the same shape; each centred row is checked for NaN/Inf while
/// it is still in L1 (one read of x instead of two). A non-finite row throws
/// numeric_error: x's own NaN/Inf named by its row, as require_finite_rows does, or else
/// x - b_dec itself (b_dec not finite, or the difference overflows).
template <class Scalar, class Rows, class Centred>
void centre_finite_rows(const Rows& rows, Index first, const RowVector<Scalar>& b_dec, Centred&& centred,
                        const char* where) {
    for (Index r = 0; r < rows.rows(); ++r) {
        centred.row(r) = rows.row(r) - b_dec;
        if ((centred.row(r).array() * Scalar(0)).sum() != Scalar(0)) {
            require_finite_rows(rows.middleRows(r, 1), first + r, where);
            throw numeric_error(std::string(where) + ": x - b_dec is not finite in row " + std::to_string(first + r) +
                                " (b_dec holds NaN or Inf, or the difference overflows)");
        }
    }
}

/// The sparse code of `x` [batch, d_in] under a streamed activation, block by block in
/// parallel (parallel.hpp): x's rows are centred and checked for NaN/Inf in a per-thread
/// buffer (centre_finite_rows), their pre-activations made chunk by chunk
/// (pre_activation_chunks) and selected. Holds O(threads * stream_block_rows * (d_in +
/// stream_chunk_cols)) scratch besides the code (kept by the calling thread for its next
/// call, EncodeWorkspace); nothing of size [batch, d_sae] or [batch, d_in].
template <class Scalar, class Activation, class Derived>
void encode_streamed(const Eigen::MatrixBase<Derived>& x, const Matrix<Scalar>& W_enc, const RowVector<Scalar>& b_enc,
                     const RowVector<Scalar>& b_dec, const Activation& activation, SparseCode<Scalar>& code,
                     const char* where) {
    static_assert(streams_rows<Activation>::value, "encode_streamed: the activation does not select rows independently");
    const Index rows = x.rows(), d_sae = W_enc.cols();
    const Index blocks = (rows + stream_block_rows - 1) / stream_block_rows;
    thread_local EncodeWorkspace<Scalar, Activation> workspace;
    workspace.prepare(static_cast<std::size_t>(available_threads()), static_cast<std::size_t>(std::max<Index>(blocks, 1)));
    // References, not `workspace` itself, go into the loop: a thread_local named inside
    // the lambda would be the worker thread's own (empty) one.
    std::vector<Matrix<Scalar>>& centered = workspace.centered;
    std::vector<Matrix<Scalar>>& tiles = workspace.tiles;
    std::vector<typename Activation::RowSelection>& selections = workspace.selections;
    std::vector<SparseCodeBuilder<Scalar>>& parts = workspace.parts;
    if (blocks == 0) parts[0].start(0, d_sae);
    parallel_for(blocks, [&](Index block, int slot) {
        const Index first = block * stream_block_rows;
        const Index count = std::min(stream_block_rows, rows - first);
        Matrix<Scalar>& centred = centered[static_cast<std::size_t>(slot)];
        Matrix<Scalar>& tile = tiles[static_cast<std::size_t>(slot)];
        // Full-size buffers, of which a short last block uses the top rows: a resize would
        // reallocate them twice per call.
        if (centred.rows() != stream_block_rows || centred.cols() != x.cols()) centred.resize(stream_block_rows, x.cols());
        if (tile.rows() != stream_block_rows || tile.cols() != stream_chunk_cols) tile.resize(stream_block_rows, stream_chunk_cols);
        auto centred_rows = centred.topRows(count);
        centre_finite_rows<Scalar>(x.middleRows(first, count), first, b_dec, centred_rows, where);
        typename Activation::RowSelection& selection = selections[static_cast<std::size_t>(slot)];
        activation.start_rows(selection, count);
        pre_activation_chunks<Scalar>(
            centred_rows, W_enc, b_enc, [&](Index, Index width) { return tile.topLeftCorner(count, width); },
            [&](const auto& chunk, Index c0) { activation.select_chunk(selection, chunk, c0); });
        SparseCodeBuilder<Scalar>& out = parts[static_cast<std::size_t>(block)];
        out.start(count, d_sae);
        activation.finish_rows(selection, out);
    });
    join_code_blocks(parts, d_sae, code);
    workspace.release_large_parts(code.nonZeros());
}

}  // namespace sae::detail
