#pragma once
/// \file bpe_tokenizer.hpp
/// The GPT-2 byte-level BPE tokenizer (OpenAI's encoder.py, Hugging Face GPT2Tokenizer,
/// tiktoken "gpt2"), bit-exact with tools/reference/gpt2_bpe.py.
///
///   BpeTokenizer::from_directory(dir)   vocab.json + merges.txt (Hugging Face names), or
///                       encoder.json + vocab.bpe (OpenAI names).
///   BpeTokenizer::from_files(vocab, merges)
///       throws io_error naming the file for: a file that cannot be read; vocab JSON that
///       is not one object of string -> non-negative integer (the key or byte offset is
///       named), a duplicate token or id, ids that are not exactly 0..N-1, a token with a
///       character outside the GPT-2 byte alphabet, one of the 256 single-byte tokens or
///       `<|endoftext|>` missing; a merges line (counted from 1; a first line starting with
///       "#version" is skipped, blank lines are ignored) that is not two symbols separated
///       by one space, a symbol or the merged token not in the vocabulary, a pair listed
///       twice.
///   encode(utf8, special) -> ids     any byte string, valid UTF-8 or not (see below).
///       `<|endoftext|>` in the text is ordinary text by default (as tiktoken without
///       allowed_special, and HF with split_special_tokens); SpecialTokens::recognise
///       maps each occurrence to eot_id() and splits the text there.
///   decode(ids) -> bytes             the concatenated bytes of the tokens, exactly; a token
///       boundary inside a UTF-8 sequence is not an error, so decode(encode(s)) == s for
///       every byte string s. throws config_error naming the position and id out of range.
///   token_bytes(id), vocab_size(), eot_id(), id_of(bytes)  (id_of takes the raw bytes of a
///       token, " the", not the vocabulary spelling "Ġthe"; id_of(token_bytes(i)) == i).
///   pretokenize(utf8) -> pieces      the pre-tokeniser alone (views into the argument).
///
/// Pre-tokenisation reproduces the regex
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// with a hand-written scanner over code points classified by unicode_categories.hpp
/// (tables generated from the Python `regex` module the reference uses). Contractions are
/// case-sensitive and use the ASCII apostrophe only; " ?" is the ASCII space only.
///
/// Invalid UTF-8: a byte that does not start a well-formed sequence (Unicode 15 Table 3-7:
/// no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequence) is one
/// code point of class `other` on its own, grouped like punctuation by [^\s\p{L}\p{N}]+;
/// the scanner then resumes at the next byte. This is exactly what the reference does on
/// `data.decode("utf-8", "surrogateescape")` (each such byte becomes a lone surrogate,
/// category Cs), so byte strings are tokenised identically by both.
///
/// Merging follows encoder.py: repeatedly take the adjacent pair of lowest merge rank and
/// merge all its occurrences left to right. Pre-tokens longer than 32 bytes use an
/// O(n log n) priority queue instead of the O(n^2) rescans; that gives the same result
/// when every merge's parts were created by lower-ranked merges, which from_files checks
/// (true for GPT-2; otherwise the rescans are used for every length).
///
/// Thread safety: a BpeTokenizer is immutable after loading; encode keeps its pre-token
/// cache per call (a hash map of views into the input), so concurrent calls on one object
/// are safe without locks.

#include "../core/error.hpp"
#include "../io/file.hpp"
#include "unicode_categories.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sae::models {

/// Whether encode() recognises the literal text `<|endoftext|>` as the special token.
enum class SpecialTokens {
    as_text,    ///< `<|endoftext|>` is split and merged like any other text (default).
    recognise,  ///< each occurrence becomes eot_id().
};

namespace bpe_detail {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

/// The GPT-2 reversible byte -> code point map: printable Latin-1 bytes ('!'..'~',
/// U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves, the other 68 bytes for U+0100,
/// U+0101, ... in increasing byte order, so every token is printable text in vocab.json.
inline std::array<std::uint32_t, 256> byte_to_code_point() {
    std::array<std::uint32_t, 256> map{};
    std::uint32_t next_extra = 256;
    for (std::uint32_t byte = 0; byte < 256; ++byte) {
        const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                               (byte >= 0xAE && byte <= 0xFF);
        map[byte] = printable ? byte : next_extra++;
    }
    return map;
}

/// One decoded code point; `valid` is false for a byte that starts no well-formed UTF-8
/// sequence (then `length` is 1 and the byte is an `other` code point of its own).
struct CodePoint {
    std::uint32_t value;
    std::uint32_t length;
    bool valid;
};

inline bool is_continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

/// Decodes the code point at text[pos] (pos < size) following Unicode Table 3-7.
inline CodePoint decode_utf8(std::string_view text, std::size_t pos) {
    const auto at = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = at(pos);
    if (lead < 0x80U) return {lead, 1, true};
    const CodePoint invalid{lead, 1, false};
    const std::size_t left = text.size() - pos;
    if (lead >= 0xC2U && lead <= 0xDFU) {
        if (left < 2 || !is_continuation(at(pos + 1))) return invalid;
        return {((lead & 0x1FU) << 6) | (at(pos + 1) & 0x3FU), 2, true};
    }
    if (lead >= 0xE0U && lead <= 0xEFU) {
        if (left < 3) return invalid;
        const unsigned char second = at(pos + 1);
        // E0 needs A0..BF (no overlong form), ED needs 80..9F (no surrogate).
        const unsigned char low = lead == 0xE0U ? 0xA0U : 0x80U;
        const unsigned char high = lead == 0xEDU ? 0x9FU : 0xBFU;
        if (second < low || second > high || !is_continuation(at(pos + 2))) return invalid;
        return {((lead & 0x0FU) << 12) | ((second & 0x3FU) << 6) | (at(pos + 2) & 0x3FU), 3, true};
    }
    if (lead >= 0xF0U && lead <= 0xF4U) {
        if (left < 4) return invalid;
        const unsigned char second = at(pos + 1);
        // F0 needs 90..BF (no overlong form), F4 needs 80..8F (nothing above U+10FFFF).
        const unsigned char low = lead == 0xF0U ? 0x90U : 0x80U;
        const unsigned char high = lead == 0xF4U ? 0x8FU : 0xBFU;
        if (second < low || second > high || !is_continuation(at(pos + 2)) ||
            !is_continuation(at(pos + 3))) {
            return invalid;
        }
        return {((lead & 0x07U) << 18) | ((second & 0x3FU) << 12) | ((at(pos + 2) & 0x3FU) << 6) |
                    (at(pos + 3) & 0x3FU),
                4, true};
    }
    return invalid;
}

/// The class of a decoded code point; ASCII without the table search.
inline unicode::CharClass class_of(const CodePoint& cp) {
    using unicode::CharClass;
    if (!cp.valid) return CharClass::other;
    const std::uint32_t c = cp.value;
    if (c < 0x80U) {
        if ((c | 0x20U) - 'a' < 26U) return CharClass::letter;
        if (c - '0' < 10U) return CharClass::number;
        if (c == ' ' || (c >= 0x09U && c <= 0x0DU)) return CharClass::whitespace;
        return CharClass::other;
    }
    return unicode::char_class(c);
}

/// Length in bytes of the contraction ('s 't 're 've 'm 'll 'd) at text[pos], or 0.
inline std::size_t contraction_length(std::string_view text, std::size_t pos) {
    if (text[pos] != '\'' || pos + 1 >= text.size()) return 0;
    const char first = text[pos + 1];
    if (first == 's' || first == 't' || first == 'm' || first == 'd') return 2;
    if (pos + 2 < text.size()) {
        const char second = text[pos + 2];
        if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
            (first == 'l' && second == 'l')) {
            return 3;
        }
    }
    return 0;
}

/// End (exclusive) of the pre-token that starts at text[begin] (begin < size): the match
/// the GPT-2 regex finds at `begin`, alternatives tried in order.
inline std::size_t pretoken_end(std::string_view text, std::size_t begin) {
    using unicode::CharClass;
    const std::size_t size = text.size();
    if (const std::size_t length = contraction_length(text, begin)) return begin + length;

    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional ASCII space, then a run of
    // one class. Without the space the first code point would itself be whitespace, so
    // these alternatives fail exactly when the code point after the optional space is.
    const std::size_t run_begin = (text[begin] == ' ' && begin + 1 < size) ? begin + 1 : begin;
    const CodePoint first = decode_utf8(text, run_begin);
    const CharClass run_class = class_of(first);
    if (run_class != CharClass::whitespace) {
        std::size_t end = run_begin + first.length;
        while (end < size) {
            const CodePoint next = decode_utf8(text, end);
            if (class_of(next) != run_class) break;
            end += next.length;
        }
        return end;
    }

    // "\s+(?!\S)" then "\s+": the whitespace run, minus its last code point when
    // something other than whitespace follows (that code point then starts the next
    // pre-token, e.g. " word"), unless the run is a single code point.
    std::size_t end = begin;
    std::size_t last_begin = begin;
    while (end < size) {
        const CodePoint next = decode_utf8(text, end);
        if (class_of(next) != CharClass::whitespace) break;
        last_begin = end;
        end += next.length;
    }
    if (end == size || last_begin == begin) return end;
    return last_begin;
}

/// (first id, second id) as one hash key.
inline std::uint64_t pair_key(std::int32_t first, std::int32_t second) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(first)) << 32) |
           static_cast<std::uint32_t>(second);
}

/// Mixes the bits of a pair key (std::hash of an integer is the identity in libstdc++,
/// which clusters the buckets of keys that differ only in their high half).
struct PairKeyHash {
    std::size_t operator()(std::uint64_t key) const noexcept {
        key ^= key >> 33;
        key *= 0xff51afd7ed558ccdULL;
        key ^= key >> 33;
        return static_cast<std::size_t>(key);
    }
};

/// A merge rule: the pair's rank (its 0-based line among the merges) and the merged id.
struct Merge {
    std::int32_t rank;
    std::int32_t merged_id;
};

/// Reads a vocab.json object {"token": id, ...} with nlohmann's SAX interface (no DOM for
/// 50k entries) and rejects anything but a flat object of non-negative integers.
class VocabReader {
public:
    using json = nlohmann::json;

    explicit VocabReader(std::string path) : path_(std::move(path)) {}

    /// (vocabulary spelling, id) in file order.
    std::vector<std::pair<std::string, std::int64_t>> entries;

    bool null() { return wrong_value("null"); }
    bool boolean(bool) { return wrong_value("a boolean"); }
    bool number_integer(json::number_integer_t value) {
        if (value < 0) return wrong_value("negative id " + std::to_string(value));
        return add(value);
    }
    bool number_unsigned(json::number_unsigned_t value) {
        if (value > static_cast<json::number_unsigned_t>(std::numeric_limits<std::int32_t>::max())) {
            return wrong_value("id " + std::to_string(value) + " beyond the int32 range");
        }
        return add(static_cast<std::int64_t>(value));
    }
    bool number_float(json::number_float_t, const json::string_t& text) {
        return wrong_value("non-integer id " + text);
    }
    bool string(json::string_t&) { return wrong_value("a string"); }
    bool binary(json::binary_t&) { return wrong_value("binary data"); }
    bool start_object(std::size_t) {
        if (depth_++ > 0) return wrong_value("an object");
        return true;
    }
    bool key(json::string_t& key) {
        key_ = std::move(key);
        return true;
    }
    bool end_object() {
        --depth_;
        return true;
    }
    bool start_array(std::size_t) {
        if (depth_ == 0) throw io_error(path_ + ": the vocabulary must be a JSON object, found an array");
        return wrong_value("an array");
    }
    bool end_array() { return true; }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
        std::string what = e.what();
        // Drop nlohmann's "[json.exception.parse_error.101] " tag.
        if (const auto tag_end = what.find("] "); tag_end != std::string::npos) what.erase(0, tag_end + 2);
        throw io_error(path_ + ": invalid JSON at byte " + std::to_string(position) + ": " + what);
    }

private:
    bool add(std::int64_t id) {
        if (depth_ != 1) return wrong_value("a number");
        entries.emplace_back(key_, id);
        return true;
    }
    bool wrong_value(const std::string& what) {
        if (depth_ == 0) throw io_error(path_ + ": the vocabulary must be a JSON object, found " + what);
        throw io_error(path_ + ": token \"" + key_ + "\": expected a non-negative integer id, found " + what);
    }

    std::string path_;
    std::string key_;
    int depth_ = 0;
};

}  // namespace bpe_detail

/// GPT-2 byte-level BPE tokenizer. See the file comment for the rules and guarantees.
class BpeTokenizer {
public:
    /// Loads `dir`/vocab.json + merges.txt, or else `dir`/encoder.json + vocab.bpe.
    /// throws io_error naming the directory when neither pair exists, else as from_files.
    static BpeTokenizer from_directory(const std::filesystem::path& dir) {
        namespace fs = std::filesystem;
        for (const auto& [vocab_name, merges_name] :
             {std::pair<const char*, const char*>{"vocab.json", "merges.txt"},
              std::pair<const char*, const char*>{"encoder.json", "vocab.bpe"}}) {
            const fs::path vocab = dir / vocab_name;
            const fs::path merges = dir / merges_name;
            std::error_code ignored;
            if (fs::is_regular_file(vocab, ignored) && fs::is_regular_file(merges, ignored)) {
                return from_files(vocab, merges);
            }
        }
        throw io_error(dir.string() +
                       ": no tokenizer files (expected vocab.json + merges.txt or encoder.json + vocab.bpe)");
    }

    /// Loads a vocabulary (JSON object token -> id) and a merges file (one "first second"
    /// pair per line, in rank order). throws io_error as described in the file comment.
    static BpeTokenizer from_files(const std::filesystem::path& vocab_path,
                                   const std::filesystem::path& merges_path) {
        BpeTokenizer tokenizer;
        tokenizer.load_vocab(vocab_path.string());
        tokenizer.load_merges(merges_path.string());
        return tokenizer;
    }

    /// Token ids of `text` (any bytes; invalid UTF-8 per the file comment).
    std::vector<std::int32_t> encode(std::string_view text,
                                     SpecialTokens special = SpecialTokens::as_text) const {
        std::vector<std::int32_t> ids;
        ids.reserve(text.size() / 3 + 1);
        EncodeState state;
        if (special == SpecialTokens::as_text) {
            encode_ordinary(text, ids, state);
            return ids;
        }
        std::size_t begin = 0;
        while (true) {
            const std::size_t found = text.find(bpe_detail::kEndOfText, begin);
            encode_ordinary(text.substr(begin, found == std::string_view::npos ? found : found - begin), ids,
                            state);
            if (found == std::string_view::npos) break;
            ids.push_back(eot_id_);
            begin = found + bpe_detail::kEndOfText.size();
        }
        return ids;
    }

    /// The bytes of the tokens, concatenated (not validated as UTF-8; see the file comment).
    /// throws config_error naming the position and value of an id outside [0, vocab_size()).
    std::string decode(const std::vector<std::int32_t>& ids) const {
        std::size_t total = 0;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= tokens_.size()) {
                check_id(ids[i], "decode: token at position " + std::to_string(i));
            }
            total += tokens_[static_cast<std::size_t>(ids[i])].size();
        }
        std::string bytes;
        bytes.reserve(total);
        for (const std::int32_t id : ids) bytes += tokens_[static_cast<std::size_t>(id)];
        return bytes;
    }

    /// The raw bytes of token `id` (" the" for the vocabulary entry "Ġthe").
    /// throws config_error naming the id when it is out of range.
    const std::string& token_bytes(std::int32_t id) const {
        check_id(id, "token_bytes");
        return tokens_[static_cast<std::size_t>(id)];
    }

    /// Number of tokens (50257 for GPT-2).
    std::size_t vocab_size() const { return tokens_.size(); }

    /// Id of `<|endoftext|>` (50256 for GPT-2).
    std::int32_t eot_id() const { return eot_id_; }

    /// Id of the token whose raw bytes are `token`, if there is one.
    std::optional<std::int32_t> id_of(std::string_view token) const {
        const auto found = id_by_bytes_.find(std::string(token));
        if (found == id_by_bytes_.end()) return std::nullopt;
        return found->second;
    }

    /// Pre-tokens of `text` as views into it; concatenated they give `text` back.
    static std::vector<std::string_view> pretokenize(std::string_view text) {
        std::vector<std::string_view> pieces;
        for (std::size_t begin = 0; begin < text.size();) {
            const std::size_t end = bpe_detail::pretoken_end(text, begin);
            pieces.push_back(text.substr(begin, end - begin));
            begin = end;
        }
        return pieces;
    }

private:
    /// Pre-tokens at least this long are merged with the priority queue.
    static constexpr std::size_t kQueueThreshold = 32;

    /// Where a pre-token's ids were first written into the output (the per-call cache).
    struct CachedSpan {
        std::size_t offset;
        std::size_t count;
    };

    /// Per-call scratch: the cache and buffers reused from word to word.
    struct EncodeState {
        std::unordered_map<std::string_view, CachedSpan> cache;
        std::vector<std::int32_t> symbols;
        std::vector<std::int32_t> next;
        std::vector<std::int32_t> previous;
    };

    /// A candidate merge in the priority queue: rank first, then position (left to right).
    struct QueuedPair {
        std::int32_t rank;
        std::int32_t position;
        std::int32_t first;
        std::int32_t second;
        std::int32_t merged;
        bool operator>(const QueuedPair& other) const {
            return rank != other.rank ? rank > other.rank : position > other.position;
        }
    };

    BpeTokenizer() = default;

    void check_id(std::int32_t id, const std::string& where) const {
        if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size()) {
            throw config_error("BpeTokenizer::" + where + ": token id " + std::to_string(id) +
                               " is out of range [0, " + std::to_string(tokens_.size()) + ")");
        }
    }

    const bpe_detail::Merge* find_merge(std::int32_t first, std::int32_t second) const {
        const auto found = merges_.find(bpe_detail::pair_key(first, second));
        return found == merges_.end() ? nullptr : &found->second;
    }

    void encode_ordinary(std::string_view text, std::vector<std::int32_t>& ids, EncodeState& state) const {
        for (std::size_t begin = 0; begin < text.size();) {
            const std::size_t end = bpe_detail::pretoken_end(text, begin);
            const std::string_view word = text.substr(begin, end - begin);
            begin = end;
            if (word.size() == 1) {
                ids.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
                continue;
            }
            const auto [entry, inserted] = state.cache.try_emplace(word, CachedSpan{ids.size(), 0});
            if (!inserted) {
                // Copy by value: push_back may reallocate the storage the ids are read from.
                for (std::size_t k = 0; k < entry->second.count; ++k) {
                    const std::int32_t id = ids[entry->second.offset + k];
                    ids.push_back(id);
                }
                continue;
            }
            merge_word(word, ids, state);
            entry->second.count = ids.size() - entry->second.offset;
        }
    }

    /// Appends the BPE ids of one pre-token (two bytes or more).
    void merge_word(std::string_view word, std::vector<std::int32_t>& ids, EncodeState& state) const {
        std::vector<std::int32_t>& symbols = state.symbols;
        symbols.resize(word.size());
        for (std::size_t i = 0; i < word.size(); ++i) symbols[i] = byte_ids_[static_cast<unsigned char>(word[i])];
        if (word.size() >= kQueueThreshold && merges_ordered_ &&
            word.size() < static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
            merge_with_queue(ids, state);
        } else {
            merge_by_rescan(symbols);
            ids.insert(ids.end(), symbols.begin(), symbols.end());
        }
    }

    /// encoder.py verbatim: find the lowest-ranked adjacent pair, merge every occurrence
    /// left to right, repeat until no pair has a rank.
    void merge_by_rescan(std::vector<std::int32_t>& symbols) const {
        while (symbols.size() > 1) {
            const bpe_detail::Merge* best = nullptr;
            std::int32_t first = 0;
            std::int32_t second = 0;
            for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
                const bpe_detail::Merge* merge = find_merge(symbols[i], symbols[i + 1]);
                if (merge != nullptr && (best == nullptr || merge->rank < best->rank)) {
                    best = merge;
                    first = symbols[i];
                    second = symbols[i + 1];
                }
            }
            if (best == nullptr) return;
            std::size_t out = 0;
            for (std::size_t i = 0; i < symbols.size();) {
                if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
                    symbols[out++] = best->merged_id;
                    i += 2;
                } else {
                    symbols[out++] = symbols[i++];
                }
            }
            symbols.resize(out);
        }
    }

    /// The same merges in O(n log n): candidate pairs in a min-queue by (rank, position);
    /// a popped pair whose symbols changed since it was queued is stale and skipped. Because
    /// every merge creates a token only used by higher-ranked merges (merges_ordered_), the
    /// queue yields the ranks in the order encoder.py processes them and each rank's
    /// occurrences left to right, so the result is identical.
    void merge_with_queue(std::vector<std::int32_t>& ids, EncodeState& state) const {
        std::vector<std::int32_t>& symbols = state.symbols;
        std::vector<std::int32_t>& next = state.next;
        std::vector<std::int32_t>& previous = state.previous;
        const auto count = static_cast<std::int32_t>(symbols.size());
        next.resize(symbols.size());
        previous.resize(symbols.size());
        for (std::int32_t i = 0; i < count; ++i) {
            next[static_cast<std::size_t>(i)] = i + 1 < count ? i + 1 : -1;
            previous[static_cast<std::size_t>(i)] = i - 1;
        }
        std::priority_queue<QueuedPair, std::vector<QueuedPair>, std::greater<QueuedPair>> queue;
        const auto push = [&](std::int32_t position) {
            if (position < 0) return;
            const std::int32_t right = next[static_cast<std::size_t>(position)];
            if (right < 0) return;
            const std::int32_t first = symbols[static_cast<std::size_t>(position)];
            const std::int32_t second = symbols[static_cast<std::size_t>(right)];
            if (const bpe_detail::Merge* merge = find_merge(first, second)) {
                queue.push({merge->rank, position, first, second, merge->merged_id});
            }
        };
        for (std::int32_t i = 0; i + 1 < count; ++i) push(i);
        constexpr std::int32_t kRemoved = -1;
        while (!queue.empty()) {
            const QueuedPair top = queue.top();
            queue.pop();
            const auto position = static_cast<std::size_t>(top.position);
            const std::int32_t right = next[position];
            if (symbols[position] != top.first || right < 0 ||
                symbols[static_cast<std::size_t>(right)] != top.second) {
                continue;
            }
            symbols[position] = top.merged;
            const std::int32_t after = next[static_cast<std::size_t>(right)];
            next[position] = after;
            if (after >= 0) previous[static_cast<std::size_t>(after)] = top.position;
            symbols[static_cast<std::size_t>(right)] = kRemoved;
            push(previous[position]);
            push(top.position);
        }
        for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) {
            ids.push_back(symbols[static_cast<std::size_t>(i)]);
        }
    }

    void load_vocab(const std::string& path) {
        const std::string text = read_whole_file(path);
        bpe_detail::VocabReader reader(path);
        nlohmann::json::sax_parse(text, &reader);
        const std::size_t count = reader.entries.size();
        if (count == 0) throw io_error(path + ": the vocabulary is empty");

        const std::array<std::uint32_t, 256> byte_to_cp = bpe_detail::byte_to_code_point();
        std::unordered_map<std::uint32_t, unsigned char> cp_to_byte;
        for (std::uint32_t byte = 0; byte < 256; ++byte) cp_to_byte[byte_to_cp[byte]] = static_cast<unsigned char>(byte);

        tokens_.assign(count, std::string());
        std::vector<bool> seen(count, false);
        id_by_bytes_.reserve(count);
        for (const auto& [spelling, id] : reader.entries) {
            if (id >= static_cast<std::int64_t>(count)) {
                throw io_error(path + ": token \"" + spelling + "\" has id " + std::to_string(id) + ", but the " +
                               std::to_string(count) + " ids must be exactly 0.." + std::to_string(count - 1));
            }
            std::string bytes;
            const std::string_view view(spelling);
            for (std::size_t pos = 0; pos < view.size();) {
                const bpe_detail::CodePoint cp = bpe_detail::decode_utf8(view, pos);
                const auto byte = cp_to_byte.find(cp.value);
                if (!cp.valid || byte == cp_to_byte.end()) {
                    throw io_error(path + ": token \"" + spelling + "\" (id " + std::to_string(id) +
                                   ") has a character outside the GPT-2 byte alphabet at byte " +
                                   std::to_string(pos));
                }
                bytes += static_cast<char>(byte->second);
                pos += cp.length;
            }
            if (!id_by_bytes_.emplace(bytes, static_cast<std::int32_t>(id)).second) {
                throw io_error(path + ": token \"" + spelling + "\" is listed twice");
            }
            const auto index = static_cast<std::size_t>(id);
            if (seen[index]) throw io_error(path + ": id " + std::to_string(id) + " is used by two tokens");
            seen[index] = true;
            if (spelling == bpe_detail::kEndOfText) eot_id_ = static_cast<std::int32_t>(id);
            tokens_[index] = std::move(bytes);
        }
        for (std::uint32_t byte = 0; byte < 256; ++byte) {
            const auto found = id_by_bytes_.find(std::string(1, static_cast<char>(byte)));
            if (found == id_by_bytes_.end()) {
                throw io_error(path + ": the single-byte token for byte " + std::to_string(byte) +
                               " is missing (every byte needs one)");
            }
            byte_ids_[byte] = found->second;
        }
        if (eot_id_ < 0) throw io_error(path + ": token \"<|endoftext|>\" is missing");
    }

    void load_merges(const std::string& path) {
        const std::string text = read_whole_file(path);
        // The rank of the merge that creates each token (-1: a byte or never created),
        // to check the ordering merge_with_queue relies on.
        std::vector<std::int32_t> created_at(tokens_.size(), -1);
        std::unordered_map<std::string, std::int32_t> id_by_spelling;
        id_by_spelling.reserve(tokens_.size());
        // Symbols in merges.txt use the vocabulary spelling; map them through the bytes.
        const std::array<std::uint32_t, 256> byte_to_cp = bpe_detail::byte_to_code_point();
        for (std::size_t id = 0; id < tokens_.size(); ++id) {
            std::string spelling;
            for (const char byte : tokens_[id]) append_utf8(spelling, byte_to_cp[static_cast<unsigned char>(byte)]);
            id_by_spelling.emplace(std::move(spelling), static_cast<std::int32_t>(id));
        }
        std::unordered_map<std::uint64_t, std::size_t> line_of_pair;
        std::int32_t rank = 0;
        std::size_t line_number = 0;
        for (std::size_t begin = 0; begin < text.size();) {
            std::size_t end = text.find('\n', begin);
            if (end == std::string::npos) end = text.size();
            std::string_view line(text.data() + begin, end - begin);
            begin = end + 1;
            ++line_number;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line_number == 1 && line.substr(0, 8) == "#version") continue;
            if (line.empty()) continue;
            const std::string where = path + ":" + std::to_string(line_number) + ": ";
            const std::size_t space = line.find(' ');
            if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
                line.find(' ', space + 1) != std::string_view::npos) {
                throw io_error(where + "expected two symbols separated by one space, found \"" + std::string(line) +
                               "\"");
            }
            const std::string first(line.substr(0, space));
            const std::string second(line.substr(space + 1));
            const auto lookup = [&](const std::string& spelling) {
                const auto found = id_by_spelling.find(spelling);
                if (found == id_by_spelling.end()) {
                    throw io_error(where + "\"" + spelling + "\" is not in the vocabulary");
                }
                return found->second;
            };
            const std::int32_t first_id = lookup(first);
            const std::int32_t second_id = lookup(second);
            const std::int32_t merged_id = lookup(first + second);
            const std::uint64_t key = bpe_detail::pair_key(first_id, second_id);
            if (const auto [previous, inserted] = line_of_pair.emplace(key, line_number); !inserted) {
                throw io_error(where + "the pair \"" + first + " " + second + "\" is already listed on line " +
                               std::to_string(previous->second));
            }
            merges_.emplace(key, bpe_detail::Merge{rank, merged_id});
            // The latest creating merge counts when several merges create the same token.
            created_at[static_cast<std::size_t>(merged_id)] = rank;
            if (rank == std::numeric_limits<std::int32_t>::max()) throw io_error(where + "too many merges");
            ++rank;
        }
        // Every merge must come after the (last) merge that creates each of its parts.
        merges_ordered_ = true;
        for (const auto& [key, merge] : merges_) {
            const auto first_id = static_cast<std::size_t>(key >> 32);
            const auto second_id = static_cast<std::size_t>(key & 0xFFFFFFFFULL);
            if (created_at[first_id] >= merge.rank || created_at[second_id] >= merge.rank) merges_ordered_ = false;
        }
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80U) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800U) {
            out += static_cast<char>(0xC0U | (cp >> 6));
            out += static_cast<char>(0x80U | (cp & 0x3FU));
        } else {
            out += static_cast<char>(0xE0U | (cp >> 12));
            out += static_cast<char>(0x80U | ((cp >> 6) & 0x3FU));
            out += static_cast<char>(0x80U | (cp & 0x3FU));
        }
    }

    std::vector<std::string> tokens_;                          ///< raw bytes by id
    std::unordered_map<std::string, std::int32_t> id_by_bytes_;  ///< inverse of tokens_
    std::array<std::int32_t, 256> byte_ids_{};                 ///< id of each single byte
    std::unordered_map<std::uint64_t, bpe_detail::Merge, bpe_detail::PairKeyHash> merges_;
    bool merges_ordered_ = false;
    std::int32_t eot_id_ = -1;
};

}  // namespace sae::models
