#pragma once
// The VADER lexicon (models/sentiment_lexicon.hpp), and VADER's word splitting run on
// the same bytes.
#include "../driver.hpp"
#include "sae/models/sentiment_lexicon.hpp"

namespace sae::fuzz {

inline void run_lexicon(const Workspace& ws) {
    const models::SentimentLexicon lexicon = models::SentimentLexicon::load(ws.path("lexicon.txt"));
    require(lexicon.size() == lexicon.entries().size(), "lexicon: size");
    for (const models::LexiconEntry& entry : lexicon.entries()) {
        // Look-ups lower-case the word (as VADER does), so only lower-case entries are reachable.
        if (entry.word != models::ascii_lower(entry.word)) continue;
        const std::optional<double> valence = lexicon.valence(entry.word);
        require(valence && *valence == entry.valence, "lexicon: a listed word looks up another valence");
    }
    const models::TextValence tally = models::tally_valences(lexicon, ws.part(0), -2.0);
    require(tally.rated_count <= tally.word_count && tally.negative_count <= tally.rated_count, "lexicon: counts");
}

inline Driver lexicon_driver() { return {"lexicon", {"lexicon.txt"}, &run_lexicon}; }

}  // namespace sae::fuzz
