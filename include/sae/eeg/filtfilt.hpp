#pragma once
/// \file filtfilt.hpp
/// Zero-phase filtering with second-order sections, matching scipy.signal.sosfiltfilt
/// with its defaults (padtype='odd', padlen=None) — the SciPy function this module
/// reproduces. (The MFR authors call scipy.signal.filtfilt on (b, a) coefficients; that
/// form is numerically fragile for a 10th-order band-pass with a 0.5 Hz edge; both pad
/// 33 samples at each end for the order-5 band-pass.)
///
///   default_padlen(sos)   3 * (2 * sections + 1 - min(#sections with b2 == 0, #with a2 == 0))
///   sosfilt_zi(sos)       the steady-state initial conditions of a unit step, section by
///                         section (SciPy's sosfilt_zi: lfilter_zi of each biquad scaled by
///                         the DC gain of the sections before it).
///   sosfilt(sos, signal, state)   in place, direct form II transposed; `state` [sections, 2]
///                         is updated (SciPy's sosfilt with zi).
///   sosfiltfilt(sos, x, padlen)   each row of x [channels, samples] filtered forward and
///                         backward: the row extended by `padlen` samples at each end with
///                         odd symmetry (2 x[0] - x[padlen..1], ...), filtered forward from
///                         zi * (first extended sample), reversed, filtered again from
///                         zi * (last output), reversed, the padding cut off. padlen < 0
///                         means default_padlen(sos); shape_error when a row is not longer
///                         than padlen (SciPy's ValueError). Arithmetic in double.
///   bandpass(recording, low_hz, high_hz, order)   a Recording, each channel band-passed
///                         with butterworth_sos(order, bandpass, ...) and sosfiltfilt.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "butterworth.hpp"
#include "recording.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace sae::eeg {

using SectionStates = Eigen::Matrix<double, Eigen::Dynamic, 2, Eigen::RowMajor>;

inline Index default_padlen(const SecondOrderSections& sos) {
    const Index b2_zero = (sos.col(2).array() == 0.0).count();
    const Index a2_zero = (sos.col(5).array() == 0.0).count();
    return 3 * (2 * sos.rows() + 1 - std::min(b2_zero, a2_zero));
}

namespace detail::filt {

inline void check_sections(const SecondOrderSections& sos) {
    if (sos.rows() < 1) throw shape_error("second-order sections: need at least one section");
    for (Index s = 0; s < sos.rows(); ++s) {
        if (sos(s, 3) != 1.0) {
            throw config_error("second-order sections: a0 of section " + std::to_string(s) + " is " +
                               std::to_string(sos(s, 3)) + ", must be 1");
        }
    }
    if (!sos.allFinite()) throw numeric_error("second-order sections: non-finite coefficient");
}

}  // namespace detail::filt

inline SectionStates sosfilt_zi(const SecondOrderSections& sos) {
    detail::filt::check_sections(sos);
    SectionStates zi(sos.rows(), 2);
    double scale = 1.0;
    for (Index s = 0; s < sos.rows(); ++s) {
        const double b0 = sos(s, 0), b1 = sos(s, 1), b2 = sos(s, 2), a1 = sos(s, 4), a2 = sos(s, 5);
        // lfilter_zi: solve (I - A^T) zi = b[1:] - a[1:] b0 with A the companion matrix,
        // i.e. (1 + a1) z0 - z1 = B0 and a2 z0 + z1 = B1.
        const double B0 = b1 - a1 * b0, B1 = b2 - a2 * b0;
        const double z0 = (B0 + B1) / (1.0 + a1 + a2);
        zi(s, 0) = scale * z0;
        zi(s, 1) = scale * (B1 - a2 * z0);
        scale *= (b0 + b1 + b2) / (1.0 + a1 + a2);
    }
    return zi;
}

/// Filters `signal` in place through every section, carrying `state` [sections, 2].
inline void sosfilt(const SecondOrderSections& sos, double* signal, Index length, SectionStates& state) {
    const Index sections = sos.rows();
    for (Index n = 0; n < length; ++n) {
        double x = signal[n];
        for (Index s = 0; s < sections; ++s) {
            const double y = sos(s, 0) * x + state(s, 0);
            state(s, 0) = sos(s, 1) * x - sos(s, 4) * y + state(s, 1);
            state(s, 1) = sos(s, 2) * x - sos(s, 5) * y;
            x = y;
        }
        signal[n] = x;
    }
}

template <class Derived>
Matrix<typename Derived::Scalar> sosfiltfilt(const SecondOrderSections& sos, const Eigen::MatrixBase<Derived>& x,
                                             Index padlen = -1) {
    using Scalar = typename Derived::Scalar;
    detail::filt::check_sections(sos);
    const Index edge = padlen < 0 ? default_padlen(sos) : padlen;
    const Index n = x.cols();
    if (n <= edge) {
        throw shape_error("sosfiltfilt: the signal has " + std::to_string(n) + " samples, it must be longer than padlen = " +
                          std::to_string(edge));
    }
    const SectionStates zi = sosfilt_zi(sos);
    Matrix<Scalar> out(x.rows(), n);
    std::vector<double> ext(static_cast<std::size_t>(n + 2 * edge));
    for (Index c = 0; c < x.rows(); ++c) {
        const double first = static_cast<double>(x(c, 0)), last = static_cast<double>(x(c, n - 1));
        for (Index i = 0; i < edge; ++i) {
            ext[static_cast<std::size_t>(i)] = 2.0 * first - static_cast<double>(x(c, edge - i));
            ext[static_cast<std::size_t>(edge + n + i)] = 2.0 * last - static_cast<double>(x(c, n - 2 - i));
        }
        for (Index i = 0; i < n; ++i) ext[static_cast<std::size_t>(edge + i)] = static_cast<double>(x(c, i));
        SectionStates state = zi * ext.front();
        sosfilt(sos, ext.data(), static_cast<Index>(ext.size()), state);
        std::reverse(ext.begin(), ext.end());
        state = zi * ext.front();
        sosfilt(sos, ext.data(), static_cast<Index>(ext.size()), state);
        std::reverse(ext.begin(), ext.end());
        for (Index i = 0; i < n; ++i) out(c, i) = static_cast<Scalar>(ext[static_cast<std::size_t>(edge + i)]);
    }
    return out;
}

inline Recording bandpass(const Recording& recording, double low_hz, double high_hz, int order) {
    const SecondOrderSections sos = butterworth_sos(order, FilterBand::bandpass, {low_hz, high_hz}, recording.sample_rate);
    Recording out;
    out.sample_rate = recording.sample_rate;
    out.labels = recording.labels;
    out.data = sosfiltfilt(sos, recording.data);
    return out;
}

}  // namespace sae::eeg
