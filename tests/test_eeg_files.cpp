// EEG file readers: the three real EDF/EDF+/BDF files and the EEGLAB recording in
// examples/data/eeg, checked against an independent NumPy/SciPy reading
// (tools/reference/eeg_reference.py -> tests/fixtures/eeg/edf_reference.json) and
// against their headers' ranges; files written by write_edf read back; and every
// malformed-input path (truncation, zero sample rate, junk in numeric fields, bad TALs,
// bad MAT-files), plus seeded random mutations that must end in sae::io_error.

#include <sae/eeg/edf.hpp>
#include <sae/eeg/eeglab.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace test_eeg_files_cases {

namespace {

using sae::test::TempDir;
using sae::test::read_bytes;
using sae::test::write_bytes;
using namespace sae::eeg;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

const std::string data_dir = std::string(SAE_DATA_DIR) + "/eeg/";

/// The shipped recording at `relative`, or a test failure saying where it was looked for.
std::string data_file(const std::string& relative) {
    const std::string path = data_dir + relative;
    if (!std::filesystem::exists(path)) {
        FAIL("EEG data missing: " << path << " (see examples/data/eeg/SOURCE.md; the tests need the real files)");
    }
    return path;
}

const nlohmann::json& reference() {
    static const nlohmann::json json =
        nlohmann::json::parse(sae::read_whole_file(std::string(SAE_TEST_FIXTURES_DIR) + "/eeg/edf_reference.json"));
    return json;
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); }

/// A small valid EDF+ file: two signals of 4 samples per 0.5-s record, 3 records, one annotation.
EdfWriteSpec small_spec(EdfVariant variant = EdfVariant::edf, bool plus = true) {
    EdfWriteSpec spec;
    spec.variant = variant;
    spec.plus = plus;
    spec.record_duration = 0.5;
    for (int s = 0; s < 2; ++s) {
        EdfWriteSignal signal;
        signal.label = s == 0 ? "Fz" : "EOG";
        signal.samples_per_record = 4;
        signal.physical_minimum = -100;
        signal.physical_maximum = 100;
        if (variant == EdfVariant::bdf) {
            signal.digital_minimum = -8388608;
            signal.digital_maximum = 8388607;
        }
        signal.samples.resize(12);
        for (int i = 0; i < 12; ++i) signal.samples[i] = (s + 1) * 7.5 * std::sin(0.7 * i) - 3 * s;
        spec.signals.push_back(signal);
    }
    if (plus) spec.annotations = {{0.25, 1.5, "blink"}, {1.0, std::nullopt, "eyes closed"}};
    return spec;
}

std::string write_small(const TempDir& dir, const std::string& name, const EdfWriteSpec& spec = small_spec()) {
    const std::string path = dir.file(name);
    write_edf(path, spec);
    return path;
}

/// Byte offset of per-signal field number `field` (0 = label ... 8 = samples) of signal i.
std::size_t signal_field_offset(std::size_t ns, int field, std::size_t i) {
    static const std::size_t widths[] = {16, 80, 8, 8, 8, 8, 8, 80, 8, 32};
    std::size_t offset = 256;
    for (int f = 0; f < field; ++f) offset += widths[f] * ns;
    return offset + widths[field] * i;
}

std::string with_field(std::string bytes, std::size_t offset, std::size_t width, const std::string& text) {
    std::string padded = text;
    padded.resize(width, ' ');
    bytes.replace(offset, width, padded);
    return bytes;
}

std::string io_error_message(const std::string& path, bool with_annotations = true) {
    try {
        EdfFile file(path);
        for (std::size_t s = 0; s < file.header().signals.size(); ++s) {
            if (!file.header().signals[s].annotation) file.physical(static_cast<sae::Index>(s));
        }
        if (with_annotations) file.annotations();
    } catch (const sae::io_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("EDF and BDF headers and samples of the real files match an independent NumPy reading", "[eeg][edf]") {
    for (const std::string name : {"eeglab_test.edf", "mne_test.edf", "mne_test.bdf"}) {
        INFO(name);
        const nlohmann::json& ref = reference()["edf"][name];
        const EdfFile file(data_file("" + name));
        const EdfHeader& h = file.header();
        CHECK((h.variant == EdfVariant::bdf) == (ref["variant"] == "bdf"));
        CHECK(h.plus == ref["plus"].get<bool>());
        CHECK(h.num_records == ref["num_records"].get<std::int64_t>());
        CHECK(h.record_duration == ref["record_duration"].get<double>());
        REQUIRE(h.signals.size() == ref["ns"].get<std::size_t>());
        for (std::size_t i = 0; i < h.signals.size(); ++i) {
            CHECK(h.signals[i].label == ref["labels"][i].get<std::string>());
            CHECK(h.signals[i].physical_dimension == ref["physical_dimension"][i].get<std::string>());
            CHECK(h.signals[i].physical_minimum == ref["physical_minimum"][i].get<double>());
            CHECK(h.signals[i].physical_maximum == ref["physical_maximum"][i].get<double>());
            CHECK(h.signals[i].digital_minimum == ref["digital_minimum"][i].get<std::int32_t>());
            CHECK(h.signals[i].digital_maximum == ref["digital_maximum"][i].get<std::int32_t>());
            CHECK(h.signals[i].samples_per_record == ref["samples_per_record"][i].get<std::int64_t>());
        }
        for (const nlohmann::json& s : ref["signals"]) {
            const auto index = s["index"].get<sae::Index>();
            const EdfSignal& info = h.signals[static_cast<std::size_t>(index)];
            const Eigen::VectorXd x = file.physical(index);
            REQUIRE(x.size() == s["count"].get<sae::Index>());
            CHECK(info.sample_rate == s["sample_rate"].get<double>());
            bool head_ok = true, tail_ok = true;
            for (int k = 0; k < 6; ++k) {
                head_ok = head_ok && close(x[k], s["first"][k].get<double>());
                tail_ok = tail_ok && close(x[x.size() - 6 + k], s["last"][k].get<double>());
            }
            CHECK(head_ok);
            CHECK(tail_ok);
            CHECK(close(x.minCoeff(), s["min"].get<double>()));
            CHECK(close(x.maxCoeff(), s["max"].get<double>()));
            CHECK_THAT(x.mean(), WithinAbs(s["mean"].get<double>(), 1e-9 * std::max(1.0, x.cwiseAbs().maxCoeff())));
            const std::vector<std::int32_t> digital = file.digital(index);
            const auto outside = std::count_if(digital.begin(), digital.end(), [&](std::int32_t d) {
                return d < info.digital_minimum || d > info.digital_maximum;
            });
            CHECK(outside == s["digital_out_of_range"].get<long>());
        }
    }
}

TEST_CASE("Physical values of the real files lie within their headers' physical ranges", "[eeg][edf]") {
    // eeglab_test.edf and mne_test.bdf keep every sample inside the declared range.
    for (const std::string name : {"eeglab_test.edf", "mne_test.bdf"}) {
        INFO(name);
        const EdfFile file(data_file("" + name));
        for (std::size_t i = 0; i < file.header().signals.size(); ++i) {
            const EdfSignal& s = file.header().signals[i];
            const Eigen::VectorXd x = file.physical(static_cast<sae::Index>(i));
            const double lo = std::min(s.physical_minimum, s.physical_maximum);
            const double hi = std::max(s.physical_minimum, s.physical_maximum);
            const double slack = 1e-9 * (hi - lo);
            INFO("signal " << s.label);
            CHECK(x.minCoeff() >= lo - slack);
            CHECK(x.maxCoeff() <= hi + slack);
        }
    }
    // MNE's test file declares digital 0..100 (gain 1) but stores values from about -220
    // to 4352: the reader reports them as stored (as MNE and pyedflib do), unclipped, and
    // the NumPy reading counts the same 138 out-of-range signals.
    const EdfFile mne(data_file("mne_test.edf"));
    int outside = 0;
    for (std::size_t i = 0; i < mne.header().signals.size(); ++i) {
        const EdfSignal& s = mne.header().signals[i];
        if (s.annotation) continue;
        const Eigen::VectorXd x = mne.physical(static_cast<sae::Index>(i));
        if (x.minCoeff() < s.physical_minimum || x.maxCoeff() > s.physical_maximum) ++outside;
    }
    long expected = 0;
    for (const nlohmann::json& s : reference()["edf"]["mne_test.edf"]["signals"]) expected += s["digital_out_of_range"].get<long>() > 0;
    CHECK(outside == expected);
    CHECK(outside == 138);
}

TEST_CASE("EDF+ annotations of mne_test.edf match the NumPy reading", "[eeg][edf]") {
    const EdfFile file(data_file("mne_test.edf"));
    const std::vector<EdfAnnotation> annotations = file.annotations();
    const nlohmann::json& ref = reference()["edf"]["mne_test.edf"]["annotations"];
    REQUIRE(annotations.size() == ref.size());
    for (std::size_t i = 0; i < annotations.size(); ++i) {
        CHECK(annotations[i].onset == ref[i]["onset"].get<double>());
        CHECK(annotations[i].text == ref[i]["text"].get<std::string>());
        CHECK(annotations[i].duration.has_value() == !ref[i]["duration"].is_null());
        if (annotations[i].duration) CHECK(*annotations[i].duration == ref[i]["duration"].get<double>());
    }
    CHECK(EdfFile(data_file("eeglab_test.edf")).annotations().empty());
}

TEST_CASE("EdfFile::read selects channels by label and keeps the common rate", "[eeg][edf]") {
    const EdfFile file(data_file("mne_test.edf"));
    const Recording all = file.read();
    CHECK(all.channels() == 139);  // 140 signals less the annotation signal, all at 512 Hz
    CHECK(all.sample_rate == 512.0);
    CHECK(all.samples() == 6 * 512);
    const Recording two = file.read({"B2", "A1"});
    REQUIRE(two.channels() == 2);
    CHECK(two.labels == std::vector<std::string>{"B2", "A1"});
    CHECK(two.data.row(1) == all.data.row(all.channel_index("A1")));
    CHECK(two.data.row(0) == file.physical(file.signal_index("B2")).transpose());
    CHECK_THROWS_WITH(file.read({"Cz"}), Contains("no signal labelled 'Cz'"));
    CHECK_THROWS_AS(file.physical(file.signal_index("EDF Annotations")), sae::config_error);
    CHECK_THROWS_AS(file.physical(140), sae::config_error);
    CHECK_THROWS_WITH(all.select({"Q9"}), Contains("no channel labelled 'Q9'"));
}

TEST_CASE("EEGLAB .set, .fdt and .locs agree with scipy.io.loadmat and numpy.fromfile", "[eeg][eeglab]") {
    const nlohmann::json& ref = reference()["eeglab"];
    const std::string set_path = data_file("eeglab_data.set");
    const EeglabSet set = read_eeglab_set(set_path);
    CHECK(set.channels == ref["nbchan"].get<sae::Index>());
    CHECK(set.samples == ref["pnts"].get<sae::Index>());
    CHECK(set.trials == ref["trials"].get<sae::Index>());
    CHECK(set.sample_rate == ref["srate"].get<double>());
    CHECK(set.data_file == ref["data_file"].get<std::string>());
    CHECK(set.labels == ref["labels"].get<std::vector<std::string>>());
    CHECK(read_locs_labels(data_file("eeglab_chan32.locs")) == ref["locs_labels"].get<std::vector<std::string>>());

    const Recording rec = load_eeglab(set_path);
    REQUIRE(rec.channels() == 32);
    REQUIRE(rec.samples() == ref["samples"].get<sae::Index>());
    CHECK(rec.labels[1] == "EOG1");
    CHECK(rec.labels[5] == "EOG2");
    for (const nlohmann::json& c : ref["channels"]) {
        const auto channel = c["index"].get<sae::Index>();
        for (int k = 0; k < 8; ++k) {
            CHECK(rec.data(channel, k) == c["first"][k].get<double>());
            CHECK(rec.data(channel, rec.samples() - 8 + k) == c["last"][k].get<double>());
        }
        CHECK_THAT(rec.data.row(channel).mean(), WithinRel(c["mean"].get<double>(), 1e-9));
    }
    // Metadata given explicitly instead of the .set.
    const Recording explicit_rec = load_fdt(data_file("eeglab_data.fdt"), 128.0, set.labels);
    CHECK(explicit_rec.data == rec.data);
    CHECK_THROWS_WITH(load_fdt(data_file("eeglab_data.fdt"), 128.0, std::vector<std::string>(7, "x")),
                      Contains("not a whole number of time points"));
}

TEST_CASE("write_edf writes EDF+, BDF+ and plain EDF files that read back", "[eeg][edf]") {
    TempDir dir("eeg_write");
    for (const EdfVariant variant : {EdfVariant::edf, EdfVariant::bdf}) {
        for (const bool plus : {true, false}) {
            INFO((variant == EdfVariant::bdf ? "bdf" : "edf") << (plus ? "+" : ""));
            const EdfWriteSpec spec = small_spec(variant, plus);
            const std::string path = write_small(dir, "round_trip.edf", spec);
            const EdfFile file(path);
            const EdfHeader& h = file.header();
            CHECK(h.variant == variant);
            CHECK(h.plus == plus);
            CHECK(h.num_records == 3);
            CHECK(h.record_duration == 0.5);
            REQUIRE(h.signals.size() == (plus ? 3u : 2u));
            CHECK(h.signals[0].sample_rate == 8.0);
            CHECK(h.signals[1].label == "EOG");
            for (int s = 0; s < 2; ++s) {
                const Eigen::VectorXd x = file.physical(s);
                const double step = h.signals[s].gain();
                CHECK(step == (200.0 / (static_cast<double>(h.signals[s].digital_maximum) - h.signals[s].digital_minimum)));
                CHECK((x - spec.signals[s].samples).cwiseAbs().maxCoeff() <= 0.5 * step + 1e-12);
            }
            const std::vector<EdfAnnotation> annotations = file.annotations();
            REQUIRE(annotations.size() == (plus ? 2u : 0u));
            if (plus) {
                CHECK(annotations[0].onset == 0.25);
                CHECK(annotations[0].duration == 1.5);
                CHECK(annotations[0].text == "blink");
                CHECK(annotations[1].onset == 1.0);
                CHECK_FALSE(annotations[1].duration.has_value());
                CHECK(annotations[1].text == "eyes closed");
            }
        }
    }
    // Samples beyond the physical range are clipped to the digital range.
    EdfWriteSpec clipped = small_spec(EdfVariant::edf, false);
    clipped.signals[0].samples[0] = 1e6;
    const EdfFile file(write_small(dir, "clipped.edf", clipped));
    CHECK(file.digital(0)[0] == 32767);
    // Atomic: nothing but the finished files is left in the directory.
    int entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) entries += entry.is_regular_file();
    CHECK(entries == 2);
}

TEST_CASE("write_edf rejects specs it cannot represent", "[eeg][edf]") {
    TempDir dir("eeg_write_bad");
    EdfWriteSpec spec = small_spec();
    spec.signals[1].samples.resize(11);
    CHECK_THROWS_AS(write_edf(dir.file("a.edf"), spec), sae::shape_error);
    spec = small_spec();
    spec.signals[0].label = std::string(17, 'L');
    CHECK_THROWS_WITH(write_edf(dir.file("a.edf"), spec), Contains("label"));
    spec = small_spec(EdfVariant::edf, false);
    spec.annotations = {{0.0, std::nullopt, "x"}};
    CHECK_THROWS_AS(write_edf(dir.file("a.edf"), spec), sae::config_error);
    spec = small_spec();
    spec.signals[0].digital_minimum = -40000;
    CHECK_THROWS_AS(write_edf(dir.file("a.edf"), spec), sae::config_error);
    CHECK_FALSE(std::filesystem::exists(dir.file("a.edf")));
}

TEST_CASE("Malformed EDF headers and records raise io_error naming the field", "[eeg][edf][errors]") {
    TempDir dir("eeg_bad");
    const std::string good = read_bytes(write_small(dir, "good.edf"));
    const std::size_t ns = 3;  // two signals and the annotation signal
    const std::size_t header = 256 * (ns + 1);
    const std::size_t record_bytes = (4 + 4) * 2 + static_cast<std::size_t>(EdfFile(dir.file("good.edf")).header().signals[2].samples_per_record) * 2;
    REQUIRE(good.size() == header + 3 * record_bytes);

    struct Case {
        const char* name;
        std::string bytes;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {"shorter than the fixed header", good.substr(0, 100), "truncated"},
        {"signal headers cut off", good.substr(0, 256 + 300), "truncated"},
        {"last record cut short", good.substr(0, good.size() - 5), "'number of data records' = 3 records"},
        {"no data records at all", good.substr(0, header), "truncated"},
        {"bad version", with_field(good, 0, 8, "1"), "'version'"},
        {"junk number of signals", with_field(good, 252, 4, "x3"), "'number of signals'"},
        {"zero signals", with_field(good, 252, 4, "0"), "'number of signals'"},
        {"header size disagrees", with_field(good, 184, 8, "768"), "'number of header bytes'"},
        {"non-ASCII junk in the record count", with_field(good, 236, 8, "3\xE9"), "'number of data records' = \"3\\xE9"},
        {"negative record count", with_field(good, 236, 8, "-2"), "'number of data records'"},
        {"unknown record count with a partial record", with_field(good.substr(0, good.size() - 5), 236, 8, "-1"), "truncated"},
        {"huge record count", with_field(good, 236, 8, "99999999"), "truncated"},
        {"zero record duration", with_field(good, 244, 8, "0"), "'duration of a data record'"},
        {"junk record duration", with_field(good, 244, 8, "0.5s"), "'duration of a data record'"},
        {"zero samples per record", with_field(good, signal_field_offset(ns, 8, 1), 8, "0"),
         "'signal 1 ('EOG') number of samples in each data record' = 0"},
        {"junk physical minimum", with_field(good, signal_field_offset(ns, 3, 0), 8, "1.2.3"), "'signal 0 ('Fz') physical minimum'"},
        {"NUL inside a physical maximum", with_field(good, signal_field_offset(ns, 4, 1), 8, std::string("10\0" "0", 4)),
         "'signal 1 ('EOG') physical maximum' = \"10\\x000"},
        {"digital minimum above maximum", with_field(good, signal_field_offset(ns, 5, 0), 8, "32767"), "'signal 0 ('Fz') digital minimum'"},
        {"digital maximum beyond 16 bits", with_field(good, signal_field_offset(ns, 6, 1), 8, "40000"), "'signal 1 ('EOG') digital maximum'"},
        {"zero physical range", with_field(good, signal_field_offset(ns, 4, 0), 8, "-100"), "'signal 0 ('Fz') physical maximum'"},
        {"discontinuous EDF+D", with_field(good, 192, 44, "EDF+D"), "'reserved'"},
        {"unknown EDF+ flavour", with_field(good, 192, 44, "EDF+X"), "'reserved'"},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const std::string path = dir.file("bad.edf", c.bytes);
        const std::string message = io_error_message(path);
        CHECK_THAT(message, Contains(c.expected));
        CHECK_THAT(message, Contains(path));
    }

    // Malformed annotations surface from annotations(), naming the record.
    const std::size_t tal = header + 16;  // the annotation bytes of record 0
    const auto tal_case = [&](const std::string& bytes) {
        std::string edited = good;
        edited.replace(tal, bytes.size(), bytes);
        return io_error_message(dir.file("bad_tal.edf", edited));
    };
    CHECK_THAT(tal_case("0\x14\x14"), Contains("annotation record 0: TAL onset"));
    CHECK_THAT(tal_case("+0AB"), Contains("annotation record 0: TAL \"+0AB\" has no \\x14"));
    CHECK_THAT(tal_case("+x\x14\x14"), Contains("annotation record 0 onset"));
    std::string unterminated = good;
    for (std::size_t i = tal; i < header + record_bytes; ++i) unterminated[i] = 'A';
    unterminated[tal] = '+';
    CHECK_THAT(io_error_message(dir.file("bad_tal.edf", unterminated)), Contains("not terminated"));
}

TEST_CASE("Random byte mutations of EDF files end in io_error or a valid read, never out of bounds", "[eeg][edf][errors]") {
    TempDir dir("eeg_mutate");
    for (const EdfVariant variant : {EdfVariant::edf, EdfVariant::bdf}) {
        const std::string good = read_bytes(write_small(dir, "good.edf", small_spec(variant, true)));
        std::mt19937 rng(2024);
        std::uniform_int_distribution<std::size_t> position(0, good.size() - 1);
        std::uniform_int_distribution<int> byte(0, 255), count(1, 4);
        const char interesting[] = {'0', '9', '-', '+', '.', ' ', 'e', '\0', '\x14', '\x15', '\xFF'};
        int parsed = 0, rejected = 0;
        for (int trial = 0; trial < 400; ++trial) {
            std::string bytes = good;
            for (int k = count(rng); k > 0; --k) {
                const std::size_t at = position(rng) % (trial % 2 == 0 ? 256 * 4 : good.size());
                bytes[at] = trial % 3 == 0 ? interesting[static_cast<std::size_t>(byte(rng)) % sizeof interesting]
                                           : static_cast<char>(byte(rng));
            }
            if (trial % 7 == 0) bytes.resize(position(rng));
            const std::string path = dir.file("mutated.edf", bytes);
            try {
                EdfFile file(path);
                for (std::size_t s = 0; s < file.header().signals.size(); ++s) {
                    if (!file.header().signals[s].annotation) file.physical(static_cast<sae::Index>(s));
                }
                file.annotations();
                ++parsed;
            } catch (const sae::io_error&) {
                ++rejected;
            }
        }
        CHECK(parsed > 0);
        CHECK(rejected > 0);
    }
}

namespace {

/// A hand-built MATLAB level-5 file, independent of the reader: 128-byte header, then
/// miMATRIX elements (8-byte tags, data padded to 8 bytes).
struct MatBuilder {
    static std::string tag(std::uint32_t type, const std::string& data) {
        std::string out(8, '\0');
        const auto size = static_cast<std::uint32_t>(data.size());
        std::memcpy(&out[0], &type, 4);
        std::memcpy(&out[4], &size, 4);
        out += data;
        out.resize((out.size() + 7) / 8 * 8, '\0');
        return out;
    }
    template <class T>
    static std::string raw(const std::vector<T>& values) {
        std::string out(values.size() * sizeof(T), '\0');
        if (!values.empty()) std::memcpy(&out[0], values.data(), out.size());
        return out;
    }
    static std::string header(const std::string& name, std::uint32_t cls, std::vector<std::int32_t> dims) {
        return tag(6, raw(std::vector<std::uint32_t>{cls, 0})) + tag(5, raw(dims)) + tag(1, name);
    }
    static std::string number(const std::string& name, double value) {
        return tag(14, header(name, 6, {1, 1}) + tag(9, raw(std::vector<double>{value})));
    }
    static std::string text(const std::string& name, const std::string& s) {
        std::vector<std::uint16_t> units(s.begin(), s.end());
        return tag(14, header(name, 4, {1, static_cast<std::int32_t>(s.size())}) + tag(4, raw(units)));
    }
    static std::string matrix(const std::string& name, std::int32_t rows, std::int32_t cols, const std::vector<double>& column_major) {
        return tag(14, header(name, 6, {rows, cols}) + tag(9, raw(column_major)));
    }
    static std::string file(const std::string& body) {
        std::string out = "MATLAB 5.0 MAT-file, written by test_eeg_files";
        out.resize(116, ' ');
        out += std::string(8, '\0');
        out += std::string("\x00\x01", 2);
        out += "IM";
        return out + body;
    }
};

}  // namespace

TEST_CASE("EEGLAB metadata errors name the field; MAT-file errors never read out of bounds", "[eeg][eeglab][errors]") {
    TempDir dir("eeg_eeglab_bad");
    using M = MatBuilder;
    // A flat-layout .set (one variable per field) holding its data inline: 2 channels x 3 points.
    const std::string fields_ok = M::number("nbchan", 2) + M::number("pnts", 3) + M::number("trials", 1);
    const std::string inline_set = M::file(fields_ok + M::number("srate", 250) + M::matrix("data", 2, 3, {1, 2, 3, 4, 5, 6}));
    const Recording rec = load_eeglab(dir.file("inline.set", inline_set));
    CHECK(rec.sample_rate == 250);
    CHECK(rec.labels == std::vector<std::string>{"E1", "E2"});
    REQUIRE(rec.samples() == 3);
    CHECK(rec.data(0, 0) == 1);
    CHECK(rec.data(1, 0) == 2);
    CHECK(rec.data(1, 2) == 6);

    const auto message = [&](const std::string& bytes) -> std::string {
        try {
            load_eeglab(dir.file("bad.set", bytes));
        } catch (const sae::io_error& e) {
            return e.what();
        }
        return "";
    };
    CHECK_THAT(message(M::file(fields_ok + M::number("srate", 0) + M::matrix("data", 2, 3, {1, 2, 3, 4, 5, 6}))),
               Contains("'EEG.srate' = 0"));
    CHECK_THAT(message(M::file(fields_ok + M::matrix("data", 2, 3, {1, 2, 3, 4, 5, 6}))), Contains("'EEG.srate' is missing"));
    CHECK_THAT(message(M::file(M::number("nbchan", 2.5) + M::number("pnts", 3) + M::number("srate", 1) + M::text("data", "x.fdt"))),
               Contains("'EEG.nbchan'"));
    CHECK_THAT(message(M::file(fields_ok + M::number("srate", 1) + M::matrix("data", 2, 2, {1, 2, 3, 4}))), Contains("'EEG.data'"));
    CHECK_THAT(message(M::file(fields_ok + M::number("srate", 1) + M::text("data", "missing.fdt"))), Contains("missing.fdt"));
    CHECK_THAT(message(M::file(M::tag(15, "compressed"))), Contains("compressed"));
    CHECK_THAT(message("MATLAB 7.3 MAT-file" + std::string(200, ' ')), Contains("HDF5"));
    CHECK_THAT(message("not a MAT-file"), Contains("truncated"));
    CHECK_THAT(message(M::file(fields_ok).substr(0, 128 + 20)), Contains("MAT element at byte"));

    // The real .set with random bytes changed: io_error or a successful read, nothing else.
    const std::string real = read_bytes(data_file("eeglab_data.set"));
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::size_t> position(128, 4096);  // the tags of EEG and its first fields
    std::uniform_int_distribution<int> byte(0, 255);
    int rejected = 0;
    for (int trial = 0; trial < 60; ++trial) {
        std::string bytes = real;
        bytes[position(rng)] = static_cast<char>(byte(rng));
        if (trial % 5 == 0) bytes.resize(position(rng));
        try {
            read_eeglab_set(dir.file("mutated.set", bytes));
        } catch (const sae::io_error&) {
            ++rejected;
        }
    }
    CHECK(rejected > 0);

    // .fdt and .locs problems.
    const float values[] = {1.0f, std::nanf(""), 2.0f, 3.0f};
    const std::string nan_fdt = dir.file("nan.fdt", std::string(reinterpret_cast<const char*>(values), sizeof values));
    CHECK_THROWS_WITH(read_fdt(nan_fdt, 2), Contains("time point 0, channel 1 is not finite"));
    CHECK_THROWS_AS(read_fdt(nan_fdt, 0), sae::config_error);
    CHECK_THROWS_WITH(read_locs_labels(dir.file("bad.locs", "1 0 0.5 Fz\n2 1e3x 0.5 Cz\n")), Contains("line 2 theta"));
    CHECK_THROWS_WITH(read_locs_labels(dir.file("bad.locs", "1 0 0.5 Fz\n3 0 0.5 Cz\n")), Contains("line 2 channel number 3"));
    CHECK_THROWS_WITH(read_locs_labels(dir.file("bad.locs", "1 0 Fz\n")), Contains("line 1 has 3 columns"));
    CHECK_THROWS_WITH(read_locs_labels(dir.file("bad.locs", "\n\n")), Contains("no channel lines"));
}

TEST_CASE("Sizes in a .set cost only what its files hold (regressions)", "[eeg][eeglab][errors]") {
    TempDir dir("eeg_eeglab_sizes");
    using M = MatBuilder;
    // A char array of 2^31 - 1 rows and no columns holds no character, so its text is
    // empty. The reader wrote one line break per row: 2 GB (fuzz/: sae_fuzz_eeglab,
    // out-of-memory).
    const std::string rows_only = M::file(M::tag(14, M::header("x", 4, {0x7FFFFFFF, 0}) + M::tag(4, "")));
    const std::vector<sae::MatVariable> variables = sae::read_mat_v5(dir.file("rows.mat", rows_only));
    REQUIRE(variables.size() == 1);
    CHECK(variables[0].value.kind == sae::MatValue::Kind::text);
    CHECK(variables[0].value.text.empty());

    // nbchan = 10^15 with the data in an .fdt of 16 bytes: the .fdt refutes it. Default
    // labels "E1".."E<nbchan>" were made before the .fdt was read: 10^15 of them.
    dir.file("four.fdt", std::string(16, '\0'));
    const std::string many_channels = M::file(M::number("nbchan", 1e15) + M::number("pnts", 4) + M::number("srate", 1) +
                                              M::text("data", "four.fdt"));
    CHECK_THROWS_WITH(load_eeglab(dir.file("channels.set", many_channels)), Contains("four.fdt"));
    // pnts x trials = 10^30 does not fit 64 bits: an error, not an overflowed product
    // (undefined behaviour, reported by UBSan).
    const std::string many_points = M::file(M::number("nbchan", 1) + M::number("pnts", 1e15) + M::number("trials", 1e15) +
                                            M::number("srate", 1) + M::text("data", "four.fdt"));
    CHECK_THROWS_WITH(load_eeglab(dir.file("points.set", many_points)), Contains("pnts x trials"));
}

}  // namespace test_eeg_files_cases
