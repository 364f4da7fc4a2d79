// Every analytic gradient of loss.hpp against central finite differences, in double.
// The SAEs are tiny and their weights perturbed so that no bias is zero and no TopK
// selection sits on a tie; h = 1e-6 keeps every selection fixed.
#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/jump_relu.hpp>
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/loss.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <functional>
#include <random>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_gradients_cases {

namespace {

using sae::Index;
using Mat = sae::Matrix<double>;
using Row = sae::RowVector<double>;


// Perturb every parameter so biases are non-zero and the decoder is not W_enc^T.
template <class Model>
void randomize(Model& model, std::mt19937_64& rng) {
    const Mat W_enc = model.W_enc() + sae::test::gaussian_matrix<double>(model.d_in(), model.d_sae(), rng, 0.3);
    const Row b_enc = sae::test::gaussian_matrix<double>(1, model.d_sae(), rng, 0.2);
    const Mat W_dec = model.W_dec() + sae::test::gaussian_matrix<double>(model.d_sae(), model.d_in(), rng, 0.3);
    const Row b_dec = model.config().decoder_bias ? Row(sae::test::gaussian_matrix<double>(1, model.d_in(), rng, 0.2)) : Row(Row::Zero(model.d_in()));
    model.set_parameters(W_enc, b_enc, W_dec, b_dec);
}

// Central difference of f with respect to every element of `param`; `after` restores
// derived state (the tied decoder) after each change.
Mat numeric_gradient(double* data, Index rows, Index cols, const std::function<double()>& f,
                     const std::function<void()>& after) {
    const double h = 1e-6;
    Mat grad(rows, cols);
    for (Index i = 0; i < rows * cols; ++i) {
        const double saved = data[i];
        data[i] = saved + h;
        after();
        const double up = f();
        data[i] = saved - h;
        after();
        const double down = f();
        data[i] = saved;
        after();
        grad.data()[i] = (up - down) / (2 * h);
    }
    return grad;
}

template <class Model>
void check_all_gradients(Model& model, const Mat& x, const sae::LossConfig& loss, double lambda,
                         const Eigen::Array<bool, Eigen::Dynamic, 1>* dead) {
    sae::ForwardCache<double> cache;
    sae::Gradients<double> grads;
    sae::loss_and_gradients(model, x, loss, lambda, dead, cache, grads);
    sae::project_decoder_gradient(model, grads);  // tied: folds W_dec into W_enc
    // The AuxK residual e = x - x_hat is a constant of the loss, frozen here.
    const Mat frozen_residual = x - (Mat(cache.code * model.W_dec()).rowwise() + model.b_dec());
    const double denominator = sae::detail::reconstruction_denominator(loss.normalization, x.rows(), x.cols());

    const auto total = [&]() {
        sae::ForwardCache<double> c;
        sae::Gradients<double> g;
        sae::LossConfig no_aux = loss;
        no_aux.aux_coefficient = 0.0;
        double value = sae::loss_and_gradients(model, x, no_aux, lambda, dead, c, g).total();
        if (loss.aux_coefficient > 0.0) {
            sae::loss_and_gradients(model, x, loss, lambda, dead, c, g);  // fills c.aux_code at these weights
            const Mat aux_error = Mat(c.aux_code * model.W_dec()) - frozen_residual;
            value += loss.aux_coefficient * aux_error.squaredNorm() / denominator;
        }
        return value;
    };
    const auto refresh = [&model]() {
        if (model.config().tied) model.refresh_tied_decoder();
    };
    const auto check = [](const Mat& analytic, const Mat& numeric, const char* name) {
        INFO("gradient of " << name << "\nanalytic:\n" << analytic << "\nnumeric:\n" << numeric);
        CHECK((analytic - numeric).cwiseAbs().maxCoeff() <= 1e-6 * (1.0 + numeric.cwiseAbs().maxCoeff()));
    };

    check(grads.W_enc, numeric_gradient(model.mutable_W_enc().data(), model.d_in(), model.d_sae(), total, refresh), "W_enc");
    check(grads.b_enc, numeric_gradient(model.mutable_b_enc().data(), 1, model.d_sae(), total, refresh), "b_enc");
    if (model.config().decoder_bias) {
        check(grads.b_dec, numeric_gradient(model.mutable_b_dec().data(), 1, model.d_in(), total, refresh), "b_dec");
    }
    if (!model.config().tied) {
        // Raw (unprojected) decoder gradient: recompute without the projection.
        sae::ForwardCache<double> c;
        sae::Gradients<double> raw;
        sae::loss_and_gradients(model, x, loss, lambda, dead, c, raw);
        check(raw.W_dec, numeric_gradient(model.mutable_W_dec().data(), model.d_sae(), model.d_in(), total, refresh), "W_dec");
    }
}

const sae::ReconstructionNormalization normalizations[] = {sae::ReconstructionNormalization::sum_over_features,
                                                           sae::ReconstructionNormalization::mean_over_elements};

}  // namespace

TEST_CASE("TopK gradients match finite differences", "[gradients][topk]") {
    const bool tied = GENERATE(false, true);
    const bool relu = GENERATE(false, true);
    const int normalization = GENERATE(0, 1);
    std::mt19937_64 rng(11 + tied * 2 + relu);
    sae::AutoencoderConfig config{6, 9, tied, !tied, false};
    sae::Autoencoder<double, sae::TopK> model(config, {3, relu}, 5);
    randomize(model, rng);
    const Mat x = sae::test::gaussian_matrix<double>(5, 6, rng);
    sae::LossConfig loss;
    loss.normalization = normalizations[normalization];
    check_all_gradients(model, x, loss, 0.0, nullptr);
}

TEST_CASE("TopK with AuxK gradients match finite differences", "[gradients][auxk]") {
    const bool tied = GENERATE(false, true);
    std::mt19937_64 rng(23 + tied);
    sae::AutoencoderConfig config{5, 10, tied, true, false};
    sae::Autoencoder<double, sae::TopK> model(config, {2, true}, 7);
    randomize(model, rng);
    const Mat x = sae::test::gaussian_matrix<double>(6, 5, rng);
    Eigen::Array<bool, Eigen::Dynamic, 1> dead(10);
    dead << true, false, true, true, false, false, true, true, false, true;
    sae::LossConfig loss;
    loss.aux_coefficient = 0.5;
    loss.aux_k = 3;
    check_all_gradients(model, x, loss, 0.0, &dead);
}

TEST_CASE("BatchTopK gradients match finite differences", "[gradients][batchtopk]") {
    std::mt19937_64 rng(31);
    sae::AutoencoderConfig config{4, 8, false, true, true};
    sae::Autoencoder<double, sae::BatchTopK> model(config, {2, 0.9}, 3);
    randomize(model, rng);
    const Mat x = sae::test::gaussian_matrix<double>(6, 4, rng);
    check_all_gradients(model, x, sae::LossConfig{}, 0.0, nullptr);
}

TEST_CASE("ReLU + L1 gradients match finite differences", "[gradients][relu]") {
    const bool unit_norm = GENERATE(false, true);
    std::mt19937_64 rng(41 + unit_norm);
    sae::AutoencoderConfig config{5, 7, false, true, unit_norm};
    sae::Autoencoder<double, sae::ReluL1> model(config, {}, 9);
    randomize(model, rng);
    const Mat x = sae::test::gaussian_matrix<double>(4, 5, rng);
    check_all_gradients(model, x, sae::LossConfig{}, 0.3, nullptr);
}

TEST_CASE("JumpReLU weight gradients match finite differences", "[gradients][jumprelu]") {
    std::mt19937_64 rng(53);
    sae::AutoencoderConfig config{5, 7, false, true, false};
    // A threshold of 0.05 leaves some latents inactive; bandwidth 1e-3 keeps the
    // straight-through window away from every pre-activation at h = 1e-6.
    sae::Autoencoder<double, sae::JumpReLU> model(config, {0.05, 1e-3}, 13);
    randomize(model, rng);
    const Mat x = sae::test::gaussian_matrix<double>(4, 5, rng);
    check_all_gradients(model, x, sae::LossConfig{}, 0.2, nullptr);
}

TEST_CASE("JumpReLU threshold gradient follows the straight-through estimator", "[gradients][jumprelu]") {
    // One latent, d_in = 1, W_enc = 1, W_dec = 1, biases 0: pre = x, x_hat = f.
    // theta = 0.5, eps = 0.2: the kernel window is |x - 0.5| < 0.1.
    // Batch x = {0.45, 0.55, 0.9}: f = {0, 0.55, 0.9}, x_hat - x = {-0.45, 0, 0}.
    // R = sum (x_hat - x)^2 / 3, so dL/df_r = 2 (x_hat_r - x_r) / 3 = {-0.3, 0, 0}.
    // Rows 0 and 1 are in the window; row 2 is not.
    //   reconstruction: sum_r -(theta/eps) dL/df_r = -(2.5)(-0.3 + 0) = 0.75
    //   L0 (lambda = 0.6): sum_r -(lambda / 3)(1/eps) = 2 * -(0.2 * 5) = -2
    //   dL/dtheta = -1.25, and dL/dlog(theta) = theta * dL/dtheta = -0.625.
    sae::AutoencoderConfig config{1, 1, false, true, false};
    sae::Autoencoder<double, sae::JumpReLU> model(config, {0.5, 0.2}, 1);
    model.set_parameters(Mat::Ones(1, 1), Row::Zero(1), Mat::Ones(1, 1), Row::Zero(1));
    Mat x(3, 1);
    x << 0.45, 0.55, 0.9;
    sae::ForwardCache<double> cache;
    sae::Gradients<double> grads;
    const sae::LossBreakdown loss = sae::loss_and_gradients(model, x, sae::LossConfig{}, 0.6, nullptr, cache, grads);
    CHECK_THAT(loss.reconstruction, Catch::Matchers::WithinAbs(0.45 * 0.45 / 3, 1e-12));
    CHECK_THAT(loss.sparsity, Catch::Matchers::WithinAbs(0.6 * 2.0 / 3.0, 1e-12));
    CHECK_THAT(grads.parameter(0), Catch::Matchers::WithinAbs(-0.625, 1e-12));
}

}  // namespace test_gradients_cases
