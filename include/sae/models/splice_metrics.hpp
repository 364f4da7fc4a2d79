#pragma once
/// \file splice_metrics.hpp
/// How much of a language model's behaviour survives when an activation is replaced by
/// its reconstruction (an SAE spliced into the forward pass).
///
/// Next-token cross-entropy: in a sequence of T tokens, positions 0..T-2 predict tokens
/// 1..T-1; CE is the mean of -log softmax(logits)[next token] over all those predictions
/// of all sequences (T - 1 per sequence), in nats.
///
///   next_token_cross_entropy(logits, tokens)  logits [batch*seq, vocab] as Gpt2::forward
///                                             returns them.
///   splice_metrics(model, batches, hook, reconstruct)
///       reconstruct: any callable Matrix<Scalar>(const Matrix<Scalar>&) (held as a
///       Reconstruction<Scalar>, a std::function) mapping the hook's
///       activation [rows, width] to a matrix of the same shape, e.g.
///       [&](const Matrix<float>& x) { return sae.forward(x); } for an Autoencoder.
///       Three forward passes per batch: clean, with the reconstruction in place of the
///       activation, and with the activation zeroed. Returns
///         ce_clean, ce_spliced, ce_zero_ablated,
///         loss_recovered = (ce_zero_ablated - ce_spliced) / (ce_zero_ablated - ce_clean)
///             (NaN when zero ablation does not change the loss: nothing to recover),
///         kl_clean_spliced = mean over predictions of KL(p_clean || p_spliced), nats,
///         predictions = the number of next-token predictions averaged over.
///       Requires at least one batch and every sequence >= 2 tokens (shape_error).
/// Log-softmax and every sum are computed in double, whatever Scalar is.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "gpt2.hpp"
#include "hook_point.hpp"
#include "hooks.hpp"

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace sae::models {

struct SpliceMetrics {
    double ce_clean = 0.0;
    double ce_spliced = 0.0;
    double ce_zero_ablated = 0.0;
    double loss_recovered = 0.0;
    double kl_clean_spliced = 0.0;
    std::size_t predictions = 0;
};

namespace detail {

/// log softmax of one row of logits, in double.
template <class Derived>
Eigen::RowVectorXd log_softmax_row(const Eigen::MatrixBase<Derived>& logits) {
    const Eigen::RowVectorXd v = logits.template cast<double>();
    const double peak = v.maxCoeff();
    const double log_sum = peak + std::log((v.array() - peak).exp().sum());
    return (v.array() - log_sum).matrix();
}

inline void check_next_token_shapes(Index logit_rows, const TokenBatch& tokens) {
    if (tokens.cols() < 2) {
        throw shape_error("next-token loss: sequences need at least 2 tokens, got " + std::to_string(tokens.cols()));
    }
    if (logit_rows != tokens.rows() * tokens.cols()) {
        throw shape_error("next-token loss: logits have " + std::to_string(logit_rows) + " rows but the tokens are [" +
                          std::to_string(tokens.rows()) + ", " + std::to_string(tokens.cols()) + "]");
    }
}

/// Sum over the predictions of a batch of -log p(next token).
template <class Scalar>
double next_token_loss_sum(const Matrix<Scalar>& logits, const TokenBatch& tokens) {
    check_next_token_shapes(logits.rows(), tokens);
    const Index seq = tokens.cols();
    double sum = 0.0;
    for (Index b = 0; b < tokens.rows(); ++b) {
        for (Index t = 0; t + 1 < seq; ++t) {
            const int target = tokens(b, t + 1);
            if (target < 0 || target >= logits.cols()) {
                throw config_error("next-token loss: token id " + std::to_string(target) + " (sequence " +
                                   std::to_string(b) + ", position " + std::to_string(t + 1) +
                                   ") is outside the logits' vocabulary [0, " + std::to_string(logits.cols()) + ")");
            }
            sum -= log_softmax_row(logits.row(b * seq + t))(target);
        }
    }
    return sum;
}

}  // namespace detail

/// Mean next-token cross-entropy (nats) of logits [batch*seq, vocab] for `tokens`.
template <class Scalar>
double next_token_cross_entropy(const Matrix<Scalar>& logits, const TokenBatch& tokens) {
    return detail::next_token_loss_sum(logits, tokens) / static_cast<double>(tokens.rows() * (tokens.cols() - 1));
}

/// A reconstruction of a hook's activation (type-erased: one instantiation of
/// splice_metrics per Scalar, whatever callable is passed).
template <class Scalar>
using Reconstruction = std::function<Matrix<Scalar>(const Matrix<Scalar>&)>;

template <class Scalar>
SpliceMetrics splice_metrics(const Gpt2<Scalar>& model, const std::vector<TokenBatch>& batches, const HookPoint& hook,
                             const sae::detail::non_deduced_t<Reconstruction<Scalar>>& reconstruct) {
    if (batches.empty()) throw shape_error("splice_metrics: no token batches");
    if (!reconstruct) throw config_error("splice_metrics: the reconstruction function is empty");
    hook.check_layer(model.config().n_layer);
    Hooks<Scalar> spliced_hooks;
    spliced_hooks.replace(hook, [&reconstruct](Matrix<Scalar>& activation) {
        Matrix<Scalar> replacement = reconstruct(activation);
        activation = std::move(replacement);  // a shape change is reported by Hooks::apply
    });
    Hooks<Scalar> zero_hooks;
    zero_hooks.replace(hook, [](Matrix<Scalar>& activation) { activation.setZero(); });

    double clean_sum = 0.0, spliced_sum = 0.0, zero_sum = 0.0, kl_sum = 0.0;
    std::size_t predictions = 0;
    for (const TokenBatch& tokens : batches) {
        detail::check_next_token_shapes(tokens.rows() * tokens.cols(), tokens);
        const Matrix<Scalar> clean = model.forward(tokens);
        const Matrix<Scalar> spliced = model.forward(tokens, spliced_hooks);
        clean_sum += detail::next_token_loss_sum(clean, tokens);
        spliced_sum += detail::next_token_loss_sum(spliced, tokens);
        zero_sum += detail::next_token_loss_sum(model.forward(tokens, zero_hooks), tokens);
        const Index seq = tokens.cols();
        for (Index b = 0; b < tokens.rows(); ++b) {
            for (Index t = 0; t + 1 < seq; ++t) {
                const Eigen::RowVectorXd log_p = detail::log_softmax_row(clean.row(b * seq + t));
                const Eigen::RowVectorXd log_q = detail::log_softmax_row(spliced.row(b * seq + t));
                kl_sum += (log_p.array().exp() * (log_p - log_q).array()).sum();
            }
        }
        predictions += static_cast<std::size_t>(tokens.rows() * (seq - 1));
    }
    SpliceMetrics m;
    const double n = static_cast<double>(predictions);
    m.predictions = predictions;
    m.ce_clean = clean_sum / n;
    m.ce_spliced = spliced_sum / n;
    m.ce_zero_ablated = zero_sum / n;
    m.kl_clean_spliced = kl_sum / n;
    const double recoverable = m.ce_zero_ablated - m.ce_clean;
    m.loss_recovered = recoverable == 0.0 ? std::numeric_limits<double>::quiet_NaN()
                                          : (m.ce_zero_ablated - m.ce_spliced) / recoverable;
    return m;
}

/// The same with the hook given by name (config_error for an unknown one).
template <class Scalar>
SpliceMetrics splice_metrics(const Gpt2<Scalar>& model, const std::vector<TokenBatch>& batches, const std::string& hook,
                             const sae::detail::non_deduced_t<Reconstruction<Scalar>>& reconstruct) {
    return splice_metrics(model, batches, model.hook_point(hook), reconstruct);
}

}  // namespace sae::models
