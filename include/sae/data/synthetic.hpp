#pragma once
/// \file synthetic.hpp
/// Seeded, streaming generator of data whose sparse features are known, so that a
/// trained dictionary can be scored against the truth (DESIGN.md §4, §8).
///
/// Provides
///   CorrelatedGroupsConfig     the MFR authors' task: features split into groups, each
///                              sample draws `active_per_sample` distinct features of one
///                              group, weighted by decay^(index in group), coefficients U[0,1).
///   IndependentFeaturesConfig  i.i.d. mode: feature i fires with probability
///                              activation_probability * probability_decay^i, with a random
///                              magnitude.
///   SyntheticGenerator<Scalar> draws the true features once (N(0, 1) entries, rows
///                              optionally normalised), then any number of samples
///                              `x = Σ c_i g_i (+ noise)` and optionally their codes c.
///                              The authors store the features as columns of a [d, n]
///                              matrix; here they are rows, `x = c * true_features()`.
///   SyntheticBatchSource<Scalar> `next_batch(out)` for the trainer loop.
///
/// Requires: a config that passes validate() (the constructors call it; config_error
///           names the field otherwise).
/// Ensures:  the same seed gives the same features and the same stream of samples, and
///           the stream does not depend on how it is cut into batches (every random number
///           of a sample is drawn before the next sample's). The true features are drawn
///           first, so they do not depend on any later call. Memory is O(batch * d +
///           num_chunks * num_groups * active_per_sample): the data set is never stored.
///
/// The authors' generator (luke-marks0/mutual-feature-regularization, utils/data_utils.py)
/// draws each group's support once per chunk of 1,000,000 samples and shuffles the whole
/// 50M set; SupportSampling::per_chunk is its streaming equivalent (all chunk supports fixed
/// up front, each sample from a uniformly random chunk and group). per_sample draws a fresh
/// support for every sample, the natural reading of the paper.

#include "sae/core/error.hpp"
#include "sae/core/state_dict.hpp"
#include "sae/core/types.hpp"

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace sae {

/// How the correlated-groups task picks the features of a sample.
enum class SupportSampling {
    per_chunk,  ///< the authors': one support per (chunk, group), shared by its samples
    per_sample  ///< a fresh support for every sample
};

/// The MFR synthetic task (defaults reproduce the authors' setting).
struct CorrelatedGroupsConfig {
    Index input_dim = 256;          ///< d: dimension of a sample
    Index num_features = 512;       ///< number of true features (rows of true_features())
    Index num_groups = 12;          ///< groups of num_features / num_groups consecutive features
    Index active_per_sample = 32;   ///< distinct features per sample, all in one group
    double decay = 0.99;            ///< group-local feature i is drawn with weight decay^i
    SupportSampling support = SupportSampling::per_chunk;
    /// Samples per chunk in the authors' set. Chunks are equally large, so a uniformly
    /// random sample of the shuffled set comes from a uniformly random chunk: the stream's
    /// law depends on num_chunks only, and chunk_size is kept to describe the set mimicked.
    Index chunk_size = 1'000'000;
    Index num_chunks = 50;          ///< per_chunk: supports fixed for num_chunks x num_groups
    bool normalize_features = false;  ///< the authors' features are raw N(0, 1) vectors
    double noise_std = 0.0;         ///< std of i.i.d. Gaussian noise added to x

    /// Features per group; the last num_features % num_groups features are never used,
    /// as in the authors' code (512 // 12 = 42 leaves 8 unused).
    Index group_size() const { return num_groups > 0 ? num_features / num_groups : 0; }

    void validate() const;
};

/// Distribution of an active feature's coefficient in the i.i.d. mode.
enum class MagnitudeDistribution {
    uniform01,   ///< U[0, 1)
    exponential, ///< Exp(1)
    half_normal  ///< |N(0, 1)|
};

/// Independent features: each fires on its own, with a probability that may decay with index.
struct IndependentFeaturesConfig {
    Index input_dim = 64;
    Index num_features = 128;
    double activation_probability = 0.05;
    double probability_decay = 1.0;  ///< feature i fires with activation_probability * decay^i
    MagnitudeDistribution magnitude = MagnitudeDistribution::uniform01;
    double noise_std = 0.0;
    bool normalize_features = true;

    /// Probability that feature `feature` is active in a sample.
    double firing_probability(Index feature) const {
        return activation_probability * std::pow(probability_decay, static_cast<double>(feature));
    }

    void validate() const;
};

namespace detail {

template <class T>
std::string describe(const T& value) {
    std::ostringstream text;
    text << value;
    return text.str();
}

/// Throws config_error "<config>.<field> = <value>: <rule>" unless `ok`.
template <class T>
void require_setting(bool ok, const char* config, const char* field, const T& value, const char* rule) {
    if (!ok) {
        throw config_error(std::string(config) + "." + field + " = " + describe(value) + ": " + rule);
    }
}

/// Sparse codes store column indices as int; a dimension beyond that cannot be indexed.
inline bool fits_storage_index(Index value) {
    return value <= static_cast<Index>(std::numeric_limits<typename SparseCode<float>::StorageIndex>::max());
}

/// A draw from U[0, 1) in Scalar. Drawn in double so float and double streams agree;
/// rounding a double just below 1 to float can give 1, which is mapped back below 1.
template <class Scalar>
Scalar uniform_below_one(std::mt19937_64& rng) {
    const Scalar value = static_cast<Scalar>(std::uniform_real_distribution<double>(0.0, 1.0)(rng));
    return value < Scalar(1) ? value : std::nextafter(Scalar(1), Scalar(0));
}

/// `count` distinct indices of [0, log_weights.size()) drawn by successive weighted draws
/// without replacement (the law of torch.multinomial(replacement=False)), returned sorted.
/// Uses the exponential-race form of that law: with E_i ~ Exp(1), the order of
/// E_i / w_i is the order of successive weighted draws, so the `count` smallest keys
/// log(E_i) - log(w_i) are the sample. Log space keeps tiny weights (decay^i) exact.
inline void weighted_sample_without_replacement(const std::vector<double>& log_weights, Index count,
                                                 std::mt19937_64& rng, std::vector<double>& keys,
                                                 std::vector<int>& chosen) {
    const std::size_t n = log_weights.size();
    keys.resize(n);
    std::exponential_distribution<double> race(1.0);
    for (std::size_t i = 0; i < n; ++i) keys[i] = std::log(race(rng)) - log_weights[i];
    chosen.resize(n);
    std::iota(chosen.begin(), chosen.end(), 0);
    const auto by_key = [&keys](int a, int b) { return keys[static_cast<std::size_t>(a)] < keys[static_cast<std::size_t>(b)]; };
    std::nth_element(chosen.begin(), chosen.begin() + count - 1, chosen.end(), by_key);
    chosen.resize(static_cast<std::size_t>(count));
    std::sort(chosen.begin(), chosen.end());
}

}  // namespace detail

inline void CorrelatedGroupsConfig::validate() const {
    constexpr const char* cfg = "CorrelatedGroupsConfig";
    detail::require_setting(input_dim > 0, cfg, "input_dim", input_dim, "must be positive");
    detail::require_setting(num_features > 0, cfg, "num_features", num_features, "must be positive");
    detail::require_setting(detail::fits_storage_index(num_features), cfg, "num_features", num_features,
                            "exceeds the sparse code's index range");
    detail::require_setting(num_groups > 0 && num_groups <= num_features, cfg, "num_groups", num_groups,
                            "must be in [1, num_features]");
    detail::require_setting(active_per_sample > 0 && active_per_sample <= group_size(), cfg, "active_per_sample",
                            active_per_sample,
                            ("must be in [1, num_features / num_groups] (group size " +
                             std::to_string(group_size()) + ")").c_str());
    detail::require_setting(std::isfinite(decay) && decay > 0.0, cfg, "decay", decay, "must be finite and > 0");
    detail::require_setting(chunk_size > 0, cfg, "chunk_size", chunk_size, "must be positive");
    detail::require_setting(num_chunks > 0, cfg, "num_chunks", num_chunks, "must be positive");
    detail::require_setting(std::isfinite(noise_std) && noise_std >= 0.0, cfg, "noise_std", noise_std,
                            "must be finite and >= 0");
}

inline void IndependentFeaturesConfig::validate() const {
    constexpr const char* cfg = "IndependentFeaturesConfig";
    detail::require_setting(input_dim > 0, cfg, "input_dim", input_dim, "must be positive");
    detail::require_setting(num_features > 0, cfg, "num_features", num_features, "must be positive");
    detail::require_setting(detail::fits_storage_index(num_features), cfg, "num_features", num_features,
                            "exceeds the sparse code's index range");
    detail::require_setting(activation_probability > 0.0 && activation_probability <= 1.0, cfg,
                            "activation_probability", activation_probability, "must be in (0, 1]");
    // decay > 1 could push a probability above 1, so it is capped at 1.
    detail::require_setting(probability_decay > 0.0 && probability_decay <= 1.0, cfg, "probability_decay",
                            probability_decay, "must be in (0, 1]");
    detail::require_setting(magnitude == MagnitudeDistribution::uniform01 ||
                                magnitude == MagnitudeDistribution::exponential ||
                                magnitude == MagnitudeDistribution::half_normal,
                            cfg, "magnitude", static_cast<int>(magnitude), "is not a MagnitudeDistribution");
    detail::require_setting(std::isfinite(noise_std) && noise_std >= 0.0, cfg, "noise_std", noise_std,
                            "must be finite and >= 0");
}

/// Draws the true features once, then a stream of samples with their sparse codes.
template <class Scalar>
class SyntheticGenerator {
    static_assert(std::is_floating_point<Scalar>::value, "SyntheticGenerator needs a floating-point Scalar");

public:
    SyntheticGenerator(const CorrelatedGroupsConfig& config, std::uint64_t seed) : config_(config), rng_(seed) {
        config.validate();
        draw_features(config.num_features, config.input_dim, config.normalize_features);
        group_log_weights_.resize(static_cast<std::size_t>(config.group_size()));
        for (std::size_t i = 0; i < group_log_weights_.size(); ++i) {
            group_log_weights_[i] = static_cast<double>(i) * std::log(config.decay);
        }
        if (config.support == SupportSampling::per_chunk) draw_chunk_supports(config);
    }

    SyntheticGenerator(const IndependentFeaturesConfig& config, std::uint64_t seed) : config_(config), rng_(seed) {
        config.validate();
        draw_features(config.num_features, config.input_dim, config.normalize_features);
        firing_probabilities_.resize(static_cast<std::size_t>(config.num_features));
        for (std::size_t i = 0; i < firing_probabilities_.size(); ++i) {
            firing_probabilities_[i] = config.firing_probability(static_cast<Index>(i));
        }
    }

    /// `[num_features, input_dim]`; row i is feature g_i.
    const Matrix<Scalar>& true_features() const { return features_; }
    Index input_dim() const { return features_.cols(); }
    Index num_features() const { return features_.rows(); }

    /// Fills every row of `out` (`[rows, input_dim]`) with a fresh sample; when
    /// `coefficients` is given it receives the sparse codes `[rows, num_features]` with
    /// `out = coefficients * true_features() (+ noise)`.
    void sample_into(MatrixRef<Scalar> out, SparseCode<Scalar>* coefficients = nullptr) {
        if (out.cols() != input_dim()) {
            throw shape_error("SyntheticGenerator::sample_into: output has " + std::to_string(out.cols()) +
                              " columns, expected input_dim = " + std::to_string(input_dim()));
        }
        SparseCode<Scalar>& codes = coefficients != nullptr ? *coefficients : scratch_codes_;
        draw_codes(out.rows(), codes);
        out.noalias() = codes * features_;
        if (noise_std() > 0.0) out += noise_;
    }

    /// `rows` fresh samples.
    Matrix<Scalar> sample(Index rows) {
        Matrix<Scalar> out(rows, input_dim());
        sample_into(out);
        return out;
    }

    /// The random engine's state, so a resumed run draws the same samples (any
    /// StateDict-like type with set/get of strings).
    template <class Dict>
    void save_state(Dict& dict, const std::string& prefix) const {
        dict.set(prefix + "rng", engine_state(rng_));
    }
    template <class Dict>
    void load_state(const Dict& dict, const std::string& prefix) {
        restore_engine_state(rng_, dict.template get<std::string>(prefix + "rng"), prefix + "rng");
    }
private:
    using Config = std::variant<CorrelatedGroupsConfig, IndependentFeaturesConfig>;

    double noise_std() const {
        return std::visit([](const auto& config) { return config.noise_std; }, config_);
    }

    void draw_features(Index rows, Index cols, bool normalize) {
        features_.resize(rows, cols);
        std::normal_distribution<double> normal(0.0, 1.0);
        Scalar* values = features_.data();
        for (Index i = 0; i < features_.size(); ++i) values[i] = static_cast<Scalar>(normal(rng_));
        if (normalize) features_.rowwise().normalize();
    }

    /// Every (chunk, group) support, as global feature indices, drawn in chunk-major order.
    void draw_chunk_supports(const CorrelatedGroupsConfig& config) {
        const Index active = config.active_per_sample;
        chunk_supports_.reserve(static_cast<std::size_t>(config.num_chunks * config.num_groups * active));
        for (Index chunk = 0; chunk < config.num_chunks; ++chunk) {
            for (Index group = 0; group < config.num_groups; ++group) {
                detail::weighted_sample_without_replacement(group_log_weights_, active, rng_, keys_, support_);
                const int offset = static_cast<int>(group * config.group_size());
                for (int local : support_) chunk_supports_.push_back(offset + local);
            }
        }
    }

    /// Draws `rows` samples' codes (and noise rows), one sample at a time, so that the
    /// stream does not depend on the batch size.
    void draw_codes(Index rows, SparseCode<Scalar>& codes) {
        triplets_.clear();
        check_code_capacity(0, rows);  // row indices are ints as well
        const bool noisy = noise_std() > 0.0;
        if (noisy) noise_.resize(rows, input_dim());
        for (Index row = 0; row < rows; ++row) {
            if (const auto* groups = std::get_if<CorrelatedGroupsConfig>(&config_)) {
                append_group_code(*groups, row);
            } else {
                append_independent_code(std::get<IndependentFeaturesConfig>(config_), row);
            }
            if (noisy) draw_noise_row(row);
        }
        codes.resize(rows, num_features());
        codes.setFromTriplets(triplets_.begin(), triplets_.end());
    }

    void draw_noise_row(Index row) {
        std::normal_distribution<double> normal(0.0, noise_std());
        for (Index col = 0; col < input_dim(); ++col) noise_(row, col) = static_cast<Scalar>(normal(rng_));
    }

    /// The code's nonzero count must stay within its int index range.
    void check_code_capacity(Index row, Index more) const {
        if (!detail::fits_storage_index(static_cast<Index>(triplets_.size()) + more)) {
            throw shape_error("SyntheticGenerator: batch overflows the sparse code's int index range at row " +
                              std::to_string(row) + "; draw smaller batches");
        }
    }

    /// One sample of the correlated-groups task: a group (and chunk), its support, U[0,1) coefficients.
    void append_group_code(const CorrelatedGroupsConfig& config, Index row) {
        check_code_capacity(row, config.active_per_sample);
        const int* support = nullptr;
        if (config.support == SupportSampling::per_chunk) {
            const Index chunk = uniform_index(config.num_chunks);
            const Index group = uniform_index(config.num_groups);
            support = chunk_supports_.data() + (chunk * config.num_groups + group) * config.active_per_sample;
        } else {
            const int offset = static_cast<int>(uniform_index(config.num_groups) * config.group_size());
            detail::weighted_sample_without_replacement(group_log_weights_, config.active_per_sample, rng_, keys_,
                                                        support_);
            for (int& feature : support_) feature += offset;
            support = support_.data();
        }
        for (Index i = 0; i < config.active_per_sample; ++i) {
            triplets_.emplace_back(static_cast<int>(row), support[i], detail::uniform_below_one<Scalar>(rng_));
        }
    }

    /// One sample of the i.i.d. mode: a Bernoulli draw per feature, then a magnitude.
    void append_independent_code(const IndependentFeaturesConfig& config, Index row) {
        check_code_capacity(row, config.num_features);
        std::uniform_real_distribution<double> coin(0.0, 1.0);
        for (Index feature = 0; feature < config.num_features; ++feature) {
            if (coin(rng_) < firing_probabilities_[static_cast<std::size_t>(feature)]) {
                triplets_.emplace_back(static_cast<int>(row), static_cast<int>(feature),
                                       draw_magnitude(config.magnitude));
            }
        }
    }

    Scalar draw_magnitude(MagnitudeDistribution magnitude) {
        switch (magnitude) {
            case MagnitudeDistribution::exponential:
                return static_cast<Scalar>(std::exponential_distribution<double>(1.0)(rng_));
            case MagnitudeDistribution::half_normal:
                return static_cast<Scalar>(std::abs(std::normal_distribution<double>(0.0, 1.0)(rng_)));
            case MagnitudeDistribution::uniform01:
                break;
        }
        return detail::uniform_below_one<Scalar>(rng_);
    }

    Index uniform_index(Index count) { return std::uniform_int_distribution<Index>(0, count - 1)(rng_); }

    Config config_;
    std::mt19937_64 rng_;
    Matrix<Scalar> features_;
    std::vector<double> group_log_weights_;  ///< log(decay^i) for group-local index i
    std::vector<double> firing_probabilities_;  ///< i.i.d. mode: p_i of feature i
    std::vector<int> chunk_supports_;        ///< per_chunk: [num_chunks][num_groups][active], sorted
    std::vector<double> keys_;               ///< scratch of the weighted draw
    std::vector<int> support_;               ///< scratch of the weighted draw
    std::vector<Eigen::Triplet<Scalar, int>> triplets_;  ///< this batch's codes before assembly
    SparseCode<Scalar> scratch_codes_;       ///< codes when the caller does not want them
    Matrix<Scalar> noise_;                   ///< this batch's noise rows
};

/// Hands a trainer fixed-size batches drawn from a generator it does not own.
template <class Scalar>
class SyntheticBatchSource {
public:
    /// Requires: `generator` outlives this source; batch_size > 0.
    SyntheticBatchSource(SyntheticGenerator<Scalar>& generator, Index batch_size)
        : generator_(&generator), batch_size_(batch_size) {
        detail::require_setting(batch_size > 0, "SyntheticBatchSource", "batch_size", batch_size, "must be positive");
    }

    /// Resizes `out` to `[batch_size, input_dim]` and fills it with fresh samples.
    void next_batch(Matrix<Scalar>& out) {
        out.resize(batch_size_, generator_->input_dim());
        generator_->sample_into(out);
    }

    Index batch_size() const { return batch_size_; }

    template <class Dict>
    void save_state(Dict& dict, const std::string& prefix = "data/") const {
        generator_->save_state(dict, prefix);
    }
    template <class Dict>
    void load_state(const Dict& dict, const std::string& prefix = "data/") {
        generator_->load_state(dict, prefix);
    }
private:
    SyntheticGenerator<Scalar>* generator_;
    Index batch_size_;
};

}  // namespace sae
