#pragma once
/// \file config_json.hpp
/// The JSON form of every configuration struct of libsae, with a strict reader.
///
/// Covered: AutoencoderConfig; TopK/BatchTopK/JumpReLU/ReluL1<float|double>::Config;
/// LossConfig; AdamConfig; LearningRateSchedule; CoefficientWarmup; ReinitRule;
/// TrainingConfig; TrainerConfig (with NumericFaultConfig under "faults"); MfrConfig; CorrelatedGroupsConfig;
/// IndependentFeaturesConfig (and, in run_config.hpp, the whole RunConfig). The JSON keys
/// are the C++ member names; enums are their enumerator names ("cosine", "one_to_one").
///
/// Provides (namespace sae; BasicJson is nlohmann::json or nlohmann::ordered_json)
///   to_json(BasicJson& j, const T& config)
///       ensures: j is an object holding EVERY field of `config`, so the JSON of a
///                default-constructed T documents all settings. Found by nlohmann's ADL
///                too: `nlohmann::json j = config;` works.
///   from_json_strict(const BasicJson& j, T& config, const std::string& path)
///       requires: `path` is the key path of `j` in the whole document ("" at the top).
///       ensures:  every key of j is read into the field of that name; a missing key
///                 keeps the field's current value; the result passes the struct's
///                 validate(). On error `config` is unchanged (strong guarantee).
///       throws:   config_error "<key path>: <what>" with the full key path, for
///                 - an unknown key: "training.adam.beta3: unknown key (known: beta1,
///                   beta2, epsilon)", with a "did you mean" hint for a near miss;
///                 - a wrong JSON type: string for a number, a number for a bool, a
///                   negative or fractional number for an unsigned/integer field, an
///                   integer beyond the field's range;
///                 - an enum name that does not exist (the valid names are listed);
///                 - a value validate() rejects: validate()'s message, prefixed with the
///                   key path of the field it names ("training.adam.beta1: ...").
///   read_config<T>(j, path)            T{} filled by from_json_strict: missing keys keep
///                                      the defaults.
///   from_json(j, config)               from_json_strict at the top level, so
///                                      `j.get<T>()` is strict as well.
///   enum_name(e), enum_from_name<E>(name, path)
///   parse_config_json(text, source)    text -> JSON, allowing // and /* */ comments;
///                                      io_error "<source>: invalid JSON at byte N: ..."
///                                      (also for invalid UTF-8); config_error
///                                      "<source>: <key path>: duplicate key".
///
/// Extending: a struct S (in namespace sae) becomes readable and writable by declaring
///   template <class V> void visit_config_fields(S& s, V&& visit) { visit("name", s.name); ... }
/// Field types may be bool, integers, floating point, std::string, enums with
/// `config_enum_names`, std::vector and std::optional of these, or other such structs.
/// S is validated by `validate(path)` if it has one (messages must carry the key path),
/// else by `validate()` (its message is prefixed with the key path of the field it names).
///
/// Doubles round-trip exactly (the JSON holds the double itself; nlohmann prints the
/// shortest text that reads back to the same double), so
/// read_config<T>(to_json(x)) == x for every valid x.

#include "sae/core/activations/batch_topk.hpp"
#include "sae/core/activations/jump_relu.hpp"
#include "sae/core/activations/relu_l1.hpp"
#include "sae/core/activations/topk.hpp"
#include "sae/core/adam.hpp"
#include "sae/core/autoencoder.hpp"
#include "sae/core/error.hpp"
#include "sae/core/loss.hpp"
#include "sae/core/schedule.hpp"
#include "sae/core/trainable_sae.hpp"
#include "sae/core/trainer.hpp"
#include "sae/data/synthetic.hpp"
#include "sae/io/json_depth.hpp"
#include "sae/mfr/ensemble.hpp"
#include "sae/mfr/feature_matching.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

// ---- enum names ----------------------------------------------------------------------

constexpr std::array<std::pair<ReconstructionNormalization, const char*>, 2> config_enum_names(
    ReconstructionNormalization) {
    return {{{ReconstructionNormalization::sum_over_features, "sum_over_features"},
             {ReconstructionNormalization::mean_over_elements, "mean_over_elements"}}};
}
constexpr std::array<std::pair<DecayShape, const char*>, 3> config_enum_names(DecayShape) {
    return {{{DecayShape::constant, "constant"}, {DecayShape::linear, "linear"}, {DecayShape::cosine, "cosine"}}};
}
constexpr std::array<std::pair<MatchingMode, const char*>, 2> config_enum_names(MatchingMode) {
    return {{{MatchingMode::one_to_one, "one_to_one"}, {MatchingMode::max_cosine, "max_cosine"}}};
}
constexpr std::array<std::pair<SupportSampling, const char*>, 2> config_enum_names(SupportSampling) {
    return {{{SupportSampling::per_chunk, "per_chunk"}, {SupportSampling::per_sample, "per_sample"}}};
}
constexpr std::array<std::pair<FaultPolicy, const char*>, 3> config_enum_names(FaultPolicy) {
    return {{{FaultPolicy::stop, "stop"}, {FaultPolicy::skip_batch, "skip_batch"}, {FaultPolicy::report, "report"}}};
}
constexpr std::array<std::pair<MagnitudeDistribution, const char*>, 3> config_enum_names(MagnitudeDistribution) {
    return {{{MagnitudeDistribution::uniform01, "uniform01"},
             {MagnitudeDistribution::exponential, "exponential"},
             {MagnitudeDistribution::half_normal, "half_normal"}}};
}

// ---- the schema: one field list per struct ------------------------------------------

template <class V>
void visit_config_fields(AutoencoderConfig& c, V&& visit) {
    visit("d_in", c.d_in);
    visit("d_sae", c.d_sae);
    visit("tied", c.tied);
    visit("decoder_bias", c.decoder_bias);
    visit("unit_norm_decoder", c.unit_norm_decoder);
}

namespace detail::config_io {
/// True when C is Act<float>::Config or Act<double>::Config (the activation configs are
/// nested in the Scalar template, so each exists twice with the same fields).
template <class C, template <class> class Act>
constexpr bool is_config_of_v =
    std::is_same_v<C, typename Act<float>::Config> || std::is_same_v<C, typename Act<double>::Config>;

template <class C, template <class> class Act>
using scalar_of_config_t = std::conditional_t<std::is_same_v<C, typename Act<float>::Config>, float, double>;

template <class C>
constexpr bool is_activation_config_v =
    is_config_of_v<C, TopK> || is_config_of_v<C, BatchTopK> || is_config_of_v<C, JumpReLU> || is_config_of_v<C, ReluL1>;
}  // namespace detail::config_io

template <class C, class V>
std::enable_if_t<detail::config_io::is_config_of_v<C, TopK>> visit_config_fields(C& c, V&& visit) {
    visit("k", c.k);
    visit("relu", c.relu);
}
template <class C, class V>
std::enable_if_t<detail::config_io::is_config_of_v<C, BatchTopK>> visit_config_fields(C& c, V&& visit) {
    visit("k", c.k);
    visit("threshold_momentum", c.threshold_momentum);
}
template <class C, class V>
std::enable_if_t<detail::config_io::is_config_of_v<C, JumpReLU>> visit_config_fields(C& c, V&& visit) {
    visit("initial_threshold", c.initial_threshold);
    visit("bandwidth", c.bandwidth);
}
template <class C, class V>
std::enable_if_t<detail::config_io::is_config_of_v<C, ReluL1>> visit_config_fields(C&, V&&) {}

template <class V>
void visit_config_fields(LossConfig& c, V&& visit) {
    visit("normalization", c.normalization);
    visit("aux_coefficient", c.aux_coefficient);
    visit("aux_k", c.aux_k);
}

template <class V>
void visit_config_fields(AdamConfig& c, V&& visit) {
    visit("beta1", c.beta1);
    visit("beta2", c.beta2);
    visit("epsilon", c.epsilon);
}

template <class V>
void visit_config_fields(LearningRateSchedule& c, V&& visit) {
    visit("base_rate", c.base_rate);
    visit("warmup_steps", c.warmup_steps);
    visit("decay", c.decay);
    visit("decay_steps", c.decay_steps);
    visit("total_steps", c.total_steps);
    visit("final_fraction", c.final_fraction);
}

template <class V>
void visit_config_fields(CoefficientWarmup& c, V&& visit) {
    visit("target", c.target);
    visit("warmup_steps", c.warmup_steps);
}

template <class V>
void visit_config_fields(ReinitRule& c, V&& visit) {
    visit("enabled", c.enabled);
    visit("threshold", c.threshold);
    visit("target_rate", c.target_rate);
}

template <class V>
void visit_config_fields(TrainingConfig& c, V&& visit) {
    visit("learning_rate", c.learning_rate);
    visit("adam", c.adam);
    visit("sparsity", c.sparsity);
    visit("loss", c.loss);
    visit("max_grad_norm", c.max_grad_norm);
    visit("dead_after_tokens", c.dead_after_tokens);
    visit("init_decoder_bias_to_median", c.init_decoder_bias_to_median);
    visit("normalize_inputs", c.normalize_inputs);
    visit("reinit", c.reinit);
    visit("micro_batch_rows", c.micro_batch_rows);
}

template <class V>
void visit_config_fields(NumericFaultConfig& c, V&& visit) {
    visit("input", c.input);
    visit("loss", c.loss);
    visit("state", c.state);
    visit("dead_latents", c.dead_latents);
    visit("max_consecutive_skips", c.max_consecutive_skips);
    visit("loss_spike_factor", c.loss_spike_factor);
    visit("loss_median_window", c.loss_median_window);
    visit("dead_latents_window", c.dead_latents_window);
    visit("state_check_every", c.state_check_every);
}

template <class V>
void visit_config_fields(TrainerConfig& c, V&& visit) {
    visit("total_steps", c.total_steps);
    visit("check_finite", c.check_finite);
    visit("faults", c.faults);
}

template <class V>
void visit_config_fields(MfrConfig& c, V&& visit) {
    visit("num_saes", c.num_saes);
    visit("penalty_coefficient", c.penalty_coefficient);
    visit("penalty_warmup_steps", c.penalty_warmup_steps);
    visit("matching", c.matching);
    visit("matching_refresh_steps", c.matching_refresh_steps);
    visit("scale_k_by_member", c.scale_k_by_member);
}

template <class V>
void visit_config_fields(CorrelatedGroupsConfig& c, V&& visit) {
    visit("input_dim", c.input_dim);
    visit("num_features", c.num_features);
    visit("num_groups", c.num_groups);
    visit("active_per_sample", c.active_per_sample);
    visit("decay", c.decay);
    visit("support", c.support);
    visit("chunk_size", c.chunk_size);
    visit("num_chunks", c.num_chunks);
    visit("normalize_features", c.normalize_features);
    visit("noise_std", c.noise_std);
}

template <class V>
void visit_config_fields(IndependentFeaturesConfig& c, V&& visit) {
    visit("input_dim", c.input_dim);
    visit("num_features", c.num_features);
    visit("activation_probability", c.activation_probability);
    visit("probability_decay", c.probability_decay);
    visit("magnitude", c.magnitude);
    visit("noise_std", c.noise_std);
    visit("normalize_features", c.normalize_features);
}

// ---- machinery -----------------------------------------------------------------------

namespace detail::config_io {

/// "a.b" + "c" -> "a.b.c"; at the top level the key alone.
inline std::string join_key(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}

/// Throws config_error "<path>: <what>" (the top level is called so).
[[noreturn]] inline void config_fail(const std::string& path, const std::string& what) {
    throw config_error((path.empty() ? std::string("top level") : path) + ": " + what);
}

/// A JSON value for an error message: its type and, if short, its text.
template <class BasicJson>
std::string describe_json(const BasicJson& j) {
    std::string text = j.dump(-1, ' ', false, BasicJson::error_handler_t::replace);
    if (j.is_object() || j.is_array() || text.size() > 40) return j.type_name();
    return std::string(j.type_name()) + " " + text;
}

inline std::string join_names(const std::vector<std::string>& names, const char* quote = "") {
    std::string text;
    for (const std::string& name : names) text += (text.empty() ? "" : ", ") + std::string(quote) + name + quote;
    return text;
}

template <class T, class = void>
struct has_enum_names : std::false_type {};
template <class T>
struct has_enum_names<T, std::void_t<decltype(config_enum_names(std::declval<T>()))>> : std::true_type {};

template <class E>
std::vector<std::string> enum_names_of() {
    std::vector<std::string> names;
    for (const auto& entry : config_enum_names(E{})) names.emplace_back(entry.second);
    return names;
}

/// The visitor that lists a struct's keys.
struct FieldNameCollector {
    std::vector<std::string> names;
    template <class T>
    void operator()(const char* name, T&) {
        names.emplace_back(name);
    }
};

template <class T, class = void>
struct has_config_fields : std::false_type {};
template <class T>
struct has_config_fields<T, std::void_t<decltype(visit_config_fields(std::declval<T&>(),
                                                                      std::declval<FieldNameCollector&>()))>>
    : std::true_type {};

template <class T>
constexpr bool is_config_struct_v = has_config_fields<T>::value;

template <class T>
std::vector<std::string> field_names_of() {
    T probe{};
    FieldNameCollector collector;
    visit_config_fields(probe, collector);
    return collector.names;
}

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T, class = void>
struct has_plain_validate : std::false_type {};
template <class T>
struct has_plain_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>> : std::true_type {};
template <class T, class = void>
struct has_keyed_validate : std::false_type {};
template <class T>
struct has_keyed_validate<T, std::void_t<decltype(std::declval<const T&>().validate(std::declval<const std::string&>()))>>
    : std::true_type {};

inline bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

/// Position of the first occurrence of `name` in `text` as a whole identifier, or npos.
inline std::size_t find_identifier(const std::string& text, const std::string& name) {
    for (std::size_t pos = text.find(name); pos != std::string::npos; pos = text.find(name, pos + 1)) {
        const std::size_t end = pos + name.size();
        const bool starts = pos == 0 || !is_identifier_char(text[pos - 1]);
        const bool ends = end == text.size() || !is_identifier_char(text[end]);
        if (starts && ends) return pos;
    }
    return std::string::npos;
}

/// validate()'s messages name a field in their own words ("AdamConfig.beta1 must be ...");
/// prefix them with the full key path of the first field they mention, or of the struct.
inline std::string with_key_path(const std::string& message, const std::string& path,
                                 const std::vector<std::string>& fields) {
    if (!path.empty() && message.rfind(path, 0) == 0) return message;
    std::size_t first = std::string::npos;
    std::string key = path;
    for (const std::string& field : fields) {
        const std::size_t pos = find_identifier(message, field);
        if (pos < first) {
            first = pos;
            key = join_key(path, field);
        }
    }
    return key.empty() ? message : key + ": " + message;
}

/// The activation configs have no validate(): their rules live in the constructors. The
/// rules that do not depend on d_sae are checked by constructing the activation (so they
/// cannot drift from the library's); k <= d_sae is a cross-field check of the model.
template <class C>
void validate_activation_config(const C& config) {
    if constexpr (is_config_of_v<C, TopK> || is_config_of_v<C, BatchTopK>) {
        if (config.k < 1) throw config_error("k = " + std::to_string(config.k) + " must be >= 1");
    }
    if constexpr (is_config_of_v<C, BatchTopK>) {
        BatchTopK<scalar_of_config_t<C, BatchTopK>>(config, config.k);
    } else if constexpr (is_config_of_v<C, JumpReLU>) {
        JumpReLU<scalar_of_config_t<C, JumpReLU>>(config, 1);
    }
}

/// Runs the struct's own checks, making sure the error names the key path.
template <class T>
void validate_config(const T& config, const std::string& path) {
    if constexpr (has_keyed_validate<T>::value) {
        config.validate(path);
    } else {
        try {
            if constexpr (has_plain_validate<T>::value) {
                config.validate();
            } else if constexpr (is_activation_config_v<T>) {
                validate_activation_config(config);
            }
        } catch (const config_error& e) {
            throw config_error(with_key_path(e.what(), path, field_names_of<T>()));
        }
    }
}

/// Edit distance counting an adjacent transposition as one edit (optimal string
/// alignment), for "did you mean" hints on misspelt keys ("modle" -> "model").
inline std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

inline std::string unknown_key_message(const std::string& key, const std::vector<std::string>& known) {
    std::string message = "unknown key (known: " + join_names(known) + ")";
    std::size_t best = std::max<std::size_t>(1, key.size() / 4) + 1;  // a hint only for a near miss
    const std::string* closest = nullptr;
    for (const std::string& candidate : known) {
        const std::size_t distance = edit_distance(key, candidate);
        if (distance < best) {
            best = distance;
            closest = &candidate;
        }
    }
    return closest == nullptr ? message : message + "; did you mean \"" + *closest + "\"?";
}

template <class E>
E enum_value_from_name(const std::string& name, const std::string& path) {
    for (const auto& entry : config_enum_names(E{})) {
        if (name == entry.second) return entry.first;
    }
    config_fail(path, "expected one of " + join_names(enum_names_of<E>(), "\"") + ", got \"" + name + "\"");
}

template <class T, class BasicJson>
T read_integer(const BasicJson& j, const std::string& path) {
    using Limits = std::numeric_limits<T>;
    const std::string expected = std::is_unsigned_v<T> ? "a non-negative integer" : "an integer";
    const std::string out_of_range = "value out of range [" + std::to_string(Limits::min()) + ", " +
                                     std::to_string(Limits::max()) + "]: " + describe_json(j);
    if (j.is_number_unsigned() || (j.is_number_integer() && j.template get<std::int64_t>() >= 0)) {
        const auto value = j.template get<std::uint64_t>();
        if (value > static_cast<std::uint64_t>(Limits::max())) config_fail(path, out_of_range);
        return static_cast<T>(value);
    }
    if (j.is_number_integer()) {  // negative
        const auto value = j.template get<std::int64_t>();
        if constexpr (std::is_unsigned_v<T>) {
            config_fail(path, "expected " + expected + ", got " + describe_json(j));
        } else {
            if (value < static_cast<std::int64_t>(Limits::min())) config_fail(path, out_of_range);
            return static_cast<T>(value);
        }
    }
    if (j.is_number_float()) {
        // 4096.0 or 1e4 mean an integer exactly; 2.5 does not. The range test is done in
        // double, where 2^digits is exact, before converting.
        const double value = j.template get<double>();
        const double bound = std::ldexp(1.0, Limits::digits);
        const double lower = std::is_unsigned_v<T> ? 0.0 : -bound;
        if (value != std::floor(value) || (value < 0.0 && std::is_unsigned_v<T>)) {
            config_fail(path, "expected " + expected + ", got " + describe_json(j));
        }
        if (!(value >= lower && value < bound)) config_fail(path, out_of_range);
        return static_cast<T>(value);
    }
    config_fail(path, "expected " + expected + ", got " + describe_json(j));
}

template <class BasicJson, class T>
void read_value(const BasicJson& j, T& out, const std::string& path);

template <class BasicJson, class T>
void read_array(const BasicJson& j, std::vector<T>& out, const std::string& path) {
    if (!j.is_array()) config_fail(path, "expected an array, got " + describe_json(j));
    std::vector<T> values(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) read_value(j[i], values[i], path + "[" + std::to_string(i) + "]");
    out = std::move(values);
}

/// Reads one field of any supported type (see the file comment).
template <class BasicJson, class T>
void read_value(const BasicJson& j, T& out, const std::string& path) {
    if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) config_fail(path, "expected a boolean (true or false), got " + describe_json(j));
        out = j.template get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
        out = read_integer<T>(j, path);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) config_fail(path, "expected a number, got " + describe_json(j));
        out = j.template get<T>();
    } else if constexpr (std::is_enum_v<T>) {
        if (!j.is_string()) {
            config_fail(path, "expected one of " + join_names(enum_names_of<T>(), "\"") + ", got " + describe_json(j));
        }
        out = enum_value_from_name<T>(j.template get_ref<const typename BasicJson::string_t&>(), path);
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!j.is_string()) config_fail(path, "expected a string, got " + describe_json(j));
        out = j.template get<std::string>();
    } else if constexpr (is_vector<T>::value) {
        read_array(j, out, path);
    } else if constexpr (is_optional<T>::value) {
        if (j.is_null()) {
            out.reset();
        } else {
            typename T::value_type value = out.value_or(typename T::value_type{});
            read_value(j, value, path);
            out = std::move(value);
        }
    } else {
        from_json_strict(j, out, path);  // a nested struct, found by ADL
    }
}

template <class BasicJson, class T>
BasicJson write_value(const T& value) {
    if constexpr (std::is_enum_v<T>) {
        return BasicJson(enum_name(value));
    } else if constexpr (is_optional<T>::value) {
        return value ? write_value<BasicJson>(*value) : BasicJson(nullptr);
    } else if constexpr (is_vector<T>::value) {
        BasicJson array = BasicJson::array();
        for (const auto& element : value) array.push_back(write_value<BasicJson>(element));
        return array;
    } else if constexpr (std::is_class_v<T> && !std::is_same_v<T, std::string>) {
        BasicJson object;
        to_json(object, value);  // a nested struct, found by ADL
        return object;
    } else {
        return BasicJson(value);
    }
}

template <class BasicJson>
struct FieldWriter {
    BasicJson& object;
    template <class T>
    void operator()(const char* name, const T& field) const {
        object[name] = write_value<BasicJson>(field);
    }
};

template <class BasicJson>
struct FieldReader {
    const BasicJson& object;
    const std::string& path;
    template <class T>
    void operator()(const char* name, T& field) const {
        const auto found = object.find(name);
        if (found != object.end()) read_value(*found, field, join_key(path, name));
    }
};

/// Reads the object `j` into `config` (fields of `j` only), rejecting unknown keys
/// other than `extra_keys` (keys the caller handles), then validates.
template <class BasicJson, class T>
void read_struct(const BasicJson& j, T& config, const std::string& path, const std::vector<std::string>& extra_keys = {}) {
    if (!j.is_object()) config_fail(path, "expected an object, got " + describe_json(j));
    std::vector<std::string> known = extra_keys;
    for (std::string& name : field_names_of<T>()) known.push_back(std::move(name));
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
            throw config_error(join_key(path, it.key()) + ": " + unknown_key_message(it.key(), known));
        }
    }
    T result = config;
    visit_config_fields(result, FieldReader<BasicJson>{j, path});
    validate_config(result, path);
    config = std::move(result);
}

template <class BasicJson>
constexpr bool is_json_v = nlohmann::detail::is_basic_json<BasicJson>::value;

}  // namespace detail::config_io

// ---- public API ----------------------------------------------------------------------

/// The name of an enumerator ("cosine"); config_error for a value outside the enum.
template <class E, std::enable_if_t<detail::config_io::has_enum_names<E>::value, int> = 0>
const char* enum_name(E value) {
    for (const auto& entry : config_enum_names(value)) {
        if (entry.first == value) return entry.second;
    }
    throw config_error("enum value " + std::to_string(static_cast<long long>(value)) + " has no name (one of " +
                       detail::config_io::join_names(detail::config_io::enum_names_of<E>()) + ")");
}

/// The enumerator called `name`; config_error "<path>: expected one of ..." otherwise.
template <class E, std::enable_if_t<detail::config_io::has_enum_names<E>::value, int> = 0>
E enum_from_name(const std::string& name, const std::string& path = "") {
    return detail::config_io::enum_value_from_name<E>(name, path);
}

template <class BasicJson, class T,
          std::enable_if_t<detail::config_io::is_json_v<BasicJson> && detail::config_io::is_config_struct_v<T>, int> = 0>
void to_json(BasicJson& j, const T& config) {
    T copy = config;  // the field visitor takes non-const references
    j = BasicJson::object();
    visit_config_fields(copy, detail::config_io::FieldWriter<BasicJson>{j});
}

template <class BasicJson, class T,
          std::enable_if_t<detail::config_io::is_json_v<BasicJson> && detail::config_io::is_config_struct_v<T>, int> = 0>
void from_json_strict(const BasicJson& j, T& config, const std::string& path) {
    detail::config_io::read_struct(j, config, path);
}

template <class BasicJson, class T,
          std::enable_if_t<detail::config_io::is_json_v<BasicJson> && detail::config_io::is_config_struct_v<T>, int> = 0>
void from_json(const BasicJson& j, T& config) {
    from_json_strict(j, config, std::string());
}

/// T with its defaults, overwritten by the keys of `j` (see from_json_strict).
template <class T, class BasicJson>
T read_config(const BasicJson& j, const std::string& path = "") {
    T config{};
    from_json_strict(j, config, path);
    return config;
}

namespace detail::config_io {

/// nlohmann's message without its "[json.exception.parse_error.101] " tag, printable.
inline std::string json_error_text(const nlohmann::json::exception& e) {
    const std::string what = e.what();
    const std::size_t tag_end = what.find("] ");
    const bool tagged = !what.empty() && what.front() == '[' && tag_end != std::string::npos;
    // nlohmann quotes the bytes it last read, which may be invalid UTF-8.
    return printable_bytes(tagged ? what.substr(tag_end + 2) : what);
}

/// Parser callback that rejects a key repeated within one object (nlohmann would keep
/// the last silently, hiding a mistake), reporting its key path.
class DuplicateKeyCheck {
public:
    explicit DuplicateKeyCheck(std::string source) : source_(std::move(source)) {}

    bool operator()(int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        switch (event) {
            case Event::object_start: frames_.push_back({child_path(), false, 0, {}}); break;
            case Event::array_start: frames_.push_back({child_path(), true, 0, {}}); break;
            case Event::object_end:
            case Event::array_end: frames_.pop_back(); break;
            case Event::key: record_key(parsed.get_ref<const std::string&>()); break;
            case Event::value:
                if (!frames_.empty() && frames_.back().is_array) ++frames_.back().next_index;
                break;
        }
        return true;
    }

private:
    struct Frame {
        std::string path;
        bool is_array;
        std::size_t next_index;
        std::set<std::string> keys;
    };

    std::string child_path() {
        if (frames_.empty()) return "";
        Frame& parent = frames_.back();
        if (parent.is_array) return parent.path + "[" + std::to_string(parent.next_index++) + "]";
        return join_key(parent.path, last_key_);
    }

    void record_key(const std::string& key) {
        if (!frames_.back().keys.insert(key).second) {
            const std::string where = join_key(frames_.back().path, key);
            throw config_error((source_.empty() ? "" : source_ + ": ") + where + ": duplicate key");
        }
        last_key_ = key;
    }

    std::string source_;
    std::vector<Frame> frames_;
    std::string last_key_;
};

}  // namespace detail::config_io

/// Parses a configuration text (JSON; // and /* */ comments are allowed so that config
/// files can be documented). `source` names the text in errors (a file path).
inline nlohmann::json parse_config_json(const std::string& text, const std::string& source) {
    const std::string prefix = source.empty() ? "" : source + ": ";
    detail::config_io::DuplicateKeyCheck check(source);
    try {
        return nlohmann::json::parse(
            text,
            [&check, &source](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
                // Also bounds the key paths DuplicateKeyCheck builds (quadratic in the depth).
                detail::check_json_depth(depth, source.empty() ? "config" : source);
                return check(depth, event, parsed);
            },
            /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        throw io_error(prefix + "invalid JSON at byte " + std::to_string(e.byte) + ": " + detail::config_io::json_error_text(e));
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
        throw io_error(prefix + "invalid JSON: " + detail::config_io::json_error_text(e));
    }
}

}  // namespace sae
