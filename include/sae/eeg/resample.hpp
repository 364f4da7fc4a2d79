#pragma once
/// \file resample.hpp
/// Rational-rate resampling as scipy.signal.resample_poly(x, up, down) does it with its
/// defaults (window=('kaiser', 5.0), padtype='constant'): a linear-phase low-pass FIR of
/// 2 * 10 * max(up, down) + 1 taps, cutoff 1 / max(up, down) of Nyquist
/// (firwin: sinc times a symmetric Kaiser window, scaled to unit DC gain, times `up`),
/// applied to the zero-stuffed signal with zeros beyond both ends (upfirdn), every
/// `down`-th output kept, aligned so that output n sits at input time n * down / up;
/// ceil(samples * up / down) outputs.
///
///   kaiser_window(length, beta)       the symmetric Kaiser window.
///   resample_lowpass(up, down, beta)  the FIR resample_poly designs (already times up).
///   resample_poly(x, up, down)        each row of x [channels, samples]; up/down are
///                                     reduced by their gcd first; 1/1 returns x.
///   resample(recording, target_rate)  to `target_rate` Hz; both rates must be whole
///                                     numbers of Hz (config_error otherwise).
/// Arithmetic in double.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "recording.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace sae::eeg {

namespace detail::resampling {

/// Modified Bessel function of the first kind, order 0: sum_k ((x/2)^k / k!)^2.
inline double bessel_i0(double x) {
    double term = 1.0, sum = 1.0;
    const double quarter_x2 = 0.25 * x * x;
    for (int k = 1; k < 500; ++k) {
        term *= quarter_x2 / (static_cast<double>(k) * static_cast<double>(k));
        sum += term;
        if (term < sum * 1e-17) break;
    }
    return sum;
}

inline double sinc(double x) {
    if (x == 0.0) return 1.0;
    const double pi_x = 3.14159265358979323846 * x;
    return std::sin(pi_x) / pi_x;
}

}  // namespace detail::resampling

inline std::vector<double> kaiser_window(Index length, double beta) {
    if (length < 1) throw config_error("kaiser_window: length must be >= 1");
    std::vector<double> w(static_cast<std::size_t>(length), 1.0);
    if (length == 1) return w;
    const double alpha = static_cast<double>(length - 1) / 2.0;
    const double norm = detail::resampling::bessel_i0(beta);
    for (Index n = 0; n < length; ++n) {
        const double r = (static_cast<double>(n) - alpha) / alpha;
        w[static_cast<std::size_t>(n)] = detail::resampling::bessel_i0(beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / norm;
    }
    return w;
}

/// The FIR filter resample_poly uses for up/down (already reduced), times `up`.
inline std::vector<double> resample_lowpass(Index up, Index down, double beta = 5.0) {
    const Index max_rate = std::max(up, down);
    const Index half_length = 10 * max_rate;
    const Index taps = 2 * half_length + 1;
    const double cutoff = 1.0 / static_cast<double>(max_rate);
    const std::vector<double> window = kaiser_window(taps, beta);
    std::vector<double> h(static_cast<std::size_t>(taps));
    double sum = 0.0;
    for (Index n = 0; n < taps; ++n) {
        const double m = static_cast<double>(n) - static_cast<double>(half_length);
        h[static_cast<std::size_t>(n)] = cutoff * detail::resampling::sinc(cutoff * m) * window[static_cast<std::size_t>(n)];
        sum += h[static_cast<std::size_t>(n)];
    }
    for (double& v : h) v = v / sum * static_cast<double>(up);
    return h;
}

template <class Derived>
Matrix<typename Derived::Scalar> resample_poly(const Eigen::MatrixBase<Derived>& x, Index up, Index down, double beta = 5.0) {
    using Scalar = typename Derived::Scalar;
    if (up < 1 || down < 1) {
        throw config_error("resample_poly: up = " + std::to_string(up) + " and down = " + std::to_string(down) + " must be >= 1");
    }
    const Index g = std::gcd(up, down);
    up /= g;
    down /= g;
    if (up == 1 && down == 1) return x;
    const Index n_in = x.cols();
    if (n_in < 1) throw shape_error("resample_poly: empty signal");
    const Index n_out = (n_in * up + down - 1) / down;
    const std::vector<double> h_core = resample_lowpass(up, down, beta);
    const Index half_length = 10 * std::max(up, down);
    // Zero-pad the filter so that output samples land on the centre of the FIR.
    const Index pre_pad = down - half_length % down;
    const Index pre_remove = (half_length + pre_pad) / down;
    std::vector<double> h(static_cast<std::size_t>(pre_pad), 0.0);
    h.insert(h.end(), h_core.begin(), h_core.end());
    const auto output_length = [&](Index filter_length) { return ((n_in - 1) * up + filter_length - 1) / down + 1; };
    while (output_length(static_cast<Index>(h.size())) < n_out + pre_remove) h.push_back(0.0);
    const Index taps = static_cast<Index>(h.size());

    Matrix<Scalar> out(x.rows(), n_out);
    for (Index c = 0; c < x.rows(); ++c) {
        for (Index o = 0; o < n_out; ++o) {
            // y[m] = sum_k h[k] xu[m down - k], xu[i up] = x[i] and zero elsewhere.
            const Index position = (o + pre_remove) * down;
            const Index first = std::max<Index>(0, (position - taps + 1 + up - 1) / up);
            const Index last = std::min<Index>(n_in - 1, position / up);
            double acc = 0.0;
            for (Index i = first; i <= last; ++i) {
                acc += h[static_cast<std::size_t>(position - i * up)] * static_cast<double>(x(c, i));
            }
            out(c, o) = static_cast<Scalar>(acc);
        }
    }
    return out;
}

inline Recording resample(const Recording& recording, double target_rate) {
    const auto whole = [](double rate, const char* what) {
        if (!(rate > 0) || rate != std::round(rate) || rate > 1e9) {
            throw config_error(std::string("resample: ") + what + " rate " + std::to_string(rate) +
                               " Hz must be a positive whole number of Hz");
        }
        return static_cast<Index>(std::round(rate));
    };
    const Index from = whole(recording.sample_rate, "source"), to = whole(target_rate, "target");
    Recording out;
    out.labels = recording.labels;
    out.sample_rate = target_rate;
    out.data = resample_poly(recording.data, to, from);
    return out;
}

}  // namespace sae::eeg
