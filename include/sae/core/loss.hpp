#pragma once
/// \file loss.hpp
/// The training loss of one SAE and its analytic gradients.
///
///   L = R + S + A
///   R = ||x - x_hat||^2 / N                      reconstruction (N: see normalisation)
///   S = Activation::sparsity_loss                 L1 (ReLU), L0 (JumpReLU) or 0 (TopK)
///   A = alpha ||e - e_hat||^2 / N                 AuxK (Gao et al.): e = x - x_hat is a
///       constant, e_hat = f_aux W_dec with f_aux the aux_k largest pre-activations
///       (after ReLU) among dead latents
///
/// All products use the sparse code, so decoder and backward work is
/// O(batch * active * d_in); only the encoder GEMM is dense.
///
/// The gradient of W_dec is left in "decoder-row space": callers may add further
/// terms on the decoder rows (the MFR penalty does) before `project_decoder_gradient`
/// maps it onto the trainable parameters (tied: into W_enc through the row
/// normalisation; unit-norm untied: the component parallel to each row removed).

#include "autoencoder.hpp"
#include "activations/topk.hpp"

#include <string>
#include <vector>

namespace sae {

/// How the squared reconstruction error is averaged.
enum class ReconstructionNormalization {
    sum_over_features,  ///< mean over the batch of ||x - x_hat||^2 (SAELens default)
    mean_over_elements  ///< mean over batch and features (torch MSELoss; the MFR authors)
};

struct LossConfig {
    ReconstructionNormalization normalization = ReconstructionNormalization::sum_over_features;
    double aux_coefficient = 0.0;  ///< alpha of the AuxK loss (Gao et al. use 1/32); 0 = off
    Index aux_k = 0;               ///< latents per row in AuxK; 0 = d_in / 2 (Gao et al.)

    void validate() const {
        if (!(aux_coefficient >= 0.0)) {
            throw config_error("aux_coefficient = " + std::to_string(aux_coefficient) + " must be >= 0");
        }
        if (aux_k < 0) throw config_error("aux_k = " + std::to_string(aux_k) + " must be >= 0");
    }
};

/// The terms of one evaluation of the loss.
struct LossBreakdown {
    double reconstruction = 0.0;  ///< R
    double sparsity = 0.0;        ///< S
    double auxiliary = 0.0;       ///< A
    double penalty = 0.0;         ///< terms added by a coupling (MFR), if any
    double mean_l0 = 0.0;         ///< mean active latents per row
    double total() const { return reconstruction + sparsity + auxiliary + penalty; }
};

/// Gradients of every trainable tensor, shaped like the parameters.
template <class Scalar>
struct Gradients {
    Matrix<Scalar> W_enc;        ///< [d_in, d_sae]
    RowVector<Scalar> b_enc;     ///< [d_sae]
    Matrix<Scalar> W_dec;        ///< [d_sae, d_in], decoder-row space (see file comment)
    RowVector<Scalar> b_dec;     ///< [d_in]
    RowVector<Scalar> parameter; ///< the activation's own trainable vector, if any

    template <class Model>
    void reset_for(const Model& model) {
        W_enc.setZero(model.d_in(), model.d_sae());
        b_enc.setZero(model.d_sae());
        W_dec.setZero(model.d_sae(), model.d_in());
        b_dec.setZero(model.d_in());
        parameter.setZero(model.activation().parameter().size());
    }
};

/// Buffers of one forward/backward pass, kept between steps to avoid reallocation.
template <class Scalar>
struct ForwardCache {
    Matrix<Scalar> centered;        ///< x - b_dec
    Matrix<Scalar> pre;             ///< pre-activations
    SparseCode<Scalar> code;        ///< f
    Matrix<Scalar> x_hat;           ///< reconstruction
    Matrix<Scalar> d_x_hat;         ///< dL/dx_hat
    SparseCode<Scalar> grad_code;   ///< dL/df on the code's pattern
    SparseCode<Scalar> d_pre;       ///< dL/dpre
    SparseCode<Scalar> aux_code;    ///< AuxK code over dead latents
    Matrix<Scalar> d_W_enc_transposed;  ///< dL/dW_enc^T [d_sae, d_in]
};

namespace detail {

/// out has the pattern of `pattern`, with out(r, c) = a.row(r) . b.row(c): the entries
/// of a * b^T that a sparse backward needs, without forming the dense product.
template <class Scalar>
void sampled_row_dots(const Matrix<Scalar>& a, const Matrix<Scalar>& b, const SparseCode<Scalar>& pattern,
                      SparseCode<Scalar>& out) {
    out = pattern;
    for (Index r = 0; r < out.outerSize(); ++r) {
        for (typename SparseCode<Scalar>::InnerIterator it(out, r); it; ++it) {
            it.valueRef() = a.row(r).dot(b.row(it.col()));
        }
    }
}

/// The number N that the squared error is divided by.
inline double reconstruction_denominator(ReconstructionNormalization normalization, Index rows, Index cols) {
    return normalization == ReconstructionNormalization::sum_over_features ? static_cast<double>(rows)
                                                                           : static_cast<double>(rows * cols);
}

/// AuxK code: per row the `k` largest positive pre-activations among dead latents.
template <class Scalar>
void select_dead_top_k(const Matrix<Scalar>& pre, const std::vector<Index>& dead, Index k, SparseCode<Scalar>& code) {
    Matrix<Scalar> dead_pre(pre.rows(), static_cast<Index>(dead.size()));
    for (std::size_t j = 0; j < dead.size(); ++j) dead_pre.col(static_cast<Index>(j)) = pre.col(dead[j]);
    SparseCode<Scalar> local;
    select_top_k_per_row<Scalar>(dead_pre, k, /*relu=*/true, local);
    code.resize(pre.rows(), pre.cols());
    std::vector<Eigen::Triplet<Scalar, int>> entries;
    entries.reserve(static_cast<std::size_t>(local.nonZeros()));
    for (Index r = 0; r < local.outerSize(); ++r) {
        for (typename SparseCode<Scalar>::InnerIterator it(local, r); it; ++it) {
            entries.emplace_back(static_cast<int>(r), static_cast<int>(dead[static_cast<std::size_t>(it.col())]),
                                 it.value());
        }
    }
    code.setFromTriplets(entries.begin(), entries.end());
}

}  // namespace detail

/// Evaluate the loss of `model` on batch `x` [batch, d_in] and write every gradient
/// into `grads` (overwritten). `sparsity_coefficient` is lambda at this step (after
/// any warm-up); `dead` marks dead latents for AuxK (nullptr or empty: no AuxK).
/// The model is non-const because training-time selection may update activation
/// statistics (BatchTopK's threshold).
template <class Scalar, template <class> class Act>
LossBreakdown loss_and_gradients(Autoencoder<Scalar, Act>& model, const ConstMatrixRef<detail::non_deduced_t<Scalar>>& x,
                                 const LossConfig& loss, double sparsity_coefficient,
                                 const Eigen::Array<bool, Eigen::Dynamic, 1>* dead, ForwardCache<Scalar>& cache,
                                 Gradients<Scalar>& grads) {
    detail::check_batch(x, model.d_in(), "loss_and_gradients");
    const Index rows = x.rows();
    const Matrix<Scalar>& W_enc = model.W_enc();
    const Matrix<Scalar>& W_dec = model.W_dec();
    grads.reset_for(model);
    LossBreakdown result;
    if (rows == 0) return result;

    // Forward.
    cache.centered = x.rowwise() - model.b_dec();
    cache.pre.resize(rows, model.d_sae());
    cache.pre.noalias() = cache.centered * W_enc;
    cache.pre.rowwise() += model.b_enc();
    model.activation().select_training(cache.pre, cache.code);
    cache.x_hat.resize(rows, model.d_in());
    cache.x_hat.noalias() = cache.code * W_dec;
    cache.x_hat.rowwise() += model.b_dec();

    const double denominator = detail::reconstruction_denominator(loss.normalization, rows, model.d_in());
    const Scalar scale = static_cast<Scalar>(2.0 / denominator);
    cache.d_x_hat = (cache.x_hat - x) * scale;
    result.reconstruction = static_cast<double>((cache.x_hat - x).squaredNorm()) / denominator;
    result.mean_l0 = static_cast<double>(cache.code.nonZeros()) / static_cast<double>(rows);

    const RowVector<Scalar> decoder_norms = model.decoder_row_norms();
    result.sparsity = model.activation().sparsity_loss(cache.pre, cache.code, decoder_norms, sparsity_coefficient);

    // Decoder backward: only the active latents of each row are touched.
    grads.W_dec.noalias() = cache.code.transpose() * cache.d_x_hat;
    if (model.config().decoder_bias) grads.b_dec = cache.d_x_hat.colwise().sum();
    detail::sampled_row_dots(cache.d_x_hat, W_dec, cache.code, cache.grad_code);

    RowVector<Scalar> d_decoder_norms = RowVector<Scalar>::Zero(model.d_sae());
    const auto grad_at = [&cache, &W_dec](Index r, Index c) { return cache.d_x_hat.row(r).dot(W_dec.row(c)); };
    model.activation().backward(cache.pre, cache.code, cache.grad_code, grad_at, sparsity_coefficient,
                                decoder_norms, cache.d_pre, d_decoder_norms, grads.parameter);
    for (Index j = 0; j < model.d_sae(); ++j) {
        if (d_decoder_norms(j) != Scalar(0) && decoder_norms(j) > Scalar(0)) {
            grads.W_dec.row(j) += (d_decoder_norms(j) / decoder_norms(j)) * W_dec.row(j);
        }
    }

    // AuxK: dead latents reconstruct the (constant) residual.
    if (loss.aux_coefficient > 0.0 && dead != nullptr && dead->size() == model.d_sae() && dead->any()) {
        std::vector<Index> dead_latents;
        for (Index j = 0; j < dead->size(); ++j) {
            if ((*dead)(j)) dead_latents.push_back(j);
        }
        const Index preferred = loss.aux_k > 0 ? loss.aux_k : std::max<Index>(1, model.d_in() / 2);
        const Index aux_k = std::min<Index>(preferred, static_cast<Index>(dead_latents.size()));
        detail::select_dead_top_k(cache.pre, dead_latents, aux_k, cache.aux_code);
        const Matrix<Scalar> residual = x - cache.x_hat;
        Matrix<Scalar> aux_error(rows, model.d_in());
        aux_error.noalias() = cache.aux_code * W_dec;
        aux_error -= residual;  // e_hat - e
        result.auxiliary = loss.aux_coefficient * static_cast<double>(aux_error.squaredNorm()) / denominator;
        const Matrix<Scalar> d_aux = aux_error * static_cast<Scalar>(2.0 * loss.aux_coefficient / denominator);
        grads.W_dec.noalias() += cache.aux_code.transpose() * d_aux;
        SparseCode<Scalar> aux_grad;
        detail::sampled_row_dots(d_aux, W_dec, cache.aux_code, aux_grad);
        cache.d_pre += aux_grad;
    }

    // Encoder backward.
    // Computed as (d_pre^T centered)^T: Eigen's sparse^T * dense product walks only the
    // stored entries, while dense^T * sparse falls back to a much slower path.
    cache.d_W_enc_transposed.noalias() = cache.d_pre.transpose() * cache.centered;
    grads.W_enc = cache.d_W_enc_transposed.transpose();
    grads.b_enc = RowVector<Scalar>::Ones(rows) * cache.d_pre;
    if (model.config().decoder_bias) grads.b_dec.noalias() -= grads.b_enc * W_enc.transpose();
    return result;
}

/// Map the decoder-row gradient onto the trainable parameters:
///  - tied: W_dec,j = w_j / ||w_j|| with w_j = W_enc[:, j], so
///    dL/dw_j += (g_j - (g_j . u_j) u_j) / ||w_j||, and grads.W_dec is cleared;
///  - untied with unit-norm rows: remove from g_j its component along the row, so
///    the step moves along the sphere (renormalise after the update).
template <class Scalar, template <class> class Act>
void project_decoder_gradient(const Autoencoder<Scalar, Act>& model, Gradients<Scalar>& grads) {
    const Matrix<Scalar>& W_dec = model.W_dec();
    const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> along = (grads.W_dec.array() * W_dec.array()).rowwise().sum();
    if (model.config().tied) {
        const Matrix<Scalar> tangent = grads.W_dec - along.asDiagonal() * W_dec;
        const RowVector<Scalar> inverse_norms = model.encoder_column_norms().array().max(Scalar(1e-12)).inverse();
        grads.W_enc += tangent.transpose() * inverse_norms.asDiagonal();
        grads.W_dec.setZero();
    } else if (model.config().unit_norm_decoder) {
        const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> squared = W_dec.rowwise().squaredNorm();
        grads.W_dec -= (along.array() / squared.array().max(Scalar(1e-24))).matrix().asDiagonal() * W_dec;
    }
}

}  // namespace sae
