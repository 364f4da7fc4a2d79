#pragma once
/// \file tile_product.hpp
/// `add_tile_product(lhs, rhs, dst)`: dst += lhs * rhs for the encoder's tiles
/// (encoder_stream.hpp), with Eigen's own GEMM kernel and Eigen's own blocking, but with
/// packing buffers that each thread keeps from one product to the next. And the same
/// product from operands packed once and reused (`PackedTileRows`, `PackedTileColumns`,
/// `add_packed_tile_product`), for the encoder's groups of row blocks.
///
/// Why own buffers. Eigen's product allocates its two packing buffers on every call (on
/// the heap from 128 KiB on: 0.75 MiB for a 256 x 512 tile of depth 256) and frees them
/// after. The encoder runs thousands of tile products per second on worker threads,
/// whose malloc arenas hand freed memory back to the kernel, so every product
/// page-faulted its buffers in again and zeroed them, and the unmapping cost cross-core
/// TLB shootdowns: about 5% of an encode of 10,000 rows at 256 -> 512 (perf: page
/// faults, smp_call_function_many_cond).
///
/// Why packed operands. Every tile product packs both operands into Eigen's kernel
/// layout first. The encoder multiplies each block of rows by every chunk of W_enc, so
/// per product the W_enc chunk was packed anew for every 256 rows: at 768 -> 24,576 with
/// 4,096 rows, 16 packings of all of W_enc (1.2 GB written) per step, 9% of the step,
/// and the rows once per chunk, 3% more. Packed once and kept, a chunk serves every
/// block of a group and a block's rows every chunk.
///
/// Same numbers. The blocking sizes are computed exactly as Eigen's product computes
/// them for the same shape on one thread (`tile_blocking`), the same packing routines
/// and the same kernel run on the same panels in the same order of the depth, so both
/// ways the result is bit-identical to `dst.noalias() += lhs * rhs`. Where Eigen would
/// split the product over several threads (outside any parallel region, with OpenMP),
/// or takes another path (one row or column, tiny products), that product runs instead,
/// unchanged (`tile_product_is_blocked` says which).
///
/// Uses Eigen's internal GEMM interface (general_matrix_matrix_product, gebp_kernel,
/// gemm_pack_lhs/rhs, level3_blocking, computeProductBlockingSizes), stable since
/// Eigen 3.3.

#include "types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

#if defined(EIGEN_HAS_OPENMP) && !defined(EIGEN_USE_BLAS)
#include <omp.h>
#endif

namespace sae::detail {

/// Eigen's cache blocking of one tile product dst [rows, cols] += lhs [rows, depth] *
/// rhs [depth, cols], all row major. Eigen runs a row-major product as the transposed
/// column-major one, so its "m" is our cols (latents), its "n" our rows, its "k" the
/// depth; the values are those gemm_blocking_space<RowMajor, ...>(rows, cols, depth,
/// 1 thread, true) sets.
struct TileBlocking {
    Index kc = 0;  ///< depth per panel
    Index mc = 0;  ///< columns (latents) per panel
    Index nc = 0;  ///< rows per panel
    bool operator==(const TileBlocking& other) const { return kc == other.kc && mc == other.mc && nc == other.nc; }
};

template <class Scalar>
TileBlocking tile_blocking(Index rows, Index cols, Index depth) {
    TileBlocking blocking{depth, cols, rows};
    Eigen::internal::computeProductBlockingSizes<Scalar, Scalar, 1>(blocking.kc, blocking.mc, blocking.nc, Index(1));
    return blocking;
}

/// One thread's packing buffers for add_tile_product: grow-only, shaped per product.
template <class Scalar>
class TileProductBuffers : public Eigen::internal::level3_blocking<Scalar, Scalar> {
public:
    void shape(Index rows, Index cols, Index depth) {
        const TileBlocking blocking = tile_blocking<Scalar>(rows, cols, depth);
        this->m_mc = blocking.mc;
        this->m_nc = blocking.nc;
        this->m_kc = blocking.kc;
        grow(packed_a_, this->m_mc * this->m_kc);
        grow(packed_b_, this->m_kc * this->m_nc);
        this->m_blockA = packed_a_.data();
        this->m_blockB = packed_b_.data();
    }

private:
    static void grow(Eigen::Matrix<Scalar, Eigen::Dynamic, 1>& buffer, Index size) {
        if (buffer.size() < size) buffer.resize(size);  // Eigen's allocator: aligned for its packets
    }

    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> packed_a_, packed_b_;
};

/// True when Eigen would run a product on this thread alone (inside a parallel region,
/// with one thread, or without OpenMP): then add_tile_product does the same work itself.
inline bool eigen_product_runs_serially() {
#if defined(EIGEN_HAS_OPENMP) && !defined(EIGEN_USE_BLAS)
    return omp_get_num_threads() > 1 || Eigen::nbThreads() == 1;
#else
    return true;
#endif
}

/// True when a tile product of this shape, here, is Eigen's serial blocked GEMM, so that
/// add_tile_product runs it itself and add_packed_tile_product gives the same result.
/// Eigen takes other paths for a product below 20 in rows + cols + depth
/// (coefficient-wise) and for one row or column (GEMV), and where it would parallelise
/// it splits the product its own way.
inline bool tile_product_is_blocked(Index rows, Index cols, Index depth) {
    return rows > 1 && cols > 1 && depth > 0 && rows + cols + depth >= 20 && eigen_product_runs_serially();
}

/// dst += lhs * rhs; all three row major with unit inner stride (a Matrix<Scalar> or a
/// block of one), shapes [rows, depth] * [depth, cols] -> [rows, cols].
template <class Lhs, class Rhs, class Dst>
void add_tile_product(const Lhs& lhs, const Rhs& rhs, Dst&& dst) {
    using Scalar = typename Eigen::internal::remove_all<Dst>::type::Scalar;
    static_assert(Lhs::IsRowMajor && Rhs::IsRowMajor && Eigen::internal::remove_all<Dst>::type::IsRowMajor,
                  "add_tile_product: row-major operands only");
    eigen_assert(lhs.innerStride() == 1 && rhs.innerStride() == 1 && dst.innerStride() == 1);
    eigen_assert(lhs.cols() == rhs.rows() && dst.rows() == lhs.rows() && dst.cols() == rhs.cols());
    const Index rows = dst.rows(), cols = dst.cols(), depth = lhs.cols();
    if (rows == 0 || cols == 0) return;
    if (!tile_product_is_blocked(rows, cols, depth)) {
        dst.noalias() += lhs * rhs;
        return;
    }
    thread_local TileProductBuffers<Scalar> buffers;
    buffers.shape(rows, cols, depth);
    Eigen::internal::general_matrix_matrix_product<Index, Scalar, Eigen::RowMajor, false, Scalar, Eigen::RowMajor, false,
                                                   Eigen::RowMajor, 1>::run(rows, cols, depth, lhs.data(), lhs.outerStride(),
                                                                            rhs.data(), rhs.outerStride(), dst.data(), 1,
                                                                            dst.outerStride(), Scalar(1), buffers, nullptr);
}

/// The column-major product that Eigen runs for a row-major tile product, its packing
/// routines and kernel (as general_matrix_matrix_product<..., ColMajor, 1>::run names
/// them for row-major operands), and the panel grid of a packed operand: panels of
/// `panel_rows` x `panel_depth`, each in a slot rounded up to 64 bytes so that every
/// panel starts aligned for the kernel's packet loads, as Eigen's own buffer does.
template <class Scalar>
struct TileKernel {
    using Traits = Eigen::internal::gebp_traits<Scalar, Scalar>;
    using SourceMapper = Eigen::internal::const_blas_data_mapper<Scalar, Index, Eigen::ColMajor>;
    using ResultMapper = Eigen::internal::blas_data_mapper<Scalar, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
    using PackColumns = Eigen::internal::gemm_pack_lhs<Scalar, Index, SourceMapper, Traits::mr, Traits::LhsProgress,
                                                       typename Traits::LhsPacket4Packing, Eigen::ColMajor>;
    using PackRows = Eigen::internal::gemm_pack_rhs<Scalar, Index, SourceMapper, Traits::nr, Eigen::ColMajor>;
    using Kernel = Eigen::internal::gebp_kernel<Scalar, Scalar, Index, ResultMapper, Traits::mr, Traits::nr, false, false>;

    static constexpr Index slot_alignment = 64 / Index(sizeof(Scalar));
    static Index slot_size(Index panel_rows, Index panel_depth) {
        return (panel_rows * panel_depth + slot_alignment - 1) / slot_alignment * slot_alignment;
    }
    static Index panels(Index size, Index panel) { return (size + panel - 1) / panel; }
};

/// What PackRows writes for `count` rows of `depth` values (row r at rows + r * stride),
/// but of the differences rows - offset (offset: `depth` values), made on the way in;
/// returns whether every difference is finite. The layout is gemm_pack_rhs's (ColMajor,
/// no panel mode, nr = 4): each group of 4 rows interleaved by depth ([k][4], by Eigen's
/// own 4-packet transposition where a packet holds a multiple of 4 values), then each
/// remaining row alone. A difference is the same float subtraction either way, so the
/// result equals PackRows of the stored differences to the bit (test_parallel.cpp).
#if defined(__GNUC__)
#pragma GCC diagnostic push
// PacketBlock<__m128, 4>: GCC notes that __m128's alignment attribute does not carry into
// the template argument, as inside Eigen's own packing code (which silences it the same way).
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif
template <class Scalar>
bool pack_row_differences(Scalar* out, const Scalar* rows, Index stride, const Scalar* offset, Index depth, Index count) {
    using namespace Eigen::internal;
    using Packet = typename packet_traits<Scalar>::type;
    constexpr Index packet = packet_traits<Scalar>::size;
    static_assert(gebp_traits<Scalar, Scalar>::nr == 4, "pack_row_differences: Eigen's rhs packing of nr = 4 only");
    // x * 0 is 0 for finite x and NaN for NaN or Inf: one sum says whether all are finite.
    const Packet zero = pset1<Packet>(Scalar(0));
    Packet times_zero = zero;
    Scalar scalar_times_zero = 0;
    Index written = 0;
    Index r = 0;
    for (; r + 4 <= count; r += 4) {
        const Scalar* row[4] = {rows + r * stride, rows + (r + 1) * stride, rows + (r + 2) * stride, rows + (r + 3) * stride};
        Index k = 0;
        if constexpr (packet % 4 == 0) {
            for (; k + packet <= depth; k += packet) {
                const Packet shift = ploadu<Packet>(offset + k);
                PacketBlock<Packet, 4> block;
                for (int i = 0; i < 4; ++i) {
                    block.packet[i] = psub(ploadu<Packet>(row[i] + k), shift);
                    times_zero = padd(times_zero, pmul(block.packet[i], zero));
                }
                ptranspose(block);
                for (int i = 0; i < 4; ++i) pstoreu(out + written + i * packet, block.packet[i]);
                written += 4 * packet;
            }
        }
        for (; k < depth; ++k) {
            for (int i = 0; i < 4; ++i) {
                out[written] = row[i][k] - offset[k];
                scalar_times_zero += out[written++] * Scalar(0);
            }
        }
    }
    for (; r < count; ++r) {
        const Scalar* row = rows + r * stride;
        for (Index k = 0; k < depth; ++k) {
            out[written] = row[k] - offset[k];
            scalar_times_zero += out[written++] * Scalar(0);
        }
    }
    return predux(times_zero) + scalar_times_zero == Scalar(0);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/// Which operand of a tile product dst [rows, cols] += lhs [rows, depth] * rhs
/// [depth, cols] a PackedTileOperand holds.
enum class TileOperand {
    rows,     ///< lhs, the encoder's centred rows: Eigen's "rhs" panels of depth kc by nc rows
    columns,  ///< rhs, a chunk of W_enc: Eigen's "lhs" panels of mc columns by depth kc
};

/// One operand of tile products, packed once in Eigen's kernel layout for blocking
/// `blocking()` and then reused by add_packed_tile_product. Grow-only buffer.
template <class Scalar, TileOperand Side>
class PackedTileOperand {
public:
    static constexpr bool holds_rows = Side == TileOperand::rows;

    /// `source`: row major, unit inner stride; [rows, depth] for TileOperand::rows,
    /// [depth, cols] for TileOperand::columns.
    template <class Source>
    void pack(const Source& source, const TileBlocking& blocking) {
        static_assert(Source::IsRowMajor, "PackedTileOperand: row-major operands only");
        eigen_assert(source.innerStride() == 1);
        using K = TileKernel<Scalar>;
        using Pack = std::conditional_t<holds_rows, typename K::PackRows, typename K::PackColumns>;
        const Index panel =
            shape(holds_rows ? source.rows() : source.cols(), holds_rows ? source.cols() : source.rows(), blocking);
        const Index kc = blocking.kc;
        const typename K::SourceMapper mapper(source.data(), source.outerStride());
        Pack pack_panel;
        for (Index p0 = 0; p0 < extent_; p0 += panel) {
            for (Index k2 = 0; k2 < depth_; k2 += kc) {
                pack_panel(packed_.data() + offset(k2 / kc, p0 / panel),
                           holds_rows ? mapper.getSubMapper(k2, p0) : mapper.getSubMapper(p0, k2),
                           std::min(kc, depth_ - k2), std::min(panel, extent_ - p0));
            }
        }
    }

    /// pack(source - offset) for TileOperand::rows, `offset` a row subtracted from every
    /// row of `source` on the way in (the encoder's x - b_dec: the differences are never
    /// stored unpacked); returns whether every difference is finite. The packed values
    /// are pack()'s of the stored differences, to the bit (pack_row_differences).
    template <class Source>
    bool pack_difference(const Source& source, const RowVector<Scalar>& row_offset, const TileBlocking& blocking) {
        static_assert(holds_rows && Source::IsRowMajor, "PackedTileOperand::pack_difference: row-major rows only");
        eigen_assert(source.innerStride() == 1 && row_offset.size() == source.cols());
        const Index panel = shape(source.rows(), source.cols(), blocking);
        const Index kc = blocking.kc;
        bool finite = true;
        for (Index p0 = 0; p0 < extent_; p0 += panel) {
            for (Index k2 = 0; k2 < depth_; k2 += kc) {
                finite &= pack_row_differences(packed_.data() + offset(k2 / kc, p0 / panel),
                                               source.data() + p0 * source.outerStride() + k2, source.outerStride(),
                                               row_offset.data() + k2, std::min(kc, depth_ - k2), std::min(panel, extent_ - p0));
            }
        }
        return finite;
    }
    const TileBlocking& blocking() const { return blocking_; }
    Index extent() const { return extent_; }  ///< rows (TileOperand::rows) or cols (TileOperand::columns)
    Index depth() const { return depth_; }
    const Scalar* panel(Index depth_panel, Index extent_panel) const { return packed_.data() + offset(depth_panel, extent_panel); }

private:
    /// Sets the panel grid for an operand of `extent` rows or columns and `depth`, grows
    /// the buffer to hold it, and returns the panel width along the extent.
    Index shape(Index extent, Index depth, const TileBlocking& blocking) {
        using K = TileKernel<Scalar>;
        blocking_ = blocking;
        extent_ = extent;
        depth_ = depth;
        const Index panel = std::min(extent_, holds_rows ? blocking.nc : blocking.mc);
        slot_ = K::slot_size(panel, blocking.kc);
        depth_panels_ = K::panels(depth_, blocking.kc);
        const Index size = slot_ * depth_panels_ * K::panels(extent_, panel);
        if (packed_.size() < size) packed_.resize(size);
        return panel;
    }

    Index offset(Index depth_panel, Index extent_panel) const { return (extent_panel * depth_panels_ + depth_panel) * slot_; }

    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> packed_;  ///< Eigen's allocator aligns it for the kernel's packets
    TileBlocking blocking_;
    Index extent_ = 0, depth_ = 0, slot_ = 0, depth_panels_ = 0;
};

template <class Scalar>
using PackedTileRows = PackedTileOperand<Scalar, TileOperand::rows>;
template <class Scalar>
using PackedTileColumns = PackedTileOperand<Scalar, TileOperand::columns>;

/// dst += rows * columns from packed operands, dst [rows.extent(), columns.extent()] row
/// major with unit inner stride. Requires both packed for the same blocking, and that
/// blocking to be tile_blocking(dst's shape, depth) with tile_product_is_blocked true:
/// then the result is add_tile_product's (Eigen's loop over the same panels and kernel).
template <class Scalar, class Dst>
void add_packed_tile_product(const PackedTileRows<Scalar>& rows, const PackedTileColumns<Scalar>& columns, Dst&& dst) {
    static_assert(Eigen::internal::remove_all<Dst>::type::IsRowMajor, "add_packed_tile_product: row-major result only");
    eigen_assert(rows.blocking() == columns.blocking() && rows.depth() == columns.depth());
    eigen_assert(dst.rows() == rows.extent() && dst.cols() == columns.extent() && dst.innerStride() == 1);
    using K = TileKernel<Scalar>;
    const TileBlocking& blocking = rows.blocking();
    const Index n = rows.extent(), m = columns.extent(), depth = rows.depth();
    const Index mc = std::min(m, blocking.mc), nc = std::min(n, blocking.nc), kc = blocking.kc;
    const typename K::ResultMapper result(dst.data(), dst.outerStride(), 1);
    typename K::Kernel kernel;
    for (Index i2 = 0; i2 < m; i2 += mc) {
        for (Index k2 = 0; k2 < depth; k2 += kc) {
            for (Index j2 = 0; j2 < n; j2 += nc) {
                kernel(result.getSubMapper(i2, j2), columns.panel(k2 / kc, i2 / mc), rows.panel(k2 / kc, j2 / nc),
                       std::min(mc, m - i2), std::min(kc, depth - k2), std::min(nc, n - j2), Scalar(1));
            }
        }
    }
}

}  // namespace sae::detail
