#pragma once
/// \file tile_product.hpp
/// `add_tile_product(lhs, rhs, dst)`: dst += lhs * rhs for the encoder's tiles
/// (encoder_stream.hpp), with Eigen's own GEMM kernel and Eigen's own blocking, but with
/// packing buffers that each thread keeps from one product to the next.
///
/// Why. Eigen's product allocates its two packing buffers on every call (on the heap
/// from 128 KiB on: 0.75 MiB for a 256 x 512 tile of depth 256) and frees them after.
/// The encoder runs thousands of tile products per second on worker threads, whose
/// malloc arenas hand freed memory back to the kernel, so every product page-faulted
/// its buffers in again and zeroed them, and the unmapping cost cross-core TLB
/// shootdowns: about 5% of an encode of 10,000 rows at 256 -> 512 (perf: page faults,
/// smp_call_function_many_cond).
///
/// Same numbers. The blocking sizes are computed exactly as Eigen's product computes
/// them for the same shape on one thread, and the same kernel runs, so the result is
/// bit-identical to `dst.noalias() += lhs * rhs`. Where Eigen would split the product
/// over several threads (outside any parallel region, with OpenMP), that product runs
/// instead, unchanged.
///
/// Uses Eigen's internal GEMM interface (general_matrix_matrix_product,
/// level3_blocking, computeProductBlockingSizes), stable since Eigen 3.3.

#include "types.hpp"

#include <Eigen/Core>

#if defined(EIGEN_HAS_OPENMP) && !defined(EIGEN_USE_BLAS)
#include <omp.h>
#endif

namespace sae::detail {

/// One thread's packing buffers for add_tile_product: grow-only, shaped per product.
template <class Scalar>
class TileProductBuffers : public Eigen::internal::level3_blocking<Scalar, Scalar> {
public:
    /// Blocking for dst [rows, cols] += lhs [rows, depth] * rhs [depth, cols], all row
    /// major, as gemm_blocking_space<RowMajor, ...>(rows, cols, depth, 1 thread, true)
    /// sets it: Eigen runs a row-major product as the transposed column-major one, so
    /// its "m" is our cols and its "n" our rows.
    void shape(Index rows, Index cols, Index depth) {
        this->m_mc = cols;
        this->m_nc = rows;
        this->m_kc = depth;
        Eigen::internal::computeProductBlockingSizes<Scalar, Scalar, 1>(this->m_kc, this->m_mc, this->m_nc, Index(1));
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
    // Eigen takes other paths for a product below 20 in rows + cols + depth
    // (coefficient-wise) and for one row or column (GEMV), and where it would
    // parallelise it splits the product its own way: those stay Eigen's.
    if (depth == 0 || rows == 1 || cols == 1 || rows + cols + depth < 20 || !eigen_product_runs_serially()) {
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

}  // namespace sae::detail
