#pragma once
/// \file common.hpp
/// Pieces shared by the activation policies: selection of every pre-activation above
/// a per-latent threshold (ReLU, JumpReLU, BatchTopK at inference), and the backward
/// pass of policies whose kept values are the pre-activations themselves and that add
/// no sparsity penalty (TopK, BatchTopK).

#include "../activation.hpp"
#include "../sparse_code_builder.hpp"

namespace sae::detail {

/// code = pre where pre(r, c) > threshold(c), zero elsewhere.
template <class Scalar, class ThresholdOfLatent>
void select_above(const ConstMatrixRef<Scalar>& pre, ThresholdOfLatent&& threshold, SparseCode<Scalar>& code) {
    SparseCodeBuilder<Scalar> builder;
    builder.start(pre.rows(), pre.cols());
    for (Index r = 0; r < pre.rows(); ++r) {
        for (Index c = 0; c < pre.cols(); ++c) {
            if (pre(r, c) > threshold(c)) builder.push(c, pre(r, c));
        }
        builder.end_row();
    }
    builder.finish(code);
}

/// No sparsity penalty, and a kept value's derivative with respect to its
/// pre-activation is 1: dL/dpre equals dL/df on the active pattern, zero elsewhere.
template <class Scalar>
struct PassThroughGradient {
    /// backward and sparsity_loss never read the decoder norms (loss.hpp skips them).
    static constexpr bool uses_decoder_norms = false;

    double sparsity_loss(const ConstMatrixRef<Scalar>&, const SparseCode<Scalar>&, const RowVector<Scalar>&,
                         double) const {
        return 0.0;
    }

    template <class GradAt>
    void backward(const ConstMatrixRef<Scalar>&, const SparseCode<Scalar>&, const SparseCode<Scalar>& grad_code,
                  GradAt&&, double, const RowVector<Scalar>&, SparseCode<Scalar>& d_pre, RowVector<Scalar>&,
                  RowVector<Scalar>&) const {
        d_pre = grad_code;
    }
};

}  // namespace sae::detail
