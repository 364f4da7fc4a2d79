// Tests of sae::models::BpeTokenizer (include/sae/models/bpe_tokenizer.hpp) on the real
// GPT-2 vocabulary, against ids published by tiktoken, Hugging Face, llama.cpp and
// build-nanogpt, against our Python reference (tools/reference/gpt2_bpe.py), and on small
// hand-made vocabularies for the merge rules and the error paths.

#include <sae/models/bpe_tokenizer.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests may be unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_bpe_tokenizer_cases {

using sae::models::BpeTokenizer;
using sae::models::SpecialTokens;
using Ids = std::vector<std::int32_t>;

namespace {

// OpenAI's GPT-2 files, shipped in examples/data/gpt2-tokenizer (see its SOURCE.md).
const std::string kGpt2Dir = SAE_DATA_DIR "/gpt2-tokenizer";

const BpeTokenizer& gpt2() {
    static const BpeTokenizer tokenizer = [] {
        if (!std::filesystem::exists(kGpt2Dir + "/vocab.json") || !std::filesystem::exists(kGpt2Dir + "/merges.txt")) {
            throw std::runtime_error("GPT-2 tokenizer files not found: expected vocab.json and merges.txt in " +
                                     kGpt2Dir + " (shipped in the repository: examples/data/gpt2-tokenizer)");
        }
        return BpeTokenizer::from_directory(kGpt2Dir);
    }();
    return tokenizer;
}

std::string from_hex(const std::string& hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return bytes;
}

// The vocabulary spelling of raw bytes, written here independently of the header: GPT-2's
// bytes_to_unicode keeps '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF and maps the other 68
// bytes to U+0100.. in byte order (openai/gpt-2 src/encoder.py).
std::string spelling(const std::string& bytes) {
    std::string out;
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned>(static_cast<unsigned char>(c));
        unsigned cp = byte;
        if (!((byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE))) {
            unsigned rank = 0;  // how many non-printable bytes come before this one
            for (unsigned b = 0; b < byte; ++b) {
                if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) ++rank;
            }
            cp = 256 + rank;
        }
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return out;
}

// A small vocabulary: the 256 bytes (id = byte value), <|endoftext|> = 256, then one token
// per merge, merged ids in merge order from 257.
struct TinyVocab {
    nlohmann::json vocab = nlohmann::json::object();
    std::string merges = "#version: 0.2\n";

    TinyVocab() {
        for (int byte = 0; byte < 256; ++byte) vocab[spelling(std::string(1, static_cast<char>(byte)))] = byte;
        vocab["<|endoftext|>"] = 256;
    }
    TinyVocab& merge(const std::string& first, const std::string& second) {
        const int id = static_cast<int>(vocab.size());
        vocab[spelling(first + second)] = id;
        merges += spelling(first) + " " + spelling(second) + "\n";
        return *this;
    }
    BpeTokenizer write_and_load(const sae::test::TempDir& dir) const {
        dir.file("vocab.json", vocab.dump());
        dir.file("merges.txt", merges);
        return BpeTokenizer::from_directory(dir.path());
    }
};

// Runs `load`, requires an io_error whose message contains every one of `parts`.
template <typename Load>
void require_io_error(Load&& load, const std::vector<std::string>& parts) {
    try {
        load();
        FAIL("no io_error thrown; expected one mentioning " << parts.front());
    } catch (const sae::io_error& e) {
        const std::string message = e.what();
        for (const std::string& part : parts) {
            INFO("message: " << message);
            CHECK(message.find(part) != std::string::npos);
        }
    }
}

}  // namespace

TEST_CASE("BpeTokenizer: published GPT-2 token ids", "[bpe]") {
    const BpeTokenizer& tok = gpt2();
    // openai/tiktoken tests/test_encoding.py, test_simple (encoding "gpt2"), and
    // tests/test_simple_public.py.
    CHECK(tok.encode("hello world") == Ids{31373, 995});
    CHECK(tok.decode({31373, 995}) == "hello world");
    CHECK(tok.encode("hello <|endoftext|>", SpecialTokens::recognise) == Ids{31373, 220, 50256});
    // openai/tiktoken tests/test_encoding.py, test_encode_empty (r50k_base = gpt2).
    CHECK(tok.encode("").empty());
    // openai/tiktoken tests/test_encoding.py, test_simple_repeated (encoding "gpt2").
    const std::vector<Ids> zeros = {{15},   {405},         {830},         {2388},        {20483},       {10535},
                                    {24598}, {8269},       {10535, 830},  {8269, 405},   {8269, 830},   {8269, 2388},
                                    {8269, 20483}, {8269, 10535}, {8269, 24598}, {25645}, {8269, 10535, 830}};
    for (std::size_t n = 1; n <= zeros.size(); ++n) {
        INFO(n << " zeros");
        CHECK(tok.encode(std::string(n, '0')) == zeros[n - 1]);
    }
    // huggingface/transformers src/transformers/models/gpt2/tokenization_gpt2.py, GPT2Tokenizer
    // docstring.
    CHECK(tok.encode("Hello world") == Ids{15496, 995});
    CHECK(tok.encode(" Hello world") == Ids{18435, 995});
    // karpathy/build-nanogpt play.ipynb (commit 6104ab1), the prompt of the sampling cell.
    CHECK(tok.encode("Hello, I'm a language model,") == Ids{15496, 11, 314, 1101, 257, 3303, 2746, 11});
}

TEST_CASE("BpeTokenizer: llama.cpp GPT-2 vocabulary test vectors (Hugging Face ids)", "[bpe]") {
    // ggerganov/llama.cpp models/ggml-vocab-gpt-2.gguf.inp/.out, written by
    // convert_hf_to_gguf_update.py with transformers' AutoTokenizer("gpt2"); see
    // tests/fixtures/bpe/README.md. Whitespace runs, emoji with ZWJ, Khmer, Cyrillic,
    // contractions in odd cases, digit runs.
    const std::string inputs = sae::read_whole_file(SAE_TEST_FIXTURES_DIR "/bpe/llama_cpp_gpt2.inp");
    const std::string outputs = sae::read_whole_file(SAE_TEST_FIXTURES_DIR "/bpe/llama_cpp_gpt2.out");
    const std::string separator = "\n__ggml_vocab_test__\n";
    std::size_t in_pos = 0;
    std::size_t out_pos = 0;
    std::size_t cases = 0;
    while (in_pos < inputs.size()) {
        const std::size_t in_end = inputs.find(separator, in_pos);
        REQUIRE(in_end != std::string::npos);
        const std::string text = inputs.substr(in_pos, in_end - in_pos);
        in_pos = in_end + separator.size();
        const std::size_t out_end = outputs.find('\n', out_pos);
        REQUIRE(out_end != std::string::npos);
        Ids expected;
        std::size_t pos = out_pos;
        while (pos < out_end) {
            std::size_t used = 0;
            expected.push_back(static_cast<std::int32_t>(std::stol(outputs.substr(pos, out_end - pos), &used)));
            pos += used;
        }
        out_pos = out_end + 1;
        INFO("case " << cases << ": \"" << text << "\"");
        CHECK(gpt2().encode(text) == expected);
        CHECK(gpt2().decode(expected) == text);
        ++cases;
    }
    CHECK(cases == 46);
}

TEST_CASE("BpeTokenizer: agrees with the Python reference on varied texts and byte strings", "[bpe]") {
    // tests/fixtures/bpe/gpt2_cases.json, generated by
    //   /usr/bin/python3 tools/reference/gpt2_bpe.py examples/data/gpt2-tokenizer
    //       --fixtures tests/fixtures/bpe/gpt2_cases.json
    const nlohmann::json cases =
        nlohmann::json::parse(sae::read_whole_file(SAE_TEST_FIXTURES_DIR "/bpe/gpt2_cases.json"));
    const BpeTokenizer& tok = gpt2();
    REQUIRE(cases.at("text").size() >= 300);
    for (const auto& c : cases.at("text")) {
        const std::string text = c.at("text").get<std::string>();
        INFO("text \"" << text << "\"");
        CHECK(tok.encode(text) == c.at("ids").get<Ids>());
    }
    REQUIRE(cases.at("allow_special").size() >= 10);
    for (const auto& c : cases.at("allow_special")) {
        const std::string text = c.at("text").get<std::string>();
        INFO("text with <|endoftext|> recognised \"" << text << "\"");
        CHECK(tok.encode(text, SpecialTokens::recognise) == c.at("ids").get<Ids>());
    }
    // Invalid UTF-8: the reference decodes with surrogateescape (each bad byte a lone
    // surrogate, grouped with punctuation), the rule the header documents.
    REQUIRE(cases.at("bytes").size() >= 50);
    for (const auto& c : cases.at("bytes")) {
        const std::string bytes = from_hex(c.at("hex").get<std::string>());
        INFO("bytes " << c.at("hex").get<std::string>());
        const Ids ids = tok.encode(bytes);
        CHECK(ids == c.at("ids").get<Ids>());
        CHECK(tok.decode(ids) == bytes);
    }
}

TEST_CASE("BpeTokenizer::pretokenize splits like the GPT-2 regex", "[bpe]") {
    using Pieces = std::vector<std::string_view>;
    // Hand-derived from 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    // (alternatives tried in order at each position, the lookahead backtracking one
    // whitespace code point); also confirmed with Python's `regex` module.
    CHECK(BpeTokenizer::pretokenize("").empty());
    CHECK(BpeTokenizer::pretokenize("Hello world") == Pieces{"Hello", " world"});
    CHECK(BpeTokenizer::pretokenize("I'm here") == Pieces{"I", "'m", " here"});
    CHECK(BpeTokenizer::pretokenize("you've we're they'd I'll") ==
          Pieces{"you", "'ve", " we", "'re", " they", "'d", " I", "'ll"});
    CHECK(BpeTokenizer::pretokenize("DON'T") == Pieces{"DON", "'", "T"});  // case-sensitive
    CHECK(BpeTokenizer::pretokenize("it\u2019s") == Pieces{"it", "\u2019", "s"});  // ASCII apostrophe only
    CHECK(BpeTokenizer::pretokenize("'s'll") == Pieces{"'s", "'ll"});
    CHECK(BpeTokenizer::pretokenize("  'll") == Pieces{" ", " '", "ll"});
    CHECK(BpeTokenizer::pretokenize("a  b") == Pieces{"a", " ", " b"});
    CHECK(BpeTokenizer::pretokenize("a \n b") == Pieces{"a", " \n", " b"});
    CHECK(BpeTokenizer::pretokenize("a\n\nb") == Pieces{"a", "\n", "\n", "b"});
    CHECK(BpeTokenizer::pretokenize("x\t\ty") == Pieces{"x", "\t", "\t", "y"});
    CHECK(BpeTokenizer::pretokenize("x   ") == Pieces{"x", "   "});  // trailing run kept whole
    CHECK(BpeTokenizer::pretokenize("  !!") == Pieces{" ", " !!"});
    CHECK(BpeTokenizer::pretokenize("3.14") == Pieces{"3", ".", "14"});
    CHECK(BpeTokenizer::pretokenize(" 123abc") == Pieces{" 123", "abc"});
    CHECK(BpeTokenizer::pretokenize("x\u00bd") == Pieces{"x", "\u00bd"});  // ½ is \p{N}
    CHECK(BpeTokenizer::pretokenize("\u65e5\u672c\u8a9e \u30c6\u30ad") == Pieces{"\u65e5\u672c\u8a9e", " \u30c6\u30ad"});
    // Unicode whitespace other than U+0020 takes no " ?" role.
    CHECK(BpeTokenizer::pretokenize("\u00a0x") == Pieces{"\u00a0", "x"});
    CHECK(BpeTokenizer::pretokenize("\u3000\u3000x") == Pieces{"\u3000", "\u3000", "x"});
    // Invalid UTF-8: each bad byte is an `other` code point.
    CHECK(BpeTokenizer::pretokenize("\xff\xfe") == Pieces{"\xff\xfe"});
    CHECK(BpeTokenizer::pretokenize("a\xff" "b") == Pieces{"a", "\xff", "b"});
    CHECK(BpeTokenizer::pretokenize(" \xff") == Pieces{" \xff"});
    CHECK(BpeTokenizer::pretokenize("\xe2\x82(") == Pieces{"\xe2\x82("});  // truncated sequence
    CHECK(BpeTokenizer::pretokenize("\xe2\x82" "a") == Pieces{"\xe2\x82", "a"});
    CHECK(BpeTokenizer::pretokenize("\xed\xa0\x80") == Pieces{"\xed\xa0\x80"});  // encoded surrogate
}

TEST_CASE("unicode_categories: table shape and known code points", "[bpe]") {
    using sae::models::unicode::CharClass;
    using sae::models::unicode::char_class;
    using sae::models::unicode::kCharClassRanges;
    using sae::models::unicode::kCharClassRangeCount;
    REQUIRE(kCharClassRangeCount > 500);
    for (std::size_t i = 0; i < kCharClassRangeCount; ++i) {
        REQUIRE(kCharClassRanges[i].first <= kCharClassRanges[i].last);
        REQUIRE(kCharClassRanges[i].char_class != CharClass::other);
        if (i > 0) REQUIRE(kCharClassRanges[i - 1].last < kCharClassRanges[i].first);
    }
    REQUIRE(kCharClassRanges[kCharClassRangeCount - 1].last <= 0x10FFFFU);
    // The ASCII shortcut of the scanner agrees with the table.
    for (std::uint32_t c = 0; c < 0x80; ++c) {
        INFO("U+" << c);
        CHECK(sae::models::bpe_detail::class_of({c, 1, true}) == char_class(c));
    }
    // General categories from the Unicode Character Database (UnicodeData.txt) and the
    // White_Space property (PropList.txt).
    CHECK(char_class('A') == CharClass::letter);
    CHECK(char_class(0x00E9) == CharClass::letter);   // é Ll
    CHECK(char_class(0x4E00) == CharClass::letter);   // CJK ideograph Lo
    CHECK(char_class(0x02B0) == CharClass::letter);   // modifier letter small h, Lm
    CHECK(char_class(0x1D54C) == CharClass::letter);  // mathematical double-struck U, Lu
    CHECK(char_class('7') == CharClass::number);
    CHECK(char_class(0x00B2) == CharClass::number);   // superscript two, No
    CHECK(char_class(0x0663) == CharClass::number);   // Arabic-Indic three, Nd
    CHECK(char_class(0x2167) == CharClass::number);   // Roman numeral eight, Nl
    CHECK(char_class(0x1D7D9) == CharClass::number);  // mathematical double-struck one, Nd
    CHECK(char_class(0x0085) == CharClass::whitespace);
    CHECK(char_class(0x00A0) == CharClass::whitespace);
    CHECK(char_class(0x1680) == CharClass::whitespace);
    CHECK(char_class(0x2028) == CharClass::whitespace);
    CHECK(char_class(0x3000) == CharClass::whitespace);
    CHECK(char_class(0x001C) == CharClass::other);    // file separator: not White_Space
    CHECK(char_class(0x200B) == CharClass::other);    // zero width space, Cf
    CHECK(char_class(0x0301) == CharClass::other);    // combining acute, Mn
    CHECK(char_class(0x1F600) == CharClass::other);   // emoji, So
    CHECK(char_class(0xE000) == CharClass::other);    // private use
    CHECK(char_class(0x10FFFF) == CharClass::other);
    CHECK(char_class(0x110000) == CharClass::other);
}

TEST_CASE("BpeTokenizer: vocabulary accessors", "[bpe]") {
    const BpeTokenizer& tok = gpt2();
    // 50,257 tokens, <|endoftext|> = 50256 (tiktoken test_simple above; whisper's vocab.json).
    CHECK(tok.vocab_size() == 50257);
    CHECK(tok.eot_id() == 50256);
    CHECK(tok.token_bytes(50256) == "<|endoftext|>");
    CHECK(tok.id_of("<|endoftext|>") == 50256);
    // Ids from the published cases: "hello world" -> [31373, 995], "Hello world" -> [15496, 995].
    CHECK(tok.token_bytes(31373) == "hello");
    CHECK(tok.token_bytes(995) == " world");
    CHECK(tok.id_of(" world") == 995);
    CHECK(tok.id_of("Hello") == 15496);
    CHECK(tok.token_bytes(220) == " ");  // "hello <|endoftext|>" -> [31373, 220, 50256]
    CHECK_FALSE(tok.id_of("\xc4\xa0world").has_value());  // the vocabulary spelling "Ġworld" is not bytes
    for (std::int32_t id = 0; id < static_cast<std::int32_t>(tok.vocab_size()); id += 97) {
        CHECK(tok.id_of(tok.token_bytes(id)) == id);
    }
    // The literal text is ordinary text unless recognised: tokens of "<", "|", "endoftext"...
    const Ids as_text = tok.encode("<|endoftext|>");
    CHECK(as_text.size() > 1);
    CHECK(std::find(as_text.begin(), as_text.end(), 50256) == as_text.end());
    CHECK(tok.decode(as_text) == "<|endoftext|>");
    CHECK(tok.encode("<|endoftext|>", SpecialTokens::recognise) == Ids{50256});
}

TEST_CASE("BpeTokenizer: decode(encode(s)) == s for random byte strings", "[bpe]") {
    const BpeTokenizer& tok = gpt2();
    std::mt19937 rng(20240611);
    const std::vector<std::string> pieces = {" ", "  ", "\n", "\t", "'s", "'", "a", "Z", "9", "\xc3\xa9",
                                             "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xc2\xa0", "<|endoftext|>", "!"};
    for (int trial = 0; trial < 400; ++trial) {
        std::string text;
        const int length = static_cast<int>(rng() % 120);
        for (int i = 0; i < length; ++i) {
            if (rng() % 3 == 0) {
                text += pieces[rng() % pieces.size()];
            } else {
                // Bytes above 0x7F are mostly stray continuation or lead bytes: invalid UTF-8.
                text += static_cast<char>(rng() % 256);
            }
        }
        INFO("trial " << trial);
        CHECK(tok.decode(tok.encode(text)) == text);
        CHECK(tok.decode(tok.encode(text, SpecialTokens::recognise)) == text);
    }
}

TEST_CASE("BpeTokenizer: long and repetitive inputs", "[bpe]") {
    const BpeTokenizer& tok = gpt2();
    // openai/tiktoken tests/test_encoding.py test_catastrophically_repetitive: round trips.
    for (const std::string unit : {"^", "0", "a", "'s", " ", "\n"}) {
        std::string big;
        for (int i = 0; i < 10000; ++i) big += unit;
        for (const std::string& text : {big, " " + big, " " + big + "\n"}) {
            INFO("unit \"" << unit << "\", " << text.size() << " bytes");
            CHECK(tok.decode(tok.encode(text)) == text);
        }
    }
    // One 64 KiB pre-token of random letters goes through the priority-queue merge.
    std::mt19937 rng(7);
    std::string word;
    for (int i = 0; i < 65536; ++i) word += static_cast<char>('a' + rng() % 26);
    const Ids ids = tok.encode(word);
    CHECK(ids.size() * 3 < word.size() * 2);  // random letters: about 1.7 bytes a token
    CHECK(tok.decode(ids) == word);
}

TEST_CASE("BpeTokenizer: merge order on a hand-made vocabulary", "[bpe]") {
    // Merges (rank: pair -> id): 0: a a -> 257 "aa", 1: aa aa -> 258 "aaaa", 2: " " a -> 259.
    // encoder.py takes the lowest-ranked pair present and merges all its occurrences left to
    // right, so (hand-derived):
    //   "aaa"   -> aa a            -> [257, 97]
    //   "aaaaa" -> aa aa a -> aaaa a -> [258, 97]
    //   " aaa"  -> " " aa a (rank 0 before rank 2; " " aa has no merge) -> [32, 257, 97]
    //   "a" x 41 (one pre-token of 41 bytes) -> 20 x aa + a -> 10 x aaaa + a
    TinyVocab ordered;
    ordered.merge("a", "a").merge("aa", "aa").merge(" ", "a");
    // The same merges behind "x yz" (rank 0), a pair whose part "yz" only a later merge
    // creates: the loader must then avoid the priority queue, and the results stay the same.
    TinyVocab unordered;
    unordered.merge("x", "yz").merge("a", "a").merge("aa", "aa").merge(" ", "a").merge("y", "z");
    sae::test::TempDir dir_ordered("bpe_ordered");
    sae::test::TempDir dir_unordered("bpe_unordered");
    const BpeTokenizer first = ordered.write_and_load(dir_ordered);
    const BpeTokenizer second = unordered.write_and_load(dir_unordered);
    const std::int32_t aa_first = 257;
    const std::int32_t aaaa_first = 258;
    const std::int32_t aa_second = *second.id_of("aa");
    const std::int32_t aaaa_second = *second.id_of("aaaa");
    CHECK(first.encode("aaa") == Ids{aa_first, 97});
    CHECK(first.encode("aaaaa") == Ids{aaaa_first, 97});
    CHECK(first.encode(" aaa") == Ids{32, aa_first, 97});
    CHECK(second.encode("aaaaa") == Ids{aaaa_second, 97});
    // "xyz": y z (rank 4) first, then x yz (rank 0).
    CHECK(second.encode("xyz") == Ids{*second.id_of("xyz")});
    for (const std::size_t length : {33, 40, 41, 42, 43, 64}) {
        Ids expected_first(length / 4, aaaa_first);
        Ids expected_second(length / 4, aaaa_second);
        if (length % 4 >= 2) {
            expected_first.push_back(aa_first);
            expected_second.push_back(aa_second);
        }
        if (length % 2 == 1) {
            expected_first.push_back(97);
            expected_second.push_back(97);
        }
        INFO(length << " x 'a'");
        CHECK(first.encode(std::string(length, 'a')) == expected_first);
        CHECK(second.encode(std::string(length, 'a')) == expected_second);
    }
    // OpenAI's file names, CRLF line ends and no #version line are accepted too.
    sae::test::TempDir openai("bpe_openai");
    openai.file("encoder.json", ordered.vocab.dump());
    openai.file("vocab.bpe", "a a\r\naa aa\r\n\r\n");
    const BpeTokenizer third = BpeTokenizer::from_directory(openai.path());
    CHECK(third.encode("aaaaa") == Ids{aaaa_first, 97});
    CHECK(third.encode(" a") == Ids{32, 97});  // the third merge is not in this file
}

TEST_CASE("BpeTokenizer: bad files are rejected naming the file, line, token or id", "[bpe]") {
    sae::test::TempDir dir("bpe_errors");
    const TinyVocab good = [] {
        TinyVocab v;
        v.merge("a", "b");
        return v;
    }();
    const std::string vocab = dir.file("v.json");
    const std::string merges = dir.file("m.txt");
    const auto load = [&] { return BpeTokenizer::from_files(vocab, merges); };
    dir.file("v.json", good.vocab.dump());
    dir.file("m.txt", good.merges);
    REQUIRE(load().encode("ab") == Ids{257});

    // Missing files and directories.
    require_io_error([&] { BpeTokenizer::from_directory(dir.file("nowhere")); }, {"nowhere", "vocab.json"});
    require_io_error([&] { BpeTokenizer::from_files(dir.file("absent.json"), merges); }, {"absent.json"});
    require_io_error([&] { BpeTokenizer::from_files(vocab, dir.file("absent.txt")); }, {"absent.txt"});

    // Malformed vocabularies.
    const auto bad_vocab = [&](const std::string& text, const std::vector<std::string>& parts) {
        dir.file("v.json", text);
        std::vector<std::string> with_file = parts;
        with_file.push_back(vocab);
        require_io_error(load, with_file);
    };
    bad_vocab("{\"a\": 1,", {"invalid JSON at byte"});
    bad_vocab("[1, 2]", {"must be a JSON object"});
    bad_vocab("{\"a\": {\"b\": 1}}", {"token \"a\"", "an object"});
    bad_vocab("{\"a\": 1.5}", {"token \"a\"", "non-integer id"});
    bad_vocab("{\"a\": -3}", {"token \"a\"", "negative id -3"});
    bad_vocab("{\"a\": \"x\"}", {"token \"a\"", "a string"});
    bad_vocab("{}", {"empty"});
    {
        nlohmann::json v = good.vocab;
        v["zzz"] = 99999;  // ids must be 0..N-1
        bad_vocab(v.dump(), {"\"zzz\"", "99999"});
    }
    {
        nlohmann::json v = good.vocab;
        v.erase(spelling("ab"));
        v["zz"] = 5;  // same id as byte 5
        bad_vocab(v.dump(), {"id 5", "two tokens"});
    }
    {
        nlohmann::json v = good.vocab;
        v.erase(spelling("ab"));
        v["\xe2\x82\xac"] = 257;  // U+20AC is not one of the 256 byte characters
        bad_vocab(v.dump(), {"\xe2\x82\xac", "outside the GPT-2 byte alphabet"});
    }
    {
        nlohmann::json v = good.vocab;
        v.erase(spelling("ab"));
        v.erase(spelling("\n"));
        v["\xc4\x8a\xc4\x8a"] = 10;  // "ĊĊ" takes the place of "Ċ", byte 10
        v["ab"] = 257;
        bad_vocab(v.dump(), {"byte 10", "missing"});
    }
    {
        nlohmann::json v = good.vocab;
        v.erase("<|endoftext|>");
        v.erase(spelling("ab"));
        v["ab"] = 256;
        bad_vocab(v.dump(), {"<|endoftext|>", "missing"});
    }
    dir.file("v.json", good.vocab.dump());

    // Malformed merges; lines are counted from 1 including the #version line.
    const auto bad_merges = [&](const std::string& text, const std::vector<std::string>& parts) {
        dir.file("m.txt", text);
        std::vector<std::string> with_file = parts;
        with_file.push_back(merges);
        require_io_error(load, with_file);
    };
    bad_merges("#version: 0.2\na b\nab\n", {"m.txt:3:", "two symbols", "\"ab\""});
    bad_merges("a b c\n", {"m.txt:1:", "two symbols"});
    bad_merges("a  b\n", {"m.txt:1:", "two symbols"});
    bad_merges("#version: 0.2\na \xe2\x82\xac\n", {"m.txt:2:", "not in the vocabulary"});
    bad_merges("#version: 0.2\nb a\n", {"m.txt:2:", "\"ba\" is not in the vocabulary"});
    bad_merges("#version: 0.2\na b\na b\n", {"m.txt:3:", "already listed on line 2"});

    // Ids out of range.
    dir.file("m.txt", good.merges);
    const BpeTokenizer tok = load();
    CHECK_THROWS_AS(tok.decode({1, 258}), sae::config_error);
    CHECK_THROWS_WITH(tok.decode({1, 258}), Catch::Contains("position 1") && Catch::Contains("258"));
    CHECK_THROWS_WITH(tok.decode({-1}), Catch::Contains("-1"));
    CHECK_THROWS_AS(tok.token_bytes(258), sae::config_error);
    CHECK_THROWS_WITH(tok.token_bytes(-5), Catch::Contains("-5"));
}

}  // namespace test_bpe_tokenizer_cases
