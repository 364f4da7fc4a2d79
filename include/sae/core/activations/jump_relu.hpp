#pragma once
/// \file jump_relu.hpp
/// JumpReLU activation (Rajamanoharan et al. 2024): `f = pre * H(pre - theta_j)` with a
/// learned per-latent threshold theta_j = exp(log_threshold_j) and an L0 penalty
/// `lambda * mean_rows sum_j H(pre - theta_j)`.
///
/// H has no useful derivative, so theta is trained with the paper's straight-through
/// estimator with a rectangle kernel K(u) = 1{|u| < 1/2} of bandwidth eps:
///   d f / d theta        := -(theta / eps) K((pre - theta) / eps)
///   d H(pre-theta)/d theta := -(1 / eps) K((pre - theta) / eps)
/// and the chain rule through theta = exp(log_threshold) multiplies by theta.
/// With respect to `pre` the derivative of f is H (1 on active latents, 0 elsewhere).

#include "common.hpp"

#include <cmath>
#include <string>

namespace sae {

template <class Scalar>
class JumpReLU {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "jumprelu";
    static constexpr bool has_parameter = true;
    static constexpr bool trains_parameter = true;
    /// backward reads every pre-activation near its threshold, so loss.hpp keeps the
    /// whole [batch, d_sae] matrix for this activation; the decoder norms are not used.
    static constexpr bool uses_decoder_norms = false;

    struct Config {
        double initial_threshold = 0.001;  ///< theta at initialisation (Gemma Scope)
        double bandwidth = 0.001;          ///< eps of the straight-through kernel
    };

    JumpReLU(const Config& config, Index d_sae) : config_(config) {
        if (!(config.initial_threshold > 0.0) || !std::isfinite(config.initial_threshold)) {
            throw config_error("jumprelu: initial_threshold = " + std::to_string(config.initial_threshold) +
                               " must be a positive finite number");
        }
        if (!(config.bandwidth > 0.0) || !std::isfinite(config.bandwidth)) {
            throw config_error("jumprelu: bandwidth = " + std::to_string(config.bandwidth) + " must be positive");
        }
        log_threshold_ = RowVector<Scalar>::Constant(d_sae, static_cast<Scalar>(std::log(config.initial_threshold)));
    }

    const Config& config() const { return config_; }

    /// theta_j = exp(log_threshold_j).
    RowVector<Scalar> threshold() const { return log_threshold_.array().exp().matrix(); }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        const RowVector<Scalar> theta = threshold();
        detail::select_above(pre, [&theta](Index c) { return theta(c); }, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

    /// lambda * (active latents) / rows: the batch-mean L0 norm.
    double sparsity_loss(const ConstMatrixRef<Scalar>& pre, const SparseCode<Scalar>& code, const RowVector<Scalar>&,
                         double coefficient) const {
        return pre.rows() == 0 ? 0.0 : coefficient * static_cast<double>(code.nonZeros()) / static_cast<double>(pre.rows());
    }

    template <class GradAt>
    void backward(const ConstMatrixRef<Scalar>& pre, const SparseCode<Scalar>&, const SparseCode<Scalar>& grad_code,
                  GradAt&& grad_at, double coefficient, const RowVector<Scalar>&, SparseCode<Scalar>& d_pre,
                  RowVector<Scalar>&, RowVector<Scalar>& d_log_threshold) const {
        d_pre = grad_code;
        const RowVector<Scalar> theta = threshold();
        const double eps = config_.bandwidth;
        const double l0_weight = pre.rows() == 0 ? 0.0 : coefficient / static_cast<double>(pre.rows());
        for (Index r = 0; r < pre.rows(); ++r) {
            for (Index c = 0; c < pre.cols(); ++c) {
                const double theta_c = static_cast<double>(theta(c));
                if (std::abs(static_cast<double>(pre(r, c)) - theta_c) >= eps / 2) continue;
                const double d_theta =
                    -(theta_c / eps) * static_cast<double>(grad_at(r, c)) - l0_weight / eps;
                d_log_threshold(c) += static_cast<Scalar>(d_theta * theta_c);
            }
        }
    }

    RowVector<Scalar>& parameter() { return log_threshold_; }
    const RowVector<Scalar>& parameter() const { return log_threshold_; }
    const char* parameter_name() const { return "log_threshold"; }

private:
    Config config_;
    RowVector<Scalar> log_threshold_;
};

}  // namespace sae
