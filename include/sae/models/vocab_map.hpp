#pragma once
/// \file vocab_map.hpp
/// Token ids of a model trained on a restricted vocabulary, mapped to and from GPT-2's.
///
/// A small model trained on a subset of the GPT-2 tokenizer's tokens numbers them
/// 0..n-1; its directory then holds `vocab_map.json`:
///   {"format": "libsae-vocab-map", "version": 1,
///    "model_to_gpt2": [gpt2 id of model id 0, of model id 1, ...],
///    "unknown_model_id": <model id that every GPT-2 id outside the map becomes>}
/// `unknown_model_id` may be absent or null: then an unmapped GPT-2 id is an error.
/// When the unknown slot is a model id of its own (a model trained with rare tokens folded
/// into one class), its entry in `model_to_gpt2` is -1 (no GPT-2 token); -1 is accepted
/// there and nowhere else, and to_gpt2 of that id is a config_error (check
/// has_gpt2_token first, e.g. when decoding sampled ids).
///
///   VocabMap()              the identity (no file): both directions return their argument
///   VocabMap::load(path)    io_error "<path>: ..." for unreadable/invalid JSON, a wrong
///                           format or version, an id that is not an integer in
///                           [0, gpt2_vocab_size), a GPT-2 id listed twice (naming both
///                           model ids), or an unknown_model_id outside the map
///   to_model(gpt2 id), to_gpt2(model id)   config_error naming an id that has no image

#include "../core/error.hpp"
#include "../io/file.hpp"
#include "../io/json_depth.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sae::models {

/// Tokens in the GPT-2 byte-level BPE vocabulary (50,000 merges + 256 bytes + <|endoftext|>).
constexpr int gpt2_vocab_size = 50257;

class VocabMap {
public:
    /// The identity map.
    VocabMap() = default;

    /// Builds and validates a map; `source` names it in error messages.
    VocabMap(std::vector<int> model_to_gpt2, std::optional<int> unknown_model_id, const std::string& source = "vocab map")
        : model_to_gpt2_(std::move(model_to_gpt2)), unknown_model_id_(unknown_model_id), identity_(false) {
        for (std::size_t model_id = 0; model_id < model_to_gpt2_.size(); ++model_id) {
            const int gpt2_id = model_to_gpt2_[model_id];
            const bool is_unknown_slot = unknown_model_id_ && *unknown_model_id_ == static_cast<int>(model_id);
            if (gpt2_id == no_gpt2_token && is_unknown_slot) continue;
            if (gpt2_id < 0 || gpt2_id >= gpt2_vocab_size) {
                throw config_error(source + ": model_to_gpt2[" + std::to_string(model_id) + "] = " +
                                   std::to_string(gpt2_id) + " is outside the GPT-2 vocabulary [0, " +
                                   std::to_string(gpt2_vocab_size) + ")");
            }
            const auto [it, inserted] = gpt2_to_model_.emplace(gpt2_id, static_cast<int>(model_id));
            if (!inserted) {
                throw config_error(source + ": GPT-2 id " + std::to_string(gpt2_id) + " is listed twice, for model ids " +
                                   std::to_string(it->second) + " and " + std::to_string(model_id));
            }
        }
        if (unknown_model_id_ && (*unknown_model_id_ < 0 || *unknown_model_id_ >= model_vocab_size())) {
            throw config_error(source + ": unknown_model_id = " + std::to_string(*unknown_model_id_) +
                               " is not a model id of the map [0, " + std::to_string(model_vocab_size()) + ")");
        }
    }

    /// Reads `vocab_map.json` (format above); every defect is an io_error naming the file.
    static VocabMap load(const std::string& path) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(read_whole_file(path), sae::detail::JsonDepthLimit(path));
        } catch (const nlohmann::json::exception& e) {
            throw io_error(path + ": not valid JSON: " + e.what());
        }
        try {
            return from_json(j, path);
        } catch (const config_error& e) {
            throw io_error(e.what());
        }
    }

    /// The map from a parsed `vocab_map.json` object; config_error "<source>: ...".
    static VocabMap from_json(const nlohmann::json& j, const std::string& source) {
        if (!j.is_object()) throw config_error(source + ": must be a JSON object");
        if (j.value("format", nlohmann::json()) != "libsae-vocab-map") {
            throw config_error(source + ": key 'format' must be \"libsae-vocab-map\", got " +
                               j.value("format", nlohmann::json()).dump());
        }
        if (j.value("version", nlohmann::json()) != 1) {
            throw config_error(source + ": key 'version' must be 1, got " + j.value("version", nlohmann::json()).dump());
        }
        if (!j.contains("model_to_gpt2") || !j["model_to_gpt2"].is_array()) {
            throw config_error(source + ": key 'model_to_gpt2' must be a list of GPT-2 token ids");
        }
        std::vector<int> ids;
        const nlohmann::json& list = j["model_to_gpt2"];
        for (std::size_t i = 0; i < list.size(); ++i) ids.push_back(json_id(list[i], source, "model_to_gpt2[" + std::to_string(i) + "]"));
        std::optional<int> unknown;
        if (j.contains("unknown_model_id") && !j["unknown_model_id"].is_null()) {
            unknown = json_id(j["unknown_model_id"], source, "unknown_model_id");
        }
        return VocabMap(std::move(ids), unknown, source);
    }

    bool is_identity() const { return identity_; }
    /// Number of model ids the map covers (0 for the identity).
    int model_vocab_size() const { return static_cast<int>(model_to_gpt2_.size()); }
    const std::vector<int>& model_to_gpt2() const { return model_to_gpt2_; }
    const std::optional<int>& unknown_model_id() const { return unknown_model_id_; }

    /// The model id of a GPT-2 id: its index in the map, else unknown_model_id
    /// (config_error when there is none).
    int to_model(int gpt2_id) const {
        if (identity_) return gpt2_id;
        const auto it = gpt2_to_model_.find(gpt2_id);
        if (it != gpt2_to_model_.end()) return it->second;
        if (unknown_model_id_) return *unknown_model_id_;
        throw config_error("vocab map: GPT-2 id " + std::to_string(gpt2_id) +
                           " is not in the map and the map has no unknown_model_id");
    }

    /// The GPT-2 id of a model id; config_error when the id is outside the map.
    int to_gpt2(int model_id) const {
        if (identity_) return model_id;
        if (model_id < 0 || model_id >= model_vocab_size()) {
            throw config_error("vocab map: model id " + std::to_string(model_id) + " is outside the map [0, " +
                               std::to_string(model_vocab_size()) + ")");
        }
        const int gpt2_id = model_to_gpt2_[static_cast<std::size_t>(model_id)];
        if (gpt2_id == no_gpt2_token) {
            throw config_error("vocab map: model id " + std::to_string(model_id) +
                               " is the unknown slot, which stands for no single GPT-2 token");
        }
        return gpt2_id;
    }

    /// Whether to_gpt2(model_id) has an answer (false for an unknown slot listed as -1).
    bool has_gpt2_token(int model_id) const {
        if (identity_) return true;
        return model_id >= 0 && model_id < model_vocab_size() &&
               model_to_gpt2_[static_cast<std::size_t>(model_id)] != no_gpt2_token;
    }

    std::vector<int> to_model(const std::vector<int>& gpt2_ids) const { return map_all(gpt2_ids, &VocabMap::to_model); }
    std::vector<int> to_gpt2(const std::vector<int>& model_ids) const { return map_all(model_ids, &VocabMap::to_gpt2); }

private:
    /// The model_to_gpt2 entry of an unknown slot that is no GPT-2 token.
    static constexpr int no_gpt2_token = -1;

    /// An integer that fits an int; the constructor checks the ranges (one place for them).
    static int json_id(const nlohmann::json& value, const std::string& source, const std::string& key) {
        if (!value.is_number_integer() || value.get<long long>() < std::numeric_limits<int>::min() ||
            value.get<long long>() > std::numeric_limits<int>::max()) {
            throw config_error(source + ": " + key + " must be an integer token id, got " + value.dump());
        }
        return value.get<int>();
    }

    std::vector<int> map_all(const std::vector<int>& ids, int (VocabMap::*one)(int) const) const {
        std::vector<int> out;
        out.reserve(ids.size());
        for (int id : ids) out.push_back((this->*one)(id));
        return out;
    }

    std::vector<int> model_to_gpt2_;
    std::unordered_map<int, int> gpt2_to_model_;
    std::optional<int> unknown_model_id_;
    bool identity_ = true;
};

}  // namespace sae::models
