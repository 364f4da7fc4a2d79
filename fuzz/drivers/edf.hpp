#pragma once
// EDF / EDF+ / BDF (eeg/edf.hpp): header, every signal's samples, the default
// recording, the annotations.
#include "../driver.hpp"
#include "sae/eeg/edf.hpp"

namespace sae::fuzz {

inline void run_edf(const Workspace& ws) {
    const eeg::EdfFile file(ws.path("input.edf"));
    const eeg::EdfHeader& header = file.header();
    for (std::size_t i = 0; i < header.signals.size(); ++i) {
        const Index signal = static_cast<Index>(i);
        const std::vector<std::int32_t> digital = file.digital(signal);
        require(digital.size() == static_cast<std::size_t>(header.num_records * header.signals[i].samples_per_record),
                "edf: samples of signal " + std::to_string(i));
        if (!header.signals[i].annotation) (void)file.physical(signal);
    }
    attempt([&] { (void)file.read(); });
    (void)file.annotations();
}

inline Driver edf_driver() { return {"edf", {"input.edf"}, &run_edf}; }

}  // namespace sae::fuzz
