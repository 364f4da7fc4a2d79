// Tests of include/sae/models/activation_extractor.hpp on the tiny random Hugging Face
// GPT-2 fixture (vocab 50, n_ctx 16, n_embd 16). Expected windows are derived by hand
// from the rules in the header's comment; expected activations come from
// Gpt2::activation on those windows, computed here without the extractor.

#include <sae/data/shard_source.hpp>
#include <sae/io/npy.hpp>
#include <sae/models/activation_extractor.hpp>
#include <sae/models/gpt2_loader.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace sae::models::extractor_tests {
namespace {

using sae::test::TempDir;

const std::string tiny_hf_dir = SAE_TEST_FIXTURES_DIR "/gpt2/tiny_hf";
const std::string hook = "blocks.1.hook_resid_mid";
constexpr int eot = 9;  // the char encoder's end-of-text id (the model's vocabulary is 50)

const Gpt2<float>& tiny_model() {
    static const Gpt2<float> model(load_hf_gpt2_weights<float>(tiny_hf_dir));
    return model;
}

CharTextEncoder char_encoder() { return CharTextEncoder("abcdefgh", eot); }

// Documents "abc", "defg", " " (blank: skipped) and "h" -> ids 0 1 2 | 3 4 5 6 | 7.
// Stream (every document preceded by eot): 9 0 1 2 9 3 4 5 6 9 7.
const std::string text = "abc\n%\ndefg\n%\n \n%\nh";
const std::string separator = "\n%\n";

/// Windows of 4 with prepend_bos, by hand: the stream's own 9 serves as BOS twice, then
/// BOS + "6 9 7"; nothing is left over.
TokenBatch windows_with_bos() {
    TokenBatch t(3, 4);
    t << 9, 0, 1, 2,  //
        9, 3, 4, 5,   //
        9, 6, 9, 7;
    return t;
}

ExtractionConfig base_config(const TempDir& dir) {
    ExtractionConfig c;
    c.hook = hook;
    c.context_length = 4;
    c.batch_size = 2;
    c.document_separator = separator;
    c.output_directory = dir.file("out");
    c.model_name = "tiny_hf";
    c.progress = ProgressDisplay::never;
    return c;
}

/// The activations of `windows` at `hook`, one window at a time, without position 0
/// when `drop_first`.
Matrix<float> direct_rows(const TokenBatch& windows, bool drop_first) {
    const Index first = drop_first ? 1 : 0, per = windows.cols() - first;
    Matrix<float> rows(windows.rows() * per, tiny_model().config().n_embd);
    for (Index w = 0; w < windows.rows(); ++w) {
        const Matrix<float> a = tiny_model().activation(windows.row(w), hook);
        rows.middleRows(w * per, per) = a.bottomRows(per);
    }
    return rows;
}

/// All rows of the manifest's shards, in file order, read through ShardSource.
Matrix<float> read_back(const ActivationManifest& manifest) {
    ShardSourceConfig config = manifest.shard_source_config();
    config.shuffle_buffer_rows = 0;
    config.batch_size = static_cast<Index>(manifest.tokens);
    ShardSource<float> source(config);
    Matrix<float> rows;
    source.next_batch(rows);
    return rows;
}

ActivationManifest extract(const ExtractionConfig& config, const std::string& input) {
    const CharTextEncoder encoder = char_encoder();
    ActivationExtractor<float> extractor(tiny_model(), encoder, config);
    extractor.add_text(input);
    return extractor.finish();
}

template <class Error>
void require_error(const std::function<void()>& fn, std::initializer_list<std::string> words) {
    try {
        fn();
        FAIL("no exception was thrown");
    } catch (const Error& e) {
        const std::string message = e.what();
        for (const std::string& word : words) {
            INFO("message: " << message);
            CHECK(message.find(word) != std::string::npos);
        }
    }
}

TEST_CASE("split_documents and token_windows follow the documented rules", "[extractor]") {
    const std::vector<std::string_view> docs = split_documents(text, separator);
    REQUIRE(docs.size() == 3);
    CHECK(docs[0] == "abc");
    CHECK(docs[1] == "defg");
    CHECK(docs[2] == "h");
    CHECK(split_documents("x", "").size() == 1);
    CHECK(split_documents(" \n\t", "").empty());

    const CharTextEncoder encoder = char_encoder();
    CHECK(token_windows(encoder, docs, 4, true) == windows_with_bos());
    TokenBatch without_bos(2, 4);  // 9 0 1 2 | 9 3 4 5 | tail "6 9 7" dropped
    without_bos << 9, 0, 1, 2, 9, 3, 4, 5;
    CHECK(token_windows(encoder, docs, 4, false) == without_bos);
    CHECK(token_windows(encoder, docs, 4, true, 1) == windows_with_bos().topRows(1));
}

TEST_CASE("shards read back through ShardSource equal Gpt2::activation", "[extractor]") {
    TempDir dir("extract");
    const bool exclude = GENERATE(true, false);
    const ShardFormat format = GENERATE(ShardFormat::npy, ShardFormat::safetensors);
    ExtractionConfig config = base_config(dir);
    config.exclude_bos = exclude;
    config.format = format;
    const ActivationManifest m = extract(config, text);

    const Matrix<float> expected = direct_rows(windows_with_bos(), exclude);
    CHECK(m.tokens == expected.rows());
    CHECK(m.windows == 3);
    CHECK(m.d == 16);
    const Matrix<float> rows = read_back(m);
    REQUIRE(rows.rows() == expected.rows());
    CHECK((rows - expected).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("without BOS the windows are raw stream tokens and the tail is dropped", "[extractor]") {
    TempDir dir("extract_nobos");
    ExtractionConfig config = base_config(dir);
    config.prepend_bos = false;
    const ActivationManifest m = extract(config, text);
    TokenBatch windows(2, 4);
    windows << 9, 0, 1, 2, 9, 3, 4, 5;
    CHECK_FALSE(m.exclude_bos);  // nothing to exclude without a prepended BOS
    const Matrix<float> expected = direct_rows(windows, false);
    CHECK(m.tokens == 8);
    CHECK((read_back(m) - expected).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("shards split at max_shard_bytes, max_tokens stops exactly", "[extractor]") {
    TempDir dir("extract_split");
    ExtractionConfig config = base_config(dir);
    config.max_shard_bytes = 4 * 16 * sizeof(float) + 3;  // 4 rows of 16 floats fit, 5 do not
    ActivationManifest m = extract(config, text);         // 9 rows -> 4 + 4 + 1
    REQUIRE(m.shards.size() == 3);
    CHECK(m.shards[0].file == "shard_00000.npy");
    CHECK(m.shards[0].rows == 4);
    CHECK(m.shards[1].rows == 4);
    CHECK(m.shards[2].rows == 1);
    CHECK(read_npy_header(m.shard_paths()[2]).shape == std::vector<std::size_t>{1, 16});

    TempDir dir2("extract_limit");
    config = base_config(dir2);
    config.max_tokens = 5;  // windows 1 and 2 (3 rows each), the second cut after 2 rows
    const CharTextEncoder encoder = char_encoder();
    ActivationExtractor<float> extractor(tiny_model(), encoder, config);
    CHECK_FALSE(extractor.add_text(text));  // the limit is reached inside the text
    CHECK_FALSE(extractor.add_document("abc"));
    m = extractor.finish();
    CHECK(m.tokens == 5);
    CHECK(m.windows == 2);
    const Matrix<float> expected = direct_rows(windows_with_bos(), true).topRows(5);
    CHECK((read_back(m) - expected).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("the manifest describes the shards and loads back", "[extractor]") {
    TempDir dir("extract_manifest");
    ExtractionConfig config = base_config(dir);
    config.format = ShardFormat::safetensors;
    const std::string path = dir.file("a.txt", text);
    const CharTextEncoder encoder = char_encoder();
    const ActivationManifest written = extract_activations(tiny_model(), encoder, {path}, config);

    const ActivationManifest m = ActivationManifest::load(config.output_directory);
    CHECK(m.to_json() == written.to_json());
    CHECK(m.model == "tiny_hf");
    CHECK(m.hook == hook);
    CHECK(m.dtype == DType::f32);
    CHECK(m.tokens == 9);
    CHECK(m.context_length == 4);
    CHECK(m.prepend_bos);
    CHECK(m.exclude_bos);
    CHECK(m.document_separator == separator);
    CHECK(m.text_files == std::vector<std::string>{path});
    CHECK(m.tensor == "activations");
    REQUIRE(m.shards.size() == 1);
    CHECK(m.shards[0].file == "shard_00000.safetensors");
    CHECK(SafetensorsFile(m.shard_paths()[0]).metadata().at("hook") == hook);
    CHECK(read_back(m).rows() == 9);
}

TEST_CASE("a manifest with a defect is an io_error naming the key", "[extractor]") {
    TempDir dir("extract_bad_manifest");
    const ActivationManifest good = extract(base_config(dir), text);
    const nlohmann::json j = good.to_json();
    const auto broken = [&](const std::function<void(nlohmann::json&)>& edit, std::initializer_list<std::string> words) {
        nlohmann::json copy = j;
        edit(copy);
        const std::string path = dir.file("bad.json", copy.dump());
        require_error<io_error>([&] { (void)ActivationManifest::load(path); }, words);
    };
    broken([](nlohmann::json& m) { m.erase("hook"); }, {"bad.json", "'hook'", "missing"});
    broken([](nlohmann::json& m) { m["format"] = "other"; }, {"'format'"});
    broken([](nlohmann::json& m) { m["d"] = "16"; }, {"'d'", "integer"});
    broken([](nlohmann::json& m) { m["tokens"] = 10; }, {"'tokens'", "9 rows"});
    broken([](nlohmann::json& m) { m["shards"][0]["file"] = "../x.npy"; }, {"shards[0].file"});
    broken([](nlohmann::json& m) { m["hook"] = "blocks.0.hook_mlp"; }, {"'hook'", "unknown hook point"});
    broken([](nlohmann::json& m) { m["dtype"] = "F8"; }, {"'dtype'"});
    require_error<io_error>([&] { (void)ActivationManifest::load(dir.file("none.json")); }, {"none.json"});
}

TEST_CASE("bad settings and inputs are typed errors naming the value", "[extractor]") {
    TempDir dir("extract_errors");
    const CharTextEncoder encoder = char_encoder();
    const auto with = [&](const std::function<void(ExtractionConfig&)>& edit) {
        ExtractionConfig c = base_config(dir);
        edit(c);
        return c;
    };
    const auto make = [&](const ExtractionConfig& c) { ActivationExtractor<float> unused(tiny_model(), encoder, c); };
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.hook = "blocks.2.hook_mlp_out"; })); },
                                {"layer 2"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.hook = "blocks.0.attn.hook_pattern"; })); },
                                {"hook_pattern", "per token"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.context_length = 17; })); },
                                {"context_length = 17", "n_ctx = 16"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.context_length = 1; })); }, {"context_length = 1"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.batch_size = 0; })); }, {"batch_size = 0"});
    require_error<config_error>([] { TokenWindower(1, true, eot); }, {"context_length = 1", "prepend_bos"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.max_shard_bytes = 63; })); },
                                {"max_shard_bytes = 63", "64 bytes"});
    require_error<config_error>([&] { make(with([](ExtractionConfig& c) { c.dtype = DType::bf16; })); }, {"BF16"});
    require_error<config_error>(
        [&] { ActivationExtractor<float> unused(tiny_model(), CharTextEncoder("ab"), base_config(dir)); },
        {"prepend_bos", "end-of-text"});
    require_error<config_error>([] { CharTextEncoder("aba"); }, {"'a'", "twice"});
    require_error<config_error>([] { CharTextEncoder("ab", 1); }, {"end_of_text id 1"});

    ActivationExtractor<float> extractor(tiny_model(), encoder, base_config(dir));
    require_error<config_error>([&] { extractor.add_document("abz"); }, {"'z'", "offset 2"});
    require_error<io_error>([&] { extractor.add_file(dir.file("missing.txt")); }, {"missing.txt"});
    extractor.add_document("ab");  // 3 stream tokens: no complete window of 4
    require_error<config_error>([&] { (void)extractor.finish(); }, {"no complete window", "3 tokens"});
}

TEST_CASE("extraction is deterministic and independent of the batch size", "[extractor]") {
    TempDir a("extract_det_a"), b("extract_det_b");
    ExtractionConfig config = base_config(a);
    const ActivationManifest first = extract(config, text);
    config.output_directory = b.file("out");
    const ActivationManifest second = extract(config, text);
    CHECK(sae::test::read_bytes(first.shard_paths()[0]) == sae::test::read_bytes(second.shard_paths()[0]));
    CHECK(sae::test::read_bytes(first.path()) == sae::test::read_bytes(second.path()));

    config.batch_size = 1;
    config.output_directory = b.file("batch1");
    const ActivationManifest one_by_one = extract(config, text);
    CHECK((read_back(first) - read_back(one_by_one)).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("a forced progress bar reports tokens, rate and ETA", "[extractor]") {
    TempDir dir("extract_progress");
    std::ostringstream log;
    ExtractionConfig config = base_config(dir);
    config.progress = ProgressDisplay::always;
    config.progress_stream = &log;
    (void)extract(config, text);
    CHECK(log.str().find("9 tokens") != std::string::npos);
    CHECK(log.str().find("tokens/s") != std::string::npos);
    CHECK(log.str().find("ETA 0:00") != std::string::npos);
}

TEST_CASE("BpeTextEncoder maps GPT-2 ids through the vocabulary map", "[extractor]") {
    const BpeTokenizer tokenizer = BpeTokenizer::from_directory(SAE_DATA_DIR "/gpt2-tokenizer");
    // GPT-2 ids of "Hello world": [15496, 995] (the example in Hugging Face's GPT2Tokenizer
    // docstring). Model ids: 995 -> 0, 15496 -> 1, <|endoftext|> 50256 -> 2, rest -> 3.
    const BpeTextEncoder encoder(tokenizer, VocabMap({995, 15496, 50256, 0}, 3));
    CHECK(encoder.encode("Hello world") == std::vector<int>{1, 0});
    CHECK(encoder.encode("Hello there") == std::vector<int>{1, 3});
    CHECK(encoder.end_of_text_id() == 2);
    require_error<config_error>([&] { BpeTextEncoder(tokenizer, VocabMap({995}, std::nullopt)); }, {"<|endoftext|>"});
}

}  // namespace
}  // namespace sae::models::extractor_tests
