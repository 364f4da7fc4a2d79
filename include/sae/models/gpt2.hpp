#pragma once
/// \file gpt2.hpp
/// The GPT-2 forward pass on Eigen, with TransformerLens-style hook points.
///
///   Gpt2<Scalar>(weights)          validates the weights (shape_error / config_error).
///   forward(tokens, hooks = {})    logits [batch*seq, vocab_size]: row b*seq + t holds the
///                                  scores for the token that follows tokens(b, t).
///   last_token_logits(tokens, hooks = {})
///                                  [batch, vocab_size]: only each sequence's last position
///                                  goes through the LM head (what sampling needs).
///   run_hooks(tokens, hooks)       runs the pass only up to the last registered hook point
///                                  (activation extraction does not pay for the blocks
///                                  above, nor for the LM head); returns the number of
///                                  blocks that were entered.
///   run_with_cache(tokens, names)  the activations at `names`, same early stop.
///   activation(tokens, name)       one of them.
///
/// Requires: tokens is [batch, seq] with seq <= n_ctx (shape_error otherwise) and every id
/// in [0, vocab_size) (config_error naming the id, its sequence and position). A hook name
/// whose block the model lacks is a config_error; see hooks.hpp for reading and replacing.
///
/// The computation: x = wte[ids] + wpe[0..seq); per block (pre-LN)
///   x += c_proj(attention(ln_1(x))),   x += mlp_c_proj(gelu_tanh(mlp_c_fc(ln_2(x))));
/// then ln_f and the LM head (wte, or the untied lm_head). LayerNorm uses the biased
/// variance and layer_norm_epsilon. Attention: per sequence and head, scores = Q K^T /
/// sqrt(d_head) as one GEMM, a causal softmax (row maximum subtracted), and Z = P V as a
/// triangular GEMM; every linear map is one GEMM over all batch*seq rows. Thread-safe:
/// const member functions do not modify the model.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "gpt2_config.hpp"
#include "gpt2_layers.hpp"
#include "gpt2_weights.hpp"
#include "hook_point.hpp"
#include "hooks.hpp"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae::models {

/// Token ids [batch, seq], row-major like every libsae matrix.
using TokenBatch = Eigen::Matrix<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Sequences of equal length as a TokenBatch; shape_error when their lengths differ.
inline TokenBatch token_batch(const std::vector<std::vector<int>>& sequences) {
    const Index seq = sequences.empty() ? 0 : static_cast<Index>(sequences.front().size());
    TokenBatch tokens(static_cast<Index>(sequences.size()), seq);
    for (std::size_t b = 0; b < sequences.size(); ++b) {
        if (static_cast<Index>(sequences[b].size()) != seq) {
            throw shape_error("token batch: sequence " + std::to_string(b) + " has " +
                              std::to_string(sequences[b].size()) + " tokens but sequence 0 has " + std::to_string(seq));
        }
        for (Index t = 0; t < seq; ++t) tokens(static_cast<Index>(b), t) = sequences[b][static_cast<std::size_t>(t)];
    }
    return tokens;
}

/// One sequence as a [1, seq] batch.
inline TokenBatch token_batch(const std::vector<int>& sequence) { return token_batch(std::vector<std::vector<int>>{sequence}); }

template <class Scalar = float>
class Gpt2 {
    static_assert(std::is_floating_point<Scalar>::value, "Gpt2<Scalar>: Scalar must be float or double");

public:
    explicit Gpt2(Gpt2Weights<Scalar> weights) : w_(std::move(weights)) { w_.validate(); }

    const Gpt2Config& config() const { return w_.config; }
    const Gpt2Weights<Scalar>& weights() const { return w_; }

    /// Parses a hook name and checks its layer against this model.
    HookPoint hook_point(const std::string& name) const { return HookPoint::parse(name, config().n_layer); }

    /// Logits [batch*seq, vocab_size]; row b*seq + t scores the token after tokens(b, t).
    Matrix<Scalar> forward(const TokenBatch& tokens, const Hooks<Scalar>& hooks = Hooks<Scalar>()) const {
        Pass pass{hooks, std::nullopt};
        Matrix<Scalar> hidden;
        run_trunk(tokens, pass, hidden);
        Matrix<Scalar> logits(hidden.rows(), static_cast<Index>(config().vocab_size));
        logits.noalias() = hidden * w_.head().transpose();
        return logits;
    }

    /// Logits [batch, vocab_size] of each sequence's last position only.
    Matrix<Scalar> last_token_logits(const TokenBatch& tokens, const Hooks<Scalar>& hooks = Hooks<Scalar>()) const {
        if (tokens.cols() == 0) throw shape_error("gpt2: last_token_logits needs sequences of at least one token");
        Pass pass{hooks, std::nullopt};
        Matrix<Scalar> hidden;
        run_trunk(tokens, pass, hidden);
        const Index seq = tokens.cols();
        Matrix<Scalar> last(tokens.rows(), hidden.cols());
        for (Index b = 0; b < tokens.rows(); ++b) last.row(b) = hidden.row(b * seq + seq - 1);
        Matrix<Scalar> logits(last.rows(), static_cast<Index>(config().vocab_size));
        logits.noalias() = last * w_.head().transpose();
        return logits;
    }

    /// Runs the hooks, computing only up to the last registered point; returns the number
    /// of transformer blocks entered (0 when nothing past the embeddings was needed).
    int run_hooks(const TokenBatch& tokens, const Hooks<Scalar>& hooks) const {
        Pass pass{hooks, hooks.last()};
        if (!pass.stop) {  // nothing to observe: validate the input and stop
            check_input(tokens, hooks);
            return 0;
        }
        Matrix<Scalar> hidden;
        run_trunk(tokens, pass, hidden);
        return pass.blocks_entered;
    }

    /// The activations at `names` (config_error for an unknown name or layer), stopping
    /// after the last of them.
    ActivationCache<Scalar> run_with_cache(const TokenBatch& tokens, const std::vector<std::string>& names) const {
        ActivationCache<Scalar> cache;
        Hooks<Scalar> hooks;
        for (const std::string& name : names) {
            const HookPoint point = hook_point(name);
            hooks.read(point, [&cache, point](const Matrix<Scalar>& a) { cache.store(point, a); });
        }
        run_hooks(tokens, hooks);
        return cache;
    }

    /// The activation at one hook point.
    Matrix<Scalar> activation(const TokenBatch& tokens, const std::string& name) const {
        return run_with_cache(tokens, {name}).at(name);
    }

private:
    /// Hooks of one pass, and where it stops (empty: run to the end).
    struct Pass {
        const Hooks<Scalar>& hooks;
        std::optional<HookPoint> stop;
        int blocks_entered = 0;

        bool wants(const HookPoint& point) const { return hooks.has(point); }
        /// Runs the hooks at `point`; true when the pass ends here.
        bool visit(const HookPoint& point, Matrix<Scalar>& activation) const {
            hooks.apply(point, activation);
            return stop && *stop == point;
        }
    };

    void check_input(const TokenBatch& tokens, const Hooks<Scalar>& hooks) const {
        hooks.check_layers(config().n_layer);
        if (tokens.cols() > config().n_ctx) {
            throw shape_error("gpt2: sequence length " + std::to_string(tokens.cols()) + " exceeds the context n_ctx = " +
                              std::to_string(config().n_ctx));
        }
        for (Index b = 0; b < tokens.rows(); ++b) {
            for (Index t = 0; t < tokens.cols(); ++t) {
                const int id = tokens(b, t);
                if (id < 0 || id >= config().vocab_size) {
                    throw config_error("gpt2: token id " + std::to_string(id) + " (sequence " + std::to_string(b) +
                                       ", position " + std::to_string(t) + ") is outside the vocabulary [0, " +
                                       std::to_string(config().vocab_size) + ")");
                }
            }
        }
    }

    /// Embeddings, blocks and ln_f; `x` ends as the ln_f output [batch*seq, n_embd].
    /// Returns false when the pass stopped at its stop point.
    bool run_trunk(const TokenBatch& tokens, Pass& pass, Matrix<Scalar>& x) const {
        check_input(tokens, pass.hooks);
        const Index batch = tokens.rows(), seq = tokens.cols(), c = config().n_embd;
        x.resize(batch * seq, c);
        const HookPoint embed{HookSite::embed, -1}, pos_embed{HookSite::pos_embed, -1};
        if (pass.wants(embed) || pass.wants(pos_embed)) {
            Matrix<Scalar> tok(batch * seq, c), pos(batch * seq, c);
            for (Index b = 0; b < batch; ++b) {
                for (Index t = 0; t < seq; ++t) {
                    tok.row(b * seq + t) = w_.wte.row(tokens(b, t));
                    pos.row(b * seq + t) = w_.wpe.row(t);
                }
            }
            if (pass.visit(embed, tok) || pass.visit(pos_embed, pos)) return false;
            x.noalias() = tok + pos;
        } else {
            for (Index b = 0; b < batch; ++b) {
                for (Index t = 0; t < seq; ++t) x.row(b * seq + t) = w_.wte.row(tokens(b, t)) + w_.wpe.row(t);
            }
        }
        for (int layer = 0; layer < config().n_layer; ++layer) {
            ++pass.blocks_entered;
            if (!run_block(layer, batch, seq, x, pass)) return false;
        }
        Matrix<Scalar> normed;
        gpt2_layers::layer_norm(x, w_.ln_f, config().layer_norm_epsilon, normed);
        if (pass.visit(HookPoint{HookSite::ln_final, -1}, normed)) return false;
        x = std::move(normed);
        return true;
    }

    bool run_block(int layer, Index batch, Index seq, Matrix<Scalar>& x, Pass& pass) const {
        const Gpt2BlockWeights<Scalar>& b = w_.blocks[static_cast<std::size_t>(layer)];
        const auto at = [layer](HookSite site) { return HookPoint{site, layer}; };
        const Index c = config().n_embd;

        if (pass.visit(at(HookSite::resid_pre), x)) return false;
        Matrix<Scalar> normed;
        gpt2_layers::layer_norm(x, b.ln_1, config().layer_norm_epsilon, normed);
        if (pass.visit(at(HookSite::ln1_normalized), normed)) return false;
        Matrix<Scalar> qkv;
        gpt2_layers::linear(normed, b.attn_c_attn, qkv);
        const HookSite parts[3] = {HookSite::attn_q, HookSite::attn_k, HookSite::attn_v};
        for (Index part = 0; part < 3; ++part) {
            if (!pass.wants(at(parts[part]))) continue;
            Matrix<Scalar> slice = qkv.middleCols(part * c, c);
            const bool stop = pass.visit(at(parts[part]), slice);
            qkv.middleCols(part * c, c) = slice;
            if (stop) return false;
        }
        Matrix<Scalar> z;
        if (!attention(layer, qkv, batch, seq, pass, z)) return false;
        if (pass.visit(at(HookSite::attn_z), z)) return false;
        Matrix<Scalar> out;
        gpt2_layers::linear(z, b.attn_c_proj, out);
        if (pass.visit(at(HookSite::attn_out), out)) return false;
        x += out;
        if (pass.visit(at(HookSite::resid_mid), x)) return false;

        gpt2_layers::layer_norm(x, b.ln_2, config().layer_norm_epsilon, normed);
        if (pass.visit(at(HookSite::ln2_normalized), normed)) return false;
        Matrix<Scalar> hidden;
        gpt2_layers::linear(normed, b.mlp_c_fc, hidden);
        if (pass.visit(at(HookSite::mlp_pre), hidden)) return false;
        gpt2_layers::gelu_tanh_in_place(hidden);
        if (pass.visit(at(HookSite::mlp_post), hidden)) return false;
        gpt2_layers::linear(hidden, b.mlp_c_proj, out);
        if (pass.visit(at(HookSite::mlp_out), out)) return false;
        x += out;
        return !pass.visit(at(HookSite::resid_post), x);
    }

    /// Causal multi-head attention of the packed q | k | v rows; z receives the heads'
    /// outputs [batch*seq, n_embd]. The [seq, seq] score matrix of one sequence and head
    /// at a time is enough, unless a hook wants all scores or patterns at once.
    bool attention(int layer, const Matrix<Scalar>& qkv, Index batch, Index seq, Pass& pass, Matrix<Scalar>& z) const {
        const Index c = config().n_embd, heads = config().n_head, d = config().head_dim();
        const Scalar scale = Scalar(1) / std::sqrt(static_cast<Scalar>(d));
        const auto q = [&](Index b, Index h) { return qkv.block(b * seq, h * d, seq, d); };
        const auto k = [&](Index b, Index h) { return qkv.block(b * seq, c + h * d, seq, d); };
        const auto v = [&](Index b, Index h) { return qkv.block(b * seq, 2 * c + h * d, seq, d); };
        z.resize(batch * seq, c);

        const HookPoint scores_point{HookSite::attn_scores, layer}, pattern_point{HookSite::attn_pattern, layer};
        if (!pass.wants(scores_point) && !pass.wants(pattern_point)) {
            Matrix<Scalar> scores(seq, seq);
            for (Index b = 0; b < batch; ++b) {
                for (Index h = 0; h < heads; ++h) {
                    head_scores(q(b, h), k(b, h), scale, scores);
                    causal_softmax(scores);
                    head_output(scores, v(b, h), z.block(b * seq, h * d, seq, d));
                }
            }
            return true;
        }
        Matrix<Scalar> all(batch * heads * seq, seq);  // row (b*heads + h)*seq + query
        for (Index b = 0; b < batch; ++b) {
            for (Index h = 0; h < heads; ++h) {
                head_scores(q(b, h), k(b, h), scale, all.middleRows((b * heads + h) * seq, seq));
                all.middleRows((b * heads + h) * seq, seq).template triangularView<Eigen::StrictlyUpper>().fill(
                    -std::numeric_limits<Scalar>::infinity());
            }
        }
        if (pass.visit(scores_point, all)) return false;
        for (Index r = 0; r < batch * heads; ++r) causal_softmax(all.middleRows(r * seq, seq));
        if (pass.visit(pattern_point, all)) return false;
        for (Index b = 0; b < batch; ++b) {
            for (Index h = 0; h < heads; ++h) {
                head_output(all.middleRows((b * heads + h) * seq, seq), v(b, h), z.block(b * seq, h * d, seq, d));
            }
        }
        return true;
    }

    /// scale * Q K^T for one sequence and head: [seq, seq].
    static void head_scores(const ConstMatrixRef<Scalar>& q, const ConstMatrixRef<Scalar>& k, Scalar scale,
                            MatrixRef<Scalar> out) {
        out.noalias() = scale * (q * k.transpose());
    }

    /// P V for one sequence and head; P is lower triangular (causal), so half the
    /// product is skipped.
    static void head_output(const ConstMatrixRef<Scalar>& pattern, const ConstMatrixRef<Scalar>& v, MatrixRef<Scalar> out) {
        out.noalias() = pattern.template triangularView<Eigen::Lower>() * v;
    }

    /// Row i of a [seq, seq] score block attends to keys 0..i: softmax over those (entries
    /// above the diagonal are ignored and set to 0).
    static void causal_softmax(MatrixRef<Scalar> scores) {
        const Index seq = scores.rows();
        for (Index i = 0; i < seq; ++i) {
            const Scalar peak = scores.row(i).head(i + 1).maxCoeff();
            scores.row(i).head(i + 1) = (scores.row(i).head(i + 1).array() - peak).exp().matrix();
            scores.row(i).head(i + 1) /= scores.row(i).head(i + 1).sum();
            scores.row(i).tail(seq - 1 - i).setZero();
        }
    }




    Gpt2Weights<Scalar> w_;
};

}  // namespace sae::models
