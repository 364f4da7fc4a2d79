#pragma once
/// \file gpt2_weights.hpp
/// The parameters of a GPT-2 model, in the Hugging Face Conv1D layout (y = x W + b with
/// W [in, out]), so that every linear map is one row-major GEMM `x * W`.
///
///   Gpt2Weights<Scalar>         config + wte [vocab, n_embd], wpe [n_ctx, n_embd], blocks,
///                               ln_f, and lm_head [vocab, n_embd] when the head is untied.
///     validate()                shape_error naming the tensor (Hugging Face name, e.g.
///                               "h.1.mlp.c_fc.weight"), its expected and actual shape.
///   random_gpt2_weights<Scalar>(config, seed, stddev)
///                               N(0, stddev^2) matrices, unit LayerNorm gains, zero biases;
///                               the normal draws are computed here from std::mt19937_64
///                               (Box-Muller), so a seed gives the same model with any
///                               standard library.
/// Loading from files: gpt2_loader.hpp.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "gpt2_config.hpp"

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace sae::models {

/// LayerNorm gain and bias, each [n_embd].
template <class Scalar>
struct LayerNormWeights {
    RowVector<Scalar> weight;
    RowVector<Scalar> bias;
};

/// y = x W + b with W [in, out] (Hugging Face Conv1D) and b [out].
template <class Scalar>
struct LinearWeights {
    Matrix<Scalar> weight;
    RowVector<Scalar> bias;
};

/// One pre-LN transformer block.
template <class Scalar>
struct Gpt2BlockWeights {
    LayerNormWeights<Scalar> ln_1;
    LinearWeights<Scalar> attn_c_attn;  ///< [n_embd, 3 n_embd]: columns q | k | v, head h at h*d_head
    LinearWeights<Scalar> attn_c_proj;  ///< [n_embd, n_embd]
    LayerNormWeights<Scalar> ln_2;
    LinearWeights<Scalar> mlp_c_fc;    ///< [n_embd, mlp_width]
    LinearWeights<Scalar> mlp_c_proj;  ///< [mlp_width, n_embd]
};

template <class Scalar>
struct Gpt2Weights {
    Gpt2Config config;
    Matrix<Scalar> wte;  ///< [vocab_size, n_embd]
    Matrix<Scalar> wpe;  ///< [n_ctx, n_embd]
    std::vector<Gpt2BlockWeights<Scalar>> blocks;
    LayerNormWeights<Scalar> ln_f;
    std::optional<Matrix<Scalar>> lm_head;  ///< [vocab_size, n_embd]; present iff !config.tied_lm_head

    /// The LM head as [vocab_size, n_embd]: wte when tied.
    const Matrix<Scalar>& head() const { return lm_head ? *lm_head : wte; }

    /// Checks the config and every tensor's shape against it.
    void validate() const {
        config.validate();
        const Index c = config.n_embd, v = config.vocab_size, m = config.mlp_width();
        check("wte.weight", wte, v, c);
        check("wpe.weight", wpe, config.n_ctx, c);
        if (blocks.size() != static_cast<std::size_t>(config.n_layer)) {
            throw shape_error("gpt2 weights: " + std::to_string(blocks.size()) + " blocks but config.n_layer = " +
                              std::to_string(config.n_layer));
        }
        for (std::size_t l = 0; l < blocks.size(); ++l) {
            const Gpt2BlockWeights<Scalar>& b = blocks[l];
            const std::string p = "h." + std::to_string(l) + ".";
            check_norm(p + "ln_1", b.ln_1, c);
            check_linear(p + "attn.c_attn", b.attn_c_attn, c, 3 * c);
            check_linear(p + "attn.c_proj", b.attn_c_proj, c, c);
            check_norm(p + "ln_2", b.ln_2, c);
            check_linear(p + "mlp.c_fc", b.mlp_c_fc, c, m);
            check_linear(p + "mlp.c_proj", b.mlp_c_proj, m, c);
        }
        check_norm("ln_f", ln_f, c);
        if (config.tied_lm_head == lm_head.has_value()) {
            throw shape_error(std::string("gpt2 weights: config.tied_lm_head = ") +
                              (config.tied_lm_head ? "true but an lm_head is set" : "false but lm_head is empty"));
        }
        if (lm_head) check("lm_head.weight", *lm_head, v, c);
    }

private:
    static std::string shape_text(Index rows, Index cols) {
        return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
    }
    static void check(const std::string& name, const Matrix<Scalar>& m, Index rows, Index cols) {
        if (m.rows() != rows || m.cols() != cols) {
            throw shape_error("gpt2 weights: tensor '" + name + "' has shape " + shape_text(m.rows(), m.cols()) +
                              ", expected " + shape_text(rows, cols));
        }
    }
    static void check_vector(const std::string& name, const RowVector<Scalar>& v, Index n) {
        if (v.size() != n) {
            throw shape_error("gpt2 weights: tensor '" + name + "' has shape [" + std::to_string(v.size()) +
                              "], expected [" + std::to_string(n) + "]");
        }
    }
    static void check_norm(const std::string& name, const LayerNormWeights<Scalar>& n, Index c) {
        check_vector(name + ".weight", n.weight, c);
        check_vector(name + ".bias", n.bias, c);
    }
    static void check_linear(const std::string& name, const LinearWeights<Scalar>& l, Index in, Index out) {
        check(name + ".weight", l.weight, in, out);
        check_vector(name + ".bias", l.bias, out);
    }
};

namespace detail {

/// Standard normal draws by Box-Muller on 53-bit uniforms, independent of the standard
/// library's distribution code.
class PortableNormal {
public:
    explicit PortableNormal(std::uint64_t seed) : rng_(seed) {}
    double operator()() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        constexpr double two_pi = 6.283185307179586476925286766559;
        const double u1 = (static_cast<double>(rng_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]: log is finite
        const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        const double radius = std::sqrt(-2.0 * std::log(u1));
        spare_ = radius * std::sin(two_pi * u2);
        has_spare_ = true;
        return radius * std::cos(two_pi * u2);
    }

private:
    std::mt19937_64 rng_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace detail

/// A randomly initialised model of the given shape (GPT-2's initialisation scale by
/// default): weight matrices N(0, stddev^2), LayerNorm gains 1, biases 0.
template <class Scalar>
Gpt2Weights<Scalar> random_gpt2_weights(const Gpt2Config& config, std::uint64_t seed, double stddev = 0.02) {
    config.validate();
    detail::PortableNormal normal(seed);
    const auto matrix = [&](Index rows, Index cols) {
        Matrix<Scalar> m(rows, cols);
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(stddev * normal());
        return m;
    };
    const Index c = config.n_embd, m = config.mlp_width();
    const auto norm = [&] { return LayerNormWeights<Scalar>{RowVector<Scalar>::Ones(c), RowVector<Scalar>::Zero(c)}; };
    const auto linear = [&](Index in, Index out) {
        return LinearWeights<Scalar>{matrix(in, out), RowVector<Scalar>::Zero(out)};
    };
    Gpt2Weights<Scalar> w;
    w.config = config;
    w.wte = matrix(config.vocab_size, c);
    w.wpe = matrix(config.n_ctx, c);
    for (int l = 0; l < config.n_layer; ++l) {
        w.blocks.push_back(Gpt2BlockWeights<Scalar>{norm(), linear(c, 3 * c), linear(c, c), norm(), linear(c, m),
                                                    linear(m, c)});
    }
    w.ln_f = norm();
    if (!config.tied_lm_head) w.lm_head = matrix(config.vocab_size, c);
    return w;
}

}  // namespace sae::models
