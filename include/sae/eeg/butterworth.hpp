#pragma once
/// \file butterworth.hpp
/// Digital Butterworth filters as second-order sections, computed the way
/// scipy.signal.butter(N, Wn, btype, fs=fs, output='sos') computes them (SciPy 1.10), so
/// that the coefficients agree to rounding: the analog prototype's poles
/// -exp(i pi m / 2N), m = -N+1, -N+3, ..., N-1; the band edges pre-warped to
/// 4 tan(pi Wn / 2) with Wn = 2 f / fs; lp2lp / lp2hp / lp2bp; the bilinear transform at
/// fs = 2; then zpk2sos with SciPy's default 'nearest' pairing (sections ordered so that
/// the poles closest to the unit circle come last, each paired with its nearest zeros;
/// the gain in the first section).
///
/// Why sections: a 5th-order band-pass at 0.5-45 Hz and 128 Hz is a 10th-order filter
/// whose (b, a) polynomial form loses most of its digits to cancellation; each biquad
/// keeps its poles accurate.
///
///   butterworth_sos(order, FilterBand::bandpass, {low_hz, high_hz}, fs)
///   butterworth_sos(order, FilterBand::lowpass or highpass, {cutoff_hz}, fs)
///       -> SecondOrderSections, rows [b0 b1 b2 a0 a1 a2] with a0 = 1.
///   butterworth_zpk(...)   the zeros, poles and gain before pairing.
///   zpk_to_sos(zpk)        SciPy's zpk2sos (pairing 'nearest', digital).
/// config_error when order < 1, a cutoff is not inside (0, fs/2), or low >= high.

#include "../core/error.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <string>
#include <vector>

namespace sae::eeg {

/// Rows [b0 b1 b2 a0 a1 a2], one per second-order section, applied in order.
using SecondOrderSections = Eigen::Matrix<double, Eigen::Dynamic, 6, Eigen::RowMajor>;

enum class FilterBand { lowpass, highpass, bandpass };

struct ZerosPolesGain {
    std::vector<std::complex<double>> zeros;
    std::vector<std::complex<double>> poles;
    double gain = 1;
};

namespace detail::butter {

using Complex = std::complex<double>;
inline constexpr double pi = 3.14159265358979323846;

inline Complex product(const std::vector<Complex>& values, Complex offset, double sign) {
    Complex p(1.0, 0.0);
    for (const Complex& v : values) p *= offset + sign * v;
    return p;
}

/// SciPy's _cplxreal: the real values, and one of each conjugate pair (positive imaginary
/// part, averaged with its partner), ordered as SciPy orders them.
inline void split_conjugates(std::vector<Complex> z, std::vector<Complex>& complex_half, std::vector<double>& reals) {
    const double tol = 100 * std::numeric_limits<double>::epsilon();
    std::stable_sort(z.begin(), z.end(), [](const Complex& a, const Complex& b) {
        if (a.real() != b.real()) return a.real() < b.real();
        return std::abs(a.imag()) < std::abs(b.imag());
    });
    std::vector<Complex> positive, negative;
    for (const Complex& v : z) {
        if (std::abs(v.imag()) <= tol * std::abs(v)) {
            reals.push_back(v.real());
        } else if (v.imag() > 0) {
            positive.push_back(v);
        } else {
            negative.push_back(v);
        }
    }
    if (positive.size() != negative.size()) throw config_error("zpk_to_sos: a complex value has no conjugate");
    // Runs of (nearly) equal real part are ordered by |imag|.
    std::size_t start = 0;
    while (start < positive.size()) {
        std::size_t stop = start + 1;
        while (stop < positive.size() &&
               positive[stop].real() - positive[stop - 1].real() <= tol * std::abs(positive[stop - 1])) {
            ++stop;
        }
        const auto by_imag = [](const Complex& a, const Complex& b) { return std::abs(a.imag()) < std::abs(b.imag()); };
        std::stable_sort(positive.begin() + static_cast<long>(start), positive.begin() + static_cast<long>(stop), by_imag);
        std::stable_sort(negative.begin() + static_cast<long>(start), negative.begin() + static_cast<long>(stop), by_imag);
        start = stop;
    }
    for (std::size_t i = 0; i < positive.size(); ++i) {
        if (std::abs(positive[i] - std::conj(negative[i])) > tol * std::abs(negative[i])) {
            throw config_error("zpk_to_sos: a complex value has no conjugate");
        }
        complex_half.push_back((positive[i] + std::conj(negative[i])) / 2.0);
    }
}

inline bool is_real(const Complex& v) { return v.imag() == 0.0; }

/// Index of the pole closest to the unit circle (the first of equals, as numpy.argmin).
inline std::size_t worst_pole(const std::vector<Complex>& p, const std::vector<std::size_t>& candidates) {
    std::size_t best = candidates.front();
    for (std::size_t i : candidates) {
        if (std::abs(1.0 - std::abs(p[i])) < std::abs(1.0 - std::abs(p[best]))) best = i;
    }
    return best;
}

enum class Want { real, complex, any };

/// SciPy's _nearest_real_complex_idx: the nearest element of `from` to `to` of that kind.
inline std::size_t nearest(const std::vector<Complex>& from, Complex to, Want want) {
    std::size_t best = from.size();
    for (std::size_t i = 0; i < from.size(); ++i) {
        if (want == Want::real && !is_real(from[i])) continue;
        if (want == Want::complex && is_real(from[i])) continue;
        if (best == from.size() || std::abs(from[i] - to) < std::abs(from[best] - to)) best = i;
    }
    if (best == from.size()) throw config_error("zpk_to_sos: no zero of the kind needed to pair with a pole");
    return best;
}

/// Coefficients of prod (1 - r x^-1) over up to two roots, real when they pair up.
inline Eigen::Vector3d quadratic(const std::vector<Complex>& roots) {
    std::vector<Complex> c{Complex(1.0, 0.0)};
    for (const Complex& r : roots) {  // numpy.poly: convolve with [1, -r]
        std::vector<Complex> next(c.size() + 1, Complex(0.0, 0.0));
        for (std::size_t i = 0; i < c.size(); ++i) {
            next[i] += c[i];
            next[i + 1] += c[i] * (-r);
        }
        c = next;
    }
    Eigen::Vector3d out = Eigen::Vector3d::Zero();
    const std::size_t shift = 3 - c.size();  // sos[3 - len(b):3] = b
    for (std::size_t i = 0; i < c.size(); ++i) out[static_cast<Eigen::Index>(shift + i)] = c[i].real();
    return out;
}

inline std::vector<Complex> take(std::vector<Complex>& values, std::size_t index) {
    const Complex v = values[index];
    values.erase(values.begin() + static_cast<long>(index));
    return {v};
}

}  // namespace detail::butter

/// SciPy's zpk2sos for a digital filter with pairing 'nearest'.
inline SecondOrderSections zpk_to_sos(ZerosPolesGain zpk) {
    using namespace detail::butter;
    std::vector<Complex>& z = zpk.zeros;
    std::vector<Complex>& p = zpk.poles;
    if (z.empty() && p.empty()) {
        SecondOrderSections sos(1, 6);
        sos << zpk.gain, 0, 0, 1, 0, 0;
        return sos;
    }
    while (p.size() < z.size()) p.emplace_back(0.0, 0.0);
    while (z.size() < p.size()) z.emplace_back(0.0, 0.0);
    const std::size_t sections = (p.size() + 1) / 2;
    if (p.size() % 2 == 1) {
        p.emplace_back(0.0, 0.0);
        z.emplace_back(0.0, 0.0);
    }
    const auto flatten = [](const std::vector<Complex>& values) {
        std::vector<Complex> half;
        std::vector<double> reals;
        split_conjugates(values, half, reals);
        for (double r : reals) half.emplace_back(r, 0.0);
        return half;
    };
    z = flatten(z);
    p = flatten(p);

    SecondOrderSections sos = SecondOrderSections::Zero(static_cast<Eigen::Index>(sections), 6);
    const auto set_section = [&](std::size_t si, const std::vector<Complex>& zeros, const std::vector<Complex>& poles) {
        sos.row(static_cast<Eigen::Index>(si)).head<3>() = quadratic(zeros).transpose();
        sos.row(static_cast<Eigen::Index>(si)).tail<3>() = quadratic(poles).transpose();
    };
    const auto real_count = [](const std::vector<Complex>& v) {
        return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), is_real));
    };
    for (std::size_t step = 0; step < sections; ++step) {
        const std::size_t si = sections - 1 - step;  // the worst poles go last
        std::vector<std::size_t> all(p.size());
        for (std::size_t i = 0; i < p.size(); ++i) all[i] = i;
        const Complex p1 = take(p, worst_pole(p, all)).front();
        if (is_real(p1) && real_count(p) == 0) {
            // Last remaining real pole: pair with the nearest real zero and an origin pair.
            const Complex z1 = take(z, nearest(z, p1, Want::real)).front();
            set_section(si, {z1, Complex(0.0, 0.0)}, {p1, Complex(0.0, 0.0)});
        } else if (p.size() + 1 == z.size() && !is_real(p1) && real_count(p) == 1 && real_count(z) == 1) {
            // One real pole and one real zero left: this pole must take a complex zero.
            const Complex z1 = take(z, nearest(z, p1, Want::complex)).front();
            set_section(si, {z1, std::conj(z1)}, {p1, std::conj(p1)});
        } else {
            Complex p2 = std::conj(p1);
            if (is_real(p1)) {
                std::vector<std::size_t> reals;
                for (std::size_t i = 0; i < p.size(); ++i) {
                    if (is_real(p[i])) reals.push_back(i);
                }
                p2 = take(p, worst_pole(p, reals)).front();
            }
            if (z.empty()) {
                set_section(si, {}, {p1, p2});
            } else {
                const Complex z1 = take(z, nearest(z, p1, Want::any)).front();
                if (!is_real(z1)) {
                    set_section(si, {z1, std::conj(z1)}, {p1, p2});
                } else if (!z.empty()) {
                    const Complex z2 = take(z, nearest(z, p1, Want::real)).front();
                    set_section(si, {z1, z2}, {p1, p2});
                } else {
                    set_section(si, {z1}, {p1, p2});
                }
            }
        }
    }
    sos.row(0).head<3>() *= zpk.gain;
    return sos;
}

namespace detail::butter {

inline void check_cutoff(double hz, double fs, const char* which) {
    if (!(hz > 0 && hz < fs / 2)) {
        throw config_error(std::string("butterworth: ") + which + " cutoff " + std::to_string(hz) +
                           " Hz must lie inside (0, fs/2 = " + std::to_string(fs / 2) + " Hz)");
    }
}

}  // namespace detail::butter

/// Zeros, poles and gain of the digital Butterworth filter (before pairing into sections).
/// `cutoffs_hz` holds one frequency for low/high-pass, two (low, high) for band-pass.
inline ZerosPolesGain butterworth_zpk(int order, FilterBand band, const std::vector<double>& cutoffs_hz, double fs) {
    using namespace detail::butter;
    if (order < 1) throw config_error("butterworth: order " + std::to_string(order) + " must be >= 1");
    if (!(fs > 0) || !std::isfinite(fs)) throw config_error("butterworth: sample rate " + std::to_string(fs) + " must be > 0");
    const std::size_t needed = band == FilterBand::bandpass ? 2 : 1;
    if (cutoffs_hz.size() != needed) {
        throw config_error("butterworth: " + std::string(band == FilterBand::bandpass ? "band-pass needs 2" : "low/high-pass needs 1") +
                           " cutoff frequencies, got " + std::to_string(cutoffs_hz.size()));
    }
    for (double f : cutoffs_hz) check_cutoff(f, fs, "a");
    if (band == FilterBand::bandpass && !(cutoffs_hz[0] < cutoffs_hz[1])) {
        throw config_error("butterworth: band-pass low cutoff " + std::to_string(cutoffs_hz[0]) +
                           " Hz must be below the high cutoff " + std::to_string(cutoffs_hz[1]) + " Hz");
    }
    // Analog prototype (buttap): no zeros, poles -exp(i pi m / 2N), gain 1.
    std::vector<Complex> z, p;
    for (int m = -order + 1; m < order; m += 2) p.push_back(-std::exp(Complex(0.0, pi * m / (2.0 * order))));
    double k = 1.0;
    std::vector<double> warped;
    for (double f : cutoffs_hz) warped.push_back(4.0 * std::tan(pi * (2.0 * f / fs) / 2.0));  // fs = 2 after normalising

    const std::size_t degree = p.size();  // the prototype has no zeros
    if (band == FilterBand::lowpass) {
        for (Complex& v : p) v *= warped[0];
        k *= std::pow(warped[0], static_cast<double>(degree));
    } else if (band == FilterBand::highpass) {
        k *= (product({}, Complex(0.0, 0.0), -1.0) / product(p, Complex(0.0, 0.0), -1.0)).real();
        for (Complex& v : p) v = warped[0] / v;
        z.assign(degree, Complex(0.0, 0.0));
    } else {
        const double bw = warped[1] - warped[0];
        const double wo = std::sqrt(warped[0] * warped[1]);
        std::vector<Complex> plus, minus;
        for (const Complex& v : p) {
            const Complex lp = v * (bw / 2.0);
            const Complex root = std::sqrt(lp * lp - wo * wo);
            plus.push_back(lp + root);
            minus.push_back(lp - root);
        }
        p = plus;
        p.insert(p.end(), minus.begin(), minus.end());
        z.assign(degree, Complex(0.0, 0.0));
        k *= std::pow(bw, static_cast<double>(degree));
    }
    // Bilinear transform at fs = 2 (fs2 = 4); zeros at infinity go to Nyquist (-1).
    const double fs2 = 4.0;
    const std::size_t relative_degree = p.size() - z.size();
    k *= (product(z, Complex(fs2, 0.0), -1.0) / product(p, Complex(fs2, 0.0), -1.0)).real();
    ZerosPolesGain out;
    for (const Complex& v : z) out.zeros.push_back((fs2 + v) / (fs2 - v));
    for (const Complex& v : p) out.poles.push_back((fs2 + v) / (fs2 - v));
    out.zeros.insert(out.zeros.end(), relative_degree, Complex(-1.0, 0.0));
    out.gain = k;
    return out;
}

inline SecondOrderSections butterworth_sos(int order, FilterBand band, const std::vector<double>& cutoffs_hz, double fs) {
    return zpk_to_sos(butterworth_zpk(order, band, cutoffs_hz, fs));
}

}  // namespace sae::eeg
