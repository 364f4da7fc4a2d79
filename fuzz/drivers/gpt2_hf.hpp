#pragma once
// Hugging Face GPT-2 directories (models/gpt2_loader.hpp): config.json +
// model.safetensors [+ vocab_map.json]; a small loaded model runs a forward pass.
#include "../driver.hpp"
#include "sae/models/gpt2_loader.hpp"

namespace sae::fuzz {

/// Logits of a few tokens, when the model is small enough to be cheap.
template <class Scalar>
void forward_a_few_tokens(const models::Gpt2<Scalar>& model) {
    const models::Gpt2Config& c = model.config();
    if (static_cast<double>(c.vocab_size) * c.n_embd > 65536.0 || static_cast<double>(c.n_layer) * c.n_embd * c.mlp_width() > 65536.0) return;
    const Index seq = std::min(3, c.n_ctx);
    models::TokenBatch tokens(1, seq);
    for (Index t = 0; t < seq; ++t) tokens(0, t) = static_cast<int>(t % c.vocab_size);
    const Matrix<Scalar> logits = model.forward(tokens);
    require(logits.rows() == seq && logits.cols() == c.vocab_size, "gpt2: logits shape");
}

inline void run_gpt2_hf(const Workspace& ws) {
    const models::LoadedGpt2<float> loaded = models::load_hf_gpt2<float>(ws.dir());
    forward_a_few_tokens(loaded.model);
}

inline Driver gpt2_hf_driver() { return {"gpt2_hf", {"config.json", "model.safetensors", "vocab_map.json"}, &run_gpt2_hf}; }

}  // namespace sae::fuzz
