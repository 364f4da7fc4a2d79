#pragma once
/// \file contrastive_triples.hpp
/// Contrastive triples from a sentiment lexicon and real text: a sentence holding a
/// strongly positive word, the same sentence with that word swapped for a strongly
/// negative word, and with it swapped for a neutral word. The IRM authors had GPT-4 write
/// the swaps; here the swaps are lexicon substitutions in sentences of a corpus, and the
/// activation is later read at the swapped token (swapped_token_activations.hpp).
///
/// Word sites. A site is a word of lower-case ASCII letters that follows a space and is
/// followed by the end of its whitespace-delimited piece or by ASCII punctuation up to
/// that end ("good", "good," and "good!)" are sites; "Good", "(good", "good's",
/// "good-natured" and "goodé" are not). So the word is exactly what VADER looks up
/// (sentiment_lexicon.hpp: the piece with its punctuation stripped), and for GPT-2's
/// byte-level BPE the text up to the word tokenises as the text before the space followed
/// by the token of " word": the pre-tokeniser always starts a new piece at " word".
///
/// Abstract:
///   SingleTokenLookup  word -> the model id of " word" when that is exactly one token the
///                      model knows (not an unknown-token slot); nullopt otherwise.
///   TextEncode         text -> the model's token ids.
///   swap_vocabulary(lexicon, documents, single_token, config)
///     positive: lexicon words (lower-case ASCII letters, at least min_word_length) with
///               valence >= the (1 - strong_fraction) quantile of all the lexicon's
///               valences (percentile, NumPy's linear rule; 1.5 for VADER at 0.25) and > 0;
///     negative: valence <= the strong_fraction quantile (-1.6 for VADER) and < 0;
///     neutral:  the neutral_words most frequent site words of the documents that are not
///               in the lexicon (utility 0 under a lexicon reward), at least
///               min_neutral_length letters (which drops most function words);
///     each kept only when single_token gives it a token; each list sorted by word
///     (neutral: by frequency, then word).
///     requires: strong_fraction in (0, 0.5] (config_error); every list non-empty
///               (config_error naming the empty one).
///   word_sites(document, word_filter)  the byte offsets of the sites whose word passes
///                      the filter, in order.
///   contrastive_triples(documents, vocabulary, encode, config)
///     every site of a positive word in the documents, shuffled with the seed, at most
///     max_per_word per positive word and max_triples in all (0 = no limit); for each, a
///     negative and a neutral word drawn uniformly from the vocabulary with the same seed's
///     generator; context = [bos] + encode(the document's text before the space), cut to
///     its last max_context_tokens tokens (BOS kept first) when that is set.
///     requires: a vocabulary with three non-empty lists (config_error); max_context_tokens
///               0 or >= 2 with a BOS (config_error).
///     ensures:  triples in the shuffled order; each sequence(word) = context + word.token.

#include "../core/error.hpp"
#include "../models/sentiment_lexicon.hpp"
#include "utility_scale.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sae::irm {

/// A word that can be put in a sentence, with its single token and its utility.
struct SwapWord {
    std::string word;      ///< lower-case ASCII letters
    int token = 0;         ///< the model id of " word"
    double utility = 0.0;  ///< the lexicon's valence; 0 for a neutral word (not in the lexicon)
};

/// The words available for each side of a triple.
struct SwapVocabulary {
    std::vector<SwapWord> positive;
    std::vector<SwapWord> negative;
    std::vector<SwapWord> neutral;
    double positive_threshold = 0.0;  ///< positive words have valence >= this
    double negative_threshold = 0.0;  ///< negative words have valence <= this
};

/// " word" -> its one known model token, or nullopt.
using SingleTokenLookup = std::function<std::optional<int>(const std::string& word)>;

/// Text -> model token ids.
using TextEncode = std::function<std::vector<int>(std::string_view text)>;

struct SwapVocabularyConfig {
    double strong_fraction = 0.25;      ///< top / bottom quartile of the lexicon's valences
    std::size_t min_word_length = 3;    ///< drops the lexicon's fragments ("bl", "ty")
    std::size_t neutral_words = 200;    ///< most frequent unrated site words kept
    std::size_t min_neutral_length = 4;
};

struct TripleConfig {
    std::size_t max_triples = 0;         ///< 0 = every site (after max_per_word)
    std::size_t max_per_word = 20;       ///< sites of one positive word; 0 = no limit
    std::size_t max_context_tokens = 0;  ///< 0 = the whole text before the word
    std::optional<int> bos;              ///< prepended to every context (GPT-2's <|endoftext|>)
    std::uint64_t seed = 0;
};

/// One positive / negative / neutral swap in one context.
struct ContrastiveTriple {
    std::vector<int> context;  ///< [bos] + tokens of the document before the word's space
    SwapWord positive;         ///< the word that is in the document
    SwapWord negative;
    SwapWord neutral;
    std::size_t document = 0;  ///< index of the document
    std::size_t offset = 0;    ///< byte offset of the positive word in it

    /// The context followed by `word`'s token: the sequence whose last position is read.
    std::vector<int> sequence(const SwapWord& word) const {
        std::vector<int> tokens = context;
        tokens.push_back(word.token);
        return tokens;
    }
};

namespace detail {

inline bool is_lower_ascii(char c) { return c >= 'a' && c <= 'z'; }
inline bool is_ascii_letter(char c) { return is_lower_ascii(c) || (c >= 'A' && c <= 'Z'); }
inline bool is_piece_end(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
inline bool is_ascii_punctuation(char c) {
    return models::lexicon_detail::is_ascii_punctuation(static_cast<unsigned char>(c));
}

inline bool is_lexicon_word(std::string_view word, std::size_t min_length) {
    return word.size() >= min_length && std::all_of(word.begin(), word.end(), is_lower_ascii);
}

}  // namespace detail

/// Calls visit(offset, word) for every site (see the file comment) of `document`.
template <class Visit>
void for_each_word_site(std::string_view document, Visit&& visit) {
    const std::size_t n = document.size();
    for (std::size_t i = 1; i < n; ++i) {
        if (document[i - 1] != ' ' || !detail::is_lower_ascii(document[i])) continue;
        std::size_t end = i;
        while (end < n && detail::is_ascii_letter(document[end])) ++end;
        std::size_t tail = end;
        while (tail < n && detail::is_ascii_punctuation(document[tail])) ++tail;
        const std::string_view word = document.substr(i, end - i);
        const bool all_lower = std::all_of(word.begin(), word.end(), detail::is_lower_ascii);
        if (all_lower && (tail == n || detail::is_piece_end(document[tail]))) visit(i, word);
        i = end - 1;  // the next site starts after this word
    }
}

/// Byte offsets of the sites of `document` whose word passes `keep(word)`.
template <class Keep>
std::vector<std::size_t> word_sites(std::string_view document, Keep&& keep) {
    std::vector<std::size_t> offsets;
    for_each_word_site(document, [&](std::size_t offset, std::string_view word) {
        if (keep(word)) offsets.push_back(offset);
    });
    return offsets;
}

/// The positive, negative and neutral words of the file abstract.
inline SwapVocabulary swap_vocabulary(const models::SentimentLexicon& lexicon, const std::vector<std::string_view>& documents,
                                      const SingleTokenLookup& single_token,
                                      const SwapVocabularyConfig& config = SwapVocabularyConfig()) {
    if (!(config.strong_fraction > 0.0 && config.strong_fraction <= 0.5)) {
        throw config_error("swap_vocabulary: strong_fraction = " + detail::number_text(config.strong_fraction) +
                           " must be in (0, 0.5]");
    }
    Eigen::VectorXd valences(static_cast<Index>(lexicon.size()));
    for (std::size_t i = 0; i < lexicon.size(); ++i) valences(static_cast<Index>(i)) = lexicon.entries()[i].valence;
    SwapVocabulary vocabulary;
    vocabulary.positive_threshold = percentile(valences, 100.0 * (1.0 - config.strong_fraction));
    vocabulary.negative_threshold = percentile(valences, 100.0 * config.strong_fraction);

    for (const models::LexiconEntry& entry : lexicon.entries()) {
        if (!detail::is_lexicon_word(entry.word, config.min_word_length)) continue;
        const bool positive = entry.valence >= vocabulary.positive_threshold && entry.valence > 0.0;
        const bool negative = entry.valence <= vocabulary.negative_threshold && entry.valence < 0.0;
        if (!positive && !negative) continue;
        const std::optional<int> token = single_token(entry.word);
        if (!token) continue;
        (positive ? vocabulary.positive : vocabulary.negative).push_back(SwapWord{entry.word, *token, entry.valence});
    }
    const auto by_word = [](const SwapWord& a, const SwapWord& b) { return a.word < b.word; };
    std::sort(vocabulary.positive.begin(), vocabulary.positive.end(), by_word);
    std::sort(vocabulary.negative.begin(), vocabulary.negative.end(), by_word);

    std::map<std::string, std::size_t, std::less<>> counts;
    for (const std::string_view document : documents) {
        for_each_word_site(document, [&](std::size_t, std::string_view word) {
            if (word.size() >= config.min_neutral_length && !lexicon.valence(word)) ++counts[std::string(word)];
        });
    }
    std::vector<std::pair<std::string, std::size_t>> frequent(counts.begin(), counts.end());
    std::stable_sort(frequent.begin(), frequent.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    for (const auto& [word, count] : frequent) {
        if (vocabulary.neutral.size() >= config.neutral_words) break;
        if (const std::optional<int> token = single_token(word)) vocabulary.neutral.push_back(SwapWord{word, *token, 0.0});
    }
    if (vocabulary.positive.empty() || vocabulary.negative.empty() || vocabulary.neutral.empty()) {
        throw config_error("swap_vocabulary: no " +
                           std::string(vocabulary.positive.empty()   ? "positive (valence >= " + detail::number_text(vocabulary.positive_threshold) + ")"
                                       : vocabulary.negative.empty() ? "negative (valence <= " + detail::number_text(vocabulary.negative_threshold) + ")"
                                                                     : "neutral (unrated, frequent in the documents)") +
                           " word is a single known token");
    }
    return vocabulary;
}

/// Triples from every document, as the file abstract says.
inline std::vector<ContrastiveTriple> contrastive_triples(const std::vector<std::string_view>& documents,
                                                          const SwapVocabulary& vocabulary, const TextEncode& encode,
                                                          const TripleConfig& config = TripleConfig()) {
    if (vocabulary.positive.empty() || vocabulary.negative.empty() || vocabulary.neutral.empty()) {
        throw config_error("contrastive_triples: the vocabulary needs positive, negative and neutral words (it has " +
                           std::to_string(vocabulary.positive.size()) + ", " + std::to_string(vocabulary.negative.size()) +
                           ", " + std::to_string(vocabulary.neutral.size()) + ")");
    }
    if (config.max_context_tokens != 0 && config.bos && config.max_context_tokens < 2) {
        throw config_error("contrastive_triples: max_context_tokens = " + std::to_string(config.max_context_tokens) +
                           " leaves no room after the BOS token (0 = no limit, or >= 2)");
    }
    std::unordered_map<std::string_view, std::size_t> positive_index;
    for (std::size_t i = 0; i < vocabulary.positive.size(); ++i) positive_index.emplace(vocabulary.positive[i].word, i);

    struct Site {
        std::size_t document, offset, word;
    };
    std::vector<Site> sites;
    for (std::size_t d = 0; d < documents.size(); ++d) {
        for_each_word_site(documents[d], [&](std::size_t offset, std::string_view word) {
            const auto found = positive_index.find(word);
            if (found != positive_index.end()) sites.push_back(Site{d, offset, found->second});
        });
    }
    std::mt19937_64 rng(config.seed);
    std::shuffle(sites.begin(), sites.end(), rng);
    std::uniform_int_distribution<std::size_t> pick_negative(0, vocabulary.negative.size() - 1);
    std::uniform_int_distribution<std::size_t> pick_neutral(0, vocabulary.neutral.size() - 1);

    std::vector<std::size_t> used(vocabulary.positive.size(), 0);
    std::vector<ContrastiveTriple> triples;
    for (const Site& site : sites) {
        if (config.max_triples != 0 && triples.size() >= config.max_triples) break;
        if (config.max_per_word != 0 && used[site.word] >= config.max_per_word) continue;
        ++used[site.word];
        ContrastiveTriple triple;
        triple.positive = vocabulary.positive[site.word];
        triple.negative = vocabulary.negative[pick_negative(rng)];
        triple.neutral = vocabulary.neutral[pick_neutral(rng)];
        triple.document = site.document;
        triple.offset = site.offset;
        // The text before the word's space; see the file comment for why this tokenises
        // exactly like the prefix of the whole text.
        std::vector<int> before = encode(documents[site.document].substr(0, site.offset - 1));
        const std::size_t room = config.max_context_tokens == 0 ? before.size()
                                                                : config.max_context_tokens - (config.bos ? 1 : 0);
        const std::size_t first = before.size() > room ? before.size() - room : 0;
        if (config.bos) triple.context.push_back(*config.bos);
        triple.context.insert(triple.context.end(), before.begin() + static_cast<std::ptrdiff_t>(first), before.end());
        triples.push_back(std::move(triple));
    }
    return triples;
}

}  // namespace sae::irm
