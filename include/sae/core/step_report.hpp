#pragma once
/// \file step_report.hpp
/// What one training step reports to the trainer loop and its callbacks.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sae {

/// The outcome of one optimisation step of a trainable model (a single SAE or an
/// MFR ensemble). Metrics are named scalars in a stable order so that loggers can
/// write them as columns.
struct StepReport {
    std::size_t step = 0;        ///< 1-based index of the step just taken
    std::size_t samples = 0;     ///< samples (tokens) consumed so far, this step included
    double loss = 0.0;           ///< total loss minimised in this step
    std::vector<std::pair<std::string, double>> metrics;  ///< e.g. {"mse", ...}, {"l0", ...}

    /// The value of metric `name`, or `fallback` when the step did not report it.
    double metric(const std::string& name, double fallback = 0.0) const {
        for (const auto& [key, value] : metrics) {
            if (key == name) return value;
        }
        return fallback;
    }
};

}  // namespace sae
