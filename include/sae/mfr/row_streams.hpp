#pragma once
/// \file row_streams.hpp
/// Kernels that read several rows from anywhere in memory side by side, one cache line
/// of each per step. MFR's penalty pass (penalty.hpp) reads, for every row of every
/// member, its matched partner rows in the other members: rows of 3 KiB (at d = 768)
/// in an order no prefetcher can guess. Read one after the other, each row's misses
/// wait on the previous row's arithmetic; read side by side, up to `max_row_streams`
/// rows have misses in flight at once.
///
/// The sums run over chunks of one cache line (a fixed-size Eigen array, one AVX-512
/// register of float), so the rounding depends only on the row length, not on the
/// machine's threads.

#include "sae/core/types.hpp"

#include <Eigen/Core>

#include <type_traits>

namespace sae::detail {

/// Most rows one call reads side by side (each needs two accumulators in registers).
inline constexpr int max_row_streams = 8;

/// Calls `work(std::integral_constant<int, count>{})` for 1 <= count <= Max, so that
/// the kernels below are compiled for each row count with their accumulators unrolled.
template <int Max, class Work>
void with_row_count(int count, Work&& work) {
    if constexpr (Max > 0) {
        if (count == Max) {
            work(std::integral_constant<int, Max>{});
        } else {
            with_row_count<Max - 1>(count, work);
        }
    }
}

template <class Scalar>
using CacheLineChunk = Eigen::Array<Scalar, 64 / static_cast<int>(sizeof(Scalar)), 1>;

template <class Scalar, int Count>
void dots_and_squares_of(const Scalar* own, const Scalar* const* rows, Index width, Scalar* dots, Scalar* squares) {
    using Chunk = CacheLineChunk<Scalar>;
    using Read = Eigen::Map<const Chunk, Eigen::Unaligned>;
    constexpr Index lanes = Chunk::RowsAtCompileTime;
    Chunk dot[Count], square[Count];
    for (int t = 0; t < Count; ++t) {
        dot[t].setZero();
        square[t].setZero();
    }
    const Index full = width - width % lanes;
    for (Index k = 0; k < full; k += lanes) {
        const Chunk w = Read(own + k);
        for (int t = 0; t < Count; ++t) {
            const Chunk v = Read(rows[t] + k);
            dot[t] += w * v;
            square[t] += v * v;
        }
    }
    for (int t = 0; t < Count; ++t) {
        Scalar d = dot[t].sum(), s = square[t].sum();
        for (Index k = full; k < width; ++k) {
            d += own[k] * rows[t][k];
            s += rows[t][k] * rows[t][k];
        }
        dots[t] = d;
        squares[t] = s;
    }
}

template <class Scalar, int Count>
void add_scaled_rows_of(const Scalar* const* rows, const Scalar* coefficients, Index width, Scalar* out) {
    using Chunk = CacheLineChunk<Scalar>;
    using Read = Eigen::Map<const Chunk, Eigen::Unaligned>;
    constexpr Index lanes = Chunk::RowsAtCompileTime;
    const Index full = width - width % lanes;
    for (Index k = 0; k < full; k += lanes) {
        Eigen::Map<Chunk, Eigen::Unaligned> target(out + k);
        Chunk sum = coefficients[0] * Read(rows[0] + k);
        for (int t = 1; t < Count; ++t) sum += coefficients[t] * Read(rows[t] + k);
        target += sum;
    }
    for (Index k = full; k < width; ++k) {
        Scalar sum = coefficients[0] * rows[0][k];
        for (int t = 1; t < Count; ++t) sum += coefficients[t] * rows[t][k];
        out[k] += sum;
    }
}

/// For the `count` rows rows[0 .. count) (1 <= count <= max_row_streams), each `width`
/// long: dots[t] = own . rows[t] and squares[t] = rows[t] . rows[t], in one pass.
template <class Scalar>
void dots_and_squares(const Scalar* own, const Scalar* const* rows, int count, Index width, Scalar* dots, Scalar* squares) {
    with_row_count<max_row_streams>(count, [&](auto rows_at_once) {
        dots_and_squares_of<Scalar, decltype(rows_at_once)::value>(own, rows, width, dots, squares);
    });
}

/// out[0 .. width) += sum over t < count of coefficients[t] * rows[t][0 .. width).
template <class Scalar>
void add_scaled_rows(const Scalar* const* rows, const Scalar* coefficients, int count, Index width, Scalar* out) {
    with_row_count<max_row_streams>(count, [&](auto rows_at_once) {
        add_scaled_rows_of<Scalar, decltype(rows_at_once)::value>(rows, coefficients, width, out);
    });
}

}  // namespace sae::detail
