#pragma once
// EEGLAB (eeg/eeglab.hpp over io/mat_v5.hpp): the .set (MATLAB level 5), the .fdt it
// names and a .locs channel file.
#include "../driver.hpp"
#include "sae/eeg/eeglab.hpp"

namespace sae::fuzz {

inline void run_eeglab(const Workspace& ws) {
    if (ws.has(2)) attempt([&] { (void)eeg::read_locs_labels(ws.path("chan.locs")); });
    if (ws.has(1)) attempt([&] { (void)eeg::read_fdt(ws.path("data.fdt"), 4); });
    attempt([&] { (void)read_mat_v5(ws.path("data.set")); });
    const eeg::Recording recording = eeg::load_eeglab(ws.path("data.set"));
    require(static_cast<Index>(recording.labels.size()) == recording.channels(), "eeglab: one label per channel");
}

inline Driver eeglab_driver() { return {"eeglab", {"data.set", "data.fdt", "chan.locs"}, &run_eeglab}; }

}  // namespace sae::fuzz
