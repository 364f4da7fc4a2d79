#pragma once
// minGPT / nanoGPT JSON state dicts (models/gpt2_loader.hpp). Inputs of even size are
// loaded with the file's own config, odd ones with an n_head hint (what a file without
// a config entry needs), so both paths are taken with one load per input.
#include "gpt2_hf.hpp"

namespace sae::fuzz {

inline void run_gpt2_mingpt(const Workspace& ws) {
    models::MinGptConfigHint hint;
    if (ws.part(0).size() % 2 == 1) hint.n_head = 3;
    forward_a_few_tokens(models::load_mingpt_json<float>(ws.path("model.json"), hint));
}

inline Driver gpt2_mingpt_driver() { return {"gpt2_mingpt", {"model.json"}, &run_gpt2_mingpt}; }

}  // namespace sae::fuzz
