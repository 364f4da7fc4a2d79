#pragma once
// GPT-2 byte-level BPE (models/bpe_tokenizer.hpp): vocab.json + merges.txt, then the
// third part is encoded; decode(encode(text)) must give the text back, and tokens'
// bytes must map back to their ids (every 8th token is checked).
#include "../driver.hpp"
#include "sae/models/bpe_tokenizer.hpp"

namespace sae::fuzz {

inline void run_bpe(const Workspace& ws) {
    const models::BpeTokenizer tokenizer = models::BpeTokenizer::from_directory(ws.dir());
    const std::string& text = ws.part(2);
    require(tokenizer.decode(tokenizer.encode(text)) == text, "bpe: decode(encode(text)) != text");
    require(tokenizer.decode(tokenizer.encode(text, models::SpecialTokens::recognise)) == text,
            "bpe: decode(encode(text, recognise)) != text");
    for (std::size_t id = 0; id < tokenizer.vocab_size() && id < 2048; id += 8) {
        const std::optional<std::int32_t> back = tokenizer.id_of(tokenizer.token_bytes(static_cast<std::int32_t>(id)));
        require(back && *back == static_cast<std::int32_t>(id), "bpe: id_of(token_bytes(id)) != id");
    }
}

inline Driver bpe_driver() { return {"bpe", {"vocab.json", "merges.txt", "text.txt"}, &run_bpe}; }

}  // namespace sae::fuzz
