#pragma once
/// \file kv_cache.hpp
/// Incremental GPT-2 decoding with a key/value cache: each new token costs one position's
/// pass through the blocks instead of the whole window's (sampling.hpp recomputes the
/// window at every step, O(n_new · window) rows; this is O(n_new) rows, plus attention over
/// the cached keys).
///
///   Gpt2KvCache<Scalar>(model, batch)
///       an empty cache for `batch` sequences decoded together by `model` (which must
///       outlive the cache; a temporary model does not compile). batch >= 1 (config_error).
///   append(tokens [batch, n]) -> logits [batch, vocab_size]
///       runs the tokens at positions length() .. length() + n - 1 of every sequence,
///       stores their keys and values, and returns the logits of the last appended position
///       (what Gpt2::last_token_logits returns for the whole sequence so far).
///       shape_error: rows != batch, n == 0, length() + n > n_ctx; config_error: an id
///       outside [0, vocab_size) (naming the sequence and position). On error nothing is
///       stored.
///   length(), batch(), clear() (forget every position; keeps the memory).
///   sample_continuations_cached(model, prompts, n_new, temperature, top_k, seed, banned = {})
///       the protocol of sample_continuations (sampling.hpp) — prompts of equal length
///       decoded together, prompt i drawn with std::mt19937_64(seed + i), the same
///       sample_next_token — with the cache. Once prompt + generated exceeds n_ctx the
///       model must see the last n_ctx tokens at positions 0..n_ctx-1 (minGPT's rule, as
///       there), which invalidates every cached key, so from that step on each step is a
///       full Gpt2::last_token_logits pass, as in sample_continuations. The tokens equal
///       sample_continuations' up to rounding differences between the two summation
///       orders (a draw within ~1e-6 of a boundary of the cumulative distribution could
///       flip). `banned` lists token ids that are never drawn (their logits are set to
///       -inf before top-k and softmax), e.g. the unknown slot of a model trained on a
///       restricted vocabulary; empty, the draws are sample_continuations'. Errors: as
///       sample_continuations; a banned id outside [0, vocab_size): config_error.
///
/// The arithmetic is that of gpt2.hpp (pre-LN blocks, biased-variance LayerNorm, tanh GELU,
/// causal softmax with the row maximum subtracted); the LayerNorm and GELU are restated
/// here because Gpt2 keeps its own private. No hooks: activations are read with Gpt2.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "gpt2.hpp"
#include "gpt2_layers.hpp"
#include "gpt2_weights.hpp"
#include "sampling.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace sae::models {

template <class Scalar = float>
class Gpt2KvCache {
public:
    Gpt2KvCache(const Gpt2<Scalar>& model, Index batch) : model_(&model), batch_(batch) {
        if (batch < 1) throw config_error("kv cache: batch = " + std::to_string(batch) + " must be >= 1");
        const Gpt2Config& config = model.config();
        const Index rows = batch * config.n_ctx;
        keys_.assign(static_cast<std::size_t>(config.n_layer), Matrix<Scalar>(rows, config.n_embd));
        values_.assign(static_cast<std::size_t>(config.n_layer), Matrix<Scalar>(rows, config.n_embd));
    }
    Gpt2KvCache(const Gpt2<Scalar>&& model, Index batch) = delete;  // the cache keeps a pointer to the model

    /// Positions stored per sequence.
    Index length() const { return length_; }
    Index batch() const { return batch_; }
    /// Forgets every stored position.
    void clear() { length_ = 0; }

    /// Runs `tokens` [batch, n] at the next n positions; logits [batch, vocab] of the last.
    Matrix<Scalar> append(const TokenBatch& tokens) {
        const Gpt2Config& config = model_->config();
        const Gpt2Weights<Scalar>& w = model_->weights();
        const Index n = tokens.cols(), c = config.n_embd;
        check_input(tokens);

        Matrix<Scalar> x(batch_ * n, c);
        for (Index b = 0; b < batch_; ++b) {
            for (Index t = 0; t < n; ++t) x.row(b * n + t) = w.wte.row(tokens(b, t)) + w.wpe.row(length_ + t);
        }
        Matrix<Scalar> normed, qkv, out, hidden;
        Matrix<Scalar> z(batch_ * n, c);
        for (std::size_t layer = 0; layer < w.blocks.size(); ++layer) {
            const Gpt2BlockWeights<Scalar>& block = w.blocks[layer];
            gpt2_layers::layer_norm(x, block.ln_1, model_->config().layer_norm_epsilon, normed);
            gpt2_layers::linear(normed, block.attn_c_attn, qkv);
            for (Index b = 0; b < batch_; ++b) {
                keys_[layer].block(b * config.n_ctx + length_, 0, n, c) = qkv.block(b * n, c, n, c);
                values_[layer].block(b * config.n_ctx + length_, 0, n, c) = qkv.block(b * n, 2 * c, n, c);
            }
            attend(layer, qkv, n, z);
            gpt2_layers::linear(z, block.attn_c_proj, out);
            x += out;
            gpt2_layers::layer_norm(x, block.ln_2, model_->config().layer_norm_epsilon, normed);
            gpt2_layers::linear(normed, block.mlp_c_fc, hidden);
            gpt2_layers::gelu_tanh_in_place(hidden);
            gpt2_layers::linear(hidden, block.mlp_c_proj, out);
            x += out;
        }
        length_ += n;

        Matrix<Scalar> last(batch_, c);
        for (Index b = 0; b < batch_; ++b) last.row(b) = x.row(b * n + n - 1);
        gpt2_layers::layer_norm(last, w.ln_f, model_->config().layer_norm_epsilon, normed);
        Matrix<Scalar> logits(batch_, static_cast<Index>(config.vocab_size));
        logits.noalias() = normed * w.head().transpose();
        return logits;
    }

private:
    void check_input(const TokenBatch& tokens) const {
        const Gpt2Config& config = model_->config();
        if (tokens.rows() != batch_) {
            throw shape_error("kv cache: append got " + std::to_string(tokens.rows()) + " sequences for a cache of " +
                              std::to_string(batch_));
        }
        if (tokens.cols() == 0) throw shape_error("kv cache: append needs at least one token per sequence");
        if (length_ + tokens.cols() > config.n_ctx) {
            throw shape_error("kv cache: " + std::to_string(length_) + " stored + " + std::to_string(tokens.cols()) +
                              " new positions exceed the context n_ctx = " + std::to_string(config.n_ctx));
        }
        for (Index b = 0; b < tokens.rows(); ++b) {
            for (Index t = 0; t < tokens.cols(); ++t) {
                const int id = tokens(b, t);
                if (id < 0 || id >= config.vocab_size) {
                    throw config_error("kv cache: token id " + std::to_string(id) + " (sequence " + std::to_string(b) +
                                       ", position " + std::to_string(length_ + t) + ") is outside the vocabulary [0, " +
                                       std::to_string(config.vocab_size) + ")");
                }
            }
        }
    }

    /// Causal attention of the n new query rows of each sequence over its stored keys
    /// (the new ones included): new row i sits at position length_ + i and sees keys
    /// 0 .. length_ + i.
    void attend(std::size_t layer, const Matrix<Scalar>& qkv, Index n, Matrix<Scalar>& z) const {
        const Gpt2Config& config = model_->config();
        const Index heads = config.n_head, d = config.head_dim(), total = length_ + n;
        const Scalar scale = Scalar(1) / std::sqrt(static_cast<Scalar>(d));
        Matrix<Scalar> scores(n, total);
        for (Index b = 0; b < batch_; ++b) {
            const Index base = b * config.n_ctx;
            for (Index h = 0; h < heads; ++h) {
                scores.noalias() =
                    scale * (qkv.block(b * n, h * d, n, d) * keys_[layer].block(base, h * d, total, d).transpose());
                for (Index i = 0; i < n; ++i) {
                    const Index visible = length_ + i + 1;
                    const Scalar peak = scores.row(i).head(visible).maxCoeff();
                    scores.row(i).head(visible) = (scores.row(i).head(visible).array() - peak).exp().matrix();
                    scores.row(i).head(visible) /= scores.row(i).head(visible).sum();
                    scores.row(i).tail(total - visible).setZero();
                }
                z.block(b * n, h * d, n, d).noalias() = scores * values_[layer].block(base, h * d, total, d);
            }
        }
    }




    const Gpt2<Scalar>* model_;
    Index batch_;
    Index length_ = 0;
    std::vector<Matrix<Scalar>> keys_;    ///< per layer [batch * n_ctx, n_embd]: row b * n_ctx + position
    std::vector<Matrix<Scalar>> values_;  ///< same layout
};

template <class Scalar>
std::vector<std::vector<int>> sample_continuations_cached(const Gpt2<Scalar>& model,
                                                          const std::vector<std::vector<int>>& prompts, int n_new,
                                                          double temperature, int top_k, std::uint64_t seed,
                                                          const std::vector<int>& banned = {}) {
    detail::check_sampling_settings(n_new, temperature, top_k);
    for (int id : banned) {
        if (id < 0 || id >= model.config().vocab_size) {
            throw config_error("sampling: banned token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                               std::to_string(model.config().vocab_size) + ")");
        }
    }
    std::map<std::size_t, std::vector<std::size_t>> by_length;  // prompts of one length share a cache
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        if (prompts[i].empty()) throw shape_error("sampling: prompt " + std::to_string(i) + " is empty");
        by_length[prompts[i].size()].push_back(i);
    }
    std::vector<std::mt19937_64> rngs;
    for (std::size_t i = 0; i < prompts.size(); ++i) rngs.emplace_back(seed + i);

    std::vector<std::vector<int>> generated(prompts.size());
    const Index context = model.config().n_ctx;
    for (const auto& [length, members] : by_length) {
        const Index batch = static_cast<Index>(members.size());
        std::vector<std::vector<int>> sequences;
        for (std::size_t i : members) sequences.push_back(prompts[i]);
        Gpt2KvCache<Scalar> cache(model, batch);
        for (int step = 0; step < n_new; ++step) {
            const Index total = static_cast<Index>(length) + step;
            Matrix<Scalar> logits;
            if (total > context) {  // the window slides: positions change, the cache is void
                TokenBatch window(batch, context);
                for (Index m = 0; m < batch; ++m) {
                    for (Index t = 0; t < context; ++t) {
                        window(m, t) = sequences[static_cast<std::size_t>(m)][static_cast<std::size_t>(total - context + t)];
                    }
                }
                logits = model.last_token_logits(window);
            } else if (step == 0) {
                logits = cache.append(token_batch(sequences));
            } else {
                TokenBatch next(batch, 1);
                for (Index m = 0; m < batch; ++m) next(m, 0) = sequences[static_cast<std::size_t>(m)].back();
                logits = cache.append(next);
            }
            for (int id : banned) logits.col(id).setConstant(-std::numeric_limits<Scalar>::infinity());
            for (Index m = 0; m < batch; ++m) {
                const std::size_t prompt = members[static_cast<std::size_t>(m)];
                const int token = sample_next_token(logits.row(m), temperature, top_k, rngs[prompt]);
                sequences[static_cast<std::size_t>(m)].push_back(token);
                generated[prompt].push_back(token);
            }
        }
    }
    return generated;
}

}  // namespace sae::models
