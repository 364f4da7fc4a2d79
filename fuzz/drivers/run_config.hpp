#pragma once
// The training run configuration (io/run_config.hpp, io/config_json.hpp): JSON with
// comments, strict keys. A config that loads must save and load back to the same JSON.
#include "../driver.hpp"
#include "sae/io/run_config.hpp"

namespace sae::fuzz {

inline void run_run_config(const Workspace& ws) {
    const RunConfig config = load_run_config(ws.path("run.json"));
    const std::string saved = ws.path("saved.json");
    save_run_config(saved, config);
    const RunConfig again = load_run_config(saved);
    require(to_json(config) == to_json(again), "run config: save + load changes the configuration");
}

inline Driver run_config_driver() { return {"run_config", {"run.json"}, &run_run_config}; }

}  // namespace sae::fuzz
