#pragma once
/// \file gpt2_config.hpp
/// The hyper-parameters of a GPT-2 style model, and how they are read from the files
/// that describe one.
///
///   Gpt2Config                 n_layer, n_head, n_embd, n_ctx, vocab_size, n_inner,
///                              layer_norm_epsilon, tied_lm_head; defaults are GPT-2 Small.
///     validate(source)         config_error "<source>: <field> = <value> ..." for a
///                              non-positive size, n_embd not divisible by n_head, or an
///                              epsilon that is not finite and positive.
///   gpt2_config_from_hf_json(json, source)
///                              a Hugging Face `config.json` object: n_layer, n_head, n_embd,
///                              n_positions (or n_ctx), vocab_size, layer_norm_epsilon
///                              (default 1e-5), n_inner (null: 4 n_embd),
///                              tie_word_embeddings (default true). Missing or mistyped
///                              keys give config_error naming source and key.
///   read_hf_gpt2_config(path)  the same from a file (io_error when unreadable or not JSON).
///   MinGptConfigHint, mingpt_model_type(name)
///                              what a minGPT/nanoGPT weight file cannot say about itself
///                              (its n_head), with minGPT's named presets ("gpt-nano", ...).

#include "../core/error.hpp"
#include "../io/file.hpp"
#include "../io/json_depth.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

namespace sae::models {

/// GPT-2 hyper-parameters. The MLP hidden width is n_inner (0 means 4 * n_embd, as in
/// Hugging Face's `n_inner: null`). `tied_lm_head` says the LM head reuses `wte`.
struct Gpt2Config {
    int n_layer = 12;
    int n_head = 12;
    int n_embd = 768;
    int n_ctx = 1024;  ///< n_positions: the longest sequence the position table covers
    int vocab_size = 50257;
    int n_inner = 0;
    double layer_norm_epsilon = 1e-5;
    bool tied_lm_head = true;

    int head_dim() const { return n_embd / n_head; }
    int mlp_width() const { return n_inner > 0 ? n_inner : 4 * n_embd; }

    /// config_error "<source>: ..." naming the first field at fault.
    void validate(const std::string& source = "gpt2 config") const {
        const auto positive = [&](const char* field, int value) {
            if (value <= 0) {
                throw config_error(source + ": " + field + " = " + std::to_string(value) + " must be positive");
            }
        };
        positive("n_layer", n_layer);
        positive("n_head", n_head);
        positive("n_embd", n_embd);
        positive("n_ctx", n_ctx);
        positive("vocab_size", vocab_size);
        if (n_inner < 0) throw config_error(source + ": n_inner = " + std::to_string(n_inner) + " must be >= 0");
        if (n_embd % n_head != 0) {
            throw config_error(source + ": n_embd = " + std::to_string(n_embd) + " is not divisible by n_head = " +
                               std::to_string(n_head));
        }
        if (n_embd > std::numeric_limits<int>::max() / 4) {
            throw config_error(source + ": n_embd = " + std::to_string(n_embd) + " is too large");
        }
        if (!std::isfinite(layer_norm_epsilon) || layer_norm_epsilon <= 0.0) {
            throw config_error(source + ": layer_norm_epsilon = " + std::to_string(layer_norm_epsilon) +
                               " must be finite and positive");
        }
    }
};

namespace detail {

inline int json_positive_int(const nlohmann::json& j, const std::string& key, const std::string& source) {
    const nlohmann::json& value = j.at(key);
    if (!value.is_number_integer() || value.get<long long>() <= 0 ||
        value.get<long long>() > std::numeric_limits<int>::max()) {
        throw config_error(source + ": " + key + " must be a positive integer, got " + value.dump());
    }
    return value.get<int>();
}

}  // namespace detail

/// A Hugging Face GPT-2 `config.json` object as a Gpt2Config (validated).
inline Gpt2Config gpt2_config_from_hf_json(const nlohmann::json& j, const std::string& source) {
    if (!j.is_object()) throw config_error(source + ": must be a JSON object");
    const auto require = [&](const char* key) {
        if (!j.contains(key)) throw config_error(source + ": key '" + key + "' is missing");
        return detail::json_positive_int(j, key, source);
    };
    Gpt2Config config;
    config.n_layer = require("n_layer");
    config.n_head = require("n_head");
    config.n_embd = require("n_embd");
    config.vocab_size = require("vocab_size");
    if (j.contains("n_positions")) {
        config.n_ctx = detail::json_positive_int(j, "n_positions", source);
    } else if (j.contains("n_ctx")) {
        config.n_ctx = detail::json_positive_int(j, "n_ctx", source);
    } else {
        throw config_error(source + ": key 'n_positions' (or 'n_ctx') is missing");
    }
    if (j.contains("n_inner") && !j["n_inner"].is_null()) config.n_inner = detail::json_positive_int(j, "n_inner", source);
    if (j.contains("layer_norm_epsilon")) {
        if (!j["layer_norm_epsilon"].is_number()) {
            throw config_error(source + ": layer_norm_epsilon must be a number, got " + j["layer_norm_epsilon"].dump());
        }
        config.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
    }
    if (j.contains("tie_word_embeddings")) {
        if (!j["tie_word_embeddings"].is_boolean()) {
            throw config_error(source + ": tie_word_embeddings must be true or false, got " +
                               j["tie_word_embeddings"].dump());
        }
        config.tied_lm_head = j["tie_word_embeddings"].get<bool>();
    }
    config.validate(source);
    return config;
}

/// Reads and validates a Hugging Face `config.json`.
inline Gpt2Config read_hf_gpt2_config(const std::string& path) {
    const std::string text = read_whole_file(path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text, sae::detail::JsonDepthLimit(path));
    } catch (const nlohmann::json::exception& e) {
        throw io_error(path + ": not valid JSON: " + e.what());
    }
    return gpt2_config_from_hf_json(j, path);
}

/// Settings a minGPT/nanoGPT weight file may not carry. An empty field is taken from the
/// file's own `config` entry when it has one, else inferred from the tensor shapes:
/// n_layer from the highest block index, n_embd and vocab_size from `wte`, n_ctx from
/// `wpe`. n_head cannot be inferred from shapes.
struct MinGptConfigHint {
    std::optional<int> n_layer;
    std::optional<int> n_head;
    std::optional<int> n_embd;
    std::optional<int> n_ctx;
    std::optional<int> vocab_size;
    double layer_norm_epsilon = 1e-5;  ///< torch.nn.LayerNorm's default, used by minGPT
};

/// minGPT's `model_type` presets (mingpt/model.py): n_layer, n_head, n_embd.
/// config_error listing the known names for any other.
inline MinGptConfigHint mingpt_model_type(const std::string& model_type) {
    struct Preset {
        const char* name;
        int n_layer, n_head, n_embd;
    };
    static constexpr Preset presets[] = {
        {"openai-gpt", 12, 12, 768}, {"gpt2", 12, 12, 768},      {"gpt2-medium", 24, 16, 1024},
        {"gpt2-large", 36, 20, 1280}, {"gpt2-xl", 48, 25, 1600}, {"gopher-44m", 8, 16, 512},
        {"gpt-mini", 6, 6, 192},     {"gpt-micro", 4, 4, 128},  {"gpt-nano", 3, 3, 48},
    };
    std::string known;
    for (const Preset& p : presets) {
        if (model_type == p.name) {
            MinGptConfigHint hint;
            hint.n_layer = p.n_layer;
            hint.n_head = p.n_head;
            hint.n_embd = p.n_embd;
            return hint;
        }
        known += (known.empty() ? "" : ", ") + std::string(p.name);
    }
    throw config_error("minGPT model_type '" + model_type + "' is unknown (known: " + known + ")");
}

}  // namespace sae::models
