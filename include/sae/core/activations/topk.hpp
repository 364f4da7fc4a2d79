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
/// Appends are cheap and cuts rare, and once the threshold is up most values are
/// skipped 16 at a time. The kept entries come out already in column order.
template <class Scalar>
class RunningTopK {
public:
    void start(Index rows, Index k, bool positive_only) {
        k_ = k;
        limit_ = std::max<Index>(4 * k, width);
        stride_ = limit_ + width;  // a 16-value group may land on a buffer just under the limit
        entries_.resize(static_cast<std::size_t>(rows * stride_));
        sizes_.assign(static_cast<std::size_t>(rows), 0);
        thresholds_.assign(static_cast<std::size_t>(rows), positive_only ? Scalar(0) : -std::numeric_limits<Scalar>::infinity());
    }

    /// Offer values[0, count) of `row`, which sit at columns first_col, first_col + 1, ...
    void offer_row(Index row, const Scalar* values, Index count, Index first_col) {
        const std::size_t r = static_cast<std::size_t>(row);
        Entry* buffer = entries_.data() + row * stride_;
        Index size = sizes_[r];
        Scalar threshold = thresholds_[r];
        Index i = 0;
        for (; i + width <= count; i += width) {
            if (!(Eigen::Map<const Eigen::Array<Scalar, width, 1>>(values + i).maxCoeff() > threshold)) continue;
            // Branch-free: write every value, keep (advance past) those above the threshold.
            for (Index t = i; t < i + width; ++t) {
                buffer[size] = Entry{values[t], static_cast<int>(first_col + t)};
                size += values[t] > threshold;
            }
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

    /// Offer one value of `row` at column `col`.
    void offer(Index row, Index col, Scalar value) {
        const std::size_t r = static_cast<std::size_t>(row);
        if (!(value > thresholds_[r])) return;
        Index& size = sizes_[r];
        entries_[r * static_cast<std::size_t>(stride_) + static_cast<std::size_t>(size)] = Entry{value, static_cast<int>(col)};
        if (++size >= limit_) cut(row);
    }

    /// Append the kept entries of `row` to `out` (increasing columns) and end the row.
    void emit_row(Index row, SparseCodeBuilder<Scalar>& out) {
        if (sizes_[static_cast<std::size_t>(row)] > k_) cut(row);
        const Entry* first = entries_.data() + row * stride_;
        const Entry* last = first + sizes_[static_cast<std::size_t>(row)];
        for (const Entry* e = first; e != last; ++e) out.push(e->col, e->value);
        out.end_row();
    }

private:
    static constexpr Index width = 16;

    struct Entry {
        Scalar value;
        int col;
    };

    /// Keep the best k candidates of `row`, in column order, and raise its threshold to
    /// the k-th best value.
    void cut(Index row) {
        Entry* entries = entries_.data() + row * stride_;
        Index& size = sizes_[static_cast<std::size_t>(row)];
        keys_.resize(static_cast<std::size_t>(size));
        Key* keys = keys_.data();
        Key low = std::numeric_limits<Key>::max(), high = std::numeric_limits<Key>::min();
        for (Index i = 0; i < size; ++i) {
            keys[i] = key_of(entries[i].value);
            low = std::min(low, keys[i]);
            high = std::max(high, keys[i]);
        }
        // The largest key t with at least k keys >= t is the k-th best value's key.
        while (low < high) {
            const Key middle = static_cast<Key>(low + (high - low) / 2 + 1);  // in (low, high], no overflow
            Key at_least = 0;  // counted in the keys' width, so the loop vectorises without widening
            for (Index i = 0; i < size; ++i) at_least += keys[i] >= middle;
            if (at_least >= static_cast<Key>(k_)) {
                low = middle;
            } else {
                high = static_cast<Key>(middle - 1);
            }
        }
        Index above = 0;
        for (Index i = 0; i < size; ++i) above += keys[i] > low;
        Index ties = k_ - above;
        Index kept = 0;
        for (Index i = 0; i < size; ++i) {
            const bool tie = keys[i] == low;
            if (keys[i] > low || (tie && ties > 0)) {
                ties -= tie;
                entries[kept++] = entries[i];
            }
        }
        size = kept;
        thresholds_[static_cast<std::size_t>(row)] = value_of_key(low);
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

    Index k_ = 0;
    Index limit_ = 0;   // candidates that trigger a cut (4k)
    Index stride_ = 0;  // entries reserved per row
    std::vector<Entry> entries_;  // row r's candidates: entries_[r stride_, r stride_ + sizes_[r])
    std::vector<Index> sizes_;
    std::vector<Scalar> thresholds_;  // a value must exceed this to become a candidate
    std::vector<Key> keys_;           // scratch of cut()
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
    std::vector<SparseCodeBuilder<Scalar>> parts(static_cast<std::size_t>(std::max<Index>(blocks, 1)));
    if (blocks == 0) parts[0].start(0, cols);
    parallel_for(blocks, [&](Index b, int) {
        const Index first = b * selection_block_rows;
        const Index count = std::min(selection_block_rows, rows - first);
        RunningTopK<Scalar> top;
        top.start(count, std::min(k, cols), relu);
        SparseCodeBuilder<Scalar>& out = parts[static_cast<std::size_t>(b)];
        out.start(count, cols, count * k);
        for (Index r = 0; r < count; ++r) {
            top.offer_row(r, pre.row(first + r).data(), cols, 0);
            top.emit_row(r, out);
        }
    });
    join_code_blocks(parts, cols, code);
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

    TopK(const Config& config, Index d_sae) : config_(config) { detail::check_k(architecture, config.k, d_sae); }

    const Config& config() const { return config_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        detail::select_top_k_per_row(pre, config_.k, config_.relu, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

    /// Streaming selection of a block of rows (see the file comment).
    using RowSelection = detail::RunningTopK<Scalar>;
    void start_rows(RowSelection& selection, Index rows) const { selection.start(rows, config_.k, config_.relu); }
    void select_chunk(RowSelection& selection, const ConstMatrixRef<Scalar>& chunk, Index first_col) const {
        for (Index r = 0; r < chunk.rows(); ++r) selection.offer_row(r, chunk.row(r).data(), chunk.cols(), first_col);
    }
    void finish_rows(RowSelection& selection, SparseCodeBuilder<Scalar>& out) const {
        for (Index r = 0; r < out.rows(); ++r) selection.emit_row(r, out);
    }

    RowVector<Scalar>& parameter() { return no_parameter_; }
    const RowVector<Scalar>& parameter() const { return no_parameter_; }
    const char* parameter_name() const { return ""; }

private:
    Config config_;
    RowVector<Scalar> no_parameter_;
};

}  // namespace sae
