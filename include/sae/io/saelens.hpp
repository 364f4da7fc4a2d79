#pragma once
/// \file saelens.hpp
/// Saving and loading SAEs in the directory layouts of SAELens and EleutherAI's sparsify.
///
/// SAELens (github jbloomAus/SAELens, `SAE.save_model` / `SAE.load_from_disk`):
///   DIR/cfg.json                 {"architecture", "d_in", "d_sae", "dtype", "k", ...,
///                                 "metadata": {"model_name", "hook_name", ...}}
///   DIR/sae_weights.safetensors  W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in],
///                                b_dec [d_in], threshold [d_sae] (jumprelu, the raw theta)
/// sparsify (github EleutherAI/sparsify, `SparseCoder.save_to_disk`):
///   DIR/cfg.json                 {"d_in", "num_latents" | "expansion_factor", "k", ...}
///   DIR/sae.safetensors          encoder.weight [d_sae, d_in], encoder.bias [d_sae],
///                                W_dec [d_sae, d_in], b_dec [d_in];
///                                forward: top-k of relu((x - b_dec) encoder.weight^T + bias).
///
/// save_saelens(dir, sae, info, dtype)
///   ensures: dir exists and holds sae_weights.safetensors then cfg.json, each written
///   atomically, in the SAELens >= 6 format (plus the pre-6 top-level fields
///   activation_fn_str / activation_fn_kwargs / model_name / hook_name / hook_layer, which
///   SAELens 6 ignores), such that SAELens' load_from_disk gives the same forward pass:
///    - TopK -> "topk" with k; SAELens applies ReLU to the kept values, so a TopK with
///      relu = false (the MFR authors' SAE) is stored with metadata.libsae.topk_relu =
///      false, which libsae honours and SAELens does not (results differ wherever a kept
///      pre-activation is negative).
///    - BatchTopK -> "jumprelu" with its single inference threshold broadcast to
///      threshold [d_sae]: SAELens' own BatchTopK saves itself this way for inference
///      (its "batchtopk" class is training-only), and relu(pre) * (pre > theta) equals
///      libsae's pre * (pre > max(theta, 0)). metadata.libsae.activation = "batchtopk"
///      and k let libsae load it back as a BatchTopK. Requires an estimated threshold
///      (config_error otherwise).
///    - JumpReLU -> "jumprelu" with threshold = exp(log_threshold).
///    - ReluL1 -> "standard".
///    - A tied SAE writes explicit W_enc and W_dec (its normalised encoder directions).
///   Libsae's own settings (tied, decoder_bias, unit_norm_decoder, activation settings)
///   go to metadata.libsae, which SAELens keeps and ignores.
///   Throws config_error for an integer dtype, numeric_error for a non-finite parameter
///   or one too large for `dtype`, io_error when the files cannot be written.
///
/// load_saelens<Scalar, Act>(dir), load_sparsify<Scalar>(dir), load_any_sae<Scalar>(dir)
///   ensures: the returned SAE computes the forward pass of the files' model. SAELens
///   options that are linear re-parametrisations are folded into the weights:
///   apply_b_dec_to_input = false (b_enc += b_dec W_enc), rescale_acts_by_decoder_norm
///   (W_enc, b_enc scaled by the decoder row norms, W_dec rows unit), a pre-6
///   finetuning scaling_factor (W_dec rows scaled). A JumpReLU threshold <= 0 acts as
///   a plain ReLU; it is stored as the smallest positive normal Scalar so that
///   log_threshold stays finite. Without libsae metadata the SAE is untied with
///   unit_norm_decoder = false (training must not renormalise a foreign decoder).
///   Throws io_error "<path>: ..." naming the field or tensor for a missing, malformed
///   or inconsistent file (missing d_in/d_sae, tensor shape != cfg, NaN weights,
///   unsupported architecture, activation or normalisation), config_error when the
///   architecture does not match the requested Act.

#include "../core/activations/batch_topk.hpp"
#include "../core/activations/jump_relu.hpp"
#include "../core/activations/relu_l1.hpp"
#include "../core/activations/topk.hpp"
#include "../core/autoencoder.hpp"
#include "../core/error.hpp"
#include "../core/types.hpp"
#include "dtype.hpp"
#include "file.hpp"
#include "json_depth.hpp"
#include "safetensors.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <regex>
#include <string>
#include <system_error>
#include <type_traits>
#include <variant>

namespace sae {

/// What an SAE directory says about where the SAE belongs, and the cfg.json fields
/// libsae does not interpret (kept so that a re-save preserves them).
struct SaeFileInfo {
    std::string architecture;  ///< read: the activation load_any_sae returns; ignored by save
    std::string hook_name;     ///< e.g. "blocks.0.hook_mlp_out"
    int hook_layer = 0;
    std::string model_name;
    nlohmann::json extra = nlohmann::json::object();  ///< other cfg.json fields (and "metadata")

    // Filled by read_sae_info, ignored by save_saelens (they follow from the SAE):
    std::string format;  ///< "saelens" or "sparsify"
    Index d_in = 0;
    Index d_sae = 0;
    std::string dtype;   ///< cfg.json's dtype ("float32", ...); sparsify: the tensors' type
};

template <class Scalar>
using AnyAutoencoder = std::variant<Autoencoder<Scalar, TopK>, Autoencoder<Scalar, BatchTopK>,
                                    Autoencoder<Scalar, JumpReLU>, Autoencoder<Scalar, ReluL1>>;

inline constexpr const char* saelens_cfg_filename = "cfg.json";
inline constexpr const char* saelens_weights_filename = "sae_weights.safetensors";
inline constexpr const char* sparsify_weights_filename = "sae.safetensors";

namespace detail {

inline std::string path_in(const std::string& dir, const char* name) {
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

inline bool is_regular_file(const std::string& path) {
    std::error_code ignored;
    return std::filesystem::is_regular_file(path, ignored);
}

inline nlohmann::json read_json_object(const std::string& path) {
    const std::string text = read_whole_file(path);
    nlohmann::json cfg;
    try {
        cfg = nlohmann::json::parse(text, JsonDepthLimit(path));
    } catch (const nlohmann::json::exception& e) {
        throw io_error(path + ": not valid JSON: " + e.what());
    }
    if (!cfg.is_object()) throw io_error(path + ": must hold a JSON object");
    return cfg;
}

// ---- typed access to cfg.json fields (io_error "<path>: field 'x' ..." on a bad type) ----

/// A field's value, or nullptr when absent or null (SAELens writes None as null).
inline const nlohmann::json* field(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
}

/// An integral number (Python writes a float k such as 100.0 for BatchTopK).
inline long long json_integer(const nlohmann::json& value, const std::string& what) {
    if (value.is_number_integer()) return value.get<long long>();
    if (value.is_number_float()) {
        const double d = value.get<double>();
        if (std::isfinite(d) && std::trunc(d) == d && std::abs(d) < 9.0e15) return static_cast<long long>(d);
    }
    throw io_error(what + " must be an integer, got " + value.dump());
}

inline Index positive_field(const nlohmann::json& cfg, const char* key, const std::string& path) {
    const nlohmann::json* value = field(cfg, key);
    if (value == nullptr) throw io_error(path + ": field '" + key + "' is missing");
    const long long n = json_integer(*value, path + ": field '" + key + "'");
    if (n < 1) throw io_error(path + ": field '" + key + "' = " + std::to_string(n) + " must be positive");
    return static_cast<Index>(n);
}

inline bool bool_field(const nlohmann::json& cfg, const char* key, bool fallback, const std::string& path) {
    const nlohmann::json* value = field(cfg, key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) throw io_error(path + ": field '" + key + "' must be true or false, got " + value->dump());
    return value->get<bool>();
}

inline std::string string_field(const nlohmann::json& cfg, const char* key, const std::string& fallback,
                                const std::string& path) {
    const nlohmann::json* value = field(cfg, key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) throw io_error(path + ": field '" + key + "' must be a string, got " + value->dump());
    return value->get<std::string>();
}

inline double number_field(const nlohmann::json& cfg, const char* key, double fallback, const std::string& path) {
    const nlohmann::json* value = field(cfg, key);
    if (value == nullptr) return fallback;
    if (!value->is_number()) throw io_error(path + ": field '" + key + "' must be a number, got " + value->dump());
    return value->get<double>();
}

// ---- tensors ---------------------------------------------------------------------------

template <class Scalar>
Matrix<Scalar> read_weight(const SafetensorsFile& file, const std::string& name, Index rows, Index cols) {
    const TensorInfo& info = file.info(name);
    const std::vector<std::size_t> want{static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)};
    if (info.shape != want) {
        throw io_error(file.path() + ": tensor '" + name + "' has shape " + shape_text(info.shape) +
                       " but cfg.json implies " + shape_text(want));
    }
    Matrix<Scalar> m = file.matrix<Scalar>(name);
    if (!m.allFinite()) throw io_error(file.path() + ": tensor '" + name + "' contains NaN or Inf");
    return m;
}

template <class Scalar>
RowVector<Scalar> read_bias(const SafetensorsFile& file, const std::string& name, Index n) {
    const TensorInfo& info = file.info(name);
    if (info.shape != std::vector<std::size_t>{static_cast<std::size_t>(n)}) {
        throw io_error(file.path() + ": tensor '" + name + "' has shape " + shape_text(info.shape) +
                       " but cfg.json implies [" + std::to_string(n) + "]");
    }
    RowVector<Scalar> v = file.vector<Scalar>(name);
    if (!v.allFinite()) throw io_error(file.path() + ": tensor '" + name + "' contains NaN or Inf");
    return v;
}

/// Everything a file says about an SAE, in libsae's parametrisation, before it becomes
/// an Autoencoder<Scalar, Act>.
template <class Scalar>
struct LoadedSae {
    std::string cfg_path;
    std::string weights_path;
    std::string architecture;  ///< the file's: "topk", "batchtopk", "jumprelu", "standard"
    nlohmann::json libsae = nlohmann::json::object();  ///< metadata.libsae, when libsae wrote it
    std::string libsae_activation;                     ///< metadata.libsae.activation
    AutoencoderConfig config;
    Matrix<Scalar> W_enc, W_dec;
    RowVector<Scalar> b_enc, b_dec;
    RowVector<Scalar> threshold;  ///< jumprelu / batchtopk: theta per latent
    Index k = 0;                  ///< topk / batchtopk (0 when the file has none)
    bool topk_relu = true;

    /// A jumprelu file that libsae wrote from a BatchTopK, or any jumprelu with one theta.
    bool constant_threshold() const {
        return threshold.size() > 0 && (threshold.array() == threshold(0)).all();
    }
    /// The activation load_any_sae builds.
    std::string activation() const {
        if (architecture == "jumprelu" && libsae_activation == "batchtopk" && constant_threshold()) return "batchtopk";
        return architecture;
    }
};

/// x -> (x - b_dec) W_enc + b_enc' for an SAE that does not subtract b_dec from its input:
/// b_enc' = b_enc + b_dec W_enc reproduces x W_enc + b_enc exactly.
template <class Scalar>
void fold_input_bias(LoadedSae<Scalar>& s) {
    s.b_enc.noalias() += s.b_dec * s.W_enc;
}

/// SAELens' rescale_acts_by_decoder_norm: pre is multiplied by ||W_dec,j|| and the code
/// divided by it before decoding; scaling W_enc's columns and b_enc by the norms and
/// dividing W_dec's rows by them gives the same selection and output.
template <class Scalar>
void fold_decoder_norms(LoadedSae<Scalar>& s) {
    const RowVector<Scalar> norms = s.W_dec.rowwise().norm().transpose();
    const RowVector<Scalar> inverse = (norms.array() > Scalar(0)).select(norms.array().inverse(), Scalar(0)).matrix();
    s.W_enc = s.W_enc * norms.asDiagonal();
    s.b_enc = s.b_enc.cwiseProduct(norms);
    s.W_dec = inverse.asDiagonal() * s.W_dec;
}

inline std::string saelens_dtype_name(DType t) {
    switch (t) {
        case DType::f16: return "float16";
        case DType::bf16: return "bfloat16";
        case DType::f32: return "float32";
        case DType::f64: return "float64";
        case DType::i32:
        case DType::i64: break;
    }
    throw config_error(std::string("save_saelens: dtype ") + safetensors_dtype_name(t) +
                       " is not a floating-point type");
}

inline void check_saelens_dtype(const std::string& dtype, const std::string& path) {
    for (const char* known : {"float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64",
                              "torch.float16", "torch.bfloat16"}) {
        if (dtype == known) return;
    }
    throw io_error(path + ": field 'dtype' = '" + dtype + "' is not a floating-point type SAELens knows");
}

/// The file's architecture, resolving the pre-6 spelling ("standard" + activation_fn_str
/// "topk") the way SAELens does.
inline std::string saelens_architecture(const nlohmann::json& cfg, const std::string& path) {
    std::string architecture = string_field(cfg, "architecture", "standard", path);
    std::string activation = string_field(cfg, "activation_fn_str", "", path);
    if (activation.empty()) activation = string_field(cfg, "activation_fn", "relu", path);
    if (architecture == "standard" && activation == "topk") architecture = "topk";
    else if (architecture == "standard" && activation != "relu") {
        throw io_error(path + ": field 'activation_fn_str' = '" + activation + "' is not supported (relu or topk)");
    }
    for (const char* known : {"topk", "batchtopk", "jumprelu", "standard"}) {
        if (architecture == known) return architecture;
    }
    throw io_error(path + ": field 'architecture' = '" + architecture +
                   "' is not supported (libsae reads topk, batchtopk, jumprelu, standard)");
}

/// k from "k" (SAELens >= 6), activation_fn_kwargs.k (pre-6) or metadata.libsae.k; 0 if none.
inline Index saelens_k(const nlohmann::json& cfg, const nlohmann::json& libsae, const std::string& path) {
    const nlohmann::json* k = field(cfg, "k");
    if (k == nullptr) {
        if (const nlohmann::json* kwargs = field(cfg, "activation_fn_kwargs")) k = field(*kwargs, "k");
    }
    if (k == nullptr) k = field(libsae, "k");
    if (k == nullptr) return 0;
    const long long value = json_integer(*k, path + ": field 'k'");
    if (value < 1) throw io_error(path + ": field 'k' = " + std::to_string(value) + " must be positive");
    return static_cast<Index>(value);
}

/// SAELens' input normalisations: "none" and "expected_average_only_in" (a constant
/// scale applied outside the SAE; the identity in SAELens' own forward pass) are
/// accepted; the input-dependent ones have no equivalent in a plain Autoencoder.
inline void check_normalization(const nlohmann::json& cfg, const std::string& path) {
    const nlohmann::json* value = field(cfg, "normalize_activations");
    if (value == nullptr || value->is_boolean()) return;  // pre-6: false / true (= expected_average_only_in)
    if (!value->is_string()) throw io_error(path + ": field 'normalize_activations' must be a string");
    const std::string mode = value->get<std::string>();
    if (mode != "none" && mode != "expected_average_only_in") {
        throw io_error(path + ": field 'normalize_activations' = '" + mode +
                       "' is not supported (an input-dependent normalisation cannot be folded into the SAE)");
    }
}

/// The threshold of a jumprelu ([d_sae]) or SAELens-training batchtopk (topk_threshold,
/// one element, or threshold [d_sae]) file.
template <class Scalar>
RowVector<Scalar> read_threshold(const SafetensorsFile& file, const std::string& architecture, Index d_sae) {
    if (architecture == "batchtopk" && !file.contains("threshold")) {
        const TensorInfo& info = file.info("topk_threshold");
        if (info.element_count() != 1) {
            throw io_error(file.path() + ": tensor 'topk_threshold' has shape " + shape_text(info.shape) +
                           " but one element is needed");
        }
        const Matrix<Scalar> theta = file.matrix<Scalar>("topk_threshold");
        if (!theta.allFinite()) throw io_error(file.path() + ": tensor 'topk_threshold' contains NaN or Inf");
        return RowVector<Scalar>::Constant(d_sae, theta(0, 0));
    }
    return read_bias<Scalar>(file, "threshold", d_sae);
}

/// Pre-6 SAELens "finetuning scaling factor": the code is multiplied by scaling_factor
/// [d_sae] before decoding, i.e. W_dec's rows are scaled.
template <class Scalar>
void apply_scaling_factor(const SafetensorsFile& file, const nlohmann::json& cfg, const std::string& cfg_path,
                          LoadedSae<Scalar>& s) {
    if (!file.contains("scaling_factor")) return;
    const RowVector<Scalar> scale = read_bias<Scalar>(file, "scaling_factor", s.W_dec.rows());
    if ((scale.array() == Scalar(1)).all()) return;
    if (!bool_field(cfg, "finetuning_scaling_factor", false, cfg_path)) {
        throw io_error(file.path() + ": tensor 'scaling_factor' is not all ones but " + cfg_path +
                       " has finetuning_scaling_factor = false");
    }
    s.W_dec = scale.asDiagonal() * s.W_dec;
}

template <class Scalar>
LoadedSae<Scalar> read_saelens_directory(const std::string& dir) {
    LoadedSae<Scalar> s;
    s.cfg_path = path_in(dir, saelens_cfg_filename);
    s.weights_path = path_in(dir, saelens_weights_filename);
    const nlohmann::json cfg = read_json_object(s.cfg_path);
    const std::string& path = s.cfg_path;
    if (const nlohmann::json* metadata = field(cfg, "metadata")) {
        if (const nlohmann::json* libsae = field(*metadata, "libsae")) {
            if (!libsae->is_object()) throw io_error(path + ": field 'metadata.libsae' must be an object");
            s.libsae = *libsae;
            s.libsae_activation = string_field(s.libsae, "activation", "", path + " metadata.libsae");
        }
    }
    s.architecture = saelens_architecture(cfg, path);
    const Index d_in = positive_field(cfg, "d_in", path);
    const Index d_sae = positive_field(cfg, "d_sae", path);
    check_saelens_dtype(string_field(cfg, "dtype", "float32", path), path);
    check_normalization(cfg, path);
    s.k = saelens_k(cfg, s.libsae, path);
    if (s.architecture == "topk" && s.k == 0) throw io_error(path + ": field 'k' is missing (a topk SAE needs it)");
    if (s.k > d_sae) {
        throw io_error(path + ": field 'k' = " + std::to_string(s.k) + " exceeds d_sae = " + std::to_string(d_sae));
    }
    s.topk_relu = bool_field(s.libsae, "topk_relu", true, path);

    const SafetensorsFile file(s.weights_path);
    s.W_enc = read_weight<Scalar>(file, "W_enc", d_in, d_sae);
    s.W_dec = read_weight<Scalar>(file, "W_dec", d_sae, d_in);
    s.b_enc = read_bias<Scalar>(file, "b_enc", d_sae);
    s.b_dec = read_bias<Scalar>(file, "b_dec", d_in);
    if (s.architecture == "jumprelu" || s.architecture == "batchtopk") {
        s.threshold = read_threshold<Scalar>(file, s.architecture, d_sae);
    }
    apply_scaling_factor(file, cfg, path, s);
    if ((s.architecture == "topk" || s.architecture == "batchtopk") &&
        bool_field(cfg, "rescale_acts_by_decoder_norm", false, path)) {
        fold_decoder_norms(s);
    }
    if (!bool_field(cfg, "apply_b_dec_to_input", true, path)) fold_input_bias(s);

    s.config.d_in = d_in;
    s.config.d_sae = d_sae;
    s.config.tied = bool_field(s.libsae, "tied", false, path);
    s.config.decoder_bias = bool_field(s.libsae, "decoder_bias", true, path);
    s.config.unit_norm_decoder = bool_field(s.libsae, "unit_norm_decoder", false, path);
    return s;
}

/// num_latents, or d_in * expansion_factor when it is 0 (sparsify's defaults where absent).
inline Index sparsify_d_sae(const nlohmann::json& cfg, Index d_in, const std::string& path) {
    const nlohmann::json* latents = field(cfg, "num_latents");
    const long long n = latents ? json_integer(*latents, path + ": field 'num_latents'") : 0;
    if (n < 0) throw io_error(path + ": field 'num_latents' = " + std::to_string(n) + " must not be negative");
    if (n > 0) return static_cast<Index>(n);
    const nlohmann::json* factor = field(cfg, "expansion_factor");
    const long long f = factor ? json_integer(*factor, path + ": field 'expansion_factor'") : 32;
    if (f < 1 || f > (1LL << 30) || d_in > (1LL << 30)) {
        throw io_error(path + ": d_in * field 'expansion_factor' (" + std::to_string(f) + ") is out of range");
    }
    return d_in * static_cast<Index>(f);
}

template <class Scalar>
LoadedSae<Scalar> read_sparsify_directory(const std::string& dir) {
    LoadedSae<Scalar> s;
    s.cfg_path = path_in(dir, saelens_cfg_filename);
    s.weights_path = path_in(dir, sparsify_weights_filename);
    const nlohmann::json cfg = read_json_object(s.cfg_path);
    const std::string& path = s.cfg_path;
    s.architecture = "topk";
    const Index d_in = positive_field(cfg, "d_in", path);
    const Index d_sae = sparsify_d_sae(cfg, d_in, path);
    const nlohmann::json* k = field(cfg, "k");
    s.k = k ? static_cast<Index>(json_integer(*k, path + ": field 'k'")) : 32;
    if (s.k < 1 || s.k > d_sae) {
        throw io_error(path + ": field 'k' = " + std::to_string(s.k) + " must be in [1, " + std::to_string(d_sae) + "]");
    }
    const std::string activation = string_field(cfg, "activation", "topk", path);
    if (activation != "topk") {
        throw io_error(path + ": field 'activation' = '" + activation + "' is not supported (topk)");
    }
    for (const char* unsupported : {"skip_connection", "signed"}) {
        if (bool_field(cfg, unsupported, false, path)) {
            throw io_error(path + ": field '" + unsupported + "' = true is not supported");
        }
    }

    const SafetensorsFile file(s.weights_path);
    if (file.contains("W_skip")) throw io_error(file.path() + ": tensor 'W_skip' (a skip connection) is not supported");
    s.W_enc = read_weight<Scalar>(file, "encoder.weight", d_sae, d_in).transpose();
    s.b_enc = read_bias<Scalar>(file, "encoder.bias", d_sae);
    s.W_dec = read_weight<Scalar>(file, "W_dec", d_sae, d_in);
    s.b_dec = read_bias<Scalar>(file, "b_dec", d_in);
    if (bool_field(cfg, "transcode", false, path)) fold_input_bias(s);  // a transcoder does not subtract b_dec

    s.config.d_in = d_in;
    s.config.d_sae = d_sae;
    s.config.unit_norm_decoder = bool_field(cfg, "normalize_decoder", true, path);
    return s;
}

template <class Scalar>
LoadedSae<Scalar> read_sae_directory(const std::string& dir) {
    if (is_regular_file(path_in(dir, saelens_weights_filename))) return read_saelens_directory<Scalar>(dir);
    if (is_regular_file(path_in(dir, sparsify_weights_filename))) return read_sparsify_directory<Scalar>(dir);
    throw io_error(dir + ": holds neither " + saelens_weights_filename + " (SAELens) nor " + sparsify_weights_filename +
                   " (sparsify)");
}

/// A tied SAE's decoder is derived from W_enc; the stored W_dec must agree with it (to
/// the precision the file was written in), or the file is not the tied SAE it claims.
template <class Scalar, template <class> class Act>
void check_tied_decoder(const Autoencoder<Scalar, Act>& sae, const LoadedSae<Scalar>& s) {
    const double tolerance = 1e-2;  // loose enough for a bfloat16 file; a wrong decoder is off by O(1)
    const double difference = static_cast<double>((sae.W_dec() - s.W_dec).cwiseAbs().maxCoeff());
    if (difference > tolerance) {
        throw io_error(s.weights_path + ": tensor 'W_dec' differs from the normalised encoder directions by " +
                       std::to_string(difference) + " but " + s.cfg_path + " says metadata.libsae.tied = true");
    }
}

template <class Scalar, template <class> class Act>
typename Act<Scalar>::Config activation_config(const LoadedSae<Scalar>& s) {
    typename Act<Scalar>::Config config;
    if constexpr (std::is_same_v<Act<Scalar>, TopK<Scalar>>) {
        config.k = s.k;
        config.relu = s.topk_relu;
    } else if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) {
        // k only steers training; a plain SAELens jumprelu file has none.
        config.k = s.k > 0 ? s.k : std::min<Index>(config.k, s.config.d_sae);
        config.threshold_momentum = number_field(s.libsae, "threshold_momentum", config.threshold_momentum, s.cfg_path);
    } else if constexpr (std::is_same_v<Act<Scalar>, JumpReLU<Scalar>>) {
        config.initial_threshold = number_field(s.libsae, "initial_threshold", config.initial_threshold, s.cfg_path);
        config.bandwidth = number_field(s.libsae, "bandwidth", config.bandwidth, s.cfg_path);
    }
    return config;
}

/// Whether a file of `s`'s architecture can be loaded as Act.
template <class Scalar, template <class> class Act>
bool architecture_matches(const LoadedSae<Scalar>& s) {
    if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) {
        return (s.architecture == "batchtopk" || s.architecture == "jumprelu") && s.constant_threshold();
    } else {
        return s.architecture == Act<Scalar>::architecture;
    }
}

/// Settings from the file that the constructor rejects are a malformed file: io_error.
template <class Scalar, template <class> class Act>
Autoencoder<Scalar, Act> construct_autoencoder(const LoadedSae<Scalar>& s) {
    try {
        return Autoencoder<Scalar, Act>(s.config, activation_config<Scalar, Act>(s));
    } catch (const config_error& e) {
        throw io_error(s.cfg_path + ": " + e.what());
    }
}

template <class Scalar, template <class> class Act>
Autoencoder<Scalar, Act> build_autoencoder(const LoadedSae<Scalar>& s) {
    if (!architecture_matches<Scalar, Act>(s)) {
        throw config_error(s.cfg_path + ": architecture '" + s.architecture + "' cannot be loaded as " +
                           Act<Scalar>::architecture +
                           (s.threshold.size() > 0 ? " (its thresholds differ between latents)" : ""));
    }
    Autoencoder<Scalar, Act> sae = construct_autoencoder<Scalar, Act>(s);
    sae.set_parameters(s.W_enc, s.b_enc, s.W_dec, s.b_dec);
    if (s.config.tied) check_tied_decoder(sae, s);
    if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) {
        sae.activation().set_threshold(s.threshold(0));
    } else if constexpr (std::is_same_v<Act<Scalar>, JumpReLU<Scalar>>) {
        // theta <= 0 keeps every positive value, as the smallest positive theta does.
        const Scalar smallest = std::numeric_limits<Scalar>::min();
        sae.activation().parameter() = s.threshold.array().max(smallest).log().matrix();
    }
    return sae;
}

// ---- saving ----------------------------------------------------------------------------

/// cfg.json fields that follow from the SAE itself; save_saelens never takes them from
/// SaeFileInfo::extra, and read_sae_info leaves them out of it.
inline const std::vector<std::string>& structural_cfg_fields() {
    static const std::vector<std::string> fields{
        "architecture", "d_in", "d_sae", "dtype", "k", "rescale_acts_by_decoder_norm", "apply_b_dec_to_input",
        "activation_fn_str", "activation_fn", "activation_fn_kwargs", "finetuning_scaling_factor",
        "normalize_activations", "topk_threshold_lr", "model_name", "hook_name", "hook_layer", "hook_point"};
    return fields;
}

inline const std::vector<std::string>& described_metadata_fields() {
    static const std::vector<std::string> fields{"libsae", "model_name", "hook_name", "hook_layer"};
    return fields;
}

template <class Derived>
void check_storable(const char* name, const Eigen::MatrixBase<Derived>& m, DType dtype) {
    if (!m.allFinite()) throw numeric_error(std::string("save_saelens: ") + name + " contains NaN or Inf");
    const double largest = dtype == DType::f16 ? 65504.0 : static_cast<double>(std::numeric_limits<float>::max());
    if (dtype != DType::f64 && m.size() > 0 && static_cast<double>(m.cwiseAbs().maxCoeff()) > largest) {
        throw numeric_error(std::string("save_saelens: ") + name + " has a value too large for " +
                            safetensors_dtype_name(dtype));
    }
}

template <class Scalar, template <class> class Act>
nlohmann::json libsae_settings(const Autoencoder<Scalar, Act>& sae) {
    nlohmann::json libsae = {{"activation", Act<Scalar>::architecture},
                             {"tied", sae.config().tied},
                             {"decoder_bias", sae.config().decoder_bias},
                             {"unit_norm_decoder", sae.config().unit_norm_decoder}};
    const auto& config = sae.activation().config();
    if constexpr (std::is_same_v<Act<Scalar>, TopK<Scalar>>) {
        libsae["k"] = config.k;
        libsae["topk_relu"] = config.relu;
    } else if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) {
        libsae["k"] = config.k;
        libsae["threshold_momentum"] = config.threshold_momentum;
    } else if constexpr (std::is_same_v<Act<Scalar>, JumpReLU<Scalar>>) {
        libsae["initial_threshold"] = config.initial_threshold;
        libsae["bandwidth"] = config.bandwidth;
    }
    return libsae;
}

/// The SAELens architecture an Act is saved as.
template <class Scalar, template <class> class Act>
const char* saelens_architecture_of() {
    if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) return "jumprelu";
    return Act<Scalar>::architecture;
}

template <class Scalar, template <class> class Act>
nlohmann::json saelens_cfg(const Autoencoder<Scalar, Act>& sae, const SaeFileInfo& info, DType dtype) {
    if (!info.extra.is_object()) throw config_error("save_saelens: SaeFileInfo::extra must be a JSON object");
    nlohmann::json cfg = info.extra;
    for (const std::string& key : structural_cfg_fields()) cfg.erase(key);
    nlohmann::json metadata = cfg.contains("metadata") && cfg["metadata"].is_object() ? cfg["metadata"] : nlohmann::json::object();
    for (const std::string& key : described_metadata_fields()) metadata.erase(key);
    // SAELens treats a cfg.json without a version >= 6 as the pre-6 layout.
    if (!metadata.contains("sae_lens_version")) metadata["sae_lens_version"] = "6.0.0";
    if (!metadata.contains("sae_lens_training_version")) metadata["sae_lens_training_version"] = nullptr;
    metadata["model_name"] = info.model_name;
    metadata["hook_name"] = info.hook_name;
    metadata["hook_layer"] = info.hook_layer;
    metadata["libsae"] = libsae_settings(sae);

    const std::string architecture = saelens_architecture_of<Scalar, Act>();
    cfg["architecture"] = architecture;
    cfg["d_in"] = sae.d_in();
    cfg["d_sae"] = sae.d_sae();
    cfg["dtype"] = saelens_dtype_name(dtype);
    if (!cfg.contains("device")) cfg["device"] = "cpu";
    if (!cfg.contains("reshape_activations")) cfg["reshape_activations"] = "none";
    cfg["apply_b_dec_to_input"] = true;
    cfg["normalize_activations"] = "none";
    cfg["finetuning_scaling_factor"] = false;
    cfg["activation_fn_str"] = architecture == "topk" ? "topk" : "relu";
    cfg["activation_fn_kwargs"] = nlohmann::json::object();
    if constexpr (std::is_same_v<Act<Scalar>, TopK<Scalar>>) {
        cfg["k"] = sae.activation().config().k;
        cfg["rescale_acts_by_decoder_norm"] = false;
        cfg["activation_fn_kwargs"]["k"] = sae.activation().config().k;
    }
    // Fields SAELens 5 requires at the top level (SAELens 6 ignores them), unless given.
    const nlohmann::json legacy_defaults = {{"context_size", nullptr}, {"hook_head_index", nullptr},
                                            {"prepend_bos", true}, {"dataset_path", ""},
                                            {"dataset_trust_remote_code", true}, {"sae_lens_training_version", nullptr},
                                            {"model_from_pretrained_kwargs", nlohmann::json::object()},
                                            {"seqpos_slice", nlohmann::json::array({nullptr})}, {"neuronpedia_id", nullptr}};
    for (const auto& [key, value] : legacy_defaults.items()) {
        if (!cfg.contains(key)) cfg[key] = value;
    }
    cfg["model_name"] = info.model_name;  // pre-6 readers look at the top level
    cfg["hook_name"] = info.hook_name;
    cfg["hook_layer"] = info.hook_layer;
    cfg["metadata"] = metadata;
    return cfg;
}

template <class Scalar, template <class> class Act>
SafetensorsWriter saelens_weights(const Autoencoder<Scalar, Act>& sae, DType dtype) {
    const std::size_t d_in = static_cast<std::size_t>(sae.d_in());
    const std::size_t d_sae = static_cast<std::size_t>(sae.d_sae());
    check_storable("W_enc", sae.W_enc(), dtype);
    check_storable("W_dec", sae.W_dec(), dtype);
    check_storable("b_enc", sae.b_enc(), dtype);
    check_storable("b_dec", sae.b_dec(), dtype);
    SafetensorsWriter writer;
    writer.add("W_enc", sae.W_enc(), dtype);
    writer.add("W_dec", sae.W_dec(), dtype);
    writer.add("b_enc", sae.b_enc(), dtype, std::vector<std::size_t>{d_sae});
    writer.add("b_dec", sae.b_dec(), dtype, std::vector<std::size_t>{d_in});
    if constexpr (std::is_same_v<Act<Scalar>, BatchTopK<Scalar>>) {
        if (!sae.activation().threshold_estimated()) {
            throw config_error("save_saelens: the BatchTopK inference threshold has not been estimated yet "
                               "(train on at least one batch or call set_threshold)");
        }
        const RowVector<Scalar> theta = RowVector<Scalar>::Constant(sae.d_sae(), sae.activation().parameter()(0));
        check_storable("threshold", theta, dtype);
        writer.add("threshold", theta, dtype, std::vector<std::size_t>{d_sae});
    } else if constexpr (std::is_same_v<Act<Scalar>, JumpReLU<Scalar>>) {
        const RowVector<Scalar> theta = sae.activation().threshold();
        check_storable("threshold", theta, dtype);
        writer.add("threshold", theta, dtype, std::vector<std::size_t>{d_sae});
    }
    return writer;
}

inline void create_directory(const std::string& dir) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error || !std::filesystem::is_directory(dir, error)) {
        throw io_error(dir + ": cannot create directory: " + (error ? error.message() : "not a directory"));
    }
}

inline std::string dump_json(const nlohmann::json& value) {
    try {
        return value.dump(2) + "\n";
    } catch (const nlohmann::json::exception& e) {  // invalid UTF-8 in a user string
        throw config_error(std::string("save_saelens: cfg.json cannot be written: ") + e.what());
    }
}

/// hook_layer from metadata or the top level, else from a "blocks.N." hook name.
inline int hook_layer_of(const nlohmann::json& cfg, const nlohmann::json& metadata, const std::string& hook_name,
                         const std::string& path) {
    for (const nlohmann::json* source : {&metadata, &cfg}) {
        if (const nlohmann::json* layer = field(*source, "hook_layer")) {
            const long long value = json_integer(*layer, path + ": field 'hook_layer'");
            if (value < -1 || value > 1'000'000) {
                throw io_error(path + ": field 'hook_layer' = " + std::to_string(value) + " is out of range");
            }
            return static_cast<int>(value);
        }
    }
    std::smatch match;  // at most 6 digits, so stoi cannot overflow
    if (std::regex_search(hook_name, match, std::regex(R"((?:blocks|layers)[._](\d{1,6})(?!\d))"))) {
        return std::stoi(match[1].str());
    }
    return 0;
}

inline SaeFileInfo saelens_info(const std::string& dir) {
    const std::string path = path_in(dir, saelens_cfg_filename);
    const nlohmann::json cfg = read_json_object(path);
    const nlohmann::json* metadata_field = field(cfg, "metadata");
    const nlohmann::json metadata = metadata_field && metadata_field->is_object() ? *metadata_field : nlohmann::json::object();
    SaeFileInfo info;
    info.format = "saelens";
    info.d_in = positive_field(cfg, "d_in", path);
    info.d_sae = positive_field(cfg, "d_sae", path);
    info.dtype = string_field(cfg, "dtype", "float32", path);
    info.model_name = string_field(metadata, "model_name", string_field(cfg, "model_name", "", path), path);
    const std::string legacy_hook = string_field(cfg, "hook_point", "", path);  // SAELens' oldest name
    info.hook_name = string_field(metadata, "hook_name", string_field(cfg, "hook_name", legacy_hook, path), path);
    info.hook_layer = hook_layer_of(cfg, metadata, info.hook_name, path);
    info.architecture = saelens_architecture(cfg, path);
    const nlohmann::json* libsae = field(metadata, "libsae");
    if (info.architecture == "jumprelu" && libsae && string_field(*libsae, "activation", "", path) == "batchtopk") {
        info.architecture = "batchtopk";  // what load_any_sae returns for it
    }
    info.extra = cfg;
    for (const std::string& key : structural_cfg_fields()) info.extra.erase(key);
    if (info.extra.contains("metadata") && info.extra["metadata"].is_object()) {
        for (const std::string& key : described_metadata_fields()) info.extra["metadata"].erase(key);
    }
    return info;
}

inline SaeFileInfo sparsify_info(const std::string& dir) {
    const std::string path = path_in(dir, saelens_cfg_filename);
    const nlohmann::json cfg = read_json_object(path);
    SaeFileInfo info;
    info.format = "sparsify";
    info.architecture = "topk";
    info.d_in = positive_field(cfg, "d_in", path);
    info.d_sae = sparsify_d_sae(cfg, info.d_in, path);
    const SafetensorsFile file(path_in(dir, sparsify_weights_filename));
    const DType dtype = file.info("encoder.weight").dtype;
    info.dtype = dtype == DType::i32 || dtype == DType::i64 ? safetensors_dtype_name(dtype) : saelens_dtype_name(dtype);
    // sparsify names each SAE's directory after its hook point ("layers.5", "layers.5.mlp").
    info.hook_name = std::filesystem::path(dir).lexically_normal().filename().string();
    if (info.hook_name.empty()) info.hook_name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
    info.hook_layer = hook_layer_of(nlohmann::json::object(), nlohmann::json::object(), info.hook_name, path);
    info.extra = cfg;
    info.extra.erase("d_in");
    return info;
}

}  // namespace detail

/// Save `sae` as a SAELens directory (see the file comment for the mapping).
template <class Scalar, template <class> class Act>
void save_saelens(const std::string& dir, const Autoencoder<Scalar, Act>& sae, const SaeFileInfo& info = {},
                  DType dtype = DType::f32) {
    const nlohmann::json cfg = detail::saelens_cfg(sae, info, dtype);  // validates before touching the disk
    const std::string cfg_text = detail::dump_json(cfg);
    const SafetensorsWriter weights = detail::saelens_weights(sae, dtype);
    detail::create_directory(dir);
    weights.write(detail::path_in(dir, saelens_weights_filename));
    write_file_atomically(detail::path_in(dir, saelens_cfg_filename), cfg_text);
}

/// Load a SAELens directory as Autoencoder<Scalar, Act>; config_error when the file's
/// architecture is another one (BatchTopK also accepts a jumprelu file whose threshold
/// is the same for every latent).
template <class Scalar, template <class> class Act>
Autoencoder<Scalar, Act> load_saelens(const std::string& dir) {
    return detail::build_autoencoder<Scalar, Act>(detail::read_saelens_directory<Scalar>(dir));
}

/// Load a sparsify directory: W_enc = encoder.weight^T, b_enc = encoder.bias, TopK with
/// ReLU and the cfg's k.
template <class Scalar>
Autoencoder<Scalar, TopK> load_sparsify(const std::string& dir) {
    return detail::build_autoencoder<Scalar, TopK>(detail::read_sparsify_directory<Scalar>(dir));
}

/// Load a SAELens (sae_weights.safetensors) or sparsify (sae.safetensors) directory as
/// whichever activation its files describe.
template <class Scalar>
AnyAutoencoder<Scalar> load_any_sae(const std::string& dir) {
    const detail::LoadedSae<Scalar> s = detail::read_sae_directory<Scalar>(dir);
    const std::string activation = s.activation();
    if (activation == "topk") return detail::build_autoencoder<Scalar, TopK>(s);
    if (activation == "batchtopk") return detail::build_autoencoder<Scalar, BatchTopK>(s);
    if (activation == "jumprelu") return detail::build_autoencoder<Scalar, JumpReLU>(s);
    return detail::build_autoencoder<Scalar, ReluL1>(s);
}

/// Where the SAE of a SAELens or sparsify directory belongs (model, hook point), its
/// sizes, and the cfg.json fields libsae does not interpret, without reading weights
/// (sparsify: only the weights' header, for d_sae and dtype).
inline SaeFileInfo read_sae_info(const std::string& dir) {
    if (detail::is_regular_file(detail::path_in(dir, saelens_weights_filename))) return detail::saelens_info(dir);
    if (detail::is_regular_file(detail::path_in(dir, sparsify_weights_filename))) return detail::sparsify_info(dir);
    throw io_error(dir + ": holds neither " + saelens_weights_filename + " (SAELens) nor " +
                   sparsify_weights_filename + " (sparsify)");
}

}  // namespace sae
