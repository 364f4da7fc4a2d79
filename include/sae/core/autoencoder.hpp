#pragma once
/// \file autoencoder.hpp
/// `Autoencoder<Scalar, Activation>`: the parameters of one sparse autoencoder and its
/// inference-time forward pass (SAELens shapes and conventions):
///
///   pre   = (x - b_dec) W_enc + b_enc        W_enc [d_in, d_sae], b_enc [d_sae]
///   f     = Activation(pre)                  sparse code [batch, d_sae]
///   x_hat = f W_dec + b_dec                  W_dec [d_sae, d_in], b_dec [d_in]
///
/// Two weight layouts:
///  - untied (SAELens): W_enc and W_dec are independent parameters; with
///    `unit_norm_decoder` every decoder row is kept at unit L2 norm.
///  - tied (the MFR authors' SAE): the only weight is W_enc; the decoder rows are the
///    unit-normalised encoder directions, W_dec,j = W_enc[:, j] / ||W_enc[:, j]||.
///    The authors train no decoder bias: set `decoder_bias = false`.
///
/// Requires: every input batch has d_in columns and finite values.
/// Ensures:  encode/decode/forward never modify the model and are safe to call from
///           several threads at once on one const Autoencoder.
///
/// Thread safety: every const member (pre_activations, encode, encode_sparse, decode,
/// forward, the accessors) only reads the model, and neither the model nor its
/// activation keeps a cache or scratch buffer, so one const Autoencoder may encode from
/// any number of threads at once with results identical to serial calls
/// (tests/test_concurrent_encode.cpp, run under ThreadSanitizer by tools/run-tests).
/// Non-const members (set_parameters, reinitialize, mutable_*, fold_input_scale, and
/// training through TrainableSae) must not overlap with any other call on the same
/// object. Built with OpenMP, each call may start its own Eigen thread team: when many
/// threads encode at once, Eigen::setNbThreads(1) avoids oversubscribing the cores.

#include "activation.hpp"
#include "encoder_stream.hpp"
#include "error.hpp"
#include "types.hpp"

#include <Eigen/QR>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

namespace sae {

/// Sizes and layout of an SAE.
struct AutoencoderConfig {
    Index d_in = 0;                 ///< width of the input activations
    Index d_sae = 0;                ///< number of latents (dictionary size)
    bool tied = false;              ///< decoder = unit-normalised encoder directions
    bool decoder_bias = true;       ///< train b_dec (false: b_dec is fixed at zero)
    bool unit_norm_decoder = true;  ///< untied only: keep decoder rows at unit norm

    void validate() const {
        if (d_in < 1) throw config_error("d_in = " + std::to_string(d_in) + " must be positive");
        if (d_sae < 1) throw config_error("d_sae = " + std::to_string(d_sae) + " must be positive");
    }
};

namespace detail {

/// Throws shape_error unless `x` has `d_in` columns, numeric_error if it holds NaN/Inf.
template <class Derived>
void check_batch(const Eigen::MatrixBase<Derived>& x, Index d_in, const char* where) {
    if (x.cols() != d_in) {
        throw shape_error(std::string(where) + ": input has " + std::to_string(x.cols()) +
                          " columns but the SAE has d_in = " + std::to_string(d_in));
    }
    require_finite_rows(x, 0, where);
}

/// A [rows, cols] matrix with orthonormal rows (rows <= cols) or orthonormal columns
/// (rows > cols), as torch.nn.init.orthogonal_ makes it: QR of a Gaussian matrix with
/// the signs of R's diagonal folded into Q so the result is uniformly distributed.
template <class Scalar>
Matrix<Scalar> random_orthogonal(Index rows, Index cols, std::mt19937_64& rng) {
    const bool transpose = rows < cols;
    const Index tall = transpose ? cols : rows;
    const Index wide = transpose ? rows : cols;
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd gaussian(tall, wide);
    for (Index i = 0; i < gaussian.size(); ++i) gaussian.data()[i] = normal(rng);
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian);
    Eigen::MatrixXd q = qr.householderQ() * Eigen::MatrixXd::Identity(tall, wide);
    const Eigen::MatrixXd r = qr.matrixQR().topRows(wide).template triangularView<Eigen::Upper>();
    for (Index j = 0; j < wide; ++j) {
        if (r(j, j) < 0) q.col(j) *= -1.0;
    }
    if (transpose) return q.transpose().cast<Scalar>();
    return q.cast<Scalar>();
}

}  // namespace detail

template <class Scalar, template <class> class ActivationT>
class Autoencoder {
public:
    using scalar_type = Scalar;
    using Activation = ActivationT<Scalar>;
    using ActivationConfig = typename Activation::Config;
    static_assert(std::is_floating_point_v<Scalar>, "Autoencoder: Scalar must be float or double");
    static_assert(is_activation_v<Activation>,
                  "Autoencoder: the Activation policy does not provide the members listed in activation.hpp");

    /// A freshly initialised SAE (see `reinitialize`). Throws config_error on bad sizes
    /// or activation settings (e.g. k > d_sae).
    Autoencoder(const AutoencoderConfig& config, const ActivationConfig& activation_config = {},
                std::uint64_t seed = 0)
        : config_((config.validate(), config)), activation_config_(activation_config),
          activation_(activation_config, config.d_sae) {
        reinitialize(seed);
    }

    /// Draw new weights from `seed`, zero the biases and reset the activation:
    ///  - tied: W_enc^T is a random orthogonal [d_sae, d_in] matrix (torch's
    ///    orthogonal_ on the authors' nn.Linear weight);
    ///  - untied: decoder rows are random unit vectors and W_enc = W_dec^T (SAELens).
    void reinitialize(std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        const Index d_in = config_.d_in, d_sae = config_.d_sae;
        if (config_.tied) {
            W_enc_ = detail::random_orthogonal<Scalar>(d_sae, d_in, rng).transpose();
        } else {
            std::normal_distribution<double> normal(0.0, 1.0);
            W_dec_.resize(d_sae, d_in);
            for (Index i = 0; i < W_dec_.size(); ++i) W_dec_.data()[i] = static_cast<Scalar>(normal(rng));
            W_dec_.rowwise().normalize();
            W_enc_ = W_dec_.transpose();
        }
        b_enc_ = RowVector<Scalar>::Zero(d_sae);
        b_dec_ = RowVector<Scalar>::Zero(d_in);
        activation_ = Activation(activation_config_, d_sae);
        if (config_.tied) refresh_tied_decoder();
    }

    // ---- inference ---------------------------------------------------------------

    /// pre = (x - b_dec) W_enc + b_enc, written into `pre` (resized).
    template <class Derived>
    void pre_activations(const Eigen::MatrixBase<Derived>& x, Matrix<Scalar>& pre) const {
        detail::check_batch(x, config_.d_in, "Autoencoder::pre_activations");
        pre.resize(x.rows(), config_.d_sae);
        pre.noalias() = (x.rowwise() - b_dec_) * W_enc_;
        pre.rowwise() += b_enc_;
    }

    /// The sparse latent code of a batch [batch, d_in] -> [batch, d_sae].
    template <class Derived>
    void encode_sparse(const Eigen::MatrixBase<Derived>& x, SparseCode<Scalar>& code) const {
        if constexpr (detail::streams_rows<Activation>::value) {
            // Streamed (encoder_stream.hpp): the dense [batch, d_sae] pre-activations
            // never exist, and the code equals training's to the last bit.
            if (x.cols() != config_.d_in) detail::check_batch(x, config_.d_in, "Autoencoder::encode_sparse");
            detail::encode_streamed(x, W_enc_, b_enc_, b_dec_, activation_, code, "Autoencoder::encode_sparse");
        } else {
            Matrix<Scalar> pre;
            pre_activations(x, pre);
            activation_.select_inference(pre, code);
        }
    }

    /// The latent code as a dense matrix [batch, d_sae].
    template <class Derived>
    Matrix<Scalar> encode(const Eigen::MatrixBase<Derived>& x) const {
        SparseCode<Scalar> code;
        encode_sparse(x, code);
        return Matrix<Scalar>(code);
    }

    /// x_hat = f W_dec + b_dec for a sparse code [batch, d_sae].
    Matrix<Scalar> decode(const SparseCode<Scalar>& code) const {
        check_code_width(code.cols());
        Matrix<Scalar> x_hat = code * W_dec_;
        x_hat.rowwise() += b_dec_;
        return x_hat;
    }

    /// x_hat = f W_dec + b_dec for a dense code [batch, d_sae].
    template <class Derived>
    Matrix<Scalar> decode(const Eigen::MatrixBase<Derived>& code) const {
        check_code_width(code.cols());
        Matrix<Scalar> x_hat(code.rows(), config_.d_in);
        x_hat.noalias() = code * W_dec_;
        x_hat.rowwise() += b_dec_;
        return x_hat;
    }

    /// The reconstruction x_hat of a batch [batch, d_in].
    template <class Derived>
    Matrix<Scalar> forward(const Eigen::MatrixBase<Derived>& x) const {
        SparseCode<Scalar> code;
        encode_sparse(x, code);
        return decode(code);
    }

    // ---- parameters ----------------------------------------------------------------

    const AutoencoderConfig& config() const { return config_; }
    Index d_in() const { return config_.d_in; }
    Index d_sae() const { return config_.d_sae; }

    const Matrix<Scalar>& W_enc() const { return W_enc_; }
    const RowVector<Scalar>& b_enc() const { return b_enc_; }
    /// Decoder [d_sae, d_in]; for a tied SAE, the normalised encoder directions.
    const Matrix<Scalar>& W_dec() const { return W_dec_; }
    const RowVector<Scalar>& b_dec() const { return b_dec_; }
    const Activation& activation() const { return activation_; }
    Activation& activation() { return activation_; }

    /// The unit feature directions the SAE writes with: its decoder rows, normalised.
    Matrix<Scalar> feature_directions() const { return W_dec_.rowwise().normalized(); }

    /// L2 norm of every decoder row [d_sae].
    RowVector<Scalar> decoder_row_norms() const { return W_dec_.rowwise().norm().transpose(); }

    /// Replace the weights (shapes must match; throws shape_error naming the tensor).
    /// For a tied SAE `W_dec` is ignored and derived from `W_enc`.
    void set_parameters(const ConstMatrixRef<Scalar>& W_enc, const RowVector<Scalar>& b_enc,
                        const ConstMatrixRef<Scalar>& W_dec, const RowVector<Scalar>& b_dec) {
        check_shape("W_enc", W_enc.rows(), W_enc.cols(), config_.d_in, config_.d_sae);
        check_shape("b_enc", 1, b_enc.cols(), 1, config_.d_sae);
        check_shape("b_dec", 1, b_dec.cols(), 1, config_.d_in);
        if (!config_.tied) check_shape("W_dec", W_dec.rows(), W_dec.cols(), config_.d_sae, config_.d_in);
        W_enc_ = W_enc;
        b_enc_ = b_enc;
        b_dec_ = b_dec;
        if (config_.tied) {
            refresh_tied_decoder();
        } else {
            W_dec_ = W_dec;
        }
    }

    /// Mutable access for optimisers. After changing W_enc of a tied SAE, call
    /// `refresh_tied_decoder()`; after changing W_dec of a unit-norm SAE,
    /// `normalize_decoder_rows()`.
    Matrix<Scalar>& mutable_W_enc() { return W_enc_; }
    RowVector<Scalar>& mutable_b_enc() { return b_enc_; }
    Matrix<Scalar>& mutable_W_dec() {
        if (config_.tied) throw config_error("mutable_W_dec: a tied SAE has no decoder parameter");
        return W_dec_;
    }
    RowVector<Scalar>& mutable_b_dec() { return b_dec_; }

    /// Column norms of W_enc (tied SAEs: the length of each encoder direction).
    const RowVector<Scalar>& encoder_column_norms() const { return encoder_norms_; }

    /// Recompute the tied decoder from W_enc: W_dec,j = W_enc[:, j] / ||W_enc[:, j]||.
    /// Written as a copy of the transpose in square tiles that stay in L1, then a division
    /// of each decoder row by its norm, latent blocks spread over the threads (same values
    /// as one expression: each entry is the same IEEE division). The one
    /// expression `(W_enc / norms)^T` divided element by element in scalar code and wrote
    /// W_dec d_in entries apart: a sixth of a tied training step at 768 -> 3072.
    void refresh_tied_decoder() {
        constexpr Index tile = 32;
        const Index d_in = W_enc_.rows(), d_sae = W_enc_.cols();
        encoder_norms_ = W_enc_.colwise().norm();
        W_dec_.resize(d_sae, d_in);
        detail::parallel_for((d_sae + tile - 1) / tile, [&](Index block, int) {
            const Index first = block * tile, latents = std::min(tile, d_sae - first);
            // Read through a contiguous copy: the tile's rows of W_enc lie d_sae apart,
            // often a multiple of 4 KiB, so that they would share a few L1 sets.
            Eigen::Matrix<Scalar, tile, tile, Eigen::RowMajor> source;
            for (Index i = 0; i < d_in; i += tile) {
                const Index inputs = std::min(tile, d_in - i);
                source.topLeftCorner(inputs, latents) = W_enc_.block(i, first, inputs, latents);
                W_dec_.block(first, i, latents, inputs) = source.topLeftCorner(inputs, latents).transpose();
            }
            for (Index j = first; j < first + latents; ++j) W_dec_.row(j) /= std::max(encoder_norms_(j), Scalar(1e-12));
        });
    }

    /// Rescale every decoder row to unit L2 norm (untied SAEs).
    void normalize_decoder_rows() { W_dec_.rowwise().normalize(); }

    /// Turn an SAE trained on inputs scaled by `s` into one that takes raw inputs:
    /// (s x - b_dec) W_enc = (x - b_dec / s)(s W_enc), and x_hat / s needs W_dec / s
    /// and b_dec / s. Only untied SAEs can absorb the scale (a tied decoder is
    /// normalised by construction); the decoder rows then have norm 1 / s.
    void fold_input_scale(Scalar s) {
        if (!(s > Scalar(0)) || !std::isfinite(static_cast<double>(s))) {
            throw config_error("fold_input_scale: scale = " + std::to_string(static_cast<double>(s)) +
                               " must be positive and finite");
        }
        if (config_.tied) throw config_error("fold_input_scale: a tied SAE cannot absorb an input scale");
        W_enc_ *= s;
        W_dec_ /= s;
        b_dec_ /= s;
        config_.unit_norm_decoder = false;
    }

private:
    void check_code_width(Index cols) const {
        if (cols != config_.d_sae) {
            throw shape_error("Autoencoder::decode: code has " + std::to_string(cols) +
                              " columns but the SAE has d_sae = " + std::to_string(config_.d_sae));
        }
    }

    static void check_shape(const char* name, Index rows, Index cols, Index want_rows, Index want_cols) {
        if (rows != want_rows || cols != want_cols) {
            throw shape_error(std::string(name) + " has shape [" + std::to_string(rows) + ", " +
                              std::to_string(cols) + "] but the SAE needs [" + std::to_string(want_rows) + ", " +
                              std::to_string(want_cols) + "]");
        }
    }

    AutoencoderConfig config_;
    ActivationConfig activation_config_;
    Activation activation_;
    Matrix<Scalar> W_enc_;
    RowVector<Scalar> b_enc_;
    Matrix<Scalar> W_dec_;
    RowVector<Scalar> b_dec_;
    RowVector<Scalar> encoder_norms_;
};

}  // namespace sae
