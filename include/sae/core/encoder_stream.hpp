#pragma once
/// \file encoder_stream.hpp
/// How libsae computes pre-activations, pre = (x - b_dec) W_enc + b_enc, without ever
/// holding the dense [batch, d_sae] matrix: the batch is cut into blocks of
/// `stream_block_rows` rows, and each block's pre-activations are made
/// `stream_chunk_cols` latents at a time by a small GEMM whose result (a tile) stays in
/// cache, then handed to the activation's streaming selection. Consecutive blocks form
/// groups, one task each (in parallel), so that each W_enc chunk is packed for the GEMM
/// kernel once per group rather than once per block (tile_product.hpp). Training
/// (loss.hpp, encode_stream) and inference (Autoencoder::encode_sparse) both go through
/// `stream_pre_activations`, so they meet the same GEMM shapes and round identically;
/// the grouping changes no number (every tile is the same product however it is packed).
///
/// An activation streams when it declares `selects_rows_independently = true` and
/// provides RowSelection, start_rows, select_chunk and finish_rows (see topk.hpp): a
/// row's selection may not depend on any other row. One that also provides
/// `row_entry_bound()` (at most that many entries per row) has its codes, in inference and
/// in training, written in place (RowBlockCode), so its finish_rows must also take a
/// BoundedRowsWriter (a template, as TopK's).

#include "parallel.hpp"
#include "sparse_code_builder.hpp"
#include "tile_product.hpp"
#include "types.hpp"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae::detail {

/// Rows per block and latents per GEMM chunk. Fixed (not derived from the thread count)
/// so that every row meets the same GEMM shapes, hence the same rounding, on any
/// machine. A 256 x 512 float tile (512 KiB) stays in L2; each block's rows are packed
/// for the GEMM kernel once, and each W_enc chunk once per group of blocks
/// (stream_pre_activations).
inline constexpr Index stream_block_rows = 256;
inline constexpr Index stream_chunk_cols = 512;

/// Activations that declare `selects_rows_independently = true` and provide the
/// streaming members (RowSelection, start_rows, select_chunk, finish_rows; see topk.hpp).
template <class Act, class = void>
struct streams_rows : std::false_type {};
template <class Act>
struct streams_rows<Act, std::enable_if_t<Act::selects_rows_independently>> : std::true_type {};

/// Streamed activations whose rows hold at most `row_entry_bound()` entries (TopK: k):
/// encode_streamed and training's forward pass write their rows straight into the code
/// (RowBlockCode, sparse_code_builder.hpp).
template <class Act, class = void>
struct bounds_row_entries : std::false_type {};
template <class Act>
struct bounds_row_entries<Act, std::void_t<decltype(std::declval<const Act&>().row_entry_bound())>> : std::true_type {};

/// The activation's row_entry_bound(), or 0 for one without a bound.
template <class Act>
Index row_entry_bound_of(const Act& activation) {
    if constexpr (bounds_row_entries<Act>::value) {
        return activation.row_entry_bound();
    } else {
        static_cast<void>(activation);
        return 0;
    }
}

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

/// Row blocks per group of stream_pre_activations, at most: a group's blocks keep their
/// packed rows (d_in * stream_block_rows values each) and their selections alive while
/// the group runs, so this bounds a task's scratch; 16 blocks (4,096 rows) in 4 groups
/// on 2 threads packed W_enc 4 times per step instead of 16 and kept the threads busy
/// to the end.
inline constexpr Index stream_group_blocks = 4;

/// Where a callback of stream_pre_activations is: block `block` holds rows
/// [first, first + count) of the batch; `slot` (in [0, available_threads())) names the
/// thread running its group and `position` (in [0, stream_group_blocks)) its place in
/// the group, so that per-block state can live in per-(slot, position) buffers
/// (stream_state_index) that are reused group after group.
struct StreamBlock {
    Index block = 0, first = 0, count = 0;
    int slot = 0;
    Index position = 0;
};

/// The index of a block's per-(slot, position) state among
/// available_threads() * stream_group_blocks.
inline std::size_t stream_state_index(const StreamBlock& where) {
    return static_cast<std::size_t>(where.slot) * static_cast<std::size_t>(stream_group_blocks) +
           static_cast<std::size_t>(where.position);
}

/// The [block.count, width] top-left corner of a thread's tile buffer, which is kept
/// full-size ([stream_block_rows, stream_chunk_cols]): resized per block, it would be
/// reallocated for a short last block and again for the next full one.
template <class Scalar>
auto stream_tile(Matrix<Scalar>& tile, const StreamBlock& block, Index width) {
    if (tile.rows() != stream_block_rows || tile.cols() != stream_chunk_cols) tile.resize(stream_block_rows, stream_chunk_cols);
    return tile.topLeftCorner(block.count, width);
}

/// Throws numeric_error for the first of `rows` (rows first, first + 1, ... of x) whose
/// difference rows - b_dec is not finite: x's own NaN/Inf named by its row, as
/// require_finite_rows does, or else x - b_dec itself (b_dec not finite, or the
/// difference overflows).
template <class Scalar, class Rows>
[[noreturn]] void throw_non_finite_difference(const Rows& rows, Index first, const RowVector<Scalar>& b_dec, const char* where) {
    for (Index r = 0; r < rows.rows(); ++r) {
        if (((rows.row(r) - b_dec).array() * Scalar(0)).sum() != Scalar(0)) {
            require_finite_rows(rows.middleRows(r, 1), first + r, where);
            throw numeric_error(std::string(where) + ": x - b_dec is not finite in row " + std::to_string(first + r) +
                                " (b_dec holds NaN or Inf, or the difference overflows)");
        }
    }
    throw numeric_error(std::string(where) + ": x - b_dec is not finite in rows " + std::to_string(first) + " to " +
                        std::to_string(first + rows.rows() - 1));
}

/// centred = rows - b_dec, where `rows` are rows first, first + 1, ... of x and `centred`
/// is a writable block of the same shape, checked for NaN/Inf as it is written (one read
/// of x instead of two); a non-finite difference throws (throw_non_finite_difference).
template <class Scalar, class Rows, class Centred>
void centre_finite_rows(const Rows& rows, Index first, const RowVector<Scalar>& b_dec, Centred&& centred,
                        const char* where) {
    for (Index r = 0; r < rows.rows(); ++r) {
        centred.row(r) = rows.row(r) - b_dec;
        if ((centred.row(r).array() * Scalar(0)).sum() != Scalar(0)) {
            throw_non_finite_difference(rows.middleRows(r, rows.rows() - r), first + r, b_dec, where);
        }
    }
}

/// Whether stream_pre_activations subtracts b_dec itself. Training centres x on its own
/// (it keeps x - b_dec for the encoder's gradient) and passes rows already centred;
/// inference passes x's rows and b_dec, and a block whose every tile is made from packed
/// operands is centred while its rows are packed (PackedTileRows::pack_difference), so
/// x - b_dec is never stored: at 256 -> 512 that store and its re-read for packing were
/// 3% of an encode of 10,000 rows.
template <class Scalar>
struct RowCentring {
    const RowVector<Scalar>* b_dec = nullptr;  ///< subtracted from every row; null: the rows come centred
    const char* where = "";                    ///< names the caller in the NaN/Inf error
};

/// One thread's packed operands for its group (tile_product.hpp): grow-only, kept from
/// one group to the next.
template <class Scalar>
struct GroupPacking {
    std::vector<PackedTileRows<Scalar>> rows = std::vector<PackedTileRows<Scalar>>(stream_group_blocks);
    PackedTileColumns<Scalar> columns;
    std::vector<Eigen::Map<const Matrix<Scalar>, 0, Eigen::OuterStride<>>> centred;
    /// Per position: x - b_dec of a block the stream centres but cannot pack whole
    /// (RowCentring), kept full-size ([stream_block_rows, d_in]) like the tiles.
    std::vector<Matrix<Scalar>> differences = std::vector<Matrix<Scalar>>(stream_group_blocks);
};

/// Streams the pre-activations of a batch of `rows` rows. The blocks of
/// stream_block_rows rows are split into groups of at most stream_group_blocks
/// consecutive blocks (at least as many groups as threads, where there are as many
/// blocks; one block each when W_enc fits in L2), one task per group (parallel_for). A task
///  1. calls `start_block(where)` for each of its blocks, which readies the block's
///     state and returns its rows of x - b_dec, or of x itself when `centring` names a
///     b_dec ([count, d_in], row major, unit inner stride; valid until the task ends),
///     and centres (checking for NaN/Inf) and packs them;
///  2. for each chunk of stream_chunk_cols latents starting at c0: packs
///     W_enc[:, c0 .. c0 + width) once, then for each block writes the tile
///     `tile_of(where, c0, width)` (a writable [count, width] block) =
///     centred W_enc[:, c0 .. c0 + width) + b_enc[c0 .. c0 + width) and calls
///     `consume(where, tile, c0)`;
///  3. calls `finish(where)` for each block.
/// A tile whose shape Eigen blocks differently from the group's (a short last block or
/// chunk), or that Eigen would not block at all (tile_product_is_blocked), is made by
/// add_tile_product from the unpacked operands: the same numbers either way.
template <class Scalar, class StartBlock, class TileOf, class Consume, class Finish>
void stream_pre_activations(Index rows, const Matrix<Scalar>& W_enc, const RowVector<Scalar>& b_enc,
                            StartBlock&& start_block, TileOf&& tile_of, Consume&& consume, Finish&& finish,
                            const RowCentring<Scalar>& centring = {}) {
    const Index d_in = W_enc.rows(), d_sae = W_enc.cols();
    const Index blocks = (rows + stream_block_rows - 1) / stream_block_rows;
    if (blocks == 0) return;
    // A W_enc that fits in L2 is packed from cache at little cost per block: grouping
    // would then only cost the memory of the group's packed rows and selections.
    const bool encoder_fits_l2 = W_enc.size() * Index(sizeof(Scalar)) <= Index(Eigen::l2CacheSize());
    const Index most_blocks = encoder_fits_l2 ? 1 : stream_group_blocks;
    const Index wanted_groups = std::max<Index>(available_threads(), (blocks + most_blocks - 1) / most_blocks);
    const Index group_blocks = (blocks + std::min(blocks, wanted_groups) - 1) / std::min(blocks, wanted_groups);
    const Index groups = (blocks + group_blocks - 1) / group_blocks;
    parallel_for(groups, [&](Index group, int slot) {
        thread_local GroupPacking<Scalar> packing;  // this worker thread's own
        const Index first_block = group * group_blocks, count_blocks = std::min(group_blocks, blocks - first_block);
        const auto where = [&](Index position) {
            const Index block = first_block + position, first = block * stream_block_rows;
            return StreamBlock{block, first, std::min(stream_block_rows, rows - first), slot, position};
        };
        // The blocking every full tile of this group meets; a block or chunk whose tile
        // would be blocked otherwise takes add_tile_product.
        const Index full_rows = where(0).count, full_width = std::min(stream_chunk_cols, d_sae);
        const TileBlocking blocking = tile_blocking<Scalar>(full_rows, full_width, d_in);
        const bool packable = tile_product_is_blocked(full_rows, full_width, d_in);
        const bool every_chunk_packed = packable && d_sae % full_width == 0;
        packing.centred.clear();
        for (Index position = 0; position < count_blocks; ++position) {
            const StreamBlock block = where(position);
            const std::size_t p = static_cast<std::size_t>(position);
            const auto given = start_block(block);
            eigen_assert(given.innerStride() == 1 && given.rows() == block.count);
            const Eigen::Map<const Matrix<Scalar>, 0, Eigen::OuterStride<>> block_rows(
                given.data(), given.rows(), given.cols(), Eigen::OuterStride<>(given.outerStride()));
            const bool packed_rows = packable && block.count == full_rows;
            if (centring.b_dec == nullptr) {
                packing.centred.push_back(block_rows);
            } else if (packed_rows && every_chunk_packed) {
                // Every tile of this block comes from its packed rows: centre them there.
                if (!packing.rows[p].pack_difference(block_rows, *centring.b_dec, blocking)) {
                    throw_non_finite_difference(block_rows, block.first, *centring.b_dec, centring.where);
                }
                packing.centred.push_back(block_rows);  // keeps the positions; never read
                continue;
            } else {
                Matrix<Scalar>& buffer = packing.differences[p];
                if (buffer.rows() != stream_block_rows || buffer.cols() != d_in) buffer.resize(stream_block_rows, d_in);
                auto centred = buffer.topRows(block.count);
                centre_finite_rows<Scalar>(block_rows, block.first, *centring.b_dec, centred, centring.where);
                packing.centred.emplace_back(centred.data(), centred.rows(), centred.cols(),
                                             Eigen::OuterStride<>(centred.outerStride()));
            }
            if (packed_rows) packing.rows[p].pack(packing.centred.back(), blocking);
        }
        for (Index c0 = 0; c0 < d_sae; c0 += stream_chunk_cols) {
            const Index width = std::min(stream_chunk_cols, d_sae - c0);
            const auto chunk = W_enc.middleCols(c0, width);
            const bool packed_chunk = packable && width == full_width;
            if (packed_chunk) packing.columns.pack(chunk, blocking);
            for (Index position = 0; position < count_blocks; ++position) {
                const StreamBlock block = where(position);
                auto tile = tile_of(block, c0, width);
                // Starting from the bias saves a pass: Eigen's "=" product zeroes first anyway.
                tile.rowwise() = b_enc.segment(c0, width);
                if (packed_chunk && block.count == full_rows) {
                    add_packed_tile_product(packing.rows[static_cast<std::size_t>(position)], packing.columns, tile);
                } else {
                    add_tile_product(packing.centred[static_cast<std::size_t>(position)], chunk, tile);
                }
                consume(block, tile, c0);
            }
        }
        for (Index position = 0; position < count_blocks; ++position) finish(where(position));
    });
}

/// Scratch of encode_streamed that a calling thread keeps from one call to the next:
/// made afresh each call, the tiles, selection buffers and code blocks (a few MiB at the
/// benchmark's shapes) cost page faults and their zeroing on every call, about 5% of an
/// encode of 10,000 rows. Code blocks of more than `kept_code_entries` entries in all
/// are released after the call, so a one-off huge batch does not pin its memory.
template <class Scalar, class Activation>
struct EncodeWorkspace {
    static constexpr Index kept_code_entries = Index(1) << 22;
    std::vector<Matrix<Scalar>> tiles;  ///< per thread slot
    std::vector<Matrix<Scalar>> copies;  ///< per (slot, position): stream_state_index; x's rows, where x is not row major
    std::vector<typename Activation::RowSelection> selections;  ///< per (slot, position)
    RowBlockCode<Scalar, bounds_row_entries<Activation>::value> assembly;  ///< builds `code`
    SparseCode<Scalar> code;  ///< the code being made, then swapped with the caller's

    void prepare(std::size_t threads) {
        const std::size_t states = threads * static_cast<std::size_t>(stream_group_blocks);
        if (tiles.size() < threads) tiles.resize(threads);
        if (selections.size() < states) {
            copies.resize(states);
            selections.resize(states);
        }
    }
    void release_large_code(Index entries) {
        if (entries <= kept_code_entries) return;
        assembly.release_builders();
        SparseCode<Scalar>().swap(code);
    }
};

/// The sparse code of `x` [batch, d_in] under a streamed activation, block by block in
/// parallel (stream_pre_activations, which centres x's rows, checks them for NaN/Inf and
/// packs them in one pass), their pre-activations made chunk by chunk and selected. An x
/// that is not row major with unit inner stride is copied block by block first. Holds
/// O(threads * stream_group_blocks * stream_block_rows * d_in) scratch besides the code
/// (kept by the calling thread for its next call, EncodeWorkspace); nothing of size
/// [batch, d_sae] or [batch, d_in]. A TopK code (at most k entries per row) is written in
/// place, row r from entry r * k (RowBlockCode): at 256 -> 512 per-block buffers and
/// their copy into the code cost 3% of an encode of 10,000 rows. The code is made in the
/// workspace and swapped with `code` at the end, so a call that throws leaves `code` as
/// it was.
template <class Scalar, class Activation, class Derived>
void encode_streamed(const Eigen::MatrixBase<Derived>& x, const Matrix<Scalar>& W_enc, const RowVector<Scalar>& b_enc,
                     const RowVector<Scalar>& b_dec, const Activation& activation, SparseCode<Scalar>& code,
                     const char* where) {
    static_assert(streams_rows<Activation>::value, "encode_streamed: the activation does not select rows independently");
    constexpr bool rows_in_place = bool(Derived::IsRowMajor) && (int(Derived::Flags) & Eigen::DirectAccessBit) != 0 &&
                                   int(Derived::InnerStrideAtCompileTime) == 1;
    const Index rows = x.rows(), d_sae = W_enc.cols();
    const Index blocks = (rows + stream_block_rows - 1) / stream_block_rows;
    thread_local EncodeWorkspace<Scalar, Activation> workspace;
    workspace.prepare(static_cast<std::size_t>(available_threads()));
    // References, not `workspace` itself, go into the callbacks: a thread_local named
    // inside them would be the worker thread's own (empty) one.
    std::vector<Matrix<Scalar>>& copies = workspace.copies;
    std::vector<Matrix<Scalar>>& tiles = workspace.tiles;
    std::vector<typename Activation::RowSelection>& selections = workspace.selections;
    auto& assembly = workspace.assembly;
    assembly.open(workspace.code, rows, d_sae, blocks, row_entry_bound_of(activation));
    const auto start_block = [&](const StreamBlock& block) {
        activation.start_rows(selections[stream_state_index(block)], block.count);
        if constexpr (rows_in_place) {
            return x.derived().middleRows(block.first, block.count);
        } else {
            Matrix<Scalar>& buffer = copies[stream_state_index(block)];
            // Full-size buffers, of which a short last block uses the top rows: a resize
            // would reallocate them twice per call.
            if (buffer.rows() != stream_block_rows || buffer.cols() != x.cols()) buffer.resize(stream_block_rows, x.cols());
            auto copy = buffer.topRows(block.count);
            copy = x.middleRows(block.first, block.count);
            return copy;
        }
    };
    const auto tile_of = [&](const StreamBlock& block, Index, Index width) {
        return stream_tile(tiles[static_cast<std::size_t>(block.slot)], block, width);
    };
    const auto consume = [&](const StreamBlock& block, const auto& tile, Index c0) {
        activation.select_chunk(selections[stream_state_index(block)], tile, c0);
    };
    const auto finish = [&](const StreamBlock& block) {
        assembly.fill(block.block, block.first, block.count,
                      [&](auto& out) { activation.finish_rows(selections[stream_state_index(block)], out); });
    };
    stream_pre_activations<Scalar>(rows, W_enc, b_enc, start_block, tile_of, consume, finish, RowCentring<Scalar>{&b_dec, where});
    assembly.close();
    code.swap(workspace.code);
    workspace.release_large_code(code.nonZeros());
}

}  // namespace sae::detail
