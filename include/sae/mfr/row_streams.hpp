#pragma once
/// \file row_streams.hpp
/// Kernels that read several rows from anywhere in memory side by side, one cache line
/// of each per step. MFR's penalty pass (penalty.hpp) reads, for every row of every
/// member, its matched partner rows in the other members: rows of 3 KiB (at d = 768)
/// in an order no prefetcher can guess. Read one after the other, each row's misses
/// wait on the previous row's arithmetic; read side by side, up to `max_row_streams`
/// rows have misses in flight at once. A row's dot with the own row and its scaled
/// share of the sum are taken in the same read (its scale is known beforehand), so
/// each partner row crosses the memory bus once.
///
/// The sums run over chunks of one cache line (a fixed-size Eigen array, one AVX-512
/// register of float), so the rounding depends only on the row length, not on the
/// machine's threads.

#include "sae/core/types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

namespace sae::detail {

/// Most rows one call reads side by side (each needs an accumulator in a register).
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

/// Sum of squares of row[0 .. width), in the chunks the kernels below use (so a row's
/// norm comes out the same wherever it is taken).
template <class Scalar>
Scalar chunked_square_sum(const Scalar* row, Index width) {
    using Chunk = CacheLineChunk<Scalar>;
    constexpr Index lanes = Chunk::RowsAtCompileTime;
    Chunk square = Chunk::Zero();
    const Index full = width - width % lanes;
    for (Index k = 0; k < full; k += lanes) {
        const Chunk v = Eigen::Map<const Chunk, Eigen::Unaligned>(row + k);
        square += v * v;
    }
    Scalar sum = square.sum();
    for (Index k = full; k < width; ++k) sum += row[k] * row[k];
    return sum;
}

/// One pass over rows[0 .. Count): dots[t] = own . rows[t], and, when `out` is not null,
/// out += sum over t of coefficients[t] * rows[t] (the rows summed first, chunk by chunk,
/// then added to out).
template <class Scalar, int Count>
void dots_and_scaled_sum_of(const Scalar* own, const Scalar* const* rows, const Scalar* coefficients, Index width,
                            Scalar* dots, Scalar* out) {
    using Chunk = CacheLineChunk<Scalar>;
    using Read = Eigen::Map<const Chunk, Eigen::Unaligned>;
    constexpr Index lanes = Chunk::RowsAtCompileTime;
    Chunk dot[Count];
    for (int t = 0; t < Count; ++t) dot[t].setZero();
    const Index full = width - width % lanes;
    if (out != nullptr) {
        for (Index k = 0; k < full; k += lanes) {
            const Chunk w = Read(own + k);
            const Chunk first = Read(rows[0] + k);
            dot[0] += w * first;
            Chunk sum = coefficients[0] * first;
            for (int t = 1; t < Count; ++t) {
                const Chunk v = Read(rows[t] + k);
                dot[t] += w * v;
                sum += coefficients[t] * v;
            }
            Eigen::Map<Chunk, Eigen::Unaligned>(out + k) += sum;
        }
    } else {
        for (Index k = 0; k < full; k += lanes) {
            const Chunk w = Read(own + k);
            for (int t = 0; t < Count; ++t) dot[t] += w * Read(rows[t] + k);
        }
    }
    for (int t = 0; t < Count; ++t) {
        Scalar d = dot[t].sum();
        for (Index k = full; k < width; ++k) d += own[k] * rows[t][k];
        dots[t] = d;
    }
    if (out == nullptr) return;
    for (Index k = full; k < width; ++k) {
        Scalar sum = coefficients[0] * rows[0][k];
        for (int t = 1; t < Count; ++t) sum += coefficients[t] * rows[t][k];
        out[k] += sum;
    }
}

/// For the `count` rows rows[0 .. count) (1 <= count <= max_row_streams), each `width`
/// long, in one pass: dots[t] = own . rows[t], and unless `out` is null
/// out[0 .. width) += sum over t of coefficients[t] * rows[t][0 .. width).
template <class Scalar>
void dots_and_scaled_sum(const Scalar* own, const Scalar* const* rows, const Scalar* coefficients, int count,
                         Index width, Scalar* dots, Scalar* out) {
    with_row_count<max_row_streams>(count, [&](auto rows_at_once) {
        dots_and_scaled_sum_of<Scalar, decltype(rows_at_once)::value>(own, rows, coefficients, width, dots, out);
    });
}

/// Asks the caches for the first lines of `row`: the rows a pass reads next start where
/// no prefetcher can guess, and the hardware's own takes over after a few lines.
template <class Scalar>
void prefetch_row_start(const Scalar* row, Index width) {
    constexpr Index lines = 4;
    const char* bytes = reinterpret_cast<const char*>(row);
    const Index length = width * static_cast<Index>(sizeof(Scalar));
    for (Index offset = 0; offset < std::min(lines * 64, length); offset += 64) __builtin_prefetch(bytes + offset, 0, 3);
}

}  // namespace sae::detail
