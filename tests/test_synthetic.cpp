// Tests of the synthetic ground-truth generator (include/sae/data/synthetic.hpp).
// Every statistical check states the law it expects and derives its tolerance in a comment;
// tolerances are 5 standard deviations, so a correct generator fails one check with
// probability below 1e-6 and the seeds are fixed anyway.

#include "sae/data/synthetic.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_synthetic_cases {

namespace {

using sae::CorrelatedGroupsConfig;
using sae::Index;
using sae::IndependentFeaturesConfig;
using sae::MagnitudeDistribution;
using sae::SupportSampling;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

/// Column indices of the stored entries of row `row`, in increasing order.
template <class Scalar>
std::vector<int> support_of(const sae::SparseCode<Scalar>& codes, Index row) {
    std::vector<int> support;
    for (typename sae::SparseCode<Scalar>::InnerIterator it(codes, row); it; ++it) {
        support.push_back(static_cast<int>(it.col()));
    }
    return support;
}

/// A correlated-groups config whose samples are cheap (small input_dim): the law of the
/// supports does not depend on input_dim.
CorrelatedGroupsConfig cheap_groups(SupportSampling support) {
    CorrelatedGroupsConfig config;
    config.input_dim = 4;
    config.support = support;
    return config;
}

/// Five-sigma half-width of a binomial proportion estimated from `n` trials.
double five_sigma(double p, double n) { return 5.0 * std::sqrt(p * (1.0 - p) / n); }

}  // namespace

TEMPLATE_TEST_CASE("synthetic generator: shapes of features, samples and codes", "[synthetic]", float, double) {
    SECTION("correlated groups, the authors' sizes") {
        sae::SyntheticGenerator<TestType> generator(CorrelatedGroupsConfig{}, 1);
        CHECK(generator.true_features().rows() == 512);
        CHECK(generator.true_features().cols() == 256);
        CHECK(generator.num_features() == 512);
        CHECK(generator.input_dim() == 256);
        sae::Matrix<TestType> batch(7, 256);
        sae::SparseCode<TestType> codes;
        generator.sample_into(batch, &codes);
        CHECK(codes.rows() == 7);
        CHECK(codes.cols() == 512);
        CHECK(generator.sample(3).rows() == 3);
        CHECK(generator.sample(3).cols() == 256);
        CHECK(generator.sample(0).rows() == 0);
    }
    SECTION("independent features") {
        IndependentFeaturesConfig config;
        config.input_dim = 10;
        config.num_features = 30;
        sae::SyntheticGenerator<TestType> generator(config, 1);
        CHECK(generator.true_features().rows() == 30);
        CHECK(generator.true_features().cols() == 10);
        sae::SyntheticBatchSource<TestType> source(generator, 9);
        CHECK(source.batch_size() == 9);
        sae::Matrix<TestType> batch(1, 1);
        source.next_batch(batch);
        CHECK(batch.rows() == 9);
        CHECK(batch.cols() == 10);
    }
    SECTION("an output with the wrong number of columns is refused") {
        sae::SyntheticGenerator<TestType> generator(cheap_groups(SupportSampling::per_sample), 1);
        sae::Matrix<TestType> wrong(5, 3);
        CHECK_THROWS_AS(generator.sample_into(wrong), sae::shape_error);
        CHECK_THROWS_WITH(generator.sample_into(wrong), Catch::Matchers::Contains("input_dim"));
    }
}

TEMPLATE_TEST_CASE("synthetic generator: a seed fixes features and stream", "[synthetic]", float, double) {
    const SupportSampling mode = GENERATE(SupportSampling::per_chunk, SupportSampling::per_sample);
    CorrelatedGroupsConfig config = cheap_groups(mode);
    config.input_dim = 16;
    config.noise_std = GENERATE(0.0, 0.1);

    sae::SyntheticGenerator<TestType> a(config, 42);
    sae::SyntheticGenerator<TestType> b(config, 42);
    sae::SyntheticGenerator<TestType> other(config, 43);
    CHECK(a.true_features() == b.true_features());
    CHECK(a.true_features() != other.true_features());

    // The stream must not depend on how it is cut: 7 + 5 samples equal 12 at once.
    sae::Matrix<TestType> first(7, 16), second(5, 16), whole(12, 16);
    sae::SparseCode<TestType> codes_first, codes_second, codes_whole;
    a.sample_into(first, &codes_first);
    a.sample_into(second, &codes_second);
    b.sample_into(whole, &codes_whole);
    CHECK(whole.topRows(7) == first);
    CHECK(whole.bottomRows(5) == second);
    for (Index row = 0; row < 5; ++row) CHECK(support_of(codes_whole, row + 7) == support_of(codes_second, row));

    const sae::Matrix<TestType> from_other = other.sample(12);
    CHECK(from_other != whole);
}

TEMPLATE_TEST_CASE("correlated groups: 32 distinct features of one group, U[0,1) coefficients", "[synthetic]",
                   float, double) {
    const SupportSampling mode = GENERATE(SupportSampling::per_chunk, SupportSampling::per_sample);
    CorrelatedGroupsConfig config;  // the authors' setting: 512 features, 12 groups of 42
    config.support = mode;
    sae::SyntheticGenerator<TestType> generator(config, 7);
    sae::Matrix<TestType> batch(400, config.input_dim);
    sae::SparseCode<TestType> codes;
    generator.sample_into(batch, &codes);

    for (Index row = 0; row < codes.rows(); ++row) {
        // A repeated index would be summed by the sparse assembly, so 32 stored entries
        // also means 32 distinct features.
        REQUIRE(codes.row(row).nonZeros() == 32);
        const std::vector<int> support = support_of(codes, row);
        const int group = support.front() / 42;
        CHECK(group < 12);  // features 504..511 are never used
        for (int feature : support) CHECK(feature / 42 == group);
        for (typename sae::SparseCode<TestType>::InnerIterator it(codes, row); it; ++it) {
            CHECK(it.value() >= TestType(0));
            CHECK(it.value() < TestType(1));
        }
    }
}

TEMPLATE_TEST_CASE("synthetic samples equal coefficients times features", "[synthetic]", float, double) {
    const int mode = GENERATE(0, 1);
    sae::Matrix<TestType> batch;
    sae::SparseCode<TestType> codes;
    sae::Matrix<TestType> features;
    if (mode == 0) {
        sae::SyntheticGenerator<TestType> generator(CorrelatedGroupsConfig{}, 3);
        batch.resize(50, generator.input_dim());
        generator.sample_into(batch, &codes);
        features = generator.true_features();
    } else {
        IndependentFeaturesConfig config;
        config.activation_probability = 0.3;
        config.magnitude = MagnitudeDistribution::exponential;
        sae::SyntheticGenerator<TestType> generator(config, 3);
        batch.resize(50, generator.input_dim());
        generator.sample_into(batch, &codes);
        features = generator.true_features();
    }
    // Explicit sums in double. A float sum of n products is within about (n + 1) eps of
    // the sum of their absolute values (standard summation bound, n <= 128 here), so the
    // tolerance is 2 (n + 1) eps sum|c_i g_ij|.
    const double eps = std::numeric_limits<TestType>::epsilon();
    for (Index row = 0; row < batch.rows(); ++row) {
        for (Index col = 0; col < batch.cols(); ++col) {
            double sum = 0.0, magnitude = 0.0;
            Index terms = 0;
            for (typename sae::SparseCode<TestType>::InnerIterator it(codes, row); it; ++it, ++terms) {
                const double term = static_cast<double>(it.value()) * static_cast<double>(features(it.col(), col));
                sum += term;
                magnitude += std::abs(term);
            }
            CHECK_THAT(static_cast<double>(batch(row, col)),
                       WithinAbs(sum, 2.0 * static_cast<double>(terms + 1) * eps * magnitude));
        }
    }
}

TEMPLATE_TEST_CASE("synthetic noise has the configured standard deviation", "[synthetic]", float, double) {
    IndependentFeaturesConfig config;
    config.noise_std = 0.25;
    sae::SyntheticGenerator<TestType> generator(config, 11);
    sae::Matrix<TestType> batch(500, config.input_dim);
    sae::SparseCode<TestType> codes;
    generator.sample_into(batch, &codes);
    const sae::Matrix<TestType> clean = codes * generator.true_features();
    const Eigen::ArrayXd residual = (batch - clean).template cast<double>().reshaped().array();
    const double n = static_cast<double>(residual.size());  // 32,000 values
    // Mean of n N(0, s^2) values: sd s / sqrt(n). Sample variance: relative sd sqrt(2 / n) = 0.8%.
    CHECK_THAT(residual.mean(), WithinAbs(0.0, 5.0 * 0.25 / std::sqrt(n)));
    CHECK_THAT(residual.square().mean(), WithinRel(0.0625, 5.0 * std::sqrt(2.0 / n)));
}

TEMPLATE_TEST_CASE("per-chunk supports are shared, per-sample supports are not", "[synthetic]", float, double) {
    CorrelatedGroupsConfig config = cheap_groups(SupportSampling::per_chunk);
    config.num_chunks = 5;
    const Index samples = 5000;

    sae::SyntheticGenerator<TestType> chunked(config, 5);
    sae::Matrix<TestType> batch(samples, config.input_dim);
    sae::SparseCode<TestType> codes;
    chunked.sample_into(batch, &codes);
    std::set<std::vector<int>> chunk_supports;
    for (Index row = 0; row < samples; ++row) chunk_supports.insert(support_of(codes, row));
    // At most 5 x 12 = 60 supports exist. Each (chunk, group) is missed by all 5000 samples
    // with probability (59/60)^5000 < 1e-36, and two chunks share a support only if two
    // weighted 32-of-42 draws coincide, so all 60 appear.
    CHECK(chunk_supports.size() == 60);

    config.support = SupportSampling::per_sample;
    sae::SyntheticGenerator<TestType> fresh(config, 5);
    fresh.sample_into(batch, &codes);
    std::set<std::vector<int>> sample_supports;
    for (Index row = 0; row < samples; ++row) sample_supports.insert(support_of(codes, row));
    // A group has C(42, 32) ~ 1.5e9 supports and no single one is likely (dropping the 10
    // heaviest-weighted features is the likeliest outcome and still rare), so almost every
    // sample is new; 10 x 60 is far below that.
    CHECK(sample_supports.size() > 600);
}

TEMPLATE_TEST_CASE("supports follow successive weighted draws without replacement (exact small case)",
                   "[synthetic]", float, double) {
    // Groups of 4 with weights 1, 1/2, 1/4, 1/8 (decay 0.5), 2 features per sample.
    // Drawing two without replacement, index i is included if it comes first (w_i / W) or
    // second after some j (w_j / W * w_i / (W - w_j)), with W = 15/8.
    const SupportSampling mode = GENERATE(SupportSampling::per_chunk, SupportSampling::per_sample);
    CorrelatedGroupsConfig config;
    config.input_dim = 2;
    config.num_features = 8;
    config.num_groups = 2;
    config.active_per_sample = 2;
    config.decay = 0.5;
    config.support = mode;
    config.num_chunks = 25000;  // 50,000 (chunk, group) supports in the pool
    const std::vector<double> w{1.0, 0.5, 0.25, 0.125};
    const double total = 1.875;
    std::vector<double> inclusion(4, 0.0);
    for (std::size_t i = 0; i < 4; ++i) {
        inclusion[i] = w[i] / total;
        for (std::size_t j = 0; j < 4; ++j) {
            if (j != i) inclusion[i] += w[j] / total * w[i] / (total - w[j]);
        }
    }
    CHECK_THAT(inclusion[0] + inclusion[1] + inclusion[2] + inclusion[3], WithinAbs(2.0, 1e-12));

    const Index samples = 100000;
    sae::SyntheticGenerator<TestType> generator(config, 17);
    sae::Matrix<TestType> batch(samples, config.input_dim);
    sae::SparseCode<TestType> codes;
    generator.sample_into(batch, &codes);
    std::vector<double> hits(4, 0.0);
    for (Index row = 0; row < samples; ++row) {
        for (int feature : support_of(codes, row)) hits[static_cast<std::size_t>(feature % 4)] += 1.0;
    }
    // Each sample includes local index i or not: binomial over N samples. per_chunk draws
    // from a finite pool of P = 50,000 supports, which adds (law of total variance) at most
    // p (1 - p) / P, so the variance is at most p (1 - p) (1/N + 1/P).
    const double effective_n = mode == SupportSampling::per_chunk ? 1.0 / (1.0 / samples + 1.0 / 50000.0)
                                                                   : static_cast<double>(samples);
    for (std::size_t i = 0; i < 4; ++i) {
        INFO("group-local index " << i);
        CHECK_THAT(hits[i] / samples, WithinAbs(inclusion[i], five_sigma(inclusion[i], effective_n)));
    }
}

TEMPLATE_TEST_CASE("the authors' setting: early group features are drawn more often", "[synthetic]", float,
                   double) {
    // Reference: the definition itself, 32 successive draws from std::discrete_distribution
    // over the remaining weights 0.99^i, i < 42 (an implementation independent of the
    // generator's exponential race).
    const Index samples = 20000;
    std::vector<double> reference(42, 0.0);
    std::mt19937_64 rng(2024);
    for (Index s = 0; s < samples; ++s) {
        std::vector<double> weights(42);
        for (std::size_t i = 0; i < 42; ++i) weights[i] = std::pow(0.99, static_cast<double>(i));
        for (int draw = 0; draw < 32; ++draw) {
            std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
            const std::size_t chosen = pick(rng);
            reference[chosen] += 1.0;
            weights[chosen] = 0.0;
        }
    }

    sae::SyntheticGenerator<TestType> generator(cheap_groups(SupportSampling::per_sample), 99);
    sae::Matrix<TestType> batch(samples, 4);
    sae::SparseCode<TestType> codes;
    generator.sample_into(batch, &codes);
    std::vector<double> hits(42, 0.0);
    for (Index row = 0; row < samples; ++row) {
        for (int feature : support_of(codes, row)) hits[static_cast<std::size_t>(feature % 42)] += 1.0;
    }
    // Two independent binomial proportions over N = 20,000 each: the difference has sd
    // sqrt(p (1 - p) 2 / N) <= 0.005, so 5 sigma is 0.025 at worst.
    for (std::size_t i = 0; i < 42; ++i) {
        INFO("group-local index " << i);
        const double p = reference[i] / samples;
        CHECK_THAT(hits[i] / samples, WithinAbs(p, five_sigma(p, samples / 2.0)));
    }
    // Weights fall from 1 to 0.99^41 = 0.66; the inclusion of index 0 must exceed that of
    // index 41 by more than the 0.025 noise band (uniform draws would give equal rates).
    CHECK(hits[0] / samples > hits[41] / samples + 0.05);
}

TEMPLATE_TEST_CASE("independent features fire at their configured rates", "[synthetic]", float, double) {
    IndependentFeaturesConfig config;
    config.input_dim = 4;
    config.num_features = 128;
    config.activation_probability = 0.05;
    config.probability_decay = GENERATE(1.0, 0.98);
    config.magnitude = GENERATE(MagnitudeDistribution::uniform01, MagnitudeDistribution::exponential,
                                MagnitudeDistribution::half_normal);
    const Index samples = 20000;
    sae::SyntheticGenerator<TestType> generator(config, 23);
    sae::Matrix<TestType> batch(samples, config.input_dim);
    sae::SparseCode<TestType> codes;
    generator.sample_into(batch, &codes);

    // Feature i fires in each sample independently with p_i = 0.05 * decay^i: its count is
    // Binomial(N, p_i), sd sqrt(p_i (1 - p_i) / N) for the rate.
    Eigen::ArrayXd fired = Eigen::ArrayXd::Zero(config.num_features);
    double magnitude_sum = 0.0;
    for (Index row = 0; row < samples; ++row) {
        for (typename sae::SparseCode<TestType>::InnerIterator it(codes, row); it; ++it) {
            fired(it.col()) += 1.0;
            magnitude_sum += static_cast<double>(it.value());
            CHECK(it.value() >= TestType(0));
            if (config.magnitude == MagnitudeDistribution::uniform01) CHECK(it.value() < TestType(1));
        }
    }
    for (Index i = 0; i < config.num_features; ++i) {
        const double p = 0.05 * std::pow(config.probability_decay, static_cast<double>(i));
        INFO("feature " << i);
        CHECK_THAT(fired(i) / samples, WithinAbs(p, five_sigma(p, samples)));
    }
    // Magnitude means: U[0,1) 1/2 (var 1/12), Exp(1) 1 (var 1), |N(0,1)| sqrt(2/pi)
    // (var 1 - 2/pi); the mean of the m drawn magnitudes has sd sqrt(var / m).
    const double pi = 3.14159265358979323846;
    double mean = 0.5, variance = 1.0 / 12.0;
    if (config.magnitude == MagnitudeDistribution::exponential) mean = 1.0, variance = 1.0;
    if (config.magnitude == MagnitudeDistribution::half_normal) mean = std::sqrt(2.0 / pi), variance = 1.0 - 2.0 / pi;
    const double drawn = fired.sum();
    CHECK_THAT(magnitude_sum / drawn, WithinAbs(mean, 5.0 * std::sqrt(variance / drawn)));
}

TEMPLATE_TEST_CASE("true features: normalised rows or raw Gaussians", "[synthetic]", float, double) {
    const double tolerance = 10.0 * std::numeric_limits<TestType>::epsilon();
    SECTION("independent mode normalises by default") {
        sae::SyntheticGenerator<TestType> generator(IndependentFeaturesConfig{}, 4);
        for (Index i = 0; i < generator.num_features(); ++i) {
            CHECK_THAT(static_cast<double>(generator.true_features().row(i).norm()), WithinAbs(1.0, tolerance));
        }
    }
    SECTION("correlated mode on request") {
        CorrelatedGroupsConfig config;
        config.normalize_features = true;
        sae::SyntheticGenerator<TestType> generator(config, 4);
        for (Index i = 0; i < generator.num_features(); ++i) {
            CHECK_THAT(static_cast<double>(generator.true_features().row(i).norm()), WithinAbs(1.0, tolerance));
        }
    }
    SECTION("the authors' features are raw N(0, 1) entries") {
        sae::SyntheticGenerator<TestType> generator(CorrelatedGroupsConfig{}, 4);
        const Eigen::ArrayXd entries = generator.true_features().template cast<double>().reshaped().array();
        const double n = static_cast<double>(entries.size());  // 131,072 entries
        // Mean of n N(0,1): sd 1/sqrt(n). Mean square: sd sqrt(2/n). Unit rows would give 1/256.
        CHECK_THAT(entries.mean(), WithinAbs(0.0, 5.0 / std::sqrt(n)));
        CHECK_THAT(entries.square().mean(), WithinAbs(1.0, 5.0 * std::sqrt(2.0 / n)));
    }
}

namespace {

struct BadCorrelated {
    const char* field;
    void (*spoil)(CorrelatedGroupsConfig&);
};

struct BadIndependent {
    const char* field;
    void (*spoil)(IndependentFeaturesConfig&);
};

}  // namespace

TEMPLATE_TEST_CASE("synthetic configs are validated field by field", "[synthetic]", float, double) {
    CHECK_NOTHROW(CorrelatedGroupsConfig{}.validate());
    CHECK_NOTHROW(IndependentFeaturesConfig{}.validate());
    CorrelatedGroupsConfig whole_group;
    whole_group.active_per_sample = 42;  // the largest legal value: the whole group
    CHECK_NOTHROW(whole_group.validate());

    SECTION("correlated groups") {
        const BadCorrelated bad = GENERATE(values<BadCorrelated>({
            {"input_dim", [](CorrelatedGroupsConfig& c) { c.input_dim = 0; }},
            {"num_features", [](CorrelatedGroupsConfig& c) { c.num_features = -1; }},
            {"num_groups", [](CorrelatedGroupsConfig& c) { c.num_groups = 0; }},
            {"num_groups", [](CorrelatedGroupsConfig& c) { c.num_groups = 513; }},
            {"active_per_sample", [](CorrelatedGroupsConfig& c) { c.active_per_sample = 0; }},
            {"active_per_sample", [](CorrelatedGroupsConfig& c) { c.active_per_sample = 43; }},
            {"decay", [](CorrelatedGroupsConfig& c) { c.decay = 0.0; }},
            {"decay", [](CorrelatedGroupsConfig& c) { c.decay = -0.5; }},
            {"decay", [](CorrelatedGroupsConfig& c) { c.decay = std::nan(""); }},
            {"chunk_size", [](CorrelatedGroupsConfig& c) { c.chunk_size = 0; }},
            {"num_chunks", [](CorrelatedGroupsConfig& c) { c.num_chunks = 0; }},
            {"noise_std", [](CorrelatedGroupsConfig& c) { c.noise_std = -1.0; }},
        }));
        CorrelatedGroupsConfig config;
        bad.spoil(config);
        const std::string expected = std::string(bad.field) + " = ";
        INFO("field " << bad.field);
        CHECK_THROWS_AS(config.validate(), sae::config_error);
        CHECK_THROWS_WITH(config.validate(), Catch::Matchers::Contains(expected));
        CHECK_THROWS_AS(sae::SyntheticGenerator<TestType>(config, 1), sae::config_error);
    }
    SECTION("independent features") {
        const BadIndependent bad = GENERATE(values<BadIndependent>({
            {"input_dim", [](IndependentFeaturesConfig& c) { c.input_dim = 0; }},
            {"num_features", [](IndependentFeaturesConfig& c) { c.num_features = 0; }},
            {"activation_probability", [](IndependentFeaturesConfig& c) { c.activation_probability = 0.0; }},
            {"activation_probability", [](IndependentFeaturesConfig& c) { c.activation_probability = 1.5; }},
            {"probability_decay", [](IndependentFeaturesConfig& c) { c.probability_decay = 0.0; }},
            {"probability_decay", [](IndependentFeaturesConfig& c) { c.probability_decay = 1.1; }},
            {"noise_std", [](IndependentFeaturesConfig& c) { c.noise_std = std::nan(""); }},
        }));
        IndependentFeaturesConfig config;
        bad.spoil(config);
        const std::string expected = std::string(bad.field) + " = ";
        INFO("field " << bad.field);
        CHECK_THROWS_AS(config.validate(), sae::config_error);
        CHECK_THROWS_WITH(config.validate(), Catch::Matchers::Contains(expected));
        CHECK_THROWS_AS(sae::SyntheticGenerator<TestType>(config, 1), sae::config_error);
    }
    SECTION("batch source") {
        sae::SyntheticGenerator<TestType> generator(IndependentFeaturesConfig{}, 1);
        CHECK_THROWS_AS(sae::SyntheticBatchSource<TestType>(generator, 0), sae::config_error);
        CHECK_THROWS_WITH(sae::SyntheticBatchSource<TestType>(generator, 0), Catch::Matchers::Contains("batch_size"));
    }
}

}  // namespace test_synthetic_cases
