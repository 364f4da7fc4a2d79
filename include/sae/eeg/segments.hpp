#pragma once
/// \file segments.hpp
/// Cutting a continuous recording into SAE inputs the way the MFR authors do
/// (utils/eeg_utils.py of their code): non-overlapping windows of `window` samples, the
/// remainder at the end zero-padded to a full window (PaddingRule::zero_pad_last; or
/// dropped), each window z-scored per channel — (x - mean) / std with the population std
/// (NumPy's default), a std below `epsilon` replaced by `epsilon` — and flattened
/// channel by channel (C order of [channels, window]: channel 0's samples first).
///
///   segment_count(samples, window, rule)       how many windows a signal gives.
///   segment_window(x, index, window, rule)     window `index` of x [channels, samples],
///                                              [channels, window], zeros past the end.
///   zscore_channels(segment, epsilon)          in place, each row on its own.
///   flatten_channels(segment)                  [channels, window] -> one row.
///   make_segments(x, options)                  every window as rows of a matrix:
///        SegmentLayout::multichannel   one row per window, channels x window wide
///                                      (the paper's input, d_in = channels * fs);
///        SegmentLayout::single_channel one row per (window, channel), window wide, in
///                                      window-major order (row = window * channels + channel).
///     The returned SegmentSet also says which window and channel every row came from.
/// config_error for window < 1 or a signal with no complete or partial window.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace sae::eeg {

enum class PaddingRule { zero_pad_last, drop_last };
enum class SegmentLayout { multichannel, single_channel };

struct SegmentOptions {
    Index window = 128;                           ///< samples per window (1 s at 128 Hz)
    PaddingRule padding = PaddingRule::zero_pad_last;
    SegmentLayout layout = SegmentLayout::multichannel;
    bool zscore = true;
    double epsilon = 1e-8;                        ///< the authors' floor on the std
};

template <class Scalar>
struct SegmentSet {
    Matrix<Scalar> rows;
    std::vector<Index> window_of_row;   ///< which window each row is
    std::vector<Index> channel_of_row;  ///< its channel (-1 for multichannel rows)
    Index channels = 0;
    Index window = 0;
};

inline Index segment_count(Index samples, Index window, PaddingRule rule) {
    if (window < 1) throw config_error("segments: window = " + std::to_string(window) + " must be >= 1");
    const Index whole = samples / window;
    return whole + (rule == PaddingRule::zero_pad_last && samples % window != 0 ? 1 : 0);
}

template <class Derived>
Matrix<typename Derived::Scalar> segment_window(const Eigen::MatrixBase<Derived>& x, Index index, Index window) {
    const Index start = index * window;
    if (index < 0 || start >= x.cols()) {
        throw shape_error("segments: window " + std::to_string(index) + " starts past the end of " +
                          std::to_string(x.cols()) + " samples");
    }
    Matrix<typename Derived::Scalar> out = Matrix<typename Derived::Scalar>::Zero(x.rows(), window);
    const Index available = std::min(window, x.cols() - start);
    out.leftCols(available) = x.middleCols(start, available);
    return out;
}

template <class Scalar>
void zscore_channels(MatrixRef<Scalar> segment, double epsilon = 1e-8) {
    for (Index c = 0; c < segment.rows(); ++c) {
        const double mean = segment.row(c).template cast<double>().mean();
        const double variance = (segment.row(c).template cast<double>().array() - mean).square().mean();
        const double std_dev = std::max(std::sqrt(variance), epsilon);
        segment.row(c) = ((segment.row(c).template cast<double>().array() - mean) / std_dev).template cast<Scalar>().matrix();
    }
}

template <class Scalar>
RowVector<Scalar> flatten_channels(const Matrix<Scalar>& segment) {
    // Row-major storage is already channel 0's samples, then channel 1's, ...
    return Eigen::Map<const RowVector<Scalar>>(segment.data(), segment.size());
}

template <class Scalar, class Derived>
SegmentSet<Scalar> make_segments(const Eigen::MatrixBase<Derived>& x, const SegmentOptions& options) {
    const Index count = segment_count(x.cols(), options.window, options.padding);
    if (count < 1) {
        throw config_error("segments: a signal of " + std::to_string(x.cols()) + " samples has no window of " +
                           std::to_string(options.window));
    }
    SegmentSet<Scalar> set;
    set.channels = x.rows();
    set.window = options.window;
    const bool single = options.layout == SegmentLayout::single_channel;
    set.rows.resize(single ? count * x.rows() : count, single ? options.window : x.rows() * options.window);
    for (Index w = 0; w < count; ++w) {
        Matrix<Scalar> segment = segment_window(x, w, options.window).template cast<Scalar>();
        if (options.zscore) zscore_channels<Scalar>(segment, options.epsilon);
        if (single) {
            for (Index c = 0; c < x.rows(); ++c) {
                set.rows.row(w * x.rows() + c) = segment.row(c);
                set.window_of_row.push_back(w);
                set.channel_of_row.push_back(c);
            }
        } else {
            set.rows.row(w) = flatten_channels(segment);
            set.window_of_row.push_back(w);
            set.channel_of_row.push_back(-1);
        }
    }
    return set;
}

}  // namespace sae::eeg
