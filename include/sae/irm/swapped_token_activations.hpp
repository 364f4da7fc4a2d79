#pragma once
/// \file swapped_token_activations.hpp
/// A language model's activations at the swapped token of contrastive triples: each
/// sequence of a triple ends with its swapped word, so the activation wanted is the one at
/// the last position. A causal model's activation there is the same whether or not the
/// sentence goes on, so the text after the word is never run.
///
/// Abstract:
///   last_token_activations(model, sequences, hooks, max_batch = 64)
///     one matrix per hook name, [sequences.size(), width of that hook], row i the hook's
///     activation at the last token of sequences[i]. Sequences of equal length are run
///     together, at most max_batch per forward pass, which stops after the last hook.
///     requires: hooks non-empty and max_batch >= 1 (config_error); every sequence
///     non-empty (shape_error naming it) and no longer than n_ctx (shape_error from the
///     model); hooks with one row per token (config_error for attention scores/pattern);
///     ids inside the vocabulary (config_error from the model).
///   swapped_token_activations(model, triples, hooks, max_batch = 64)
///     TripleActivations: for every hook, the positive / negative / neutral sequences'
///     last-token activations, [triples.size(), width] each, row t = triple t. The three
///     sequences of a triple have one length and share a batch.
///   TripleActivations::concatenated(side)  the hooks' matrices of one side side by side,
///     [triples, sum of widths], in the order of `hooks`.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../models/gpt2.hpp"
#include "contrastive_triples.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace sae::irm {

/// Last-token activations of many sequences at several hooks (see the file abstract).
template <class Scalar>
std::vector<Matrix<Scalar>> last_token_activations(const models::Gpt2<Scalar>& model,
                                                   const std::vector<std::vector<int>>& sequences,
                                                   const std::vector<std::string>& hooks, Index max_batch = 64) {
    if (hooks.empty()) throw config_error("last_token_activations: no hook names given");
    if (max_batch < 1) throw config_error("last_token_activations: max_batch = " + std::to_string(max_batch) + " must be >= 1");
    std::map<std::size_t, std::vector<std::size_t>> by_length;
    for (std::size_t i = 0; i < sequences.size(); ++i) {
        if (sequences[i].empty()) throw shape_error("last_token_activations: sequence " + std::to_string(i) + " is empty");
        by_length[sequences[i].size()].push_back(i);
    }
    const Index n = static_cast<Index>(sequences.size());
    std::vector<Matrix<Scalar>> out(hooks.size());
    for (const auto& [length, members] : by_length) {
        const Index seq = static_cast<Index>(length);
        for (std::size_t first = 0; first < members.size(); first += static_cast<std::size_t>(max_batch)) {
            const std::size_t count = std::min(members.size() - first, static_cast<std::size_t>(max_batch));
            models::TokenBatch tokens(static_cast<Index>(count), seq);
            for (std::size_t b = 0; b < count; ++b) {
                const std::vector<int>& s = sequences[members[first + b]];
                for (Index t = 0; t < seq; ++t) tokens(static_cast<Index>(b), t) = s[static_cast<std::size_t>(t)];
            }
            const models::ActivationCache<Scalar> cache = model.run_with_cache(tokens, hooks);
            for (std::size_t h = 0; h < hooks.size(); ++h) {
                const Matrix<Scalar>& a = cache.at(hooks[h]);
                if (a.rows() != static_cast<Index>(count) * seq) {
                    throw config_error("last_token_activations: hook '" + hooks[h] + "' has " + std::to_string(a.rows()) +
                                       " rows for " + std::to_string(count) + " sequences of " + std::to_string(seq) +
                                       " tokens; only hooks with one row per token can be read at a token");
                }
                if (out[h].size() == 0) out[h].setZero(n, a.cols());
                for (std::size_t b = 0; b < count; ++b) {
                    out[h].row(static_cast<Index>(members[first + b])) = a.row(static_cast<Index>(b) * seq + seq - 1);
                }
            }
        }
    }
    return out;
}

/// Which swap of a triple.
enum class TripleSide { positive, negative, neutral };

/// Swapped-token activations of triples, per hook and side.
template <class Scalar>
struct TripleActivations {
    std::vector<std::string> hooks;
    std::vector<Matrix<Scalar>> positive;  ///< per hook [triples, width]
    std::vector<Matrix<Scalar>> negative;
    std::vector<Matrix<Scalar>> neutral;

    const std::vector<Matrix<Scalar>>& side(TripleSide s) const {
        return s == TripleSide::positive ? positive : s == TripleSide::negative ? negative : neutral;
    }

    /// One side's hooks side by side: [triples, sum of widths].
    Matrix<Scalar> concatenated(TripleSide s) const {
        const std::vector<Matrix<Scalar>>& parts = side(s);
        Index width = 0;
        for (const Matrix<Scalar>& part : parts) width += part.cols();
        Matrix<Scalar> out(parts.empty() ? 0 : parts.front().rows(), width);
        Index column = 0;
        for (const Matrix<Scalar>& part : parts) {
            out.middleCols(column, part.cols()) = part;
            column += part.cols();
        }
        return out;
    }
};

/// The three sequences of every triple through `model`, read at their last token.
template <class Scalar>
TripleActivations<Scalar> swapped_token_activations(const models::Gpt2<Scalar>& model,
                                                    const std::vector<ContrastiveTriple>& triples,
                                                    const std::vector<std::string>& hooks, Index max_batch = 64) {
    std::vector<std::vector<int>> sequences;
    sequences.reserve(3 * triples.size());
    for (const ContrastiveTriple& t : triples) {
        sequences.push_back(t.sequence(t.positive));
        sequences.push_back(t.sequence(t.negative));
        sequences.push_back(t.sequence(t.neutral));
    }
    const std::vector<Matrix<Scalar>> all = last_token_activations(model, sequences, hooks, max_batch);
    TripleActivations<Scalar> result;
    result.hooks = hooks;
    const Index n = static_cast<Index>(triples.size());
    // Rows 3t, 3t + 1, 3t + 2 of each hook's matrix are triple t's three sequences.
    const auto every_third = [n](const Matrix<Scalar>& a, Index offset) {
        using Strided = Eigen::Map<const Matrix<Scalar>, 0, Eigen::OuterStride<>>;
        return Matrix<Scalar>(Strided(a.data() + offset * a.cols(), n, a.cols(), Eigen::OuterStride<>(3 * a.cols())));
    };
    for (const Matrix<Scalar>& a : all) {
        result.positive.push_back(every_third(a, 0));
        result.negative.push_back(every_third(a, 1));
        result.neutral.push_back(every_third(a, 2));
    }
    return result;
}

}  // namespace sae::irm
