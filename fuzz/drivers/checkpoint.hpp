#pragma once
// Checkpoints (io/checkpoint.hpp), the read side: load_checkpoint, then, for a single-SAE or ensemble TopK run small enough, the model state restored
// into the ensemble the stored run configuration describes (what `sae train --resume`
// does before training).
#include "../driver.hpp"
#include "sae/io/checkpoint.hpp"
#include "sae/io/run_config.hpp"
#include "sae/mfr/ensemble.hpp"

namespace sae::fuzz {

inline void run_checkpoint(const Workspace& ws) {
    const std::string path = ws.path("checkpoint.safetensors");
    const Checkpoint<float> checkpoint = load_checkpoint<float>(path);
    if (!checkpoint.config.is_object()) return;
    const RunConfig config = run_config_from_json(checkpoint.config, path);
    const AutoencoderConfig& model = config.model.autoencoder;
    const std::size_t members = config.mfr ? config.mfr->num_saes : 1;
    if (config.model.activation.architecture() != TopK<float>::architecture || model.d_in * model.d_sae > 4096 ||
        members > 4) {
        return;  // other architectures and sizes add nothing to the file handling under test
    }
    MfrConfig mfr = config.mfr.value_or(MfrConfig{});
    if (!config.mfr) mfr.num_saes = 1;
    MfrEnsemble<float, TopK> ensemble(mfr, model, activation_config_as<TopK, float>(config.model.activation),
                                      config.training, config.seed);
    ensemble.load_state(checkpoint.state);
}

inline Driver checkpoint_driver() { return {"checkpoint", {"checkpoint.safetensors"}, &run_checkpoint}; }

}  // namespace sae::fuzz
