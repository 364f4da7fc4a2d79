#pragma once
/// \file layer_divergence.hpp
/// Where fine-tuning moved a model: the parameter change of each transformer block
/// between a base and a tuned GPT-2 of one shape, and the blocks that moved most (the
/// layers on which the IRM trains its SAEs).
///
/// The divergence of block l is the IRM authors' sum of per-tensor distances,
///   D_l = sum over the block's tensors T of ||T_base - T_tuned||_2
/// (Frobenius norm of each weight matrix and bias vector), over the 12 tensors of a GPT-2
/// block in the Hugging Face names: ln_1.{weight,bias}, attn.c_attn.{weight,bias},
/// attn.c_proj.{weight,bias}, ln_2.{weight,bias}, mlp.c_fc.{weight,bias},
/// mlp.c_proj.{weight,bias}. The tensors outside the blocks (wte, wpe, ln_f, an untied
/// lm_head) are reported separately, since they belong to no layer.
///
/// Abstract:
///   model_divergence(base, tuned) -> ModelDivergence
///     blocks[l]: layer l, its total D_l, the attention / MLP / LayerNorm parts of it, and
///     every tensor's distance; outside: the distances of the other tensors.
///     requires: the same n_layer and the same shape of every tensor (shape_error naming
///               the first tensor whose shapes differ), both tied or both untied
///               (shape_error); finite weights (numeric_error naming the tensor).
///     Sums in double, whatever the Scalar.
///   top_divergent_blocks(blocks, k)  the layers of the k largest totals, largest first
///     (ties: lower layer first). requires 1 <= k <= blocks.size() (config_error).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../models/gpt2_weights.hpp"
#include "input_checks.hpp"

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace sae::irm {

/// The distance ||base - tuned||_2 of one tensor.
struct TensorDivergence {
    std::string name;  ///< Hugging Face name, e.g. "h.2.mlp.c_fc.weight"
    double distance = 0.0;
};

/// The parameter change of one transformer block.
struct BlockDivergence {
    Index layer = 0;
    double total = 0.0;        ///< sum of the 12 tensor distances
    double attention = 0.0;    ///< attn.c_attn + attn.c_proj (weights and biases)
    double mlp = 0.0;          ///< mlp.c_fc + mlp.c_proj
    double layer_norms = 0.0;  ///< ln_1 + ln_2
    std::vector<TensorDivergence> tensors;
};

/// Every block's divergence and that of the tensors outside the blocks.
struct ModelDivergence {
    std::vector<BlockDivergence> blocks;
    std::vector<TensorDivergence> outside;  ///< wte, wpe, ln_f.weight, ln_f.bias[, lm_head]
};

namespace detail {

template <class DA, class DB>
double tensor_distance(const Eigen::MatrixBase<DA>& base, const Eigen::MatrixBase<DB>& tuned, const std::string& name) {
    if (base.rows() != tuned.rows() || base.cols() != tuned.cols()) {
        throw shape_error("model_divergence: tensor '" + name + "' is [" + std::to_string(base.rows()) + ", " +
                          std::to_string(base.cols()) + "] in the base model but [" + std::to_string(tuned.rows()) + ", " +
                          std::to_string(tuned.cols()) + "] in the tuned model");
    }
    require_finite(base, "model_divergence: base tensor '" + name + "' entry ");
    require_finite(tuned, "model_divergence: tuned tensor '" + name + "' entry ");
    return (base.template cast<double>() - tuned.template cast<double>()).norm();
}

}  // namespace detail

/// Per-block and outside-block parameter distances (see the file abstract).
template <class Scalar>
ModelDivergence model_divergence(const models::Gpt2Weights<Scalar>& base, const models::Gpt2Weights<Scalar>& tuned) {
    if (base.blocks.size() != tuned.blocks.size()) {
        throw shape_error("model_divergence: the base model has " + std::to_string(base.blocks.size()) +
                          " blocks but the tuned model has " + std::to_string(tuned.blocks.size()));
    }
    if (base.lm_head.has_value() != tuned.lm_head.has_value()) {
        throw shape_error(std::string("model_divergence: the LM head is ") + (base.lm_head ? "untied" : "tied") +
                          " in the base model but " + (tuned.lm_head ? "untied" : "tied") + " in the tuned model");
    }
    ModelDivergence result;
    for (std::size_t l = 0; l < base.blocks.size(); ++l) {
        const models::Gpt2BlockWeights<Scalar>& a = base.blocks[l];
        const models::Gpt2BlockWeights<Scalar>& b = tuned.blocks[l];
        BlockDivergence block;
        block.layer = static_cast<Index>(l);
        const std::string prefix = "h." + std::to_string(l) + ".";
        double* part = nullptr;
        const auto add = [&](const std::string& name, const auto& x, const auto& y) {
            const double d = detail::tensor_distance(x, y, prefix + name);
            block.tensors.push_back(TensorDivergence{prefix + name, d});
            *part += d;
            block.total += d;
        };
        part = &block.layer_norms;
        add("ln_1.weight", a.ln_1.weight, b.ln_1.weight);
        add("ln_1.bias", a.ln_1.bias, b.ln_1.bias);
        part = &block.attention;
        add("attn.c_attn.weight", a.attn_c_attn.weight, b.attn_c_attn.weight);
        add("attn.c_attn.bias", a.attn_c_attn.bias, b.attn_c_attn.bias);
        add("attn.c_proj.weight", a.attn_c_proj.weight, b.attn_c_proj.weight);
        add("attn.c_proj.bias", a.attn_c_proj.bias, b.attn_c_proj.bias);
        part = &block.layer_norms;
        add("ln_2.weight", a.ln_2.weight, b.ln_2.weight);
        add("ln_2.bias", a.ln_2.bias, b.ln_2.bias);
        part = &block.mlp;
        add("mlp.c_fc.weight", a.mlp_c_fc.weight, b.mlp_c_fc.weight);
        add("mlp.c_fc.bias", a.mlp_c_fc.bias, b.mlp_c_fc.bias);
        add("mlp.c_proj.weight", a.mlp_c_proj.weight, b.mlp_c_proj.weight);
        add("mlp.c_proj.bias", a.mlp_c_proj.bias, b.mlp_c_proj.bias);
        result.blocks.push_back(std::move(block));
    }
    const auto outside = [&](const std::string& name, const auto& x, const auto& y) {
        result.outside.push_back(TensorDivergence{name, detail::tensor_distance(x, y, name)});
    };
    outside("wte.weight", base.wte, tuned.wte);
    outside("wpe.weight", base.wpe, tuned.wpe);
    outside("ln_f.weight", base.ln_f.weight, tuned.ln_f.weight);
    outside("ln_f.bias", base.ln_f.bias, tuned.ln_f.bias);
    if (base.lm_head) outside("lm_head.weight", *base.lm_head, *tuned.lm_head);
    return result;
}

/// The layers of the k most divergent blocks, most divergent first.
inline std::vector<Index> top_divergent_blocks(const std::vector<BlockDivergence>& blocks, std::size_t k) {
    if (k < 1 || k > blocks.size()) {
        throw config_error("top_divergent_blocks: k = " + std::to_string(k) + " must be in [1, " +
                           std::to_string(blocks.size()) + "] (the number of blocks)");
    }
    std::vector<std::size_t> order(blocks.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return blocks[a].total > blocks[b].total || (blocks[a].total == blocks[b].total && blocks[a].layer < blocks[b].layer);
    });
    std::vector<Index> layers;
    for (std::size_t i = 0; i < k; ++i) layers.push_back(blocks[order[i]].layer);
    return layers;
}

}  // namespace sae::irm
