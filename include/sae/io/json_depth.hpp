#pragma once
/// \file json_depth.hpp
/// The nesting limit of every JSON file libsae reads (safetensors headers, cfg.json,
/// run configs, checkpoints' metadata, GPT-2 config.json / vocab_map.json / minGPT
/// weights, activation manifests).
///
/// Why: nlohmann parses iteratively, but much of what follows a parse recurses once per
/// level — dump() in error messages, copies, comparisons, json::diff, libsae's nested-list
/// reader — so a 400 KB file of '[' characters overflowed the stack (found with the
/// fuzz targets in fuzz/), and the key paths of run configs grew quadratically with the
/// depth. No file libsae reads needs more than a handful of levels.
///
///   max_json_depth                      64 (as io/mat_v5.hpp for MATLAB structs)
///   detail::check_json_depth(depth, source)   io_error "<source>: JSON nested deeper
///                                       than 64 levels" when depth > max_json_depth
///   detail::JsonDepthLimit(source)      a parser callback that applies it:
///                                       nlohmann::json::parse(text, JsonDepthLimit(path))

#include "../core/error.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>

namespace sae {

inline constexpr int max_json_depth = 64;

namespace detail {

inline void check_json_depth(int depth, const std::string& source) {
    if (depth > max_json_depth) {
        throw io_error(source + ": JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
    }
}

/// Parser callback: keeps every value, throws io_error past max_json_depth.
class JsonDepthLimit {
public:
    explicit JsonDepthLimit(std::string source) : source_(std::move(source)) {}
    bool operator()(int depth, nlohmann::json::parse_event_t, nlohmann::json&) const {
        check_json_depth(depth, source_);
        return true;
    }

private:
    std::string source_;
};

}  // namespace detail
}  // namespace sae
