#pragma once
/// \file sentiment_lexicon.hpp
/// The VADER sentiment lexicon (Hutto & Gilbert 2014, github cjhutto/vaderSentiment,
/// `vader_lexicon.txt`) and VADER's way of cutting text into the words it looks up: the
/// token-utility table of the IRM probe and the text risk measure of the PSE example.
///
///   SentimentLexicon::load(path)         reads a lexicon file (format below).
///   SentimentLexicon::parse(text, source) the same from text in memory; `source` names it
///                                        in error messages.
///   valence(word)     the mean valence of `word` looked up as VADER does, i.e. after
///                     lower-casing it (ASCII letters only, see below); nullopt when absent.
///   size(), entries() one entry per distinct word, in the order of first appearance, with
///                     the valence VADER uses.
///   vader_words(text) the words VADER looks up (SentiText._words_and_emoticons, v3.3.2),
///                     case preserved.
///   tally_valences(lexicon, text, threshold)
///                     counts of the text's words, of those in the lexicon, and of those
///                     with valence <= threshold, and the sum of the found valences
///                     (a NaN threshold: config_error).
///
/// File format (what VADER's make_lex_dict reads): one entry per line, fields separated by
/// TAB: word, mean valence (a decimal number; VADER's scale is [-4, 4]), then fields that
/// are ignored here (VADER's file has the standard deviation and the ten human ratings).
/// A trailing '\r' and surrounding spaces/tabs of a line are dropped; blank lines are
/// skipped. A word listed twice keeps its later valence, as in VADER's dict (the shipped
/// file lists 10 words twice, e.g. "ok" 1.6 then 1.2: VADER uses 1.2). Errors, each an
/// io_error naming the file and line: a line without a TAB (after the stripping, so a
/// line "\t1.0" has none), a valence that is not a finite number; a file with no entry.
///
/// Splitting (VADER 3.3.2): the text is split at whitespace (Python's str.split(): ASCII
/// whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
/// U+202F, U+205F, U+3000); each piece loses its leading and trailing ASCII punctuation
/// (Python's string.punctuation) unless what remains has at most two characters, in which
/// case the piece is kept whole (so ":)" and "ok," survive as they are). Characters are
/// counted as UTF-8 code points. Case is preserved; VADER lower-cases at look-up time,
/// and so does valence(). Deliberate differences from Python: lower-casing covers only
/// ASCII letters (Python's str.lower() is Unicode-wide; the lexicon's words are ASCII
/// apart from two emoticons with 'Þ', which VADER's lower-casing makes unreachable and
/// this look-up does not), and bytes that are not valid UTF-8 are ordinary characters.
/// VADER's scoring rules beyond look-up (negation, boosters, "but", capitals,
/// punctuation emphasis) are not part of this header.

#include "../core/error.hpp"
#include "../io/file.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sae::models {

/// One word of a sentiment lexicon and its mean valence.
struct LexiconEntry {
    std::string word;
    double valence = 0.0;
};

namespace lexicon_detail {

inline bool is_ascii_punctuation(unsigned char c) {
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

/// Bytes of the whitespace character that starts text[pos] (Python's str.isspace()), or 0.
inline std::size_t whitespace_length(std::string_view text, std::size_t pos) {
    const auto byte = [&](std::size_t k) {
        return pos + k < text.size() ? static_cast<unsigned char>(text[pos + k]) : 0U;
    };
    const unsigned char c = byte(0);
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
    if (c == 0xC2 && (byte(1) == 0x85 || byte(1) == 0xA0)) return 2;                    // U+0085, U+00A0
    if (c == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) return 3;                      // U+1680
    if (c == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) return 3;                      // U+3000
    if (c == 0xE2 && byte(1) == 0x80) {
        const unsigned char last = byte(2);
        if ((last >= 0x80 && last <= 0x8A) || last == 0xA8 || last == 0xA9 || last == 0xAF) return 3;  // U+2000..
    }
    if (c == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) return 3;                      // U+205F
    return 0;
}

/// UTF-8 code points in `text`: the bytes that are not continuation bytes.
inline std::size_t code_point_count(std::string_view text) {
    std::size_t count = 0;
    for (const char ch : text) count += (static_cast<unsigned char>(ch) & 0xC0U) != 0x80U ? 1 : 0;
    return count;
}

/// VADER's _strip_punc_if_word.
inline std::string_view strip_punctuation_if_word(std::string_view piece) {
    std::size_t begin = 0, end = piece.size();
    while (begin < end && is_ascii_punctuation(static_cast<unsigned char>(piece[begin]))) ++begin;
    while (end > begin && is_ascii_punctuation(static_cast<unsigned char>(piece[end - 1]))) --end;
    const std::string_view stripped = piece.substr(begin, end - begin);
    return code_point_count(stripped) <= 2 ? piece : stripped;
}

inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace lexicon_detail

/// `text` with ASCII letters lower-cased; every other byte unchanged.
inline std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& ch : out) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    return out;
}

/// The words VADER looks up in `text` (see the file comment), case preserved.
inline std::vector<std::string> vader_words(std::string_view text) {
    std::vector<std::string> words;
    std::size_t pos = 0;
    while (pos < text.size()) {
        if (const std::size_t space = lexicon_detail::whitespace_length(text, pos)) {
            pos += space;
            continue;
        }
        const std::size_t begin = pos;
        while (pos < text.size() && lexicon_detail::whitespace_length(text, pos) == 0) ++pos;
        words.emplace_back(lexicon_detail::strip_punctuation_if_word(text.substr(begin, pos - begin)));
    }
    return words;
}

/// A word -> mean valence table read from a VADER-format lexicon.
class SentimentLexicon {
public:
    /// Reads `path` (format in the file comment); io_error naming the file and line.
    static SentimentLexicon load(const std::string& path) { return parse(read_whole_file(path), path); }

    /// Parses lexicon text; `source` (a path, or a name) prefixes every error message.
    static SentimentLexicon parse(std::string_view text, const std::string& source) {
        SentimentLexicon lexicon;
        std::size_t line_number = 0;
        std::size_t begin = 0;
        while (begin < text.size()) {
            std::size_t end = text.find('\n', begin);
            if (end == std::string_view::npos) end = text.size();
            ++line_number;
            lexicon.add_line(text.substr(begin, end - begin), source, line_number);
            begin = end + 1;
        }
        if (lexicon.entries_.empty()) throw io_error(source + ": the lexicon holds no entries");
        return lexicon;
    }

    /// The valence of `word` after ASCII lower-casing (VADER's look-up); nullopt if absent.
    std::optional<double> valence(std::string_view word) const {
        const auto found = index_.find(ascii_lower(word));
        if (found == index_.end()) return std::nullopt;
        return entries_[found->second].valence;
    }

    /// Number of distinct words.
    std::size_t size() const { return entries_.size(); }

    /// One entry per distinct word, in order of first appearance, with its last valence.
    const std::vector<LexiconEntry>& entries() const { return entries_; }

private:
    void add_line(std::string_view line, const std::string& source, std::size_t line_number) {
        while (!line.empty() && lexicon_detail::is_blank(line.front())) line.remove_prefix(1);
        while (!line.empty() && lexicon_detail::is_blank(line.back())) line.remove_suffix(1);
        if (line.empty()) return;
        const std::string where = source + ": line " + std::to_string(line_number);
        const std::size_t tab = line.find('\t');
        if (tab == std::string_view::npos) {
            throw io_error(where + ": expected 'word<TAB>valence', found no TAB");
        }
        const std::string_view word = line.substr(0, tab);
        std::string_view field = line.substr(tab + 1);
        field = field.substr(0, field.find('\t'));
        const double valence = parse_valence(field, where);
        const auto [slot, inserted] = index_.emplace(std::string(word), entries_.size());
        if (inserted) {
            entries_.push_back(LexiconEntry{std::string(word), valence});
        } else {
            entries_[slot->second].valence = valence;  // the later line wins, as in VADER's dict
        }
    }

    static double parse_valence(std::string_view field, const std::string& where) {
        std::string_view digits = field;
        if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);  // Python's float() takes it
        double value = 0.0;
        const auto [end, status] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || status != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) {
            throw io_error(where + ": valence '" + std::string(field) + "' is not a finite number");
        }
        return value;
    }

    std::vector<LexiconEntry> entries_;
    std::unordered_map<std::string, std::size_t> index_;  ///< word -> position in entries_
};

/// What the lexicon says about the words of one text.
struct TextValence {
    std::size_t word_count = 0;      ///< vader_words(text).size()
    std::size_t rated_count = 0;     ///< words found in the lexicon
    std::size_t negative_count = 0;  ///< found words with valence <= the threshold
    double valence_sum = 0.0;        ///< sum of the found words' valences

    /// negative_count / word_count (0 for a text without words).
    double negative_rate() const {
        return word_count == 0 ? 0.0 : static_cast<double>(negative_count) / static_cast<double>(word_count);
    }
};

/// Looks up every VADER word of `text`; a word counts as negative when its valence is at
/// or below `negative_threshold` (e.g. -2.0 for "strongly negative"; config_error for NaN).
inline TextValence tally_valences(const SentimentLexicon& lexicon, std::string_view text, double negative_threshold) {
    if (std::isnan(negative_threshold)) throw config_error("tally_valences: the negative threshold is NaN");
    TextValence tally;
    for (const std::string& word : vader_words(text)) {
        ++tally.word_count;
        if (const std::optional<double> v = lexicon.valence(word)) {
            ++tally.rated_count;
            tally.valence_sum += *v;
            if (*v <= negative_threshold) ++tally.negative_count;
        }
    }
    return tally;
}

}  // namespace sae::models
