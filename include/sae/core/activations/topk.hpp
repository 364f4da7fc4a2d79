#pragma once
/// \file topk.hpp
/// TopK activation (Gao et al. 2024): per row keep the k largest pre-activations,
/// zero the rest; with `relu` the kept values are also passed through ReLU.
/// The MFR authors' SAE uses TopK without ReLU (`relu = false`).
///
/// Ties at the k-th value are broken towards the lower latent index, so a row holds
/// at most k active latents and the result is deterministic.
///
/// Selection is a stream: the pre-activations of a block of rows may arrive in column
/// chunks, left to right (`RowSelection`), so training never needs the whole
/// [batch, d_sae] matrix (loss.hpp). Per row only values above a running threshold are
/// kept as candidates (see RunningTopK), so almost every value costs one comparison,
/// made 16 at a time.

#include "../parallel.hpp"
#include "../sparse_code_builder.hpp"
#include "common.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>
#include <string>
#include <vector>

namespace sae {

namespace detail {

/// The k largest values of every row of a block of rows, fed left to right.
/// Requires: per row, columns are offered in increasing order (what the tie rule needs:
///           a later value equal to the k-th best is worse because its column is larger).
/// Ensures:  emit_row gives the row's kept entries in increasing column order; values
///           <= 0 are never kept with `positive_only`, NaN and -inf never.
/// How: a value above the row's threshold is appended to the row's buffer of 4k
/// candidates, which stays in column order; a full buffer is cut back to its best k
/// (the k-th best value t found by bisection on the values' order-preserving integer
/// keys, each step a branch-free count the compiler vectorises; then one stable pass that
/// keeps the values above t and the lowest-column ties at t) and the threshold becomes t.
/// Appends are cheap (with AVX-512 one compress per 16 values) and cuts rare, and once
/// the threshold is up most values are skipped 16 at a time. A row's first long run of
/// values starts from the threshold that served the rows before it, or else one taken
/// from a sample of the run (either kept only when at least k of the run's values exceed
/// it, so it never drops a winner): most of the cuts a threshold rising from zero would
/// need are then never made. The kept entries come out already in column order.
template <class Scalar>
class RunningTopK {
public:
    void start(Index rows, Index k, bool positive_only) {
        k_ = k;
        limit_ = std::max<Index>(4 * k, width);
        stride_ = limit_ + width;  // a 16-value group may land on a buffer just under the limit
        values_.resize(static_cast<std::size_t>(rows * stride_));
        cols_.resize(static_cast<std::size_t>(rows * stride_));
        sizes_.assign(static_cast<std::size_t>(rows), 0);
        thresholds_.assign(static_cast<std::size_t>(rows), positive_only ? Scalar(0) : -std::numeric_limits<Scalar>::infinity());
        last_estimate_ = -std::numeric_limits<Scalar>::infinity();
    }

    /// Offer values[0, count) of `row`, which sit at columns first_col, first_col + 1, ...
    void offer_row(Index row, const Scalar* values, Index count, Index first_col) {
        const std::size_t r = static_cast<std::size_t>(row);
        if (sizes_[r] == 0 && count >= 2 * sample_size && count >= 8 * k_) {
            // The row's first long run: try the last accepted estimate as the threshold
            // while appending (no separate pass to test it). It stands if at least k
            // values exceed it, for then every winner does; else the run is appended
            // again from a sampled estimate. A cut on the way (it raises the threshold
            // above the estimate: every kept value exceeds it) means the estimate let
            // through too many: the next row samples afresh.
            const Scalar threshold = thresholds_[r];
            if (last_estimate_ > threshold) {
                thresholds_[r] = last_estimate_;
                append_run(row, values, count, first_col);
                if (thresholds_[r] != last_estimate_) last_estimate_ = -std::numeric_limits<Scalar>::infinity();
                if (sizes_[r] >= k_) return;
                sizes_[r] = 0;
                thresholds_[r] = threshold;
            }
            raise_threshold_from_sample(r, values, count);
        }
        append_run(row, values, count, first_col);
    }

    /// Offer one value of `row` at column `col`.
    void offer(Index row, Index col, Scalar value) {
        const std::size_t r = static_cast<std::size_t>(row);
        if (!(value > thresholds_[r])) return;
        Index& size = sizes_[r];
        const std::size_t slot = r * static_cast<std::size_t>(stride_) + static_cast<std::size_t>(size);
        values_[slot] = value;
        cols_[slot] = static_cast<int>(col);
        if (++size >= limit_) cut(row);
    }

    /// Cuts `row` back to its best k now (emit_row would later): for a row whose last
    /// value has arrived, while its candidates are still in L1. At 256 -> 512 a block's
    /// rows are otherwise cut only after all 256 have been offered, from L2.
    void settle_row(Index row) {
        if (sizes_[static_cast<std::size_t>(row)] > k_) cut(row);
    }

    /// Append the kept entries of `row` to `out` (increasing columns) and end the row;
    /// `out` is a SparseCodeBuilder or a BoundedRowsWriter (at most k entries per row).
    template <class Rows>
    void emit_row(Index row, Rows& out) {
        if (sizes_[static_cast<std::size_t>(row)] > k_) cut(row);
        const Scalar* kept_values = values_.data() + row * stride_;
        const int* kept_cols = cols_.data() + row * stride_;
        const Index size = sizes_[static_cast<std::size_t>(row)];
        out.append(kept_cols, kept_values, size);
        out.end_row();
    }

private:
    static constexpr Index width = 16;
    static constexpr Index sample_size = 64;

    /// offer() for values[0, count): every value above the row's threshold becomes a
    /// candidate, 16 at a time, cutting whenever the buffer fills.
    void append_run(Index row, const Scalar* values, Index count, Index first_col) {
        const std::size_t r = static_cast<std::size_t>(row);
        Scalar* kept_values = values_.data() + row * stride_;
        int* kept_cols = cols_.data() + row * stride_;
        Index size = sizes_[r];
        Scalar threshold = thresholds_[r];
        Index i = 0;
        for (; i + width <= count; i += width) {
            const Index appended = append_group_above(values + i, static_cast<int>(first_col + i), threshold,
                                                      kept_values + size, kept_cols + size);
            if (appended == 0) continue;
            size += appended;
            if (size >= limit_) {
                sizes_[r] = size;
                cut(row);
                size = sizes_[r];
                threshold = thresholds_[r];
            }
        }
        sizes_[r] = size;
        for (; i < count; ++i) offer(row, first_col + i, values[i]);
    }

    /// Unsigned integer keys in the order of the values (the radix-sort key of IEEE
    /// numbers: a positive value's bits with the sign bit set, a negative value's bits
    /// inverted); -0 is counted as +0, as == does.
    using Key = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
    static constexpr Key sign_bit = Key(1) << (8 * sizeof(Key) - 1);
    static Key key_of(Scalar value) {
        const Scalar canonical = value + Scalar(0);  // -0 + 0 = +0
        Key bits;
        std::memcpy(&bits, &canonical, sizeof(bits));
        return (bits & sign_bit) ? static_cast<Key>(~bits) : static_cast<Key>(bits | sign_bit);
    }
    static Scalar value_of_key(Key key) {
        const Key bits = (key & sign_bit) ? static_cast<Key>(key ^ sign_bit) : static_cast<Key>(~key);
        Scalar value;
        std::memcpy(&value, &bits, sizeof(value));
        return value;
    }

    /// Writes the values of group[0, width) above `threshold`, and their columns, to
    /// values_out / cols_out (room for `width` each); returns how many.
    static Index append_group_above(const Scalar* group, int first_col, Scalar threshold, Scalar* values_out, int* cols_out) {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<Scalar, float>) {
            const __m512 v = _mm512_loadu_ps(group);
            const __mmask16 above = _mm512_cmp_ps_mask(v, _mm512_set1_ps(threshold), _CMP_GT_OQ);
            if (above == 0) return 0;
            const __m512i cols = _mm512_add_epi32(_mm512_set1_epi32(first_col),
                                                  _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
            _mm512_storeu_ps(values_out, _mm512_maskz_compress_ps(above, v));
            _mm512_storeu_si512(cols_out, _mm512_maskz_compress_epi32(above, cols));
            return static_cast<Index>(__builtin_popcount(above));
        }
#endif
        // PropagateNumbers: a NaN in the group must not hide the values beside it.
        if (!(Eigen::Map<const Eigen::Array<Scalar, width, 1>>(group).template maxCoeff<Eigen::PropagateNumbers>() > threshold)) return 0;
        // Branch-free: write every value, keep (advance past) those above the threshold.
        Index size = 0;
        for (int t = 0; t < static_cast<int>(width); ++t) {
            values_out[size] = group[t];
            cols_out[size] = first_col + t;
            size += group[t] > threshold;
        }
        return size;
    }

    /// Raises row r's threshold to an estimate, from 64 evenly spaced values, of the
    /// value that about 2k of values[0, count) exceed, if at least k (and fewer than the
    /// 4k that trigger a cut) of them do exceed it; then every winner of the row is above
    /// it. An estimate that passes is remembered for the next rows (offer_row): rows of a
    /// batch tend to look alike.
    void raise_threshold_from_sample(std::size_t r, const Scalar* values, Index count) {
        const Index step = count / sample_size;
        keys_.resize(static_cast<std::size_t>(sample_size));
        for (Index s = 0; s < sample_size; ++s) keys_[static_cast<std::size_t>(s)] = key_of(values[s * step]);
        const Index rank = std::min<Index>(sample_size, (2 * k_ * sample_size + count - 1) / count + 1);
        const Scalar estimate = value_of_key(find_cut(keys_.data(), sample_size, rank).bound);
        if (!(estimate > thresholds_[r])) return;
        Index above = 0;
        for (Index i = 0; i < count; ++i) above += values[i] > estimate;
        if (above < k_ || above >= limit_) return;
        thresholds_[r] = estimate;
        last_estimate_ = estimate;
    }

    /// Where to cut a set of keys back to its best k: either `exact`, with exactly k keys
    /// >= bound (those are the best k), or bound is the k-th largest key and more than k
    /// keys are >= it (ties at the k-th, broken by column).
    struct Cut {
        Key bound;
        bool exact;
    };

    /// The cut of keys[0, size) at k, 1 <= k <= size. The k-th largest key, the largest t
    /// with at least k keys >= t, is narrowed down in [low, high], which always holds it,
    /// with counts of the keys >= a pivot: the pivot is interpolated from the counts at the
    /// ends (keys of nearby values are spread about evenly, so a few steps usually do), or
    /// halves the range when the last step did not (so never more than twice bisection's
    /// 32 or 64 steps). A pivot with exactly k keys at or above it ends the search at once
    /// as an exact cut; its bound is then >= 1 (a pivot lies above the smallest key).
    /// With AVX-512 the search ends as soon as at most 16 keys lie in [low, high]
    /// (cut_within): a cut of 74 candidates then takes 3.2 counting passes, not 6.2.
    static Cut find_cut(const Key* keys, Index size, Index k) {
        Key low = std::numeric_limits<Key>::max(), high = std::numeric_limits<Key>::min();
        for (Index i = 0; i < size; ++i) {
            low = std::min(low, keys[i]);
            high = std::max(high, keys[i]);
        }
        Index count_low = size, count_above_high = 0;  // keys >= low, keys > high
        bool interpolate = true;
        while (low < high) {
#if defined(__AVX512F__)
            if constexpr (sizeof(Key) == 4) {
                if (count_low - count_above_high <= width) return cut_within(keys, size, k, low, high, count_above_high);
            }
#endif
            const Key span = static_cast<Key>(high - low);
            Key step = static_cast<Key>(span / 2 + 1);  // bisection: middle in (low, high]
            if (interpolate) {
                // Where the count would fall to k + 1/2 if the keys were spread evenly.
                const double fraction = (static_cast<double>(count_low - k) + 0.5) / static_cast<double>(count_low - count_above_high);
                const double offset = fraction * (static_cast<double>(span) + 1.0);
                step = offset < 1.0 ? Key(1) : (offset >= static_cast<double>(span) ? span : std::min(span, static_cast<Key>(offset)));
            }
            const Key pivot = static_cast<Key>(low + step);  // in (low, high], no overflow
            const Index count = count_at_least(keys, size, pivot);
            if (count == k) return {pivot, true};
            if (count > k) {
                low = pivot;
                count_low = count;
            } else {
                high = static_cast<Key>(pivot - 1);
                count_above_high = count;
            }
            interpolate = static_cast<Key>(high - low) <= span / 2;  // halved: keep interpolating
        }
        return {low, count_low == k};
    }

#if defined(__AVX512F__)
    /// find_cut's end once at most 16 keys lie in [low, high], count_above_high keys
    /// above it (AVX-512, 32-bit keys): the k-th largest key is the
    /// (k - count_above_high)-th largest of those few, found in one register without
    /// more passes over all keys. Each bracketed key's count of bracketed keys >= it
    /// comes from comparing the register with its 15 rotations; the k-th largest is the
    /// largest key whose count reaches that rank. Exact (k keys >= it) unless ties at it
    /// reach further; a key of 0 is never called exact, as an exact bound must be >= 1.
    static Cut cut_within(const Key* keys, Index size, Index k, Key low, Key high, Index count_above_high) {
        const __m512i lows = _mm512_set1_epi32(static_cast<int>(low));
        const __m512i highs = _mm512_set1_epi32(static_cast<int>(high));
        alignas(64) Key bracket[2 * width];  // a 16-lane store may start at any of the first 16
        unsigned m = 0;
        for (Index i = 0; i < size; i += width) {
            const Index n = std::min(width, size - i);
            const __mmask16 valid = static_cast<__mmask16>(n == width ? 0xFFFFu : (1u << n) - 1u);
            const __m512i group = _mm512_maskz_loadu_epi32(valid, keys + i);
            const __mmask16 inside =
                _mm512_mask_cmple_epu32_mask(_mm512_mask_cmpge_epu32_mask(valid, group, lows), group, highs);
            _mm512_storeu_si512(bracket + m, _mm512_maskz_compress_epi32(inside, group));
            m += static_cast<unsigned>(__builtin_popcount(inside));
        }
        const unsigned filled = (1u << m) - 1u;  // m <= 16
        const __m512i v = _mm512_maskz_loadu_epi32(static_cast<__mmask16>(filled), bracket);
        const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m512i one = _mm512_set1_epi32(1);
        __m512i at_least = one;  // each key counts itself
        for (unsigned s = 1; s < static_cast<unsigned>(width); ++s) {
            const __m512i source_lanes = _mm512_and_si512(_mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int>(s))),
                                                          _mm512_set1_epi32(15));
            const __m512i rotated = _mm512_permutexvar_epi32(source_lanes, v);
            const __mmask16 both_filled = static_cast<__mmask16>(((filled >> s) | (filled << (16 - s))) & filled);
            const __mmask16 not_below = _mm512_mask_cmpge_epu32_mask(both_filled, rotated, v);
            at_least = _mm512_mask_add_epi32(at_least, not_below, at_least, one);
        }
        const __m512i rank = _mm512_set1_epi32(static_cast<int>(k - count_above_high));  // in [1, m]
        const __mmask16 deep_enough = _mm512_mask_cmpge_epi32_mask(static_cast<__mmask16>(filled), at_least, rank);
        alignas(64) Key candidates[width];
        _mm512_store_si512(candidates, _mm512_maskz_mov_epi32(deep_enough, v));
        const Key kth = *std::max_element(candidates, candidates + width);
        const __mmask16 at_or_above_kth =
            _mm512_mask_cmpge_epu32_mask(static_cast<__mmask16>(filled), v, _mm512_set1_epi32(static_cast<int>(kth)));
        const Index at_or_above = count_above_high + __builtin_popcount(at_or_above_kth);
        return {kth, at_or_above == k && kth > 0};
    }
#endif

    /// How many of keys[0, size) are >= bound.
    static Index count_at_least(const Key* keys, Index size, Key bound) {
#if defined(__AVX512F__)
        if constexpr (sizeof(Key) == 4) {
            // One compare to a mask and a popcount per 16 keys; the tail in one masked load.
            const __m512i bounds = _mm512_set1_epi32(static_cast<int>(bound));
            const Index full = size / width * width;
            Index count = 0;
            for (Index i = 0; i < full; i += width) {
                count += __builtin_popcount(_mm512_cmpge_epu32_mask(_mm512_loadu_si512(keys + i), bounds));
            }
            if (full < size) {
                const __mmask16 tail = static_cast<__mmask16>((1u << (size - full)) - 1u);
                count += __builtin_popcount(_mm512_mask_cmpge_epu32_mask(tail, _mm512_maskz_loadu_epi32(tail, keys + full), bounds));
            }
            return count;
        }
#endif
        Key at_least = 0;  // counted in the keys' width, so the loop vectorises without widening
        for (Index i = 0; i < size; ++i) at_least += keys[i] >= bound;
        return static_cast<Index>(at_least);
    }

    /// Keep the best k candidates of `row`, in column order, and raise its threshold to
    /// the k-th best value.
    void cut(Index row) {
        Scalar* kept_values = values_.data() + row * stride_;
        int* kept_cols = cols_.data() + row * stride_;
        Index& size = sizes_[static_cast<std::size_t>(row)];
        keys_.resize(static_cast<std::size_t>(size));
        Key* keys = keys_.data();
        for (Index i = 0; i < size; ++i) keys[i] = key_of(kept_values[i]);
        const Cut cut = find_cut(keys, size, k_);
        Key kth = cut.bound;
        Index ties = 0;
        if (cut.exact) {
            kth = static_cast<Key>(cut.bound - 1);  // keep the keys >= bound; bound >= 1
        } else {
            // Candidates are never NaN, so kth is below the largest key and kth + 1 cannot wrap.
            ties = k_ - count_at_least(keys, size, static_cast<Key>(kth + 1));
        }
        Key smallest_kept = 0;
        size = keep_best(kept_values, kept_cols, keys, size, kth, ties, smallest_kept);
        thresholds_[static_cast<std::size_t>(row)] = value_of_key(smallest_kept);
    }

    /// Moves to the front, in order, the entries whose key is above `kth` and the first
    /// `ties` whose key equals it; returns how many, and in `smallest_kept` the smallest
    /// of their keys (the k-th best value of the row so far: the new threshold).
    static Index keep_best(Scalar* values, int* cols, const Key* keys, Index size, Key kth, Index ties, Key& smallest_kept) {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<Scalar, float>) {
            // Per 16 entries: a keep mask and one compress; a store never passes the
            // group it came from, so the pass is safe in place.
            const __m512i bound = _mm512_set1_epi32(static_cast<int>(kth));
            __m512i smallest = _mm512_set1_epi32(-1);
            Index kept = 0;
            for (Index i = 0; i < size; i += width) {
                const Index n = std::min(width, size - i);
                const __mmask16 valid = static_cast<__mmask16>(n == width ? 0xFFFFu : (1u << n) - 1u);
                const __m512i group = _mm512_maskz_loadu_epi32(valid, keys + i);
                unsigned keep = _mm512_mask_cmpgt_epu32_mask(valid, group, bound);
                unsigned equal = _mm512_mask_cmpeq_epu32_mask(valid, group, bound);
                for (; equal != 0 && ties > 0; --ties) {
                    const unsigned lowest = equal & (0u - equal);
                    keep |= lowest;
                    equal ^= lowest;
                }
                const __mmask16 mask = static_cast<__mmask16>(keep);
                smallest = _mm512_mask_min_epu32(smallest, mask, smallest, group);
                const __m512 group_values = _mm512_maskz_loadu_ps(valid, values + i);
                const __m512i group_cols = _mm512_maskz_loadu_epi32(valid, cols + i);
                _mm512_mask_compressstoreu_ps(values + kept, mask, group_values);
                _mm512_mask_compressstoreu_epi32(cols + kept, mask, group_cols);
                kept += __builtin_popcount(keep);
            }
            // Through memory, not _mm512_reduce_min_epu32: GCC 12's version of that one
            // draws a false -Wuninitialized from its own header.
            alignas(64) Key lanes[width];
            _mm512_store_si512(lanes, smallest);
            smallest_kept = *std::min_element(lanes, lanes + width);
            return kept;
        }
#endif
        Index kept = 0;
        smallest_kept = std::numeric_limits<Key>::max();
        for (Index i = 0; i < size; ++i) {
            const bool tie = keys[i] == kth;
            if (keys[i] > kth || (tie && ties > 0)) {
                ties -= tie;
                smallest_kept = std::min(smallest_kept, keys[i]);
                values[kept] = values[i];
                cols[kept] = cols[i];
                ++kept;
            }
        }
        return kept;
    }

    Index k_ = 0;
    Index limit_ = 0;   // candidates that trigger a cut (4k)
    Index stride_ = 0;  // entries reserved per row
    // Row r's candidates: values_ / cols_ [r stride_, r stride_ + sizes_[r]), in column order.
    std::vector<Scalar> values_;
    std::vector<int> cols_;
    std::vector<Index> sizes_;
    std::vector<Scalar> thresholds_;  // a value must exceed this to become a candidate
    std::vector<Key> keys_;           // scratch of cut() and the sample
    Scalar last_estimate_ = 0;        // the last accepted sample threshold (raise_threshold_from_sample)
};

/// Rows per task when a whole matrix is selected on several threads.
inline constexpr Index selection_block_rows = 256;

/// Writes, for each row of `pre`, its `k` largest entries (sorted by column) into
/// `code`; entries <= 0 are dropped when `relu` is set. Rows are split into blocks
/// selected in parallel; the result does not depend on the number of threads.
template <class Scalar>
void select_top_k_per_row(const ConstMatrixRef<Scalar>& pre, Index k, bool relu, SparseCode<Scalar>& code) {
    const Index rows = pre.rows(), cols = pre.cols();
    const Index blocks = (rows + selection_block_rows - 1) / selection_block_rows;
    const Index kept = std::min(k, cols);
    RowBlockCode<Scalar, true> assembly;
    assembly.open(code, rows, cols, blocks, kept);
    parallel_for(blocks, [&](Index b, int) {
        const Index first = b * selection_block_rows;
        const Index count = std::min(selection_block_rows, rows - first);
        RunningTopK<Scalar> top;
        top.start(count, kept, relu);
        assembly.fill(b, first, count, [&](auto& out) {
            for (Index r = 0; r < count; ++r) {
                top.offer_row(r, pre.row(first + r).data(), cols, 0);
                top.emit_row(r, out);
            }
        });
    });
    assembly.close();
}

/// Fail with a config_error unless 1 <= k <= d_sae.
inline void check_k(const char* architecture, Index k, Index d_sae) {
    if (k < 1 || k > d_sae) {
        throw config_error(std::string(architecture) + ": k = " + std::to_string(k) +
                           " must be in [1, d_sae = " + std::to_string(d_sae) + "]");
    }
}

}  // namespace detail

template <class Scalar>
class TopK : public detail::PassThroughGradient<Scalar> {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "topk";
    static constexpr bool has_parameter = false;
    static constexpr bool trains_parameter = false;
    /// Each row's selection depends on that row only (loss.hpp streams the rows).
    static constexpr bool selects_rows_independently = true;

    struct Config {
        Index k = 32;      ///< active latents per row
        bool relu = true;  ///< apply ReLU to the kept values (Gao et al.); false = MFR authors
    };

    TopK(const Config& config, Index d_sae) : config_(config), d_sae_(d_sae) { detail::check_k(architecture, config.k, d_sae); }

    const Config& config() const { return config_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        detail::select_top_k_per_row(pre, config_.k, config_.relu, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

    /// Streaming selection of a block of rows (see the file comment).
    using RowSelection = detail::RunningTopK<Scalar>;
    void start_rows(RowSelection& selection, Index rows) const { selection.start(rows, config_.k, config_.relu); }
    void select_chunk(RowSelection& selection, const ConstMatrixRef<Scalar>& chunk, Index first_col) const {
        // A row's last chunk: cut it at once (RunningTopK::settle_row).
        const bool last = first_col + chunk.cols() == d_sae_;
        for (Index r = 0; r < chunk.rows(); ++r) {
            selection.offer_row(r, chunk.row(r).data(), chunk.cols(), first_col);
            if (last) selection.settle_row(r);
        }
    }
    /// `out`: a SparseCodeBuilder, or a BoundedRowsWriter with bound row_entry_bound().
    template <class Rows>
    void finish_rows(RowSelection& selection, Rows& out) const {
        for (Index r = 0; r < out.rows(); ++r) selection.emit_row(r, out);
    }
    /// A row of the code holds at most this many entries (ties go to the lower column).
    Index row_entry_bound() const { return config_.k; }

    RowVector<Scalar>& parameter() { return no_parameter_; }
    const RowVector<Scalar>& parameter() const { return no_parameter_; }
    const char* parameter_name() const { return ""; }

private:
    Config config_;
    Index d_sae_;  ///< a row's length: its last chunk ends here
    RowVector<Scalar> no_parameter_;
};

}  // namespace sae
