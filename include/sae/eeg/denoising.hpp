#pragma once
/// \file denoising.hpp
/// The EEGdenoiseNet protocol (Zhang et al. 2021, J. Neural Eng. 18 056057; their
/// code/benchmark_networks/data_prepare.py): a clean segment x and an artifact segment n
/// are mixed as y = x + lambda n with lambda chosen for a signal-to-noise ratio
///   SNR = 10 log10(RMS(x) / RMS(lambda n))   (dB; the test set uses -7, -6, ..., 2),
/// and a denoiser f is scored per segment by
///   RRMSE_temporal = RMS(f(y) - x) / RMS(x),
///   RRMSE_spectral = RMS(PSD(f(y)) - PSD(x)) / RMS(PSD(x)),
///   CC             = Pearson correlation of f(y) and x.
///
/// PSD: Welch's method as scipy.signal.welch computes it with its defaults — periodic
/// Hann window of `nperseg` samples (default min(256, length)), 50 % overlap, the mean
/// of each window removed, one-sided density scaling (1 / (fs sum w^2), doubled except
/// at 0 Hz and, for even nperseg, at Nyquist), averaged over windows. With 1-s segments
/// at 128 Hz that is a single Hann-windowed periodogram of 65 bins. The spectra are
/// computed for many segments at once as two GEMMs against a cosine and a sine basis.
///
///   rms(x)                                 sqrt(mean(x^2)) of all elements.
///   artifact_scale(x, n, snr_db)           lambda; numeric_error when RMS(n) = 0.
///   mix_at_snr(x, n, snr_db)               x + lambda n.
///   rrmse_temporal(estimate, clean)        per row of [segments, samples].
///   pearson_cc(estimate, clean)            per row; 0 when a row is constant (the
///                                          correlation is undefined there; a denoiser
///                                          that outputs a flat line has no correlation).
///   WelchPsd(fs, nperseg, length)          .frequencies(), .compute(rows) -> [rows, bins].
///   rrmse_spectral(estimate, clean, psd)   per row.
///   DenoisingScores score(estimate, clean, psd)   the three means over rows.
/// shape_error when estimate and clean differ in shape.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <cmath>
#include <string>

namespace sae::eeg {

template <class Derived>
double rms(const Eigen::MatrixBase<Derived>& x) {
    if (x.size() == 0) throw shape_error("rms: empty signal");
    return std::sqrt(x.template cast<double>().squaredNorm() / static_cast<double>(x.size()));
}

template <class DX, class DN>
double artifact_scale(const Eigen::MatrixBase<DX>& clean, const Eigen::MatrixBase<DN>& artifact, double snr_db) {
    if (clean.size() != artifact.size()) {
        throw shape_error("artifact_scale: clean has " + std::to_string(clean.size()) + " samples, the artifact " +
                          std::to_string(artifact.size()));
    }
    const double artifact_rms = rms(artifact);
    if (!(artifact_rms > 0)) throw numeric_error("artifact_scale: the artifact segment is all zeros (RMS 0)");
    return rms(clean) / (artifact_rms * std::pow(10.0, snr_db / 10.0));
}

template <class DX, class DN>
Matrix<typename DX::Scalar> mix_at_snr(const Eigen::MatrixBase<DX>& clean, const Eigen::MatrixBase<DN>& artifact, double snr_db) {
    using Scalar = typename DX::Scalar;
    const double lambda = artifact_scale(clean, artifact, snr_db);
    return (clean.template cast<double>() + lambda * artifact.template cast<double>()).template cast<Scalar>();
}

namespace detail::denoise {

template <class DA, class DB>
void require_same_shape(const char* where, const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) {
        throw shape_error(std::string(where) + ": estimate is " + std::to_string(a.rows()) + " x " + std::to_string(a.cols()) +
                          ", clean is " + std::to_string(b.rows()) + " x " + std::to_string(b.cols()));
    }
}

}  // namespace detail::denoise

template <class DE, class DC>
Eigen::VectorXd rrmse_temporal(const Eigen::MatrixBase<DE>& estimate, const Eigen::MatrixBase<DC>& clean) {
    detail::denoise::require_same_shape("rrmse_temporal", estimate, clean);
    Eigen::VectorXd out(clean.rows());
    for (Index r = 0; r < clean.rows(); ++r) {
        out[r] = rms(estimate.row(r) - clean.row(r)) / rms(clean.row(r));
    }
    return out;
}

template <class DE, class DC>
Eigen::VectorXd pearson_cc(const Eigen::MatrixBase<DE>& estimate, const Eigen::MatrixBase<DC>& clean) {
    detail::denoise::require_same_shape("pearson_cc", estimate, clean);
    Eigen::VectorXd out(clean.rows());
    for (Index r = 0; r < clean.rows(); ++r) {
        const Eigen::ArrayXd a = estimate.row(r).template cast<double>().transpose().array();
        const Eigen::ArrayXd b = clean.row(r).template cast<double>().transpose().array();
        const Eigen::ArrayXd da = a - a.mean(), db = b - b.mean();
        const double norms = std::sqrt(da.square().sum() * db.square().sum());
        out[r] = norms > 0 ? (da * db).sum() / norms : 0.0;
    }
    return out;
}

/// Welch power spectral density (scipy.signal.welch defaults) of rows of equal length.
class WelchPsd {
public:
    /// `nperseg` <= 0 means min(256, length).
    WelchPsd(double sample_rate, Index length, Index nperseg = 0) : fs_(sample_rate), length_(length) {
        if (!(sample_rate > 0)) throw config_error("WelchPsd: sample rate must be > 0");
        if (length < 2) throw config_error("WelchPsd: segments need at least 2 samples");
        nperseg_ = nperseg <= 0 ? std::min<Index>(256, length) : std::min(nperseg, length);
        step_ = nperseg_ - nperseg_ / 2;
        windows_ = (length - nperseg_) / step_ + 1;
        const Index bins = nperseg_ / 2 + 1;
        const double pi = 3.14159265358979323846;
        Eigen::VectorXd hann(nperseg_);
        for (Index n = 0; n < nperseg_; ++n) hann[n] = 0.5 - 0.5 * std::cos(2.0 * pi * static_cast<double>(n) / static_cast<double>(nperseg_));
        const double scale = 1.0 / (fs_ * hann.squaredNorm());
        // Windowed DFT basis: column k holds w[n] cos(2 pi k n / N) (and sin).
        cos_basis_.resize(nperseg_, bins);
        sin_basis_.resize(nperseg_, bins);
        for (Index n = 0; n < nperseg_; ++n) {
            for (Index k = 0; k < bins; ++k) {
                const double angle = 2.0 * pi * static_cast<double>((k * n) % nperseg_) / static_cast<double>(nperseg_);
                cos_basis_(n, k) = hann[n] * std::cos(angle);
                sin_basis_(n, k) = hann[n] * std::sin(angle);
            }
        }
        bin_scale_ = Eigen::RowVectorXd::Constant(bins, 2.0 * scale / static_cast<double>(windows_));
        bin_scale_[0] = scale / static_cast<double>(windows_);
        if (nperseg_ % 2 == 0) bin_scale_[bins - 1] = scale / static_cast<double>(windows_);
    }

    Index nperseg() const { return nperseg_; }
    Index bins() const { return cos_basis_.cols(); }

    Eigen::VectorXd frequencies() const {
        Eigen::VectorXd f(bins());
        for (Index k = 0; k < bins(); ++k) f[k] = static_cast<double>(k) * fs_ / static_cast<double>(nperseg_);
        return f;
    }

    /// PSD of every row of `rows` [segments, length] -> [segments, bins].
    template <class Derived>
    Eigen::MatrixXd compute(const Eigen::MatrixBase<Derived>& rows) const {
        if (rows.cols() != length_) {
            throw shape_error("WelchPsd: rows have " + std::to_string(rows.cols()) + " samples, expected " + std::to_string(length_));
        }
        Eigen::MatrixXd power = Eigen::MatrixXd::Zero(rows.rows(), bins());
        Eigen::MatrixXd chunk(rows.rows(), nperseg_);
        for (Index w = 0; w < windows_; ++w) {
            chunk = rows.middleCols(w * step_, nperseg_).template cast<double>();
            chunk.colwise() -= chunk.rowwise().mean();  // detrend='constant'
            const Eigen::MatrixXd re = chunk * cos_basis_;
            const Eigen::MatrixXd im = chunk * sin_basis_;
            power.array() += re.array().square() + im.array().square();
        }
        return power.array().rowwise() * bin_scale_.array();
    }

private:
    double fs_;
    Index length_;
    Index nperseg_ = 0;
    Index step_ = 1;
    Index windows_ = 1;
    Eigen::MatrixXd cos_basis_, sin_basis_;
    Eigen::RowVectorXd bin_scale_;
};

template <class DE, class DC>
Eigen::VectorXd rrmse_spectral(const Eigen::MatrixBase<DE>& estimate, const Eigen::MatrixBase<DC>& clean, const WelchPsd& psd) {
    detail::denoise::require_same_shape("rrmse_spectral", estimate, clean);
    const Eigen::MatrixXd p_estimate = psd.compute(estimate);
    const Eigen::MatrixXd p_clean = psd.compute(clean);
    Eigen::VectorXd out(clean.rows());
    for (Index r = 0; r < clean.rows(); ++r) out[r] = rms(p_estimate.row(r) - p_clean.row(r)) / rms(p_clean.row(r));
    return out;
}

/// Means over segments of the three EEGdenoiseNet scores.
struct DenoisingScores {
    double rrmse_temporal = 0;
    double rrmse_spectral = 0;
    double cc = 0;
};

template <class DE, class DC>
DenoisingScores score(const Eigen::MatrixBase<DE>& estimate, const Eigen::MatrixBase<DC>& clean, const WelchPsd& psd) {
    return {rrmse_temporal(estimate, clean).mean(), rrmse_spectral(estimate, clean, psd).mean(),
            pearson_cc(estimate, clean).mean()};
}

}  // namespace sae::eeg
