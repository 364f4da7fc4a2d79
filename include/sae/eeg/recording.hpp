#pragma once
/// \file recording.hpp
/// `Recording`: continuous multichannel EEG in physical units, as every reader of this
/// module returns it and every signal-processing step takes it.
///
///   data          [channels, samples], row-major (each channel's samples contiguous),
///                 double: filter design and zero-phase filtering want the precision;
///                 convert to float only for the SAE.
///   sample_rate   Hz, > 0, the same for every channel.
///   labels        one per channel, trimmed.
///
///   channel_index(label)   the row of `label`; config_error listing the labels when absent.
///   select(labels)         a Recording of those channels, in that order.
///   without(labels)        every channel except those.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <string>
#include <vector>

namespace sae::eeg {

struct Recording {
    Matrix<double> data;  ///< [channels, samples]
    double sample_rate = 0;
    std::vector<std::string> labels;

    Index channels() const { return data.rows(); }
    Index samples() const { return data.cols(); }
    double duration_seconds() const { return sample_rate > 0 ? static_cast<double>(samples()) / sample_rate : 0.0; }

    Index channel_index(const std::string& label) const {
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (labels[i] == label) return static_cast<Index>(i);
        }
        std::string known;
        for (const std::string& l : labels) known += (known.empty() ? "" : ", ") + l;
        throw config_error("no channel labelled '" + label + "' (channels: " + known + ")");
    }

    Recording select(const std::vector<std::string>& wanted) const {
        Recording out;
        out.sample_rate = sample_rate;
        out.data.resize(static_cast<Index>(wanted.size()), samples());
        for (std::size_t i = 0; i < wanted.size(); ++i) {
            out.data.row(static_cast<Index>(i)) = data.row(channel_index(wanted[i]));
            out.labels.push_back(wanted[i]);
        }
        return out;
    }

    Recording without(const std::vector<std::string>& excluded) const {
        for (const std::string& label : excluded) channel_index(label);  // a typo is an error, not a no-op
        std::vector<std::string> kept;
        for (const std::string& label : labels) {
            bool drop = false;
            for (const std::string& e : excluded) drop = drop || e == label;
            if (!drop) kept.push_back(label);
        }
        return select(kept);
    }

    /// Throws shape_error/config_error when the fields disagree with each other.
    void validate(const std::string& what = "recording") const {
        if (static_cast<Index>(labels.size()) != channels()) {
            throw shape_error(what + ": " + std::to_string(labels.size()) + " labels for " +
                              std::to_string(channels()) + " channels");
        }
        if (!(sample_rate > 0)) throw config_error(what + ": sample rate " + std::to_string(sample_rate) + " must be > 0");
    }
};

}  // namespace sae::eeg
