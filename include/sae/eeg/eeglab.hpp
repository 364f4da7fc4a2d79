#pragma once
/// \file eeglab.hpp
/// EEGLAB continuous data: the .fdt data file (raw little-endian float32, multiplexed:
/// the `channels` values of time point 0, then of time point 1, ...), its metadata from
/// the .set file (a MATLAB level-5 struct `EEG`, or the same fields as top-level
/// variables) and channel labels from a .locs file.
///
///   EeglabSet read_eeglab_set(set_path)   nbchan, pnts, trials, srate, chanlocs(:).labels
///                              and the data file name (EEG.data holds it as a string
///                              when the samples live in an .fdt). io_error naming the
///                              field when one is missing, not a positive number, or the
///                              labels disagree with nbchan; data stored inside the .set
///                              (EEG.data numeric) is returned in `inline_data`.
///   read_locs_labels(locs_path)  the label column of an EEGLAB .locs file (lines
///                              "index theta radius label"); io_error "<path>: line N ...".
///   read_fdt(fdt_path, channels)  [channels, samples]: samples = file size / (4 channels);
///                              io_error when the size is not a whole number of time
///                              points or a value is not finite.
///   load_eeglab(set_path)      a Recording: the .set's metadata and its .fdt (looked up
///                              next to the .set), checked against each other.
///   load_fdt(fdt_path, sample_rate, labels)  when the metadata are given explicitly.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../io/file.hpp"
#include "../io/mat_v5.hpp"
#include "header_fields.hpp"
#include "recording.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sae::eeg {

struct EeglabSet {
    Index channels = 0;
    Index samples = 0;  ///< per trial (EEG.pnts)
    Index trials = 1;
    double sample_rate = 0;
    std::vector<std::string> labels;  ///< empty when the file has no chanlocs
    std::string data_file;            ///< EEG.data when it names the .fdt
    Matrix<double> inline_data;       ///< EEG.data when it holds the samples [channels, samples * trials]
};

namespace detail::eeglab {

inline const MatValue* find_field(const std::vector<MatVariable>& variables, const std::string& name) {
    for (const MatVariable& v : variables) {
        if (v.name == "EEG" && v.value.kind == MatValue::Kind::structure && v.value.has_field(name)) {
            return &v.value.field(name);
        }
    }
    for (const MatVariable& v : variables) {  // EEGLAB's "flat" layout: one variable per field
        if (v.name == name) return &v.value;
    }
    return nullptr;
}

inline double positive_field(const std::vector<MatVariable>& variables, const std::string& name, const std::string& path) {
    const MatValue* value = find_field(variables, name);
    if (value == nullptr) throw io_error(path + ": field 'EEG." + name + "' is missing");
    if ((value->kind != MatValue::Kind::numeric && value->kind != MatValue::Kind::logical) || value->numbers.size() != 1) {
        throw io_error(path + ": field 'EEG." + name + "' is not a numeric scalar");
    }
    const double number = value->numbers.front();
    if (!(number > 0) || !std::isfinite(number)) {
        throw io_error(path + ": field 'EEG." + name + "' = " + std::to_string(number) + " must be a positive number");
    }
    return number;
}

inline Index whole_field(const std::vector<MatVariable>& variables, const std::string& name, const std::string& path) {
    const double number = positive_field(variables, name, path);
    if (number != std::floor(number) || number > 1e15) {
        throw io_error(path + ": field 'EEG." + name + "' = " + std::to_string(number) + " must be a whole number");
    }
    return static_cast<Index>(number);
}

inline std::string directory_of(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

}  // namespace detail::eeglab

inline EeglabSet read_eeglab_set(const std::string& path) {
    using namespace detail::eeglab;
    const std::vector<MatVariable> variables = read_mat_v5(path);
    EeglabSet set;
    set.channels = whole_field(variables, "nbchan", path);
    set.samples = whole_field(variables, "pnts", path);
    set.trials = find_field(variables, "trials") ? whole_field(variables, "trials", path) : 1;
    set.sample_rate = positive_field(variables, "srate", path);

    if (const MatValue* chanlocs = find_field(variables, "chanlocs");
        chanlocs != nullptr && chanlocs->kind == MatValue::Kind::structure && chanlocs->numel() > 0) {
        if (!chanlocs->has_field("labels")) throw io_error(path + ": field 'EEG.chanlocs' has no 'labels'");
        if (static_cast<Index>(chanlocs->numel()) != set.channels) {
            throw io_error(path + ": field 'EEG.chanlocs' has " + std::to_string(chanlocs->numel()) +
                           " entries but EEG.nbchan = " + std::to_string(set.channels));
        }
        for (std::size_t c = 0; c < chanlocs->numel(); ++c) {
            const MatValue& label = chanlocs->field("labels", c);
            if (label.kind != MatValue::Kind::text) throw io_error(path + ": field 'EEG.chanlocs(" + std::to_string(c + 1) + ").labels' is not text");
            set.labels.emplace_back(trim_field(label.text));
        }
    }

    const MatValue* data = find_field(variables, "data");
    if (data == nullptr) throw io_error(path + ": field 'EEG.data' is missing");
    if (data->kind == MatValue::Kind::text) {
        set.data_file = data->text;
    } else if (data->kind == MatValue::Kind::numeric) {
        const std::size_t per_channel = checked_product(static_cast<std::size_t>(set.samples), static_cast<std::size_t>(set.trials), path + ": EEG.data size");
        if (data->dims.empty() || data->dims[0] != static_cast<std::size_t>(set.channels) ||
            data->numel() != checked_product(per_channel, static_cast<std::size_t>(set.channels), path + ": EEG.data size")) {
            throw io_error(path + ": field 'EEG.data' does not hold nbchan x pnts x trials values");
        }
        set.inline_data.resize(set.channels, static_cast<Index>(per_channel));
        for (Index t = 0; t < set.inline_data.cols(); ++t) {  // column-major in the file
            for (Index c = 0; c < set.channels; ++c) {
                set.inline_data(c, t) = data->numbers[static_cast<std::size_t>(t * set.channels + c)];
            }
        }
    } else {
        throw io_error(path + ": field 'EEG.data' is neither a file name nor a numeric array");
    }
    return set;
}

inline std::vector<std::string> read_locs_labels(const std::string& path) {
    const std::string text = read_whole_file(path);
    std::vector<std::string> labels;
    std::size_t line_start = 0, line_number = 0;
    while (line_start < text.size()) {
        std::size_t line_end = text.find('\n', line_start);
        if (line_end == std::string::npos) line_end = text.size();
        std::string_view line(text.data() + line_start, line_end - line_start);
        line_start = line_end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::vector<std::string_view> columns;
        std::size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            const std::size_t start = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
            if (i > start) columns.push_back(line.substr(start, i - start));
        }
        if (columns.empty()) continue;
        const std::string where = "line " + std::to_string(line_number);
        if (columns.size() != 4) {
            throw io_error(path + ": " + where + " has " + std::to_string(columns.size()) +
                           " columns, a .locs line has 4 (index theta radius label)");
        }
        const std::int64_t index = parse_integer_field(columns[0], path, where + " channel number");
        parse_real_field(columns[1], path, where + " theta");
        parse_real_field(columns[2], path, where + " radius");
        if (index != static_cast<std::int64_t>(labels.size()) + 1) {
            throw io_error(path + ": " + where + " channel number " + std::to_string(index) + ", expected " +
                           std::to_string(labels.size() + 1));
        }
        labels.emplace_back(columns[3]);
    }
    if (labels.empty()) throw io_error(path + ": no channel lines");
    return labels;
}

/// [channels, samples] from a multiplexed float32 .fdt file.
inline Matrix<double> read_fdt(const std::string& path, Index channels) {
    if (channels <= 0) throw config_error(path + ": channel count " + std::to_string(channels) + " must be > 0");
    const MappedFile file(path);
    const std::size_t point_bytes = checked_product(static_cast<std::size_t>(channels), 4, path + ": time point size");
    if (file.size() == 0 || file.size() % point_bytes != 0) {
        throw io_error(path + ": " + std::to_string(file.size()) + " bytes is not a whole number of time points of " +
                       std::to_string(channels) + " float32 values");
    }
    const Index samples = static_cast<Index>(file.size() / point_bytes);
    Matrix<double> data(channels, samples);
    const unsigned char* p = file.data();
    for (Index t = 0; t < samples; ++t) {
        for (Index c = 0; c < channels; ++c, p += 4) {
            float value;
            std::memcpy(&value, p, 4);  // little-endian file, little-endian host
            if (!std::isfinite(value)) {
                throw io_error(path + ": value at time point " + std::to_string(t) + ", channel " + std::to_string(c) +
                               " is not finite");
            }
            data(c, t) = value;
        }
    }
    return data;
}

inline Recording load_fdt(const std::string& fdt_path, double sample_rate, std::vector<std::string> labels) {
    Recording rec;
    rec.data = read_fdt(fdt_path, static_cast<Index>(labels.size()));
    rec.sample_rate = sample_rate;
    rec.labels = std::move(labels);
    rec.validate(fdt_path);
    return rec;
}

inline Recording load_eeglab(const std::string& set_path) {
    EeglabSet set = read_eeglab_set(set_path);
    Recording rec;
    rec.sample_rate = set.sample_rate;
    if (set.data_file.empty()) {
        rec.data = std::move(set.inline_data);
    } else {
        const std::string fdt = detail::eeglab::directory_of(set_path) + set.data_file;
        rec.data = read_fdt(fdt, set.channels);
        // pnts and trials are each up to 1e15: their product is checked, not overflowed.
        const std::size_t expected = checked_product(static_cast<std::size_t>(set.samples),
                                                     static_cast<std::size_t>(set.trials), set_path + ": pnts x trials");
        if (static_cast<std::size_t>(rec.samples()) != expected) {
            throw io_error(fdt + ": holds " + std::to_string(rec.samples()) + " time points, " + set_path +
                           " says pnts x trials = " + std::to_string(expected));
        }
    }
    // Default labels only once the data has confirmed nbchan: a .set claiming 10^15
    // channels must fail on its data file, not spend hours naming channels.
    rec.labels = set.labels;
    if (rec.labels.empty()) {
        for (Index c = 0; c < set.channels; ++c) rec.labels.push_back("E" + std::to_string(c + 1));
    }
    rec.validate(set_path);
    return rec;
}

}  // namespace sae::eeg
