#pragma once
/// \file edf.hpp
/// EDF, EDF+ (continuous) and BDF/BDF+ files: reading (memory-mapped) and writing.
///
/// Layout (EDF spec, Kemp et al. 1992; EDF+ 2003; BioSemi's BDF): a 256-byte header of
/// fixed-width ASCII fields, then 256 bytes per signal (label 16, transducer 80, physical
/// dimension 8, physical min/max 8+8, digital min/max 8+8, prefiltering 80, samples per
/// data record 8, reserved 32 — each field stored for all signals before the next field),
/// then the data records: in each, every signal's samples_per_record samples in turn,
/// little-endian int16 (EDF) or int24 (BDF). Physical value =
/// physical_min + (digital - digital_min) * (physical_max - physical_min) / (digital_max - digital_min).
/// EDF+/BDF+ mark themselves with "EDF+C"/"BDF+C" in the reserved field and carry
/// annotations as Time-stamped Annotation Lists (TALs) in "EDF Annotations" signals:
/// "+onset[\x15duration]\x14text\x14...\x14\x00"; the first TAL of every record (empty
/// text) keeps time and is not an annotation. Discontinuous files ("EDF+D") are refused.
///
///   EdfFile(path)                 maps the file and validates the header against it:
///                                 io_error "<path>: header field '<field>' ..." for a bad
///                                 version, junk in a numeric field, a header size that
///                                 disagrees with the number of signals, a record duration
///                                 or samples-per-record of zero (a sample rate of zero),
///                                 digital_min >= digital_max, physical_min == physical_max,
///                                 a digital range the sample width cannot hold, or fewer
///                                 bytes than the records claim ("truncated"). Nothing is
///                                 read outside the mapped file.
///   header()                      every field, parsed.
///   signal_index(label)           the signal with that (trimmed) label; config_error if none.
///   digital(signal)               the raw integers of one signal, all records.
///   physical(signal)              the same scaled to physical units.
///   read(labels)                  a Recording of those signals (all must share a rate);
///                                 with no labels: every ordinary signal at the most common
///                                 rate (what the MFR authors' loader keeps).
///   annotations()                 every TAL annotation of every annotation signal,
///                                 io_error "<path>: annotation record N ..." when malformed.
///
///   write_edf(path, spec)         writes an EDF/EDF+/BDF/BDF+ file atomically (temp file +
///                                 rename); physical values are quantised to the digital
///                                 range and clipped. shape_error/config_error when the
///                                 spec cannot be represented (a signal whose length is not
///                                 a whole number of records, a number that does not fit
///                                 its 8-character field, ...).

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../io/file.hpp"
#include "header_fields.hpp"
#include "recording.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sae::eeg {

enum class EdfVariant { edf, bdf };

/// One signal's header fields.
struct EdfSignal {
    std::string label;               ///< trimmed
    std::string transducer;
    std::string physical_dimension;  ///< e.g. "uV"
    double physical_minimum = 0;
    double physical_maximum = 0;
    std::int32_t digital_minimum = 0;
    std::int32_t digital_maximum = 0;
    std::string prefiltering;
    std::int64_t samples_per_record = 0;
    double sample_rate = 0;          ///< samples_per_record / record duration
    bool annotation = false;         ///< an "EDF Annotations"/"BDF Annotations" signal

    double gain() const {
        return (physical_maximum - physical_minimum) /
               (static_cast<double>(digital_maximum) - static_cast<double>(digital_minimum));
    }
    double to_physical(std::int32_t digital) const {
        return physical_minimum + (static_cast<double>(digital) - static_cast<double>(digital_minimum)) * gain();
    }
};

struct EdfHeader {
    EdfVariant variant = EdfVariant::edf;
    bool plus = false;               ///< EDF+ / BDF+ (continuous)
    std::string patient;
    std::string recording;
    std::string start_date;          ///< dd.mm.yy as stored
    std::string start_time;          ///< hh.mm.ss as stored
    std::size_t header_bytes = 0;
    std::int64_t num_records = 0;
    double record_duration = 0;      ///< seconds
    std::vector<EdfSignal> signals;
    std::size_t record_bytes = 0;    ///< bytes of one data record

    std::size_t bytes_per_sample() const { return variant == EdfVariant::bdf ? 3 : 2; }
    double duration_seconds() const { return static_cast<double>(num_records) * record_duration; }
};

/// One annotation of an EDF+ file; `duration` is empty when the TAL gives none.
struct EdfAnnotation {
    double onset = 0;  ///< seconds from the start of the recording
    std::optional<double> duration;
    std::string text;
};

namespace detail::edf {

inline constexpr std::size_t fixed_header_bytes = 256;
inline constexpr std::size_t bytes_per_signal_header = 256;
inline constexpr char bdf_version[8] = {'\xFF', 'B', 'I', 'O', 'S', 'E', 'M', 'I'};

/// Widths of the per-signal fields, in file order.
struct SignalFieldWidths {
    static constexpr std::size_t label = 16, transducer = 80, dimension = 8, physical_min = 8, physical_max = 8,
                                 digital_min = 8, digital_max = 8, prefiltering = 80, samples = 8, reserved = 32;
};

inline bool is_annotation_label(const std::string& label) {
    return label == "EDF Annotations" || label == "BDF Annotations";
}

/// Reads the fixed-width fields of a mapped header, never beyond `size`.
class FieldCursor {
public:
    FieldCursor(const unsigned char* data, std::size_t size, const std::string& path)
        : data_(data), size_(size), path_(path) {}

    std::string_view take(std::size_t width, const std::string& field) {
        if (offset_ + width > size_) {
            throw io_error(path_ + ": header field '" + field + "' lies beyond the end of the file (" +
                           std::to_string(size_) + " bytes)");
        }
        const std::string_view text(reinterpret_cast<const char*>(data_) + offset_, width);
        offset_ += width;
        return text;
    }
    std::string text(std::size_t width, const std::string& field) { return std::string(trim_field(take(width, field))); }
    std::size_t offset() const { return offset_; }

private:
    const unsigned char* data_;
    std::size_t size_;
    const std::string& path_;
    std::size_t offset_ = 0;
};

inline std::string signal_field(std::size_t index, const std::string& label, const char* field) {
    std::string name = "signal " + std::to_string(index);
    if (!label.empty()) name += " ('" + printable_bytes(label) + "')";
    return name + " " + field;
}

inline std::int32_t read_sample(const unsigned char* p, EdfVariant variant) {
    if (variant == EdfVariant::edf) {
        return static_cast<std::int16_t>(static_cast<std::uint16_t>(p[0] | (p[1] << 8)));
    }
    std::uint32_t u = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                      (static_cast<std::uint32_t>(p[2]) << 16);
    if (u & 0x800000u) u |= 0xFF000000u;  // sign-extend 24 bits
    return static_cast<std::int32_t>(u);
}

inline std::int32_t digital_limit(EdfVariant variant, bool upper) {
    if (variant == EdfVariant::edf) return upper ? 32767 : -32768;
    return upper ? 8388607 : -8388608;
}

inline EdfHeader parse_header(const unsigned char* data, std::size_t size, const std::string& path) {
    if (size < fixed_header_bytes) {
        throw io_error(path + ": truncated: " + std::to_string(size) + " bytes is shorter than the 256-byte EDF header");
    }
    FieldCursor cursor(data, size, path);
    EdfHeader h;
    const std::string_view version = cursor.take(8, "version");
    if (version == std::string_view(bdf_version, 8)) {
        h.variant = EdfVariant::bdf;
    } else if (trim_field(version) == "0") {
        h.variant = EdfVariant::edf;
    } else {
        throw io_error(path + ": header field 'version' = \"" + printable_bytes(version) +
                       "\" is neither EDF (\"0\") nor BDF (\"\\xFFBIOSEMI\")");
    }
    h.patient = cursor.text(80, "patient");
    h.recording = cursor.text(80, "recording");
    h.start_date = cursor.text(8, "start date");
    h.start_time = cursor.text(8, "start time");
    const std::int64_t header_bytes = parse_integer_field(cursor.take(8, "number of header bytes"), path, "number of header bytes");
    const std::string reserved = cursor.text(44, "reserved");
    h.num_records = parse_integer_field(cursor.take(8, "number of data records"), path, "number of data records");
    h.record_duration = parse_real_field(cursor.take(8, "duration of a data record"), path, "duration of a data record");
    const std::int64_t ns = parse_integer_field(cursor.take(4, "number of signals"), path, "number of signals");

    const std::string prefix = h.variant == EdfVariant::bdf ? "BDF+" : "EDF+";
    if (reserved.rfind("EDF+", 0) == 0 || reserved.rfind("BDF+", 0) == 0) {
        if (reserved.rfind(prefix + "D", 0) == 0) {
            throw io_error(path + ": header field 'reserved' = \"" + printable_bytes(reserved) +
                           "\": discontinuous " + prefix + "D recordings are not supported");
        }
        if (reserved.rfind(prefix + "C", 0) != 0) {
            throw io_error(path + ": header field 'reserved' = \"" + printable_bytes(reserved) + "\" is not " + prefix + "C");
        }
        h.plus = true;
    }
    if (ns < 1) throw io_error(path + ": header field 'number of signals' = " + std::to_string(ns) + " must be >= 1");
    const std::size_t signals = static_cast<std::size_t>(ns);  // at most 9999: four digits
    const std::size_t expected_header = fixed_header_bytes + signals * bytes_per_signal_header;
    if (header_bytes < 0 || static_cast<std::size_t>(header_bytes) != expected_header) {
        throw io_error(path + ": header field 'number of header bytes' = " + std::to_string(header_bytes) + " but " +
                       std::to_string(ns) + " signals need " + std::to_string(expected_header));
    }
    if (size < expected_header) {
        throw io_error(path + ": truncated: the header of " + std::to_string(ns) + " signals needs " +
                       std::to_string(expected_header) + " bytes, the file has " + std::to_string(size));
    }
    h.header_bytes = expected_header;
    if (!(h.record_duration > 0)) {
        throw io_error(path + ": header field 'duration of a data record' = " + std::to_string(h.record_duration) +
                       " must be > 0 (the sample rates would be zero or infinite)");
    }

    // Per-signal fields: each field for all signals, then the next field.
    h.signals.resize(signals);
    using W = SignalFieldWidths;
    for (std::size_t i = 0; i < signals; ++i) h.signals[i].label = cursor.text(W::label, signal_field(i, "", "label"));
    for (std::size_t i = 0; i < signals; ++i) h.signals[i].transducer = cursor.text(W::transducer, signal_field(i, h.signals[i].label, "transducer type"));
    for (std::size_t i = 0; i < signals; ++i) h.signals[i].physical_dimension = cursor.text(W::dimension, signal_field(i, h.signals[i].label, "physical dimension"));
    const auto reals = [&](std::size_t width, const char* name, auto store) {
        for (std::size_t i = 0; i < signals; ++i) {
            const std::string field = signal_field(i, h.signals[i].label, name);
            store(h.signals[i], parse_real_field(cursor.take(width, field), path, field));
        }
    };
    const auto integers = [&](std::size_t width, const char* name, auto store) {
        for (std::size_t i = 0; i < signals; ++i) {
            const std::string field = signal_field(i, h.signals[i].label, name);
            store(h.signals[i], field, parse_integer_field(cursor.take(width, field), path, field));
        }
    };
    reals(W::physical_min, "physical minimum", [](EdfSignal& s, double v) { s.physical_minimum = v; });
    reals(W::physical_max, "physical maximum", [](EdfSignal& s, double v) { s.physical_maximum = v; });
    const auto digital = [&](const std::string& field, std::int64_t v) {
        const std::int32_t lo = digital_limit(h.variant, false), hi = digital_limit(h.variant, true);
        if (v < lo || v > hi) {
            throw io_error(path + ": header field '" + field + "' = " + std::to_string(v) + " is outside the " +
                           std::to_string(8 * h.bytes_per_sample()) + "-bit range [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
        }
        return static_cast<std::int32_t>(v);
    };
    integers(W::digital_min, "digital minimum",
             [&](EdfSignal& s, const std::string& f, std::int64_t v) { s.digital_minimum = digital(f, v); });
    integers(W::digital_max, "digital maximum",
             [&](EdfSignal& s, const std::string& f, std::int64_t v) { s.digital_maximum = digital(f, v); });
    for (std::size_t i = 0; i < signals; ++i) h.signals[i].prefiltering = cursor.text(W::prefiltering, signal_field(i, h.signals[i].label, "prefiltering"));
    integers(W::samples, "number of samples in each data record", [&](EdfSignal& s, const std::string& f, std::int64_t v) {
        if (v <= 0) {
            throw io_error(path + ": header field '" + f + "' = " + std::to_string(v) +
                           " must be > 0 (a sample rate of zero)");
        }
        s.samples_per_record = v;
    });

    std::size_t record_bytes = 0;
    for (std::size_t i = 0; i < signals; ++i) {
        EdfSignal& s = h.signals[i];
        s.annotation = h.plus && is_annotation_label(s.label);
        s.sample_rate = static_cast<double>(s.samples_per_record) / h.record_duration;
        if (s.annotation) continue;  // TAL bytes: the scaling fields are conventional, not used
        if (s.digital_minimum >= s.digital_maximum) {
            throw io_error(path + ": header field '" + signal_field(i, s.label, "digital minimum") + "' = " +
                           std::to_string(s.digital_minimum) + " is not below the digital maximum " +
                           std::to_string(s.digital_maximum));
        }
        if (s.physical_minimum == s.physical_maximum) {
            throw io_error(path + ": header field '" + signal_field(i, s.label, "physical maximum") +
                           "' equals the physical minimum (" + std::to_string(s.physical_minimum) + "): zero gain");
        }
    }
    for (const EdfSignal& s : h.signals) {
        const std::size_t bytes = checked_product(static_cast<std::size_t>(s.samples_per_record), h.bytes_per_sample(),
                                                  path + ": data record size");
        if (record_bytes + bytes < record_bytes) throw io_error(path + ": data record size overflows");
        record_bytes += bytes;
    }
    h.record_bytes = record_bytes;

    const std::size_t data_bytes = size - h.header_bytes;
    if (h.num_records == -1) {  // "unknown" (a recording still in progress): count what is there
        if (data_bytes % record_bytes != 0) {
            throw io_error(path + ": truncated: header field 'number of data records' = -1 and the " +
                           std::to_string(data_bytes) + " data bytes are not a whole number of " +
                           std::to_string(record_bytes) + "-byte records");
        }
        h.num_records = static_cast<std::int64_t>(data_bytes / record_bytes);
    } else if (h.num_records < 0) {
        throw io_error(path + ": header field 'number of data records' = " + std::to_string(h.num_records) +
                       " must be >= 0 (or -1 for unknown)");
    }
    const std::size_t claimed =
        checked_product(static_cast<std::size_t>(h.num_records), record_bytes, path + ": data size");
    if (claimed > data_bytes) {
        throw io_error(path + ": truncated: header field 'number of data records' = " + std::to_string(h.num_records) +
                       " records of " + std::to_string(record_bytes) + " bytes, but the file holds " +
                       std::to_string(data_bytes) + " data bytes (record " + std::to_string(data_bytes / record_bytes) +
                       " is incomplete)");
    }
    return h;
}

/// Parses the TALs of one record's annotation bytes into `out`.
inline void parse_tals(std::string_view bytes, std::size_t record, const std::string& path,
                       std::vector<EdfAnnotation>& out) {
    const auto fail = [&](const std::string& what) {
        throw io_error(path + ": annotation record " + std::to_string(record) + ": " + what);
    };
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        if (bytes[pos] == '\0') {  // unused bytes after the last TAL
            ++pos;
            continue;
        }
        const std::size_t tal_end = bytes.find('\0', pos);
        if (tal_end == std::string_view::npos) fail("TAL at byte " + std::to_string(pos) + " is not terminated by \\x00");
        const std::string_view tal = bytes.substr(pos, tal_end - pos);
        pos = tal_end + 1;
        const std::size_t first_sep = tal.find('\x14');
        if (first_sep == std::string_view::npos) fail("TAL \"" + printable_bytes(tal) + "\" has no \\x14 after its onset");
        const std::string_view timing = tal.substr(0, first_sep);
        if (timing.empty() || (timing[0] != '+' && timing[0] != '-')) {
            fail("TAL onset \"" + printable_bytes(timing) + "\" must start with '+' or '-'");
        }
        const std::size_t duration_sep = timing.find('\x15');
        EdfAnnotation base;
        base.onset = parse_real_field(timing.substr(0, duration_sep), path,
                                      "annotation record " + std::to_string(record) + " onset");
        if (duration_sep != std::string_view::npos) {
            base.duration = parse_real_field(timing.substr(duration_sep + 1), path,
                                             "annotation record " + std::to_string(record) + " duration");
        }
        // The texts: between consecutive \x14; the TAL ends with \x14 before its \x00.
        // Empty texts are skipped, which drops each record's time-keeping TAL ("+t\x14\x14")
        // but keeps any annotation written after it.
        std::string_view rest = tal.substr(first_sep + 1);
        if (!rest.empty() && rest.back() != '\x14') fail("TAL \"" + printable_bytes(tal) + "\" does not end with \\x14");
        while (!rest.empty()) {
            const std::size_t sep = rest.find('\x14');
            const std::string_view text = rest.substr(0, sep);
            rest = rest.substr(sep + 1);
            if (text.empty()) continue;
            EdfAnnotation a = base;
            a.text = std::string(text);
            out.push_back(std::move(a));
        }
    }
}

}  // namespace detail::edf

class EdfFile {
public:
    explicit EdfFile(const std::string& path)
        : file_(path), header_(detail::edf::parse_header(file_.data(), file_.size(), path)) {}

    const EdfHeader& header() const { return header_; }
    const std::string& path() const { return file_.path(); }

    Index signal_index(const std::string& label) const {
        for (std::size_t i = 0; i < header_.signals.size(); ++i) {
            if (header_.signals[i].label == label) return static_cast<Index>(i);
        }
        std::string known;
        for (const EdfSignal& s : header_.signals) known += (known.empty() ? "" : ", ") + s.label;
        throw config_error(path() + ": no signal labelled '" + label + "' (signals: " + known + ")");
    }

    /// The raw integers of `signal`, all records in order.
    std::vector<std::int32_t> digital(Index signal) const {
        const EdfSignal& s = signal_at(signal);
        std::vector<std::int32_t> out;
        out.reserve(static_cast<std::size_t>(header_.num_records * s.samples_per_record));
        for_each_sample(signal, [&](std::int32_t v) { out.push_back(v); });
        return out;
    }

    /// `signal` in physical units.
    Eigen::VectorXd physical(Index signal) const {
        const EdfSignal& s = signal_at(signal);
        if (s.annotation) throw config_error(path() + ": signal " + std::to_string(signal) + " holds annotations, not samples");
        Eigen::VectorXd out(static_cast<Index>(header_.num_records * s.samples_per_record));
        Index i = 0;
        for_each_sample(signal, [&](std::int32_t v) { out[i++] = s.to_physical(v); });
        return out;
    }

    /// A Recording of the signals labelled `labels` (all at one sample rate); with no
    /// labels, every ordinary signal at the most common sample rate.
    Recording read(const std::vector<std::string>& labels = {}) const {
        std::vector<Index> chosen;
        if (labels.empty()) {
            chosen = signals_at_common_rate();
        } else {
            for (const std::string& label : labels) chosen.push_back(signal_index(label));
        }
        if (chosen.empty()) throw config_error(path() + ": no ordinary (non-annotation) signals to read");
        const double rate = signal_at(chosen.front()).sample_rate;
        Recording rec;
        rec.sample_rate = rate;
        const Index samples = static_cast<Index>(header_.num_records * signal_at(chosen.front()).samples_per_record);
        rec.data.resize(static_cast<Index>(chosen.size()), samples);
        for (std::size_t c = 0; c < chosen.size(); ++c) {
            const EdfSignal& s = signal_at(chosen[c]);
            if (s.samples_per_record != signal_at(chosen.front()).samples_per_record) {
                throw config_error(path() + ": signal '" + s.label + "' is sampled at " + std::to_string(s.sample_rate) +
                                   " Hz, '" + signal_at(chosen.front()).label + "' at " + std::to_string(rate) +
                                   " Hz; resample them separately");
            }
            rec.data.row(static_cast<Index>(c)) = physical(chosen[c]).transpose();
            rec.labels.push_back(s.label);
        }
        return rec;
    }

    /// Every annotation of every annotation signal, in record order.
    std::vector<EdfAnnotation> annotations() const {
        std::vector<EdfAnnotation> out;
        for (std::size_t i = 0; i < header_.signals.size(); ++i) {
            const EdfSignal& s = header_.signals[i];
            if (!s.annotation) continue;
            const std::size_t offset = signal_offset(static_cast<Index>(i));
            const std::size_t bytes = static_cast<std::size_t>(s.samples_per_record) * header_.bytes_per_sample();
            for (std::int64_t r = 0; r < header_.num_records; ++r) {
                const std::size_t start = header_.header_bytes + static_cast<std::size_t>(r) * header_.record_bytes + offset;
                detail::edf::parse_tals(std::string_view(reinterpret_cast<const char*>(file_.data()) + start, bytes),
                                        static_cast<std::size_t>(r), path(), out);
            }
        }
        return out;
    }

private:
    const EdfSignal& signal_at(Index signal) const {
        if (signal < 0 || signal >= static_cast<Index>(header_.signals.size())) {
            throw config_error(path() + ": signal index " + std::to_string(signal) + " out of range (" +
                               std::to_string(header_.signals.size()) + " signals)");
        }
        return header_.signals[static_cast<std::size_t>(signal)];
    }

    std::size_t signal_offset(Index signal) const {
        std::size_t offset = 0;
        for (Index j = 0; j < signal; ++j) {
            offset += static_cast<std::size_t>(header_.signals[static_cast<std::size_t>(j)].samples_per_record) *
                      header_.bytes_per_sample();
        }
        return offset;
    }

    template <class Visit>
    void for_each_sample(Index signal, Visit&& visit) const {
        const EdfSignal& s = signal_at(signal);
        const std::size_t offset = signal_offset(signal);
        const std::size_t width = header_.bytes_per_sample();
        for (std::int64_t r = 0; r < header_.num_records; ++r) {
            // In bounds: parse_header checked header + num_records * record_bytes <= size.
            const unsigned char* p =
                file_.data() + header_.header_bytes + static_cast<std::size_t>(r) * header_.record_bytes + offset;
            for (std::int64_t k = 0; k < s.samples_per_record; ++k, p += width) visit(detail::edf::read_sample(p, header_.variant));
        }
    }

    std::vector<Index> signals_at_common_rate() const {
        std::map<std::int64_t, std::size_t> count;
        for (const EdfSignal& s : header_.signals) {
            if (!s.annotation) ++count[s.samples_per_record];
        }
        std::int64_t best = 0;
        std::size_t best_count = 0;
        for (const auto& [samples, n] : count) {
            if (n > best_count) best = samples, best_count = n;  // ties: the lower rate
        }
        std::vector<Index> chosen;
        for (std::size_t i = 0; i < header_.signals.size(); ++i) {
            if (!header_.signals[i].annotation && header_.signals[i].samples_per_record == best) {
                chosen.push_back(static_cast<Index>(i));
            }
        }
        return chosen;
    }

    MappedFile file_;
    EdfHeader header_;
};

// ------------------------------------------------------------------------------------
// Writing

/// One signal to write: header fields and its samples in physical units.
struct EdfWriteSignal {
    std::string label;
    std::string transducer;
    std::string physical_dimension = "uV";
    std::string prefiltering;
    double physical_minimum = -3200;
    double physical_maximum = 3200;
    std::int32_t digital_minimum = -32768;
    std::int32_t digital_maximum = 32767;
    std::int64_t samples_per_record = 0;
    Eigen::VectorXd samples;  ///< num_records * samples_per_record values
};

struct EdfWriteSpec {
    EdfVariant variant = EdfVariant::edf;
    bool plus = false;  ///< write EDF+C/BDF+C with an annotation signal
    std::string patient = "X X X X";
    std::string recording = "Startdate X X X X";
    std::string start_date = "01.01.00";
    std::string start_time = "00.00.00";
    double record_duration = 1.0;
    std::vector<EdfWriteSignal> signals;
    std::vector<EdfAnnotation> annotations;  ///< needs plus
};

namespace detail::edf {

inline void put_field(std::string& out, std::string_view text, std::size_t width, const std::string& field) {
    if (text.size() > width) {
        throw config_error("write_edf: field '" + field + "' = \"" + std::string(text) + "\" is longer than " +
                           std::to_string(width) + " characters");
    }
    for (const char c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) {
            throw config_error("write_edf: field '" + field + "' holds a character outside printable ASCII");
        }
    }
    out.append(text.data(), text.size());
    out.append(width - text.size(), ' ');
}

/// The shortest of %.{p}g that fits `width` characters and reads back as (nearly) `value`.
inline std::string format_real(double value, std::size_t width, const std::string& field) {
    char buffer[64];
    for (int precision = 15; precision >= 1; --precision) {
        std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
        if (std::strlen(buffer) <= width) return buffer;
    }
    throw config_error("write_edf: field '" + field + "' = " + std::to_string(value) + " does not fit " +
                       std::to_string(width) + " characters");
}

inline std::string tal_time(double seconds) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%+.6f", seconds);
    std::string text = buffer;
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    return text;
}

inline void put_sample(std::string& out, std::int32_t value, EdfVariant variant) {
    const auto u = static_cast<std::uint32_t>(value);
    out += static_cast<char>(u & 0xFF);
    out += static_cast<char>((u >> 8) & 0xFF);
    if (variant == EdfVariant::bdf) out += static_cast<char>((u >> 16) & 0xFF);
}

}  // namespace detail::edf

inline void write_edf(const std::string& path, const EdfWriteSpec& spec) {
    using namespace detail::edf;
    if (spec.signals.empty()) throw config_error("write_edf: no signals");
    if (!(spec.record_duration > 0)) throw config_error("write_edf: record_duration must be > 0");
    if (!spec.annotations.empty() && !spec.plus) throw config_error("write_edf: annotations need plus = true (EDF+)");
    const std::int64_t first_spr = spec.signals.front().samples_per_record;
    if (first_spr <= 0) throw config_error("write_edf: signal '" + spec.signals.front().label + "' samples_per_record must be > 0");
    const std::int64_t records = static_cast<std::int64_t>(spec.signals.front().samples.size()) / first_spr;
    for (const EdfWriteSignal& s : spec.signals) {
        if (s.samples_per_record <= 0) throw config_error("write_edf: signal '" + s.label + "' samples_per_record must be > 0");
        if (static_cast<std::int64_t>(s.samples.size()) != records * s.samples_per_record) {
            throw shape_error("write_edf: signal '" + s.label + "' has " + std::to_string(s.samples.size()) +
                              " samples, not " + std::to_string(records) + " records x " +
                              std::to_string(s.samples_per_record));
        }
        if (s.digital_minimum >= s.digital_maximum || s.digital_minimum < digital_limit(spec.variant, false) ||
            s.digital_maximum > digital_limit(spec.variant, true)) {
            throw config_error("write_edf: signal '" + s.label + "' has an invalid digital range");
        }
        if (s.physical_minimum == s.physical_maximum) throw config_error("write_edf: signal '" + s.label + "' has zero physical range");
    }

    // Annotation bytes per record: the time-keeping TAL plus the annotations whose onset
    // falls in that record.
    std::vector<std::string> tal_records;
    std::int64_t annotation_spr = 0;
    const std::size_t width = spec.variant == EdfVariant::bdf ? 3 : 2;
    if (spec.plus) {
        tal_records.resize(static_cast<std::size_t>(records));
        for (std::int64_t r = 0; r < records; ++r) {
            tal_records[static_cast<std::size_t>(r)] = tal_time(static_cast<double>(r) * spec.record_duration) + "\x14\x14" + std::string(1, '\0');
        }
        for (const EdfAnnotation& a : spec.annotations) {
            if (records == 0) throw config_error("write_edf: annotations need at least one data record");
            const auto r = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(a.onset / spec.record_duration)), 0, records - 1);
            std::string tal = tal_time(a.onset);
            if (a.duration) tal += "\x15" + tal_time(*a.duration).substr(1);  // durations carry no sign
            tal += "\x14" + a.text + "\x14" + std::string(1, '\0');
            tal_records[static_cast<std::size_t>(r)] += tal;
        }
        std::size_t longest = 0;
        for (const std::string& t : tal_records) longest = std::max(longest, t.size());
        annotation_spr = static_cast<std::int64_t>((std::max<std::size_t>(longest, 1) + width - 1) / width);
    }

    const std::size_t ns = spec.signals.size() + (spec.plus ? 1 : 0);
    std::string out;
    if (spec.variant == EdfVariant::bdf) {
        out.append(bdf_version, 8);  // \xFF is not printable ASCII: stored verbatim
    } else {
        put_field(out, "0", 8, "version");
    }
    put_field(out, spec.patient, 80, "patient");
    put_field(out, spec.recording, 80, "recording");
    put_field(out, spec.start_date, 8, "start date");
    put_field(out, spec.start_time, 8, "start time");
    put_field(out, std::to_string(256 * (ns + 1)), 8, "number of header bytes");
    const std::string reserved = spec.plus ? (spec.variant == EdfVariant::bdf ? "BDF+C" : "EDF+C") : (spec.variant == EdfVariant::bdf ? "24BIT" : "");
    put_field(out, reserved, 44, "reserved");
    put_field(out, std::to_string(records), 8, "number of data records");
    put_field(out, format_real(spec.record_duration, 8, "duration of a data record"), 8, "duration of a data record");
    put_field(out, std::to_string(ns), 4, "number of signals");

    const std::string annotation_label = spec.variant == EdfVariant::bdf ? "BDF Annotations" : "EDF Annotations";
    const auto each = [&](auto field_of) {
        for (const EdfWriteSignal& s : spec.signals) field_of(s, false);
        if (spec.plus) field_of(spec.signals.front(), true);
    };
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? annotation_label : s.label, 16, "label"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? "" : s.transducer, 80, "transducer type"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? "" : s.physical_dimension, 8, "physical dimension"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? "-1" : format_real(s.physical_minimum, 8, s.label + " physical minimum"), 8, "physical minimum"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? "1" : format_real(s.physical_maximum, 8, s.label + " physical maximum"), 8, "physical maximum"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, std::to_string(a ? digital_limit(spec.variant, false) : s.digital_minimum), 8, "digital minimum"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, std::to_string(a ? digital_limit(spec.variant, true) : s.digital_maximum), 8, "digital maximum"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, a ? "" : s.prefiltering, 80, "prefiltering"); });
    each([&](const EdfWriteSignal& s, bool a) { put_field(out, std::to_string(a ? annotation_spr : s.samples_per_record), 8, "samples per record"); });
    each([&](const EdfWriteSignal&, bool) { put_field(out, "", 32, "reserved"); });

    for (std::int64_t r = 0; r < records; ++r) {
        for (const EdfWriteSignal& s : spec.signals) {
            const double gain = (s.physical_maximum - s.physical_minimum) /
                                (static_cast<double>(s.digital_maximum) - static_cast<double>(s.digital_minimum));
            for (std::int64_t k = 0; k < s.samples_per_record; ++k) {
                const double physical = s.samples[static_cast<Index>(r * s.samples_per_record + k)];
                if (!std::isfinite(physical)) throw numeric_error("write_edf: signal '" + s.label + "' holds a non-finite sample");
                const double digital = std::round((physical - s.physical_minimum) / gain + s.digital_minimum);
                const double clipped = std::clamp(digital, static_cast<double>(s.digital_minimum), static_cast<double>(s.digital_maximum));
                put_sample(out, static_cast<std::int32_t>(clipped), spec.variant);
            }
        }
        if (spec.plus) {
            std::string tal = tal_records[static_cast<std::size_t>(r)];
            tal.resize(static_cast<std::size_t>(annotation_spr) * width, '\0');
            out += tal;
        }
    }
    write_file_atomically(path, out);
}

}  // namespace sae::eeg
