#pragma once
/// \file gpt2_layers.hpp
/// The per-token layers of GPT-2, shared by the full forward pass (gpt2.hpp) and the
/// key/value-cached decoder (kv_cache.hpp) so that both compute them identically:
///   linear(in, w, out)                     out = in W + b (Conv1D layout, W [in, out])
///   layer_norm(x, ln, epsilon, out)        per row: (x - mean) / sqrt(var + eps) * g + b
///   gelu_tanh_in_place(h)                  GPT-2's tanh approximation of GELU

#include "../core/types.hpp"
#include "gpt2_weights.hpp"

#include <Eigen/Dense>

namespace sae::models::gpt2_layers {

template <class Scalar>
void linear(const Matrix<Scalar>& in, const LinearWeights<Scalar>& lw, Matrix<Scalar>& out) {
    out.resize(in.rows(), lw.weight.cols());
    out.noalias() = in * lw.weight;
    out.rowwise() += lw.bias;
}

/// Biased variance (divide by n), as torch.nn.LayerNorm.
template <class Scalar>
void layer_norm(const Matrix<Scalar>& x, const LayerNormWeights<Scalar>& ln, double epsilon, Matrix<Scalar>& out) {
    using Column = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
    const Column mean = x.rowwise().mean().array();
    out = x.colwise() - mean.matrix();
    const Column inv_std = (out.array().square().rowwise().mean() + static_cast<Scalar>(epsilon)).rsqrt();
    out.array().colwise() *= inv_std;
    out.array().rowwise() *= ln.weight.array();
    out.rowwise() += ln.bias;
}

/// GELU with GPT-2's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class Scalar>
void gelu_tanh_in_place(Matrix<Scalar>& h) {
    const Scalar sqrt_2_over_pi = static_cast<Scalar>(0.79788456080286535587989211986876);
    const Scalar cubic = static_cast<Scalar>(0.044715);
    h.array() = Scalar(0.5) * h.array() * (Scalar(1) + (sqrt_2_over_pi * (h.array() + cubic * h.array().cube())).tanh());
}

}  // namespace sae::models::gpt2_layers
