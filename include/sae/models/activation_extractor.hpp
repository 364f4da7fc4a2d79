#pragma once
/// \file activation_extractor.hpp
/// Text files -> tokens -> one hook point of a GPT-2 -> activation shards on disk that
/// `ShardSource` trains on, with a manifest that says what they hold.
///
/// ---------------------------------------------------------------------------------
/// CONCEPT TextEncoder   (abstract base class; two implementations below)
///     std::vector<int> encode(std::string_view text) const;
///         ensures: the model's token ids of `text` (any bytes); config_error naming the
///                  offending byte or id when the text cannot be encoded.
///     std::optional<int> end_of_text_id() const;
///         the model id that separates documents and serves as BOS (`<|endoftext|>` for
///         GPT-2); empty for a vocabulary without one (a character-level model).
///     std::string description() const;   one line for the manifest.
///   BpeTextEncoder(BpeTokenizer, VocabMap = identity)
///       GPT-2 byte-level BPE, then the model's vocabulary map (restricted-vocabulary
///       models such as examples/data/fortunes-gpt2). `<|endoftext|>` written inside a
///       document is ordinary text, never a separator.
///   CharTextEncoder(alphabet, end_of_text = none)
///       one token per byte: the id of byte b is its index in `alphabet`.
///       CharTextEncoder::from_text(text) uses the sorted distinct bytes of `text`, which
///       is minGPT's chargpt vocabulary for ASCII text (gpt-nano-shakespeare's 65 ids).
/// ---------------------------------------------------------------------------------
///
/// How text becomes windows (the rule, deterministic and documented in one place):
///  1. Documents: each text file is split on `document_separator` (an exact byte string;
///     "" = the whole file is one document). A piece that is empty or only whitespace
///     is skipped; other pieces are encoded as they are (no trimming).
///  2. Token stream: the documents in order, each preceded by the encoder's
///     end-of-text id when it has one (`<|endoftext|>` d1 `<|endoftext|>` d2 ..., the
///     way GPT-2 separates documents); without one the documents are concatenated.
///  3. Windows: the stream is cut into consecutive, non-overlapping windows of exactly
///     `context_length` tokens. With `prepend_bos` each window is BOS followed by the
///     next context_length - 1 stream tokens; a window whose first stream token is BOS
///     itself uses that token as its BOS (no doubled BOS). Windows are never padded:
///     the incomplete tail of the stream is dropped, so no activation comes from
///     padding, and short documents are not lost (they share windows).
///  4. Rows: every position of every window gives one activation row, in window order,
///     except position 0 when `prepend_bos && exclude_bos`: BOS activations are outliers
///     that would dominate an SAE's loss, which is why SAE trainers commonly drop them.
///     Separators inside a window are real stream tokens and are kept. With max_tokens
///     > 0 the extraction stops after exactly that many rows (the last window is cut
///     short).
///
/// Shards: rows go to `<output_directory>/<shard_prefix>_00000.npy` (or .safetensors, one
/// tensor "activations" [rows, d] plus "hook"/"model" metadata), a new shard whenever the
/// current one holds max_shard_bytes of data (rows * d * dtype size; the file adds its
/// header, under 1 KiB). Only the shard being filled is held in memory. Every file is
/// written atomically, the manifest `manifest.json` last, so a directory with a manifest
/// is complete. Files of an earlier run that the new manifest does not list are left
/// alone; the manifest is the authority.
///
/// Manifest (`ActivationManifest`):
///   {"format": "libsae-activations", "version": 1, "model": ..., "hook": ..., "d": ...,
///    "dtype": "F32", "tokens": rows in all shards, "windows": ..., "context_length": ...,
///    "prepend_bos": ..., "exclude_bos": ..., "document_separator": ..., "encoder": ...,
///    "text_files": [...], "tensor": "activations" | "",
///    "shards": [{"file": "shard_00000.npy", "rows": ...}, ...]}
/// Shard paths are relative to the manifest's directory. `shard_source_config()` gives
/// the `ShardSourceConfig` (files + tensor) that reads them; the same `files`/`tensor`
/// values go into a run config's `data.train_files` / `data.tensor` for `sae train`.
///
///   ActivationExtractor<Scalar>(model, encoder, config)
///       validates (config_error naming the setting: an unknown hook or layer, a hook
///       without one row per token — attention scores/pattern —, context_length outside
///       [1, n_ctx] or < 2 with prepend_bos, batch_size < 1, prepend_bos
///       with an encoder that has no end-of-text id, max_shard_bytes below one row, bf16
///       for .npy) and creates output_directory (io_error when it cannot).
///     add_document(text)   one document (rules 2-4); add_text(text) splits on the
///       separator first; add_file(path) does that for a file. Each returns false once
///       max_tokens rows are written (later calls do nothing); add_file: io_error naming
///       an unreadable file.
///     finish()  runs the last, partial batch of complete windows, writes the last shard
///       and the manifest, returns it. config_error when the text held no complete
///       window (naming the token count and context_length). Call it once.
///   extract_activations(model, encoder, text_files, config)   all of the above.
///   ActivationManifest::load(path)  io_error "<path>: key '<k>' ..." for a missing or
///       mistyped key, a wrong format or version, an absolute shard path, or row counts
///       that do not add up to `tokens`.
///   token_windows(encoder, documents, context_length, prepend_bos, max_windows)
///       the same windows as a TokenBatch (e.g. held-out batches for splice_metrics).
///
/// Progress: with `progress` = if_terminal (default) a bar is redrawn on progress_stream
/// when it is a terminal (tokens, tokens/s, ETA from max_tokens or from the bytes of the
/// input files read so far); `always` draws it on any stream; `never` is silent.
/// Deterministic: the same text, model, encoder and config give the same shards, byte for
/// byte, on one machine and thread count.

#include "../core/callbacks.hpp"
#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../data/shard_source.hpp"
#include "../io/dtype.hpp"
#include "../io/file.hpp"
#include "../io/json_depth.hpp"
#include "../io/npy.hpp"
#include "../io/safetensors.hpp"
#include "bpe_tokenizer.hpp"
#include "gpt2.hpp"
#include "hook_point.hpp"
#include "hooks.hpp"
#include "vocab_map.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sae::models {

// ===================================================================== text encoders

/// Text -> the model's token ids. See the concept at the top of this file.
class TextEncoder {
public:
    virtual ~TextEncoder() = default;
    virtual std::vector<int> encode(std::string_view text) const = 0;
    virtual std::optional<int> end_of_text_id() const = 0;
    virtual std::string description() const = 0;

protected:
    TextEncoder() = default;
    TextEncoder(const TextEncoder&) = default;
    TextEncoder& operator=(const TextEncoder&) = default;
    TextEncoder(TextEncoder&&) = default;
    TextEncoder& operator=(TextEncoder&&) = default;
};

/// GPT-2 BPE followed by a model's vocabulary map.
class BpeTextEncoder final : public TextEncoder {
public:
    /// config_error when `<|endoftext|>` has no model id under the map.
    explicit BpeTextEncoder(BpeTokenizer tokenizer, VocabMap vocab_map = VocabMap())
        : tokenizer_(std::move(tokenizer)), map_(std::move(vocab_map)) {
        try {
            end_of_text_ = map_.to_model(tokenizer_.eot_id());
        } catch (const config_error& e) {
            throw config_error(std::string("BpeTextEncoder: <|endoftext|> has no model id: ") + e.what());
        }
    }

    std::vector<int> encode(std::string_view text) const override {
        const std::vector<std::int32_t> gpt2_ids = tokenizer_.encode(text);
        std::vector<int> ids;
        ids.reserve(gpt2_ids.size());
        for (const std::int32_t id : gpt2_ids) ids.push_back(map_.to_model(id));
        return ids;
    }

    std::optional<int> end_of_text_id() const override { return end_of_text_; }

    std::string description() const override {
        return "gpt2-bpe (" + std::to_string(tokenizer_.vocab_size()) + " tokens)" +
               (map_.is_identity() ? std::string() : ", vocab map of " + std::to_string(map_.model_vocab_size()) + " model ids");
    }

    const BpeTokenizer& tokenizer() const { return tokenizer_; }
    const VocabMap& vocab_map() const { return map_; }

private:
    BpeTokenizer tokenizer_;
    VocabMap map_;
    int end_of_text_ = 0;
};

/// One token per byte; the id of a byte is its index in the alphabet.
class CharTextEncoder final : public TextEncoder {
public:
    /// config_error for an empty alphabet, a byte listed twice, or an end-of-text id that
    /// is negative or also a byte's id.
    explicit CharTextEncoder(std::string alphabet, std::optional<int> end_of_text = std::nullopt)
        : alphabet_(std::move(alphabet)), end_of_text_(end_of_text) {
        if (alphabet_.empty()) throw config_error("CharTextEncoder: the alphabet is empty");
        id_of_byte_.fill(-1);
        for (std::size_t i = 0; i < alphabet_.size(); ++i) {
            const auto byte = static_cast<unsigned char>(alphabet_[i]);
            if (id_of_byte_[byte] >= 0) {
                throw config_error("CharTextEncoder: byte " + byte_text(byte) + " is listed twice in the alphabet (ids " +
                                   std::to_string(id_of_byte_[byte]) + " and " + std::to_string(i) + ")");
            }
            id_of_byte_[byte] = static_cast<int>(i);
        }
        if (end_of_text_ && (*end_of_text_ < 0 || *end_of_text_ < static_cast<int>(alphabet_.size()))) {
            throw config_error("CharTextEncoder: end_of_text id " + std::to_string(*end_of_text_) +
                               " must be >= the alphabet size " + std::to_string(alphabet_.size()) +
                               " (ids below it are bytes)");
        }
    }

    /// The sorted distinct bytes of `text` as the alphabet (minGPT chargpt for ASCII text).
    static CharTextEncoder from_text(std::string_view text, std::optional<int> end_of_text = std::nullopt) {
        std::array<bool, 256> seen{};
        for (const char c : text) seen[static_cast<unsigned char>(c)] = true;
        std::string alphabet;
        for (std::size_t b = 0; b < seen.size(); ++b) {
            if (seen[b]) alphabet.push_back(static_cast<char>(b));
        }
        return CharTextEncoder(std::move(alphabet), end_of_text);
    }

    /// config_error naming the first byte (value and offset) that is not in the alphabet.
    std::vector<int> encode(std::string_view text) const override {
        std::vector<int> ids(text.size());
        for (std::size_t i = 0; i < text.size(); ++i) {
            const auto byte = static_cast<unsigned char>(text[i]);
            ids[i] = id_of_byte_[byte];
            if (ids[i] < 0) {
                throw config_error("CharTextEncoder: byte " + byte_text(byte) + " at offset " + std::to_string(i) +
                                   " is not in the model's alphabet of " + std::to_string(alphabet_.size()) + " bytes");
            }
        }
        return ids;
    }

    std::optional<int> end_of_text_id() const override { return end_of_text_; }

    std::string description() const override {
        return "characters (" + std::to_string(alphabet_.size()) + " bytes" +
               (end_of_text_ ? ", end-of-text id " + std::to_string(*end_of_text_) : std::string()) + ")";
    }

    const std::string& alphabet() const { return alphabet_; }

private:
    static std::string byte_text(unsigned char byte) {
        char text[16];
        if (byte >= 0x20 && byte < 0x7F && byte != '\'') {
            std::snprintf(text, sizeof(text), "'%c'", static_cast<char>(byte));
        } else {
            std::snprintf(text, sizeof(text), "0x%02X", static_cast<unsigned>(byte));
        }
        return text;
    }

    std::string alphabet_;
    std::optional<int> end_of_text_;
    std::array<int, 256> id_of_byte_{};
};

// ========================================================================= windows

/// The documents of `text`: the pieces between occurrences of `separator` ("" = the
/// whole text), skipping pieces that are empty or only whitespace. Views into `text`.
inline std::vector<std::string_view> split_documents(std::string_view text, std::string_view separator) {
    std::vector<std::string_view> documents;
    const auto keep = [&documents](std::string_view piece) {
        const bool blank = std::all_of(piece.begin(), piece.end(), [](char c) {
            return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        });
        if (!blank) documents.push_back(piece);
    };
    if (separator.empty()) {
        keep(text);
        return documents;
    }
    std::size_t begin = 0;
    while (true) {
        const std::size_t found = text.find(separator, begin);
        keep(text.substr(begin, found == std::string_view::npos ? std::string_view::npos : found - begin));
        if (found == std::string_view::npos) break;
        begin = found + separator.size();
    }
    return documents;
}

/// Cuts the token stream into windows (rules 2 and 3 in the file comment).
class TokenWindower {
public:
    /// `end_of_text`: precedes every document in the stream, and is the BOS of
    /// `prepend_bos` (which then requires it: config_error).
    TokenWindower(Index context_length, bool prepend_bos, std::optional<int> end_of_text)
        : context_(context_length), prepend_bos_(prepend_bos), end_of_text_(end_of_text) {
        if (context_ < (prepend_bos_ ? 2 : 1)) {
            throw config_error("context_length = " + std::to_string(context_) + " must be >= " +
                               (prepend_bos_ ? "2 with prepend_bos (a window is BOS plus at least one stream token)" : "1"));
        }
        if (prepend_bos_ && !end_of_text_) {
            throw config_error("prepend_bos: the text encoder has no end-of-text (BOS) token; set prepend_bos = false");
        }
    }

    void add_document(const std::vector<int>& ids) {
        compact();
        if (end_of_text_) stream_.push_back(*end_of_text_);
        stream_.insert(stream_.end(), ids.begin(), ids.end());
    }

    /// Whether a complete window is waiting.
    bool has_window() const { return pending() >= stream_tokens_needed(); }

    /// Writes the next window into `out` (context_length ids). Requires has_window().
    template <class Out>
    void take_window(Out&& out) {
        Index t = 0;
        if (prepend_bos_) {
            if (stream_[head_] == *end_of_text_) ++head_;  // the stream's own separator is the BOS
            out(t++) = *end_of_text_;
        }
        for (; t < context_; ++t) out(t) = stream_[head_++];
    }

    /// Tokens added but not yet in a window.
    Index pending() const { return static_cast<Index>(stream_.size() - head_); }
    Index context_length() const { return context_; }

private:
    Index stream_tokens_needed() const {
        if (!prepend_bos_) return context_;
        if (pending() > 0 && stream_[head_] == *end_of_text_) return context_;
        return context_ - 1;
    }

    /// Drops consumed tokens once they are the larger part, so the stream stays bounded
    /// by one document plus one window.
    void compact() {
        if (head_ > 0 && head_ >= stream_.size() / 2) {
            stream_.erase(stream_.begin(), stream_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

    Index context_;
    bool prepend_bos_;
    std::optional<int> end_of_text_;
    std::vector<int> stream_;
    std::size_t head_ = 0;
};

/// Up to `max_windows` windows (0 = all) of `documents`, by the rules of the file
/// comment, as one [windows, context_length] batch.
inline TokenBatch token_windows(const TextEncoder& encoder, const std::vector<std::string_view>& documents,
                                Index context_length, bool prepend_bos, Index max_windows = 0) {
    TokenWindower windower(context_length, prepend_bos, encoder.end_of_text_id());
    std::vector<int> ids;
    Index windows = 0;
    const auto full = [&] { return max_windows > 0 && windows >= max_windows; };
    for (const std::string_view document : documents) {
        if (full()) break;
        windower.add_document(encoder.encode(document));
        while (windower.has_window() && !full()) {
            ids.resize(ids.size() + static_cast<std::size_t>(context_length));
            int* row = ids.data() + ids.size() - static_cast<std::size_t>(context_length);
            windower.take_window([row](Index t) -> int& { return row[t]; });
            ++windows;
        }
    }
    return Eigen::Map<const TokenBatch>(ids.data(), windows, context_length);
}

// ======================================================================== manifest

/// Where a directory of activation shards says what it holds.
inline constexpr const char* activation_manifest_file = "manifest.json";

struct ActivationShard {
    std::string file;  ///< relative to the manifest's directory
    Index rows = 0;
};

struct ActivationManifest {
    std::string model;
    std::string hook;
    Index d = 0;
    DType dtype = DType::f32;
    std::int64_t tokens = 0;   ///< rows in all shards together
    std::int64_t windows = 0;  ///< windows the rows came from (the last one may be cut short)
    Index context_length = 0;
    bool prepend_bos = false;
    bool exclude_bos = false;
    std::string document_separator;
    std::string encoder;
    std::vector<std::string> text_files;
    std::string tensor;  ///< safetensors tensor name; "" for .npy shards
    std::vector<ActivationShard> shards;
    std::string directory;  ///< where the manifest lives (not stored in the file)

    /// Absolute or working-directory-relative paths of the shards.
    std::vector<std::string> shard_paths() const {
        std::vector<std::string> paths;
        for (const ActivationShard& shard : shards) paths.push_back((std::filesystem::path(directory) / shard.file).string());
        return paths;
    }

    /// What ShardSource needs to read the shards (other settings keep their defaults).
    ShardSourceConfig shard_source_config() const {
        ShardSourceConfig config;
        config.files = shard_paths();
        config.tensor = tensor;
        return config;
    }

    nlohmann::json to_json() const {
        nlohmann::json files = nlohmann::json::array();
        for (const ActivationShard& shard : shards) files.push_back({{"file", shard.file}, {"rows", shard.rows}});
        return {{"format", "libsae-activations"},
                {"version", 1},
                {"model", model},
                {"hook", hook},
                {"d", d},
                {"dtype", safetensors_dtype_name(dtype)},
                {"tokens", tokens},
                {"windows", windows},
                {"context_length", context_length},
                {"prepend_bos", prepend_bos},
                {"exclude_bos", exclude_bos},
                {"document_separator", document_separator},
                {"encoder", encoder},
                {"text_files", text_files},
                {"tensor", tensor},
                {"shards", files}};
    }

    /// Writes `<directory>/manifest.json` atomically.
    void save() const { write_file_atomically(path(), to_json().dump(2) + "\n"); }

    std::string path() const { return (std::filesystem::path(directory) / activation_manifest_file).string(); }

    /// Parses a manifest file; `path` may also name the directory holding it.
    static ActivationManifest load(const std::string& path) {
        std::string file = path;
        std::error_code ignored;
        if (std::filesystem::is_directory(path, ignored)) file = (std::filesystem::path(path) / activation_manifest_file).string();
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(read_whole_file(file), sae::detail::JsonDepthLimit(file));
        } catch (const nlohmann::json::exception& e) {
            throw io_error(file + ": not valid JSON: " + e.what());
        }
        ActivationManifest m = from_json(j, file);
        m.directory = std::filesystem::path(file).parent_path().string();
        if (m.directory.empty()) m.directory = ".";
        return m;
    }

    /// A manifest from its JSON; io_error "<source>: key '<k>' ..." for any defect.
    static ActivationManifest from_json(const nlohmann::json& j, const std::string& source) {
        const auto fail = [&source](const std::string& key, const std::string& what) -> io_error {
            return io_error(source + ": key '" + key + "' " + what);
        };
        if (!j.is_object()) throw io_error(source + ": an activation manifest must be a JSON object");
        const auto get = [&](const std::string& key, bool (nlohmann::json::*is)() const noexcept,
                             const char* type) -> const nlohmann::json& {
            if (!j.contains(key)) throw fail(key, "is missing");
            const nlohmann::json& value = j.at(key);
            if (!(value.*is)()) throw fail(key, std::string("must be ") + type + ", got " + value.dump());
            return value;
        };
        const auto text = [&](const std::string& key) { return get(key, &nlohmann::json::is_string, "a string").get<std::string>(); };
        const auto count = [&](const std::string& key, std::int64_t minimum) {
            const nlohmann::json& value = get(key, &nlohmann::json::is_number_integer, "an integer");
            if (value.get<std::int64_t>() < minimum) throw fail(key, "must be >= " + std::to_string(minimum) + ", got " + value.dump());
            return value.get<std::int64_t>();
        };
        const auto flag = [&](const std::string& key) { return get(key, &nlohmann::json::is_boolean, "true or false").get<bool>(); };

        if (text("format") != "libsae-activations") throw fail("format", "must be \"libsae-activations\", got " + j.at("format").dump());
        if (count("version", 0) != 1) throw fail("version", "must be 1, got " + j.at("version").dump());
        ActivationManifest m;
        m.model = text("model");
        m.hook = text("hook");
        try {
            (void)HookPoint::parse(m.hook);
        } catch (const config_error& e) {
            throw fail("hook", e.what());
        }
        m.d = static_cast<Index>(count("d", 1));
        const std::optional<DType> dtype = dtype_from_safetensors_name(text("dtype"));
        if (!dtype) throw fail("dtype", "names no supported type: " + j.at("dtype").dump());
        m.dtype = *dtype;
        m.tokens = count("tokens", 0);
        m.windows = count("windows", 0);
        m.context_length = static_cast<Index>(count("context_length", 1));
        m.prepend_bos = flag("prepend_bos");
        m.exclude_bos = flag("exclude_bos");
        m.document_separator = text("document_separator");
        m.encoder = text("encoder");
        for (const nlohmann::json& f : get("text_files", &nlohmann::json::is_array, "a list")) {
            if (!f.is_string()) throw fail("text_files", "must list strings, got " + f.dump());
            m.text_files.push_back(f.get<std::string>());
        }
        m.tensor = text("tensor");
        std::int64_t total = 0;
        const nlohmann::json& shards = get("shards", &nlohmann::json::is_array, "a list");
        for (std::size_t i = 0; i < shards.size(); ++i) {
            const std::string key = "shards[" + std::to_string(i) + "]";
            const nlohmann::json& s = shards[i];
            if (!s.is_object() || !s.contains("file") || !s["file"].is_string() || !s.contains("rows") ||
                !s["rows"].is_number_integer() || s["rows"].get<std::int64_t>() < 0) {
                throw fail(key, "must be {\"file\": string, \"rows\": integer >= 0}, got " + s.dump());
            }
            ActivationShard shard{s["file"].get<std::string>(), static_cast<Index>(s["rows"].get<std::int64_t>())};
            const std::filesystem::path p(shard.file);
            if (shard.file.empty() || p.is_absolute() ||
                std::any_of(p.begin(), p.end(), [](const std::filesystem::path& part) { return part == ".."; })) {
                throw fail(key + ".file", "must be a path inside the manifest's directory, got \"" + shard.file + "\"");
            }
            if (shard.rows > std::numeric_limits<std::int64_t>::max() - total) {
                throw fail(key + ".rows", "makes the total row count overflow, got " + std::to_string(shard.rows));
            }
            total += shard.rows;
            m.shards.push_back(std::move(shard));
        }
        if (total != m.tokens) {
            throw fail("tokens", "= " + std::to_string(m.tokens) + " but the shards hold " + std::to_string(total) + " rows");
        }
        return m;
    }
};

// ====================================================================== extraction

enum class ShardFormat { npy, safetensors };
enum class ProgressDisplay { if_terminal, always, never };

struct ExtractionConfig {
    std::string hook = "blocks.0.hook_mlp_out";
    Index context_length = 128;            ///< tokens per window, BOS included
    Index batch_size = 16;                 ///< windows per forward pass
    bool prepend_bos = true;
    bool exclude_bos = true;               ///< drop position 0 (the BOS) of every window
    std::string document_separator;        ///< "" = each file is one document
    std::int64_t max_tokens = 0;           ///< stop after this many rows; 0 = all the text
    ShardFormat format = ShardFormat::npy;
    DType dtype = DType::f32;              ///< stored type (f16/bf16 halve the size)
    std::size_t max_shard_bytes = std::size_t{128} << 20;
    std::string output_directory = "activations";
    std::string shard_prefix = "shard";
    std::string model_name;                ///< recorded in the manifest
    ProgressDisplay progress = ProgressDisplay::if_terminal;
    std::ostream* progress_stream = &std::cerr;

    /// Checks what does not depend on the model; config_error naming the setting.
    void validate() const {
        if (batch_size < 1) throw config_error("batch_size = " + std::to_string(batch_size) + " must be >= 1");
        if (context_length < (prepend_bos ? 2 : 1)) {
            throw config_error("context_length = " + std::to_string(context_length) + " must be >= " +
                               (prepend_bos ? "2 with prepend_bos (a window is BOS plus at least one stream token)" : "1"));
        }
        if (max_tokens < 0) throw config_error("max_tokens = " + std::to_string(max_tokens) + " must be >= 0");
        if (format == ShardFormat::npy && dtype == DType::bf16) {
            throw config_error("dtype = BF16 has no .npy type; use F16/F32 or format = safetensors");
        }
        if (dtype != DType::f16 && dtype != DType::bf16 && dtype != DType::f32 && dtype != DType::f64) {
            throw config_error(std::string("dtype = ") + safetensors_dtype_name(dtype) + ": activations need a floating-point type");
        }
        if (output_directory.empty()) throw config_error("output_directory is empty");
        if (shard_prefix.empty() || shard_prefix.find('/') != std::string::npos) {
            throw config_error("shard_prefix = \"" + shard_prefix + "\" must be a non-empty file name without '/'");
        }
        if (progress != ProgressDisplay::never && progress_stream == nullptr) {
            throw config_error("progress_stream is null while progress is on");
        }
    }
};

namespace detail {

/// The progress line of an extraction: tokens, rate, ETA.
class ExtractionProgress {
public:
    ExtractionProgress(std::ostream* out, bool draw) : out_(draw ? out : nullptr) {}

    /// `fraction`: the known part of the work done, in [0, 1], or < 0 when unknown.
    void update(std::int64_t tokens, double fraction, bool final_update) {
        if (out_ == nullptr) return;
        const double elapsed = sae::detail::seconds_since(start_);
        if (!final_update && sae::detail::seconds_since(last_draw_) < 0.1) return;
        last_draw_ = sae::detail::SteadyClock::now();
        const double rate = elapsed > 0 ? static_cast<double>(tokens) / elapsed : 0.0;
        double eta = std::numeric_limits<double>::quiet_NaN();
        if (final_update) {
            eta = 0.0;
        } else if (fraction > 0.0) {
            eta = elapsed * (1.0 - std::min(fraction, 1.0)) / fraction;
        }
        std::string bar = "[";
        const std::size_t width = 20;
        const std::size_t filled = fraction < 0 ? 0 : static_cast<std::size_t>(std::min(fraction, 1.0) * width);
        bar += std::string(final_update ? width : filled, '#') + std::string(final_update ? 0 : width - filled, '.') + "]";
        *out_ << '\r' << bar << ' ' << sae::detail::si_number(static_cast<double>(tokens)) << " tokens | "
              << sae::detail::si_number(rate) << " tokens/s | ETA " << sae::detail::clock_time(eta) << "   ";
        if (final_update) *out_ << '\n';
        *out_ << std::flush;
    }

private:
    std::ostream* out_;
    sae::detail::SteadyClock::time_point start_ = sae::detail::SteadyClock::now();
    sae::detail::SteadyClock::time_point last_draw_{};
};

}  // namespace detail

/// Streams documents through a model and writes one hook's activations as shards.
template <class Scalar>
class ActivationExtractor {
public:
    /// Throws as described in the file comment. `model` and `encoder` must outlive the extractor.
    ActivationExtractor(const Gpt2<Scalar>& model, const TextEncoder& encoder, ExtractionConfig config)
        : model_(model),
          encoder_(encoder),
          config_((config.validate(), std::move(config))),
          hook_(checked_hook(model, config_.hook)),
          d_(hook_width(model.config(), hook_)),
          windower_((check_context(model, config_), config_.context_length), config_.prepend_bos, encoder.end_of_text_id()),
          rows_per_window_(config_.context_length - (drops_bos() ? 1 : 0)),
          rows_per_shard_(rows_per_shard(config_, d_)),
          batch_(config_.batch_size, config_.context_length),
          progress_(config_.progress_stream,
                    config_.progress == ProgressDisplay::always ||
                        (config_.progress == ProgressDisplay::if_terminal && config_.progress_stream != nullptr &&
                         sae::detail::stream_is_terminal(*config_.progress_stream))) {
        std::error_code error;
        std::filesystem::create_directories(config_.output_directory, error);
        if (error || !std::filesystem::is_directory(config_.output_directory)) {
            throw io_error(config_.output_directory + ": cannot create the output directory" +
                           (error ? ": " + error.message() : std::string()));
        }
    }

    /// The bytes of input that the caller will pass, for the ETA (0 = unknown).
    void expect_input_bytes(std::uint64_t bytes) { expected_bytes_ = bytes; }

    /// Adds one document (rule 2). False once max_tokens rows are written.
    bool add_document(std::string_view text) {
        if (done()) return false;
        bytes_read_ += text.size();
        windower_.add_document(encoder_.encode(text));
        while (windower_.has_window() && !done()) {
            windower_.take_window([this](Index t) -> int& { return batch_(batch_windows_, t); });
            ++batch_windows_;
            if (batch_windows_ == batch_.rows() || batch_windows_ >= windows_still_needed()) run_batch();
        }
        report_progress(false);
        return !done();
    }

    /// Splits `text` into documents (rule 1) and adds them. False once max_tokens rows
    /// are written.
    bool add_text(std::string_view text) {
        if (done()) return false;
        std::size_t accounted = 0;
        for (const std::string_view document : split_documents(text, config_.document_separator)) {
            const std::size_t end = static_cast<std::size_t>(document.data() + document.size() - text.data());
            bytes_read_ += end - accounted - document.size();  // separators and skipped blanks
            accounted = end;
            if (!add_document(document)) return false;
        }
        bytes_read_ += text.size() - accounted;
        return true;
    }

    /// Adds the documents of a text file (memory-mapped; rule 1) and records the file in
    /// the manifest. False once max_tokens rows are written.
    bool add_file(const std::string& path) {
        if (done()) return false;
        const MappedFile file(path);
        text_files_.push_back(path);
        return add_text(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()));
    }

    /// Runs the last windows, writes the last shard and the manifest (see the file comment).
    ActivationManifest finish() {
        if (finished_) throw config_error("ActivationExtractor::finish called twice");
        if (batch_windows_ > 0) run_batch();
        finished_ = true;
        if (tokens_ == 0) {
            throw config_error("activation extraction: the text gave no complete window of context_length = " +
                               std::to_string(config_.context_length) + " tokens (" + std::to_string(windower_.pending()) +
                               " tokens in the stream); add text or lower context_length");
        }
        write_shard();
        ActivationManifest m;
        m.model = config_.model_name;
        m.hook = hook_.name();
        m.d = d_;
        m.dtype = config_.dtype;
        m.tokens = tokens_;
        m.windows = windows_;
        m.context_length = config_.context_length;
        m.prepend_bos = config_.prepend_bos;
        m.exclude_bos = drops_bos();
        m.document_separator = config_.document_separator;
        m.encoder = encoder_.description();
        m.text_files = text_files_;
        m.tensor = config_.format == ShardFormat::safetensors ? "activations" : "";
        m.shards = shards_;
        m.directory = config_.output_directory;
        m.save();
        report_progress(true);
        return m;
    }

    bool done() const { return config_.max_tokens > 0 && tokens_ >= config_.max_tokens; }
    std::int64_t tokens_written() const { return tokens_; }
    Index width() const { return d_; }
    const HookPoint& hook() const { return hook_; }

private:
    static HookPoint checked_hook(const Gpt2<Scalar>& model, const std::string& name) {
        const HookPoint point = model.hook_point(name);
        if (point.site == HookSite::attn_scores || point.site == HookSite::attn_pattern) {
            throw config_error("hook '" + name + "' has one row per (head, query position), not per token; extract a "
                               "per-token hook such as blocks.L.attn.hook_z");
        }
        return point;
    }

    static Index hook_width(const Gpt2Config& config, const HookPoint& point) {
        return point.site == HookSite::mlp_pre || point.site == HookSite::mlp_post ? config.mlp_width() : config.n_embd;
    }

    static void check_context(const Gpt2<Scalar>& model, const ExtractionConfig& config) {
        if (config.context_length > model.config().n_ctx) {
            throw config_error("context_length = " + std::to_string(config.context_length) + " exceeds the model's n_ctx = " +
                               std::to_string(model.config().n_ctx));
        }
    }

    static Index rows_per_shard(const ExtractionConfig& config, Index d) {
        const std::size_t row_bytes = static_cast<std::size_t>(d) * dtype_size(config.dtype);
        if (config.max_shard_bytes < row_bytes) {
            throw config_error("max_shard_bytes = " + std::to_string(config.max_shard_bytes) + " is less than one row (" +
                               std::to_string(row_bytes) + " bytes)");
        }
        return static_cast<Index>(std::min<std::size_t>(config.max_shard_bytes / row_bytes,
                                                        static_cast<std::size_t>(std::numeric_limits<Index>::max())));
    }

    bool drops_bos() const { return config_.prepend_bos && config_.exclude_bos; }

    /// Windows that max_tokens still needs (a large number when there is no limit).
    Index windows_still_needed() const {
        if (config_.max_tokens == 0) return std::numeric_limits<Index>::max();
        const std::int64_t rows = config_.max_tokens - tokens_;
        return static_cast<Index>((rows + rows_per_window_ - 1) / rows_per_window_);
    }

    void run_batch() {
        const TokenBatch tokens = batch_.topRows(batch_windows_);
        const Index seq = config_.context_length, first = drops_bos() ? 1 : 0;
        Hooks<Scalar> hooks;
        hooks.read(hook_, [&](const Matrix<Scalar>& activation) {
            if (activation.cols() != d_ || activation.rows() != tokens.rows() * seq) {
                throw shape_error("hook '" + hook_.name() + "': activation is [" + std::to_string(activation.rows()) + ", " +
                                  std::to_string(activation.cols()) + "], expected one row of width " + std::to_string(d_) +
                                  " per token");
            }
            for (Index w = 0; w < tokens.rows() && !done(); ++w) {
                Index take = seq - first;
                if (config_.max_tokens > 0) take = std::min<Index>(take, static_cast<Index>(config_.max_tokens - tokens_));
                append_rows(activation.middleRows(w * seq + first, take));
                ++windows_;
            }
        });
        model_.run_hooks(tokens, hooks);
        batch_windows_ = 0;
    }

    void append_rows(const Eigen::Ref<const Matrix<Scalar>>& rows) {
        for (Index r = 0; r < rows.rows();) {
            const Index room = rows_per_shard_ - shard_rows_;
            const Index take = std::min(room, rows.rows() - r);
            pending_.insert(pending_.end(), rows.row(r).data(), rows.row(r).data() + take * d_);
            shard_rows_ += take;
            tokens_ += take;
            r += take;
            if (shard_rows_ == rows_per_shard_) write_shard();
        }
    }

    void write_shard() {
        if (shard_rows_ == 0) return;
        char index[16];
        std::snprintf(index, sizeof(index), "_%05zu", shards_.size());
        const bool npy = config_.format == ShardFormat::npy;
        const std::string name = config_.shard_prefix + index + (npy ? ".npy" : ".safetensors");
        const std::string path = (std::filesystem::path(config_.output_directory) / name).string();
        const Eigen::Map<const Matrix<Scalar>> rows(pending_.data(), shard_rows_, d_);
        if (npy) {
            write_npy(path, rows, config_.dtype);
        } else {
            SafetensorsWriter writer;
            writer.add("activations", rows, config_.dtype);
            writer.set_metadata("hook", hook_.name());
            writer.set_metadata("model", config_.model_name);
            writer.write(path);
        }
        shards_.push_back(ActivationShard{name, shard_rows_});
        pending_.clear();
        shard_rows_ = 0;
    }

    void report_progress(bool final_update) {
        double fraction = -1.0;
        if (config_.max_tokens > 0) fraction = static_cast<double>(tokens_) / static_cast<double>(config_.max_tokens);
        if (expected_bytes_ > 0) {
            fraction = std::max(fraction, static_cast<double>(bytes_read_) / static_cast<double>(expected_bytes_));
        }
        progress_.update(tokens_, fraction, final_update);
    }

    const Gpt2<Scalar>& model_;
    const TextEncoder& encoder_;
    ExtractionConfig config_;
    HookPoint hook_;
    Index d_;
    TokenWindower windower_;
    Index rows_per_window_;
    Index rows_per_shard_;
    TokenBatch batch_;
    Index batch_windows_ = 0;
    std::vector<Scalar> pending_;  ///< rows of the shard being filled, row-major
    Index shard_rows_ = 0;
    std::vector<ActivationShard> shards_;
    std::vector<std::string> text_files_;
    std::int64_t tokens_ = 0;
    std::int64_t windows_ = 0;
    std::uint64_t bytes_read_ = 0;
    std::uint64_t expected_bytes_ = 0;
    bool finished_ = false;
    detail::ExtractionProgress progress_;
};

/// Extracts `config.hook` from every file in order, stopping at max_tokens; returns the
/// manifest written to config.output_directory.
template <class Scalar>
ActivationManifest extract_activations(const Gpt2<Scalar>& model, const TextEncoder& encoder,
                                       const std::vector<std::string>& text_files, const ExtractionConfig& config) {
    if (text_files.empty()) throw config_error("extract_activations: no text files given");
    ActivationExtractor<Scalar> extractor(model, encoder, config);
    std::uint64_t total = 0;
    for (const std::string& path : text_files) {
        std::error_code error;
        const std::uintmax_t size = std::filesystem::file_size(path, error);
        if (error) throw io_error(path + ": cannot read: " + error.message());
        total += size;
    }
    extractor.expect_input_bytes(total);
    for (const std::string& path : text_files) {
        if (!extractor.add_file(path)) break;
    }
    return extractor.finish();
}

}  // namespace sae::models
