// Tests of include/sae/models/: the GPT-2 forward pass against three independent sources
// (llm-viz's recorded activations of the trained nano-gpt-sort, a PyTorch pass over the
// trained gpt-nano-shakespeare, and a PyTorch pass over a random tiny Hugging Face model
// written by tools/reference/gpt2_reference.py), the loaders and their errors, hook
// points, splice metrics, vocabulary maps and sampling.

#include <sae/io/npy.hpp>
#include <sae/io/safetensors.hpp>
#include <sae/models/bpe_tokenizer.hpp>
#include <sae/models/gpt2.hpp>
#include <sae/models/gpt2_loader.hpp>
#include <sae/models/sampling.hpp>
#include <sae/models/splice_metrics.hpp>
#include <sae/models/vocab_map.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

// A named namespace keeps these helpers apart from other test files in a unity build.
namespace sae::models::gpt2_tests {
namespace {

using sae::test::TempDir;

const std::string fixtures = SAE_TEST_FIXTURES_DIR "/gpt2";
const std::string tiny_hf_dir = fixtures + "/tiny_hf";

/// A file of the real data shipped in examples/data, or a failed test saying where it was
/// looked for.
std::string shared_data(const std::string& relative) {
    const std::string path = SAE_DATA_DIR "/" + relative;
    if (!std::filesystem::exists(path)) {
        FAIL("data file " << path << " is missing: these tests need the real models shipped in "
                             "examples/data (nano-gpt-sort and gpt-nano-shakespeare)");
    }
    return path;
}

template <class A, class B>
double max_abs_diff(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff();
}

/// The message of the `Error` that `fn` throws must contain every one of `words`.
template <class Error>
void require_error(const std::function<void()>& fn, std::initializer_list<std::string> words) {
    try {
        fn();
        FAIL("no exception was thrown");
    } catch (const Error& e) {
        const std::string message = e.what();
        INFO(message);
        for (const std::string& word : words) CHECK(message.find(word) != std::string::npos);
    }
}

// ---------------------------------------------------------------- nano-gpt-sort (llm-viz)

/// A tensor of the llm-viz JSON as [rows, last dimension].
Matrix<double> partial(const nlohmann::json& root, const std::string& name) {
    const models::detail::JsonTensor t = models::detail::decode_json_tensor(root.at(name), name);
    const Index cols = static_cast<Index>(t.shape.back());
    return Eigen::Map<const Matrix<double>>(t.values.data(), static_cast<Index>(t.values.size()) / cols, cols);
}

/// [B, H, T, d] (row (b*H + h)*T + t) -> [B*T, H*d] (row b*T + t, column h*d + i): the
/// TransformerLens hook_q layout.
Matrix<double> merge_heads(const Matrix<double>& per_head, Index batch, Index heads, Index seq) {
    const Index d = per_head.cols();
    Matrix<double> out(batch * seq, heads * d);
    for (Index b = 0; b < batch; ++b) {
        for (Index h = 0; h < heads; ++h) out.block(b * seq, h * d, seq, d) = per_head.middleRows((b * heads + h) * seq, seq);
    }
    return out;
}

TEST_CASE("nano-gpt-sort reproduces every intermediate llm-viz recorded", "[gpt2][golden]") {
    const Gpt2<float> model = load_mingpt_json<float>(shared_data("nano-gpt-sort/gpt-nano-sort-model.json"));
    const Gpt2Config& config = model.config();
    REQUIRE(config.n_layer == 3);
    REQUIRE(config.n_head == 3);
    REQUIRE(config.n_embd == 48);
    REQUIRE(config.n_ctx == 11);
    REQUIRE(config.vocab_size == 3);
    REQUIRE_FALSE(config.tied_lm_head);

    const nlohmann::json root = nlohmann::json::parse(read_whole_file(shared_data("nano-gpt-sort/gpt-nano-sort-t0-partials.json")));
    const Matrix<double> idx = partial(root, "idx");
    const TokenBatch tokens = idx.cast<int>();
    const Index batch = tokens.rows(), seq = tokens.cols(), heads = config.n_head;
    REQUIRE(batch == 3);
    REQUIRE(seq == 11);

    std::vector<std::string> names = {"hook_embed", "hook_pos_embed", "ln_final"};
    for (const char* site : {"hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                             "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
                             "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out"}) {
        names.push_back(std::string("blocks.0.") + site);
    }
    for (int l = 0; l < 3; ++l) names.push_back("blocks." + std::to_string(l) + ".hook_resid_post");
    const ActivationCache<float> cache = model.run_with_cache(tokens, names);
    const Matrix<float> logits = model.forward(tokens);

    Matrix<double> positions(batch * seq, config.n_embd);  // pos_emb is recorded once, [1, T, C]
    for (Index b = 0; b < batch; ++b) positions.middleRows(b * seq, seq) = partial(root, "pos_emb");
    Matrix<double> probs = logits.cast<double>();
    for (Index r = 0; r < probs.rows(); ++r) {
        probs.row(r) = (probs.row(r).array() - probs.row(r).maxCoeff()).exp().matrix();
        probs.row(r) /= probs.row(r).sum();
    }
    Matrix<float> qkv(batch * seq, 3 * config.n_embd);
    qkv << cache.at("blocks.0.attn.hook_q"), cache.at("blocks.0.attn.hook_k"), cache.at("blocks.0.attn.hook_v");

    const std::vector<std::pair<std::string, Matrix<double>>> ours = {
        {"tok_emb", cache.at("hook_embed").cast<double>()},
        {"pos_emb", cache.at("hook_pos_embed").cast<double>()},
        {"x", cache.at("blocks.0.hook_resid_pre").cast<double>()},
        {"ln1", cache.at("blocks.0.ln1.hook_normalized").cast<double>()},
        {"q", cache.at("blocks.0.attn.hook_q").cast<double>()},
        {"k", cache.at("blocks.0.attn.hook_k").cast<double>()},
        {"v", cache.at("blocks.0.attn.hook_v").cast<double>()},
        {"qkv", qkv.cast<double>()},
        {"att", cache.at("blocks.0.attn.hook_attn_scores").cast<double>()},
        {"attSm", cache.at("blocks.0.attn.hook_pattern").cast<double>()},
        {"y", cache.at("blocks.0.attn.hook_z").cast<double>()},
        {"yProj", cache.at("blocks.0.hook_attn_out").cast<double>()},
        {"attnResid", cache.at("blocks.0.hook_resid_mid").cast<double>()},
        {"ln2", cache.at("blocks.0.ln2.hook_normalized").cast<double>()},
        {"fc", cache.at("blocks.0.mlp.hook_pre").cast<double>()},
        {"gelu", cache.at("blocks.0.mlp.hook_post").cast<double>()},
        {"mlp", cache.at("blocks.0.hook_mlp_out").cast<double>()},
        {"mlpResid", cache.at("blocks.0.hook_resid_post").cast<double>()},
        {"block0", cache.at("blocks.0.hook_resid_post").cast<double>()},
        {"block1", cache.at("blocks.1.hook_resid_post").cast<double>()},
        {"block2", cache.at("blocks.2.hook_resid_post").cast<double>()},
        {"ln_f", cache.at("ln_final.hook_normalized").cast<double>()},
        {"lm_head", logits.cast<double>()},
        {"probs", probs},
    };
    std::size_t compared = 1;  // idx, used as the input
    for (const auto& [name, value] : ours) {
        INFO("tensor " << name);
        Matrix<double> expected = partial(root, name);
        if (name == "pos_emb") expected = positions;
        if (name == "q" || name == "k" || name == "v") expected = merge_heads(expected, batch, heads, seq);
        REQUIRE(expected.rows() == value.rows());
        REQUIRE(expected.cols() == value.cols());
        double worst = 0.0;
        for (Index i = 0; i < value.size(); ++i) {
            const double want = expected.data()[i], got = value.data()[i];
            if (std::isinf(want)) {  // the masked (future) attention scores
                REQUIRE(got == want);
                continue;
            }
            worst = std::max(worst, std::abs(got - want));
        }
        CHECK(worst < 1e-5);
        ++compared;
    }
    CHECK(compared == root.size() - 1);  // every recorded tensor except "config"
}

TEST_CASE("nano-gpt-sort sorts six digits by greedy generation", "[gpt2][golden]") {
    // llm-viz's task (minGPT's SortDataset): six digits in {0, 1, 2}, then the model
    // writes them in sorted order, one greedy token at a time (block size 11 = 6 + 6 - 1).
    const Gpt2<float> model = load_mingpt_json<float>(shared_data("nano-gpt-sort/gpt-nano-sort-model.json"));
    const std::vector<std::vector<int>> inputs = {{0, 0, 2, 1, 0, 1}, {0, 1, 2, 2, 2, 0}, {1, 0, 2, 1, 2, 2},
                                                  {2, 2, 2, 0, 0, 0}, {2, 1, 0, 2, 1, 0}, {1, 1, 1, 1, 1, 1}};
    const std::vector<std::vector<int>> outputs = sample_continuations(model, inputs, 6, 0.0, 0, 0);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        std::vector<int> sorted = inputs[i];
        std::sort(sorted.begin(), sorted.end());
        CHECK(outputs[i] == sorted);
    }
}

// ---------------------------------------------------------------- gpt-nano-shakespeare

TEST_CASE("gpt-nano-shakespeare: next-character loss matches the PyTorch reference", "[gpt2][golden]") {
    const Gpt2<float> model =
        load_mingpt_json<float>(shared_data("gpt-nano-shakespeare/model_weights.json"), mingpt_model_type("gpt-nano"));
    REQUIRE(model.config().vocab_size == 65);
    REQUIRE(model.config().n_ctx == 128);
    REQUIRE_FALSE(model.config().tied_lm_head);

    const std::string text = read_whole_file(shared_data("gpt-nano-shakespeare/input.txt"));
    std::string chars = text;  // the vocabulary: sorted unique characters (bytes: the text is ASCII)
    std::sort(chars.begin(), chars.end());
    chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
    REQUIRE(chars.size() == 65);

    const nlohmann::json reference = nlohmann::json::parse(read_whole_file(fixtures + "/shakespeare_ce.json"));
    const std::size_t window = reference.at("window").get<std::size_t>();
    double mean = 0.0;
    for (std::size_t w = 0; w < reference.at("offsets").size(); ++w) {
        const std::size_t offset = reference["offsets"][w].get<std::size_t>();
        TokenBatch tokens(1, static_cast<Index>(window));
        for (std::size_t t = 0; t < window; ++t) {
            tokens(0, static_cast<Index>(t)) = static_cast<int>(chars.find(text[offset + t]));
        }
        const double ce = next_token_cross_entropy(model.forward(tokens), tokens);
        CHECK_THAT(ce, Catch::Matchers::WithinAbs(reference["ce_per_window"][w].get<double>(), 2e-5));
        mean += ce / static_cast<double>(reference["offsets"].size());
    }
    CHECK_THAT(mean, Catch::Matchers::WithinAbs(reference["mean_ce"].get<double>(), 1e-5));
    // gpt-nano-shakespeare/SOURCE.md: 1.52 nats/char measured by an independent PyTorch pass.
    CHECK_THAT(mean, Catch::Matchers::WithinAbs(1.52, 0.02));
}

// ---------------------------------------------------------------- Hugging Face layout

/// The tensors of the tiny fixture in float64, by name, with their shapes.
struct TensorSet {
    std::map<std::string, std::pair<Matrix<double>, std::vector<std::size_t>>> tensors;

    static TensorSet read(const std::string& path) {
        const SafetensorsFile file(path);
        TensorSet set;
        for (const std::string& name : file.names()) set.tensors[name] = {file.matrix<double>(name), file.info(name).shape};
        return set;
    }
    void write(const std::string& path, DType dtype) const {
        SafetensorsWriter writer;
        for (const auto& [name, entry] : tensors) writer.add(name, entry.first, dtype, entry.second);
        writer.write(path);
    }
};

/// A copy of the tiny model in `dir`: names without the `transformer.` prefix, F64.
TensorSet write_unprefixed_copy(const TempDir& dir) {
    TensorSet set = TensorSet::read(tiny_hf_dir + "/model.safetensors");
    TensorSet renamed;
    for (auto& [name, entry] : set.tensors) renamed.tensors[name.substr(std::string("transformer.").size())] = entry;
    renamed.write(dir.file("model.safetensors"), DType::f64);
    dir.file("config.json", read_whole_file(tiny_hf_dir + "/config.json"));
    return renamed;
}

TEMPLATE_TEST_CASE("HF loader: a tiny random GPT-2 matches the PyTorch reference", "[gpt2][hf]", float, double) {
    const double tolerance = std::is_same<TestType, float>::value ? 1e-5 : 1e-11;
    const LoadedGpt2<TestType> loaded = load_hf_gpt2<TestType>(tiny_hf_dir);
    const Gpt2<TestType>& model = loaded.model;
    CHECK(loaded.vocab_map.is_identity());
    CHECK(model.config().n_layer == 2);
    CHECK(model.config().n_head == 4);
    CHECK(model.config().tied_lm_head);

    const SafetensorsFile expected(fixtures + "/tiny_hf_expected.safetensors");
    const TokenBatch tokens = expected.matrix<double>("tokens").cast<int>();
    REQUIRE(tokens.cols() == model.config().n_ctx);
    const Matrix<TestType> logits = model.forward(tokens);
    CHECK(max_abs_diff(logits, expected.matrix<double>("logits")) < tolerance);

    const std::vector<std::string> names = {"blocks.0.hook_resid_mid", "blocks.1.hook_mlp_out",
                                            "blocks.0.attn.hook_pattern", "ln_final.hook_normalized"};
    const ActivationCache<TestType> cache = model.run_with_cache(tokens, names);
    for (const std::string& name : names) {
        INFO(name);
        CHECK(max_abs_diff(cache.at(name), expected.matrix<double>(name)) < tolerance);
    }

    SECTION("a shorter sequence gives the same logits at its positions (causality)") {
        const Index seq = 9;
        const TokenBatch prefix = tokens.leftCols(seq);
        const Matrix<TestType> short_logits = model.forward(prefix);
        for (Index b = 0; b < tokens.rows(); ++b) {
            CHECK(max_abs_diff(short_logits.middleRows(b * seq, seq), logits.middleRows(b * tokens.cols(), seq)) <
                  tolerance);
        }
        const Matrix<TestType> last = model.last_token_logits(prefix);
        for (Index b = 0; b < tokens.rows(); ++b) {
            CHECK(max_abs_diff(last.row(b), short_logits.row(b * seq + seq - 1)) < tolerance);
        }
    }
}

TEST_CASE("HF loader: unprefixed names, F64 tensors, untied head and a vocab map", "[gpt2][hf]") {
    const TempDir dir("gpt2_hf");
    TensorSet set = write_unprefixed_copy(dir);
    // An untied head of 2 * wte doubles every logit: logits = ln_f(x) lm_head^T.
    set.tensors["lm_head.weight"] = {2.0 * set.tensors.at("wte.weight").first, set.tensors.at("wte.weight").second};
    set.write(dir.file("model.safetensors"), DType::f64);
    std::vector<int> map_ids;
    for (int i = 0; i < 50; ++i) map_ids.push_back(1000 + 7 * i);
    dir.file("vocab_map.json", nlohmann::json{{"format", "libsae-vocab-map"},
                                              {"version", 1},
                                              {"model_to_gpt2", map_ids},
                                              {"unknown_model_id", 0}}
                                   .dump());

    const LoadedGpt2<double> loaded = load_hf_gpt2<double>(dir.path());
    CHECK_FALSE(loaded.model.config().tied_lm_head);
    const SafetensorsFile expected(fixtures + "/tiny_hf_expected.safetensors");
    const TokenBatch tokens = expected.matrix<double>("tokens").cast<int>();
    CHECK(max_abs_diff(loaded.model.forward(tokens), 2.0 * expected.matrix<double>("logits")) < 1e-11);

    const VocabMap& map = loaded.vocab_map;
    REQUIRE_FALSE(map.is_identity());
    CHECK(map.model_vocab_size() == 50);
    CHECK(map.to_gpt2(3) == 1021);
    CHECK(map.to_model(1021) == 3);
    CHECK(map.to_model(5) == 0);  // not in the map: unknown_model_id
    CHECK(map.to_model(std::vector<int>{1000, 1343, 99}) == std::vector<int>{0, 49, 0});
    require_error<config_error>([&] { (void)map.to_gpt2(50); }, {"model id 50"});

    SECTION("an lm_head.weight equal to wte is the tied head") {
        set.tensors["lm_head.weight"] = set.tensors.at("wte.weight");
        set.write(dir.file("model.safetensors"), DType::f32);
        const Gpt2Weights<float> tied = load_hf_gpt2_weights<float>(dir.path());
        CHECK(tied.config.tied_lm_head);
        CHECK_FALSE(tied.lm_head.has_value());
    }
}

TEST_CASE("HF loader errors name the tensor, the key or the file", "[gpt2][hf][errors]") {
    const TempDir dir("gpt2_hf_errors");
    const TensorSet good = write_unprefixed_copy(dir);

    SECTION("missing tensor") {
        TensorSet set = good;
        set.tensors.erase("h.1.mlp.c_fc.bias");
        set.write(dir.file("model.safetensors"), DType::f32);
        require_error<io_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); },
                                {"model.safetensors", "'h.1.mlp.c_fc.bias'", "missing", "[64]"});
    }
    SECTION("wrong shape") {
        TensorSet set = good;
        auto& entry = set.tensors.at("h.0.attn.c_attn.weight");
        entry.first = Matrix<double>::Zero(48, 16);  // the [out, in] layout of a Linear
        entry.second = {48, 16};
        set.write(dir.file("model.safetensors"), DType::f32);
        require_error<io_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); },
                                {"'h.0.attn.c_attn.weight'", "[48, 16]", "expected [16, 48]"});
    }
    SECTION("untied config without lm_head.weight") {
        nlohmann::json config = nlohmann::json::parse(read_whole_file(tiny_hf_dir + "/config.json"));
        config["tie_word_embeddings"] = false;
        dir.file("config.json", config.dump());
        require_error<io_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); }, {"'lm_head.weight'", "missing"});
    }
    SECTION("bad config") {
        nlohmann::json config = nlohmann::json::parse(read_whole_file(tiny_hf_dir + "/config.json"));
        config["n_head"] = 3;
        dir.file("config.json", config.dump());
        require_error<config_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); },
                                    {"config.json", "n_embd = 16", "n_head = 3"});
        config.erase("n_head");
        dir.file("config.json", config.dump());
        require_error<config_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); }, {"'n_head' is missing"});
        config["n_head"] = "4";
        dir.file("config.json", config.dump());
        require_error<config_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); }, {"n_head", "\"4\""});
        dir.file("config.json", "{\"n_layer\": ");
        require_error<io_error>([&] { (void)load_hf_gpt2_weights<float>(dir.path()); }, {"config.json", "not valid JSON"});
    }
    SECTION("bad vocab maps") {
        const auto write_map = [&](const nlohmann::json& j) { dir.file("vocab_map.json", j.dump()); };
        const nlohmann::json base = {{"format", "libsae-vocab-map"}, {"version", 1}, {"model_to_gpt2", {5, 9, 5}}};
        write_map(base);
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); },
                                {"vocab_map.json", "GPT-2 id 5 is listed twice", "model ids 0 and 2"});
        nlohmann::json j = base;
        j["model_to_gpt2"] = {1, 50257};
        write_map(j);
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); }, {"model_to_gpt2[1] = 50257"});
        j["model_to_gpt2"] = {1, 2};
        j["unknown_model_id"] = 2;
        write_map(j);
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); }, {"unknown_model_id = 2"});
        j["format"] = "something";
        write_map(j);
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); }, {"'format'"});
        std::vector<int> too_many(51);
        for (int i = 0; i < 51; ++i) too_many[static_cast<std::size_t>(i)] = i;
        write_map({{"format", "libsae-vocab-map"}, {"version", 1}, {"model_to_gpt2", too_many}});
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); }, {"51 model ids", "vocab_size is 50"});
        write_map({{"format", "libsae-vocab-map"}, {"version", 1}, {"model_to_gpt2", {7, 8}}});
        const VocabMap map = load_hf_gpt2<float>(dir.path()).vocab_map;
        require_error<config_error>([&] { (void)map.to_model(3); }, {"GPT-2 id 3", "no unknown_model_id"});
        // -1 marks an unknown slot that is no GPT-2 token: allowed there, nowhere else.
        write_map({{"format", "libsae-vocab-map"}, {"version", 1}, {"model_to_gpt2", {7, -1}}, {"unknown_model_id", 0}});
        require_error<io_error>([&] { (void)load_hf_gpt2<float>(dir.path()); }, {"model_to_gpt2[1] = -1"});
        write_map({{"format", "libsae-vocab-map"}, {"version", 1}, {"model_to_gpt2", {7, -1}}, {"unknown_model_id", 1}});
        const VocabMap with_slot = load_hf_gpt2<float>(dir.path()).vocab_map;
        CHECK(with_slot.to_model(3) == 1);
        CHECK(with_slot.to_gpt2(0) == 7);
        CHECK(with_slot.has_gpt2_token(0));
        CHECK_FALSE(with_slot.has_gpt2_token(1));
        require_error<config_error>([&] { (void)with_slot.to_gpt2(1); }, {"model id 1", "unknown slot"});
    }
}

TEST_CASE("minGPT JSON loader errors", "[gpt2][errors]") {
    const TempDir dir("gpt2_mingpt");
    nlohmann::json root = nlohmann::json::parse(read_whole_file(shared_data("nano-gpt-sort/gpt-nano-sort-model.json")));

    SECTION("n_head cannot come from shapes") {
        root.erase("config");
        const std::string path = dir.file("model.json", root.dump());
        require_error<config_error>([&] { (void)load_mingpt_json<float>(path); }, {"n_head", "MinGptConfigHint"});
        MinGptConfigHint hint;
        hint.n_head = 3;
        const Gpt2<float> model = load_mingpt_json<float>(path, hint);  // the rest from the shapes
        CHECK(model.config().n_layer == 3);
        CHECK(model.config().n_embd == 48);
        CHECK(model.config().n_ctx == 11);
        CHECK(model.config().vocab_size == 3);
    }
    SECTION("missing and mis-shaped tensors") {
        nlohmann::json missing = root;
        missing.erase("transformer.h.2.mlp.c_proj.bias");
        const std::string path = dir.file("missing.json", missing.dump());
        require_error<io_error>([&] { (void)load_mingpt_json<float>(path); },
                                {"missing.json", "'transformer.h.2.mlp.c_proj.bias'", "missing", "[48]"});
        nlohmann::json reshaped = root;
        reshaped["transformer.h.1.mlp.c_fc.weight"]["shape"] = {48, 192};  // same bytes, transposed shape
        const std::string path2 = dir.file("reshaped.json", reshaped.dump());
        require_error<io_error>([&] { (void)load_mingpt_json<float>(path2); },
                                {"'transformer.h.1.mlp.c_fc.weight'", "[48, 192]", "expected [192, 48]"});
        nlohmann::json truncated = root;
        truncated["lm_head.weight"]["data"] = "AAAAAA==";
        const std::string path3 = dir.file("truncated.json", truncated.dump());
        require_error<io_error>([&] { (void)load_mingpt_json<float>(path3); }, {"'lm_head.weight'", "4 bytes"});
    }
    SECTION("nested lists must be rectangular") {
        const std::string path = dir.file("ragged.json", R"({"w": [[1, 2], [3]]})");
        const models::detail::MinGptTensors<float> file(path);
        require_error<io_error>([&] { (void)file.tensor("w", {}); }, {"'w'", "not rectangular"});
    }
}

// ---------------------------------------------------------------- forward-pass errors, hooks

Gpt2<float> tiny_model() { return Gpt2<float>(load_hf_gpt2_weights<float>(tiny_hf_dir)); }

TokenBatch tiny_tokens() {
    return SafetensorsFile(fixtures + "/tiny_hf_expected.safetensors").matrix<double>("tokens").cast<int>();
}

TEST_CASE("forward pass errors: token ids, sequence length, hook names, weight shapes", "[gpt2][errors]") {
    const Gpt2<float> model = tiny_model();
    TokenBatch tokens = tiny_tokens();
    tokens(1, 4) = 50;
    require_error<config_error>([&] { (void)model.forward(tokens); }, {"token id 50", "sequence 1", "position 4", "[0, 50)"});
    tokens(1, 4) = -1;
    require_error<config_error>([&] { (void)model.forward(tokens); }, {"token id -1"});
    const TokenBatch too_long = TokenBatch::Zero(1, 17);
    require_error<shape_error>([&] { (void)model.forward(too_long); }, {"sequence length 17", "n_ctx = 16"});

    require_error<config_error>([&] { (void)HookPoint::parse("blocks.0.hook_mlp_outt"); },
                                {"unknown hook point 'blocks.0.hook_mlp_outt'", "did you mean 'blocks.0.hook_mlp_out'"});
    require_error<config_error>([&] { (void)HookPoint::parse("hook_embd"); }, {"did you mean 'hook_embed'"});
    require_error<config_error>([&] { (void)HookPoint::parse("blocks.x.hook_resid_pre"); }, {"unknown hook point"});
    require_error<config_error>([&] { (void)model.hook_point("blocks.2.hook_resid_pre"); },
                                {"layer 2 is out of range", "2 blocks", "did you mean 'blocks.1.hook_resid_pre'"});
    Hooks<float> hooks;
    hooks.read("blocks.7.hook_resid_post", [](const Matrix<float>&) {});
    require_error<config_error>([&] { (void)model.forward(tiny_tokens(), hooks); }, {"layer 7"});
    Hooks<float> resizing;
    resizing.replace("blocks.0.hook_mlp_out", [](Matrix<float>& a) { a.resize(a.rows(), a.cols() + 1); });
    require_error<shape_error>([&] { (void)model.forward(tiny_tokens(), resizing); }, {"hook 'blocks.0.hook_mlp_out'"});

    CHECK(HookPoint::parse("ln_final") == HookPoint::parse("ln_final.hook_normalized"));
    CHECK(HookPoint::parse("hook_pos_embed") < HookPoint::parse("blocks.0.hook_resid_pre"));
    CHECK(HookPoint::parse("blocks.0.hook_resid_post") < HookPoint::parse("blocks.1.hook_resid_pre"));
    CHECK(HookPoint::parse("blocks.9.hook_resid_post") < HookPoint::parse("ln_final"));
    CHECK(HookPoint::parse("blocks.12.attn.hook_z").name() == "blocks.12.attn.hook_z");

    Gpt2Weights<float> weights = model.weights();
    weights.blocks[1].mlp_c_fc.bias.resize(63);
    require_error<shape_error>([&] { Gpt2<float> broken(weights); }, {"'h.1.mlp.c_fc.bias'", "[63]", "expected [64]"});
}

TEST_CASE("hooks: identity replacement changes nothing, zeroing mlp_out removes the MLP", "[gpt2][hooks]") {
    const Gpt2<float> model = tiny_model();
    const TokenBatch tokens = tiny_tokens();
    const Matrix<float> clean = model.forward(tokens);

    for (const char* name : {"hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.1.attn.hook_attn_scores",
                             "blocks.1.attn.hook_pattern", "blocks.0.mlp.hook_post", "blocks.1.hook_resid_post",
                             "ln_final"}) {
        INFO(name);
        Hooks<float> hooks;
        hooks.replace(name, [](Matrix<float>& a) { a = Matrix<float>(a); });
        CHECK(max_abs_diff(model.forward(tokens, hooks), clean) == 0.0);
    }

    Hooks<float> zero_mlp;
    for (int l = 0; l < 2; ++l) {
        zero_mlp.replace("blocks." + std::to_string(l) + ".hook_mlp_out", [](Matrix<float>& a) { a.setZero(); });
    }
    Gpt2Weights<float> weights = model.weights();
    for (Gpt2BlockWeights<float>& block : weights.blocks) {
        block.mlp_c_proj.weight.setZero();
        block.mlp_c_proj.bias.setZero();
    }
    const Gpt2<float> without_mlp(weights);
    const Matrix<float> zeroed = model.forward(tokens, zero_mlp);
    CHECK(max_abs_diff(zeroed, without_mlp.forward(tokens)) == 0.0);
    CHECK(max_abs_diff(zeroed, clean) > 0.1);

    SECTION("an edit at one point is seen downstream: resid_post of block 0 is resid_pre of block 1") {
        Hooks<float> hooks;
        hooks.replace("blocks.0.hook_resid_post", [](Matrix<float>& a) { a *= 2.0f; });
        Matrix<float> seen;
        hooks.read("blocks.1.hook_resid_pre", [&seen](const Matrix<float>& a) { seen = a; });
        (void)model.forward(tokens, hooks);
        const Matrix<float> before = model.activation(tokens, "blocks.0.hook_resid_post");
        CHECK(max_abs_diff(seen, 2.0f * before) == 0.0);
    }
}

TEST_CASE("hooks: reading stops after the last hook point that is needed", "[gpt2][hooks]") {
    const Gpt2<float> model = tiny_model();
    const TokenBatch tokens = tiny_tokens();
    Matrix<float> from_full_pass;
    Hooks<float> full;
    full.read("blocks.0.hook_mlp_out", [&](const Matrix<float>& a) { from_full_pass = a; });
    (void)model.forward(tokens, full);

    int calls = 0;
    Hooks<float> reading;
    reading.read("blocks.0.hook_mlp_out", [&](const Matrix<float>& a) {
        ++calls;
        CHECK(max_abs_diff(a, from_full_pass) == 0.0);
    });
    CHECK(model.run_hooks(tokens, reading) == 1);  // block 1 never runs
    CHECK(calls == 1);
    CHECK(model.run_hooks(tokens, Hooks<float>().read("hook_pos_embed", [](const Matrix<float>&) {})) == 0);
    CHECK(model.run_hooks(tokens, Hooks<float>().read("blocks.1.hook_resid_pre", [](const Matrix<float>&) {})) == 2);
    CHECK(model.run_hooks(tokens, Hooks<float>().read("ln_final", [](const Matrix<float>&) {})) == 2);

    const ActivationCache<float> cache = model.run_with_cache(tokens, {"blocks.0.hook_mlp_out", "hook_embed"});
    CHECK(cache.names() == std::vector<std::string>{"blocks.0.hook_mlp_out", "hook_embed"});
    CHECK(max_abs_diff(cache.at("blocks.0.hook_mlp_out"), from_full_pass) == 0.0);
    CHECK(cache.at("hook_embed").rows() == tokens.size());
    require_error<config_error>([&] { (void)cache.at("blocks.1.hook_mlp_out"); }, {"was not recorded", "hook_embed"});
}

// ---------------------------------------------------------------- splice metrics

TEST_CASE("next-token cross-entropy by hand", "[gpt2][splice]") {
    // One sequence [2, 1, 3] over a vocabulary of 4: positions 0 and 1 predict 1 and 3.
    // Row 0 = (0, ln 3, 0, 0): p(1) = 3 / 6, loss ln 2. Row 1 = zeros: p(3) = 1/4, loss ln 4.
    Matrix<double> logits = Matrix<double>::Zero(3, 4);
    logits(0, 1) = std::log(3.0);
    logits(2, 0) = 100.0;  // the last position predicts nothing and is ignored
    const TokenBatch tokens = token_batch(std::vector<int>{2, 1, 3});
    CHECK_THAT(next_token_cross_entropy(logits, tokens), Catch::Matchers::WithinRel((std::log(2.0) + std::log(4.0)) / 2, 1e-14));
    require_error<shape_error>([&] { (void)next_token_cross_entropy(logits, token_batch(std::vector<int>{2})); },
                               {"at least 2 tokens"});
}

TEST_CASE("splice metrics: identity recovers everything, zeros nothing", "[gpt2][splice]") {
    const Gpt2<float> model = tiny_model();
    const TokenBatch tokens = tiny_tokens();
    const std::vector<TokenBatch> batches = {tokens, tokens.topRows(1).leftCols(8)};
    const auto identity = [](const Matrix<float>& x) { return x; };
    const auto zeros = [](const Matrix<float>& x) { return Matrix<float>::Zero(x.rows(), x.cols()).eval(); };

    const SpliceMetrics same = splice_metrics(model, batches, "blocks.1.hook_resid_pre", identity);
    CHECK(same.predictions == 2 * 15 + 7);
    CHECK(same.ce_spliced == same.ce_clean);
    CHECK(same.kl_clean_spliced == 0.0);
    CHECK(same.loss_recovered == 1.0);
    CHECK(same.ce_zero_ablated > same.ce_clean);
    double clean_sum = 0.0;
    for (const TokenBatch& b : batches) {
        clean_sum += next_token_cross_entropy(model.forward(b), b) * static_cast<double>(b.rows() * (b.cols() - 1));
    }
    CHECK_THAT(same.ce_clean, Catch::Matchers::WithinRel(clean_sum / 37.0, 1e-12));

    const SpliceMetrics ablated = splice_metrics(model, batches, "blocks.1.hook_resid_pre", zeros);
    CHECK(ablated.ce_spliced == ablated.ce_zero_ablated);
    CHECK(ablated.loss_recovered == 0.0);
    CHECK(ablated.kl_clean_spliced > 0.0);

    const auto halfway = [](const Matrix<float>& x) { return (0.5f * x).eval(); };
    const SpliceMetrics half = splice_metrics(model, batches, model.hook_point("blocks.0.hook_mlp_out"), halfway);
    CHECK(half.kl_clean_spliced > 0.0);
    CHECK(half.ce_clean == same.ce_clean);

    require_error<shape_error>(
        [&] {
            (void)splice_metrics(model, batches, "blocks.0.hook_mlp_out",
                                 [](const Matrix<float>& x) { return Matrix<float>(x.leftCols(3)); });
        },
        {"hook 'blocks.0.hook_mlp_out'", "[32, 3]"});
}

// ---------------------------------------------------------------- sampling

TEST_CASE("sampling: seeded, reproducible, top_k = 1 is greedy", "[gpt2][sampling]") {
    const Gpt2<float> model = tiny_model();
    const std::vector<int> prompt = {3, 14, 15, 9, 26};

    const std::vector<int> a = sample_continuation(model, prompt, 20, 1.0, 0, 42);
    CHECK(a.size() == 20);
    CHECK(sample_continuation(model, prompt, 20, 1.0, 0, 42) == a);
    CHECK(sample_continuation(model, prompt, 20, 1.0, 0, 43) != a);

    // Greedy by hand: append the argmax of the last position's logits, crop to n_ctx = 16.
    std::vector<int> sequence = prompt, greedy;
    for (int step = 0; step < 20; ++step) {
        const std::size_t window = std::min<std::size_t>(sequence.size(), 16);
        const std::vector<int> visible(sequence.end() - static_cast<std::ptrdiff_t>(window), sequence.end());
        const Matrix<float> logits = model.forward(token_batch(visible));
        Index best = 0;
        logits.row(logits.rows() - 1).maxCoeff(&best);
        sequence.push_back(static_cast<int>(best));
        greedy.push_back(static_cast<int>(best));
    }
    CHECK(sample_continuation(model, prompt, 20, 0.0, 0, 1) == greedy);
    CHECK(sample_continuation(model, prompt, 20, 0.7, 1, 99) == greedy);

    const std::vector<std::vector<int>> prompts = {prompt, {1, 2}, {7, 7, 7, 7, 7}};
    const std::vector<std::vector<int>> batch = sample_continuations(model, prompts, 6, 1.0, 5, 10);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        CHECK(batch[i] == sample_continuation(model, prompts[i], 6, 1.0, 5, 10 + i));
    }

    require_error<config_error>([&] { (void)sample_continuation(model, prompt, 1, -1.0, 0, 0); }, {"temperature"});
    require_error<config_error>([&] { (void)sample_continuation(model, prompt, 1, 1.0, -2, 0); }, {"top_k = -2"});
    require_error<shape_error>([&] { (void)sample_continuation(model, {}, 1, 1.0, 0, 0); }, {"prompt 0 is empty"});
}

TEST_CASE("sampling: draws follow softmax(logits / temperature) over the top k", "[gpt2][sampling]") {
    // logits (0, ln 3, -inf-ish, ln 3): top_k = 2 keeps ids 1 and 3 (tie at the cut goes to
    // the lower id, so 3 beats 0); each has probability 1/2. Without top_k at temperature
    // 1: p = (1, 3, ~0, 3) / 7. At temperature 0.5 the weights square: (1, 9, 0, 9) / 19.
    Eigen::RowVector4d logits(0.0, std::log(3.0), -50.0, std::log(3.0));
    std::mt19937_64 rng(5);
    const int draws = 20000;
    const auto frequencies = [&](double temperature, int top_k) {
        std::vector<double> count(4, 0.0);
        for (int i = 0; i < draws; ++i) count[static_cast<std::size_t>(sample_next_token(logits, temperature, top_k, rng))] += 1.0 / draws;
        return count;
    };
    const std::vector<double> top2 = frequencies(1.0, 2);
    CHECK(top2[0] == 0.0);
    CHECK(top2[2] == 0.0);
    CHECK_THAT(top2[1], Catch::Matchers::WithinAbs(0.5, 0.015));
    const std::vector<double> all = frequencies(1.0, 0);
    CHECK_THAT(all[0], Catch::Matchers::WithinAbs(1.0 / 7, 0.015));
    CHECK_THAT(all[1], Catch::Matchers::WithinAbs(3.0 / 7, 0.015));
    const std::vector<double> cold = frequencies(0.5, 0);
    CHECK_THAT(cold[0], Catch::Matchers::WithinAbs(1.0 / 19, 0.01));
    CHECK(sample_next_token(logits, 0.0, 0, rng) == 1);  // argmax, lowest id on ties
    logits(2) = std::nan("");
    require_error<numeric_error>([&] { (void)sample_next_token(logits, 1.0, 0, rng); }, {"NaN"});
}


TEST_CASE("fortunes-gpt2: the shipped model matches its PyTorch trainer", "[gpt2][fortunes]") {
    // Fixture written by tools/gpt2/train_fortunes.py (PyTorch, float32) from the saved
    // model: three validation texts, per-position log-sum-exp and next-token cross-entropy,
    // and the full logits at each text's last position.
    const nlohmann::json reference =
        nlohmann::json::parse(read_whole_file(fixtures + "/fortunes_reference.json"));
    const Matrix<float> last_logits = read_npy<float>(fixtures + "/fortunes_reference.npy");
    const LoadedGpt2<float> loaded = load_hf_gpt2<float>(shared_data("fortunes-gpt2"));
    const BpeTokenizer tokenizer = BpeTokenizer::from_directory(shared_data("gpt2-tokenizer"));
    REQUIRE(loaded.model.config().vocab_size == reference["vocab_size"].get<int>());
    REQUIRE(loaded.vocab_map.unknown_model_id() == reference["unknown_model_id"].get<int>());
    CHECK_FALSE(loaded.vocab_map.has_gpt2_token(reference["unknown_model_id"].get<int>()));

    double cross_entropy_sum = 0.0;
    std::size_t predictions = 0;
    const auto& sequences = reference["sequences"];
    REQUIRE(sequences.size() == static_cast<std::size_t>(last_logits.rows()));
    for (std::size_t s = 0; s < sequences.size(); ++s) {
        const auto& sequence = sequences[s];
        // The tokenizer and the vocabulary map reproduce the trainer's ids.
        const std::vector<std::int32_t> gpt2_ids =
            tokenizer.encode(sequence["text"].get<std::string>(), SpecialTokens::recognise);
        REQUIRE(std::vector<int>(gpt2_ids.begin(), gpt2_ids.end()) == sequence["gpt2_ids"].get<std::vector<int>>());
        const std::vector<int> model_ids = loaded.vocab_map.to_model(std::vector<int>(gpt2_ids.begin(), gpt2_ids.end()));
        REQUIRE(model_ids == sequence["model_ids"].get<std::vector<int>>());

        const Matrix<float> logits = loaded.model.forward(token_batch(model_ids));
        const auto n = static_cast<Index>(model_ids.size());
        const auto logsumexp = sequence["logsumexp"].get<std::vector<double>>();
        const auto target_logit = sequence["target_logit"].get<std::vector<double>>();
        for (Index t = 0; t < n; ++t) {
            const double max_logit = logits.row(t).cast<double>().maxCoeff();
            const double lse = max_logit + std::log((logits.row(t).cast<double>().array() - max_logit).exp().sum());
            CHECK_THAT(lse, Catch::Matchers::WithinAbs(logsumexp[static_cast<std::size_t>(t)], 1e-4));
            if (t + 1 < n) {
                const double target = logits(t, model_ids[static_cast<std::size_t>(t) + 1]);
                CHECK_THAT(target, Catch::Matchers::WithinAbs(target_logit[static_cast<std::size_t>(t)], 1e-4));
                cross_entropy_sum += lse - target;
                ++predictions;
            }
        }
        CHECK(max_abs_diff(logits.row(n - 1), last_logits.row(static_cast<Index>(s))) < 1e-4);
    }
    REQUIRE(predictions == reference["cross_entropy_count"].get<std::size_t>());
    CHECK_THAT(cross_entropy_sum / static_cast<double>(predictions),
               Catch::Matchers::WithinAbs(reference["mean_cross_entropy"].get<double>(), 1e-5));
}

}  // namespace
}  // namespace sae::models::gpt2_tests
