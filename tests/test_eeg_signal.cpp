// EEG signal processing: Butterworth sections, sosfiltfilt, resample_poly and Welch PSDs
// against SciPy 1.10 (tools/reference/eeg_reference.py -> tests/fixtures/eeg/
// signal_reference.json), plus hand derivations: Butterworth gains at DC, Nyquist and the
// cutoffs, segmenting with the last window zero-padded, per-channel z-scores, mixing at
// a given SNR and the EEGdenoiseNet metrics; and the SVG line plot.

#include <sae/eeg/butterworth.hpp>
#include <sae/eeg/denoising.hpp>
#include <sae/eeg/filtfilt.hpp>
#include <sae/eeg/resample.hpp>
#include <sae/eeg/segments.hpp>
#include <sae/io/file.hpp>
#include <sae/io/svg_plot.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <complex>
#include <string>
#include <vector>

namespace test_eeg_signal_cases {

namespace {

using namespace sae::eeg;
using sae::Index;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

const nlohmann::json& reference() {
    static const nlohmann::json json =
        nlohmann::json::parse(sae::read_whole_file(std::string(SAE_TEST_FIXTURES_DIR) + "/eeg/signal_reference.json"));
    return json;
}

sae::Matrix<double> row_of(const nlohmann::json& values) {
    const std::vector<double> v = values.get<std::vector<double>>();
    sae::Matrix<double> m(1, static_cast<Index>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) m(0, static_cast<Index>(i)) = v[i];
    return m;
}

/// Largest |a - b| relative to max(1, |b|) over all elements. (Arguments are evaluated
/// into matrices: one instantiation of every library template keeps this file quick to
/// compile.)
double max_relative_error(const sae::Matrix<double>& a, const sae::Matrix<double>& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return ((a - b).cwiseAbs().array() / b.cwiseAbs().array().max(1.0)).maxCoeff();
}

FilterBand band_of(const std::string& name) {
    if (name == "lowpass") return FilterBand::lowpass;
    if (name == "highpass") return FilterBand::highpass;
    return FilterBand::bandpass;
}

/// |H(e^{i 2 pi f / fs})| of the cascade, evaluated directly from the coefficients.
double gain_at(const SecondOrderSections& sos, double f, double fs) {
    const std::complex<double> z1 = std::polar(1.0, -2.0 * 3.14159265358979323846 * f / fs);
    std::complex<double> h(1.0, 0.0);
    for (Index s = 0; s < sos.rows(); ++s) {
        h *= (sos(s, 0) + sos(s, 1) * z1 + sos(s, 2) * z1 * z1) / (sos(s, 3) + sos(s, 4) * z1 + sos(s, 5) * z1 * z1);
    }
    return std::abs(h);
}

}  // namespace

TEST_CASE("Butterworth sections and sosfilt_zi match scipy.signal.butter(output='sos')", "[eeg][butterworth]") {
    for (const nlohmann::json& d : reference()["designs"]) {
        const int order = d["order"].get<int>();
        const std::string band = d["band"].get<std::string>();
        const double fs = d["fs"].get<double>();
        INFO("order " << order << " " << band << " fs " << fs);
        const SecondOrderSections sos = butterworth_sos(order, band_of(band), d["cutoffs"].get<std::vector<double>>(), fs);
        const auto expected = d["sos"].get<std::vector<std::vector<double>>>();
        REQUIRE(sos.rows() == static_cast<Index>(expected.size()));
        sae::Matrix<double> want(sos.rows(), 6), want_zi(sos.rows(), 2);
        for (Index r = 0; r < sos.rows(); ++r) {
            for (Index c = 0; c < 6; ++c) want(r, c) = expected[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
            for (Index c = 0; c < 2; ++c) want_zi(r, c) = d["sosfilt_zi"][static_cast<std::size_t>(r)][static_cast<std::size_t>(c)].get<double>();
        }
        CHECK(max_relative_error(sos, want) < 1e-11);
        CHECK(max_relative_error(sae::Matrix<double>(sosfilt_zi(sos)), want_zi) < 1e-9);
    }
}

TEST_CASE("Butterworth gains follow from the design by hand: 1 in the pass band, 1/sqrt(2) at every cutoff",
          "[eeg][butterworth]") {
    // The bilinear transform with pre-warping maps each analog cutoff exactly onto the
    // digital one, where a Butterworth magnitude is 1/sqrt(2); DC (low-pass) and Nyquist
    // (high-pass) map to the analog 0 and infinity, where the gain is exactly 1 or 0.
    const double half = 1.0 / std::sqrt(2.0);
    const SecondOrderSections low = butterworth_sos(4, FilterBand::lowpass, {30.0}, 256.0);
    CHECK_THAT(gain_at(low, 0.0, 256.0), WithinAbs(1.0, 1e-12));
    CHECK_THAT(gain_at(low, 30.0, 256.0), WithinAbs(half, 1e-12));
    CHECK_THAT(gain_at(low, 128.0, 256.0), WithinAbs(0.0, 1e-12));
    const SecondOrderSections high = butterworth_sos(3, FilterBand::highpass, {1.0}, 128.0);
    CHECK_THAT(gain_at(high, 64.0, 128.0), WithinAbs(1.0, 1e-12));
    CHECK_THAT(gain_at(high, 1.0, 128.0), WithinAbs(half, 1e-12));
    CHECK_THAT(gain_at(high, 0.0, 128.0), WithinAbs(0.0, 1e-12));
    const SecondOrderSections band = butterworth_sos(5, FilterBand::bandpass, {0.5, 45.0}, 128.0);
    CHECK_THAT(gain_at(band, 0.5, 128.0), WithinAbs(half, 1e-10));
    CHECK_THAT(gain_at(band, 45.0, 128.0), WithinAbs(half, 1e-10));
    CHECK_THAT(gain_at(band, 10.0, 128.0), WithinAbs(1.0, 1e-3));
    CHECK(band.rows() == 5);

    CHECK_THROWS_AS(butterworth_sos(0, FilterBand::lowpass, {10.0}, 100.0), sae::config_error);
    CHECK_THROWS_WITH(butterworth_sos(2, FilterBand::lowpass, {50.0}, 100.0), Contains("(0, fs/2 = 50"));
    CHECK_THROWS_WITH(butterworth_sos(2, FilterBand::bandpass, {40.0, 4.0}, 100.0), Contains("must be below"));
    CHECK_THROWS_AS(butterworth_sos(2, FilterBand::bandpass, {4.0}, 100.0), sae::config_error);
    CHECK_THROWS_AS(butterworth_sos(2, FilterBand::highpass, {1.0}, 0.0), sae::config_error);
}

TEST_CASE("sosfiltfilt matches scipy.signal.sosfiltfilt with odd padding", "[eeg][filtfilt]") {
    const nlohmann::json& ref = reference()["sosfiltfilt"];
    const SecondOrderSections sos = butterworth_sos(5, FilterBand::bandpass, {0.5, 45.0}, 128.0);
    CHECK(default_padlen(sos) == 33);
    const sae::Matrix<double> x = row_of(ref["input"]);
    CHECK(max_relative_error(sosfiltfilt(sos, x), row_of(ref["output"])) < 1e-9);
    CHECK(max_relative_error(sosfiltfilt(sos, x, 10), row_of(ref["output_padlen_10"])) < 1e-9);
    CHECK(max_relative_error(sosfiltfilt(sos, row_of(ref["short_input"])), row_of(ref["short_output"])) < 1e-9);
    // Rows are filtered independently; float input gives float output.
    sae::Matrix<float> two(2, x.cols());
    two.row(0) = x.cast<float>();
    two.row(1) = (-2.0 * x).cast<float>();
    const sae::Matrix<float> both = sosfiltfilt(sos, two);
    const sae::Matrix<double> second = both.row(1).cast<double>() * -0.5;
    CHECK(max_relative_error(second, row_of(ref["output"])) < 1e-5);
    const sae::Matrix<double> too_short = x.leftCols(33);
    CHECK_THROWS_WITH(sosfiltfilt(sos, too_short), Contains("longer than padlen = 33"));
    SecondOrderSections bad = sos;
    bad(1, 3) = 2.0;
    CHECK_THROWS_AS(sosfiltfilt(bad, x), sae::config_error);

    Recording rec;
    rec.data = x;
    rec.sample_rate = 128.0;
    rec.labels = {"Cz"};
    CHECK(bandpass(rec, 0.5, 45.0, 5).data == sosfiltfilt(sos, x));
}

TEST_CASE("resample_poly matches scipy.signal.resample_poly", "[eeg][resample]") {
    const nlohmann::json& ref = reference()["resample_poly"];
    const sae::Matrix<double> x = row_of(ref["input"]);
    for (const nlohmann::json& c : ref["cases"]) {
        const Index up = c["up"].get<Index>(), down = c["down"].get<Index>();
        INFO("up " << up << " down " << down);
        CHECK(max_relative_error(resample_poly(x, up, down), row_of(c["output"])) < 1e-10);
    }
    // By hand: the filter has unit DC gain, so a constant far from the (zero-padded)
    // ends stays that constant; the output length is ceil(n up / down).
    const sae::Matrix<double> ones = sae::Matrix<double>::Constant(1, 400, 2.5);
    const sae::Matrix<double> half_rate = resample_poly(ones, 1, 2);
    REQUIRE(half_rate.cols() == 200);
    CHECK_THAT(half_rate(0, 100), WithinAbs(2.5, 1e-12));
    CHECK(resample_poly(ones, 2, 3).cols() == 267);
    std::vector<double> h = resample_lowpass(1, 2);
    CHECK(h.size() == 41u);
    double sum = 0;
    for (double v : h) sum += v;
    CHECK_THAT(sum, WithinAbs(1.0, 1e-14));

    Recording rec;
    rec.data = ones;
    rec.sample_rate = 256.0;
    rec.labels = {"Cz"};
    const Recording down = resample(rec, 128.0);
    CHECK(down.sample_rate == 128.0);
    CHECK(down.samples() == 200);
    rec.sample_rate = 250.5;
    CHECK_THROWS_WITH(resample(rec, 128.0), Contains("whole number of Hz"));
    CHECK_THROWS_AS(resample_poly(ones, 0, 2), sae::config_error);
}

TEST_CASE("Segments: windows with the last one zero-padded, per-channel z-scores, channel-major flattening",
          "[eeg][segments]") {
    // Two channels of 10 samples: channel 0 = 0..9, channel 1 = 5 everywhere.
    sae::Matrix<double> x(2, 10);
    for (Index t = 0; t < 10; ++t) {
        x(0, t) = static_cast<double>(t);
        x(1, t) = 5.0;
    }
    CHECK(segment_count(10, 4, PaddingRule::zero_pad_last) == 3);
    CHECK(segment_count(10, 4, PaddingRule::drop_last) == 2);
    CHECK(segment_count(8, 4, PaddingRule::zero_pad_last) == 2);
    CHECK_THROWS_AS(segment_count(8, 0, PaddingRule::drop_last), sae::config_error);

    const sae::Matrix<double> last = segment_window(x, 2, 4);
    CHECK(last.row(0) == (sae::Matrix<double>(1, 4) << 8, 9, 0, 0).finished());
    CHECK(last.row(1) == (sae::Matrix<double>(1, 4) << 5, 5, 0, 0).finished());

    SegmentOptions raw;
    raw.window = 4;
    raw.zscore = false;
    const SegmentSet<float> flat = make_segments<float>(x, raw);
    REQUIRE(flat.rows.rows() == 3);
    REQUIRE(flat.rows.cols() == 8);
    // Row 1 = window 1: channel 0's samples 4..7, then channel 1's four 5s.
    CHECK(flat.rows.row(1) == (sae::Matrix<float>(1, 8) << 4, 5, 6, 7, 5, 5, 5, 5).finished());
    CHECK(flat.window_of_row == std::vector<Index>{0, 1, 2});
    CHECK(flat.channel_of_row == std::vector<Index>{-1, -1, -1});

    // z-score by hand: [0 1 2 3] has mean 1.5 and population std sqrt(1.25); a constant
    // channel has std 0 -> floored at epsilon -> all zeros.
    SegmentOptions single = raw;
    single.zscore = true;
    single.layout = SegmentLayout::single_channel;
    const SegmentSet<double> rows = make_segments<double>(x, single);
    REQUIRE(rows.rows.rows() == 6);
    REQUIRE(rows.rows.cols() == 4);
    const double s = std::sqrt(1.25);
    CHECK(max_relative_error(rows.rows.topRows(1), (sae::Matrix<double>(1, 4) << -1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s).finished()) < 1e-14);
    CHECK(rows.rows.row(1).cwiseAbs().maxCoeff() == 0.0);
    CHECK(rows.channel_of_row == std::vector<Index>{0, 1, 0, 1, 0, 1});
    CHECK(rows.window_of_row == std::vector<Index>{0, 0, 1, 1, 2, 2});
    // The padded window: channel 0 = [8 9 0 0], mean 4.25, variance (3.75^2 + 4.75^2 + 2 * 4.25^2) / 4.
    const double sd = std::sqrt((3.75 * 3.75 + 4.75 * 4.75 + 2 * 4.25 * 4.25) / 4);
    CHECK_THAT(rows.rows(4, 1), WithinRel(4.75 / sd, 1e-14));
    // Channel 1 of the padded window = [5 5 0 0]: mean 2.5, std 2.5 -> [1 1 -1 -1].
    CHECK(max_relative_error(rows.rows.middleRows(5, 1), (sae::Matrix<double>(1, 4) << 1, 1, -1, -1).finished()) < 1e-14);

    SegmentOptions dropped = single;
    dropped.padding = PaddingRule::drop_last;
    CHECK(make_segments<double>(x, dropped).rows.rows() == 4);
    dropped.window = 20;
    CHECK_THROWS_AS(make_segments<double>(x, dropped), sae::config_error);
}

TEST_CASE("Mixing at an SNR and the EEGdenoiseNet metrics, derived by hand", "[eeg][denoising]") {
    // x = [1 -1 1 -1] has RMS 1, n = [2 2 2 2] RMS 2: lambda = RMS(x) / (RMS(n) 10^(SNR/10)).
    const sae::Matrix<double> x = (sae::Matrix<double>(1, 4) << 1, -1, 1, -1).finished();
    const sae::Matrix<double> n = sae::Matrix<double>::Constant(1, 4, 2.0);
    CHECK_THAT(artifact_scale(x, n, 0.0), WithinRel(0.5, 1e-15));
    CHECK_THAT(artifact_scale(x, n, 10.0), WithinRel(0.05, 1e-15));
    CHECK_THAT(artifact_scale(x, n, -7.0), WithinRel(0.5 * std::pow(10.0, 0.7), 1e-14));
    CHECK(mix_at_snr(x, n, 0.0) == (sae::Matrix<double>(1, 4) << 2, 0, 2, 0).finished());
    for (int snr = -7; snr <= 2; ++snr) {
        sae::Matrix<double> clean(1, 64), artifact(1, 64);
        for (Index t = 0; t < 64; ++t) {
            clean(0, t) = std::sin(0.37 * t) + 0.2 * std::cos(1.9 * t);
            artifact(0, t) = 3.0 * std::exp(-0.05 * t) - 0.4;
        }
        const sae::Matrix<double> y = mix_at_snr(clean, artifact, snr);
        CHECK_THAT(10.0 * std::log10(rms(clean) / rms(y - clean)), WithinAbs(snr, 1e-12));
    }
    CHECK_THROWS_AS(artifact_scale(x, sae::Matrix<double>::Zero(1, 4), 0.0), sae::numeric_error);
    CHECK_THROWS_AS(artifact_scale(x, sae::Matrix<double>::Zero(1, 3), 0.0), sae::shape_error);

    // RRMSE_t: the clean signal itself 0; zero or twice the signal 1. CC: any positive
    // affine map 1, negation -1, sin against cos over whole periods 0.
    sae::Matrix<double> clean(2, 64);
    for (Index t = 0; t < 64; ++t) {
        clean(0, t) = std::sin(2 * 3.14159265358979323846 * 4 * t / 64.0);
        clean(1, t) = std::cos(2 * 3.14159265358979323846 * 4 * t / 64.0);
    }
    const sae::Matrix<double> zero = sae::Matrix<double>::Zero(2, 64), twice = 2.0 * clean, negated = -clean;
    const sae::Matrix<double> affine = (2.0 * clean.array() + 3.0).matrix(), flat = sae::Matrix<double>::Constant(2, 64, 3.0);
    CHECK(rrmse_temporal(clean, clean).isZero());
    CHECK_THAT(rrmse_temporal(zero, clean)[1], WithinRel(1.0, 1e-14));
    CHECK_THAT(rrmse_temporal(twice, clean)[0], WithinRel(1.0, 1e-14));
    CHECK_THAT(pearson_cc(affine, clean)[0], WithinRel(1.0, 1e-14));
    CHECK_THAT(pearson_cc(negated, clean)[1], WithinRel(-1.0, 1e-14));
    sae::Matrix<double> swapped(2, 64);
    swapped << clean.row(1), clean.row(0);
    CHECK_THAT(pearson_cc(swapped, clean)[0], WithinAbs(0.0, 1e-13));
    CHECK(pearson_cc(flat, clean)[0] == 0.0);  // flat output: no correlation
    // RRMSE_s: twice the signal has four times the PSD, so RMS(3 P) / RMS(P) = 3.
    const WelchPsd psd(64.0, 64);
    CHECK_THAT(rrmse_spectral(twice, clean, psd)[0], WithinRel(3.0, 1e-12));
    const DenoisingScores same = score(clean, clean, psd);
    CHECK(same.rrmse_temporal == 0.0);
    CHECK(same.rrmse_spectral == 0.0);
    CHECK_THAT(same.cc, WithinRel(1.0, 1e-14));
    CHECK_THROWS_AS(rrmse_temporal(clean, clean.leftCols(10)), sae::shape_error);
}

TEST_CASE("Welch PSD matches scipy.signal.welch", "[eeg][denoising]") {
    const nlohmann::json& ref = reference()["welch"];
    const sae::Matrix<double> x = row_of(ref["input"]);
    for (const nlohmann::json& c : ref["cases"]) {
        INFO("nperseg " << c["nperseg"]);
        const WelchPsd psd(ref["fs"].get<double>(), x.cols(), c["nperseg"].get<Index>());
        CHECK(max_relative_error(sae::Matrix<double>(psd.frequencies().transpose()), row_of(c["frequencies"])) < 1e-15);
        CHECK(max_relative_error(sae::Matrix<double>(psd.compute(x)), row_of(c["psd"])) < 1e-10);
    }
    // A pure tone on a bin of a single window: its power sits in that bin and its two
    // Hann neighbours (1/4 of it each), nothing elsewhere.
    sae::Matrix<double> tone(1, 64);
    for (Index t = 0; t < 64; ++t) tone(0, t) = std::cos(2 * 3.14159265358979323846 * 8 * t / 64.0);
    const Eigen::MatrixXd p = WelchPsd(64.0, 64).compute(tone);
    CHECK_THAT(p(0, 7) / p(0, 8), WithinRel(0.25, 1e-12));
    CHECK_THAT(p(0, 9) / p(0, 8), WithinRel(0.25, 1e-12));
    CHECK(p(0, 20) < 1e-20);
}

TEST_CASE("LinePlot writes a self-contained SVG with escaped text", "[eeg][svg]") {
    sae::LinePlot plot;
    plot.title = "RRMSE <temporal> & \"spectral\"";
    plot.x_label = "SNR (dB)";
    plot.y_label = "RRMSE";
    plot.add({"no processing", "#000000", false, true, 1.5, {-7, -6, -5}, {1.2, 1.0, 0.9}});
    plot.add({"MFR ensemble", "#d62728", true, false, 1.5, {-7, -6, -5}, {0.8, 0.7, 0.6}});
    const std::string svg = plot.svg();
    CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK_THAT(svg, Contains("RRMSE &lt;temporal&gt; &amp; &quot;spectral&quot;"));
    CHECK_THAT(svg, Contains("stroke-dasharray"));
    CHECK_THAT(svg, Contains("<circle"));
    std::size_t polylines = 0;
    for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++polylines;
    CHECK(polylines == 2);
    CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
    CHECK(sae::svg_number(-0.0001) == "0");
    CHECK(sae::svg_number(2.50) == "2.5");
    CHECK(sae::nice_ticks(-7, 2) == std::vector<double>{-6, -4, -2, 0, 2});
    CHECK_THROWS_AS(plot.add({"bad", "red", false, false, 1.0, {1, 2}, {1}}), sae::shape_error);
    CHECK_THROWS_AS(plot.add({"nan", "red", false, false, 1.0, {1}, {std::nan("")}}), sae::numeric_error);
    CHECK_THROWS_AS(sae::LinePlot().svg(), sae::shape_error);
    // A log axis: ticks at 1, 2, 5 x 10^k inside the range; non-positive values rejected.
    sae::LinePlot log_plot;
    log_plot.log_y = true;
    log_plot.add({"rrmse", "blue", false, false, 1.0, {0, 1, 2}, {0.6, 3.0, 30.0}});
    const std::string log_svg = log_plot.svg();
    for (const char* tick : {">1</text>", ">2</text>", ">5</text>", ">10</text>", ">20</text>"}) CHECK_THAT(log_svg, Contains(tick));
    CHECK_THAT(log_svg, !Contains(">50</text>"));
    log_plot.add({"zero", "red", false, false, 1.0, {0}, {0.0}});
    CHECK_THROWS_AS(log_plot.svg(), sae::numeric_error);
}

}  // namespace test_eeg_signal_cases
