// Tests of sae::models::Gpt2KvCache and sample_continuations_cached
// (include/sae/models/kv_cache.hpp) against the full forward pass of Gpt2 (gpt2.hpp, itself
// checked against PyTorch in test_gpt2.cpp) and against sample_continuations (sampling.hpp):
// the cache must change the cost, never the numbers.

#include <sae/models/gpt2.hpp>
#include <sae/models/gpt2_weights.hpp>
#include <sae/models/kv_cache.hpp>
#include <sae/models/sampling.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace test_kv_cache_cases {

using sae::Index;
using sae::models::Gpt2;
using sae::models::Gpt2KvCache;
using sae::models::TokenBatch;
using Catch::Matchers::Contains;

namespace {

/// A random model whose weights are large enough (stddev 0.3) for sharp, position-dependent
/// attention, so that a wrong mask or position shows in the logits.
Gpt2<float> random_model() {
    sae::models::Gpt2Config config;
    config.n_layer = 2;
    config.n_head = 2;
    config.n_embd = 8;
    config.n_ctx = 12;
    config.vocab_size = 23;
    return Gpt2<float>(sae::models::random_gpt2_weights<float>(config, 7, 0.3));
}

TokenBatch columns(const TokenBatch& tokens, Index begin, Index count) {
    return tokens.middleCols(begin, count);
}

double max_abs_diff(const sae::Matrix<float>& a, const sae::Matrix<float>& b) {
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    return static_cast<double>((a - b).cwiseAbs().maxCoeff());
}

}  // namespace

TEST_CASE("kv cache: appended logits equal the full pass at every length", "[kv_cache]") {
    const Gpt2<float> model = random_model();
    TokenBatch tokens(2, 12);
    tokens << 3, 14, 0, 22, 7, 7, 19, 1, 5, 11, 2, 16,  //
        9, 9, 21, 4, 0, 13, 6, 18, 10, 3, 12, 8;
    // Prefill 5 positions, then 3, then one at a time up to n_ctx = 12.
    Gpt2KvCache<float> cache(model, 2);
    Index length = 0;
    for (const Index chunk : {5, 3, 1, 1, 1, 1}) {
        const sae::Matrix<float> cached = cache.append(columns(tokens, length, chunk));
        length += chunk;
        REQUIRE(cache.length() == length);
        const sae::Matrix<float> full = model.last_token_logits(columns(tokens, 0, length));
        INFO("length " << length);
        CHECK(max_abs_diff(cached, full) < 1e-5);
        CHECK(full.cwiseAbs().maxCoeff() > 0.5f);  // the logits are not all near zero
    }
    cache.clear();
    CHECK(cache.length() == 0);
    CHECK(max_abs_diff(cache.append(columns(tokens, 0, 4)), model.last_token_logits(columns(tokens, 0, 4))) < 1e-5);
}

TEST_CASE("kv cache: an untied head and a non-default MLP width, one sequence", "[kv_cache]") {
    sae::models::Gpt2Config config;
    config.n_layer = 3;
    config.n_head = 4;
    config.n_embd = 12;
    config.n_inner = 20;
    config.n_ctx = 9;
    config.vocab_size = 17;
    config.tied_lm_head = false;
    const Gpt2<float> model(sae::models::random_gpt2_weights<float>(config, 11, 0.3));
    TokenBatch tokens(1, 9);
    tokens << 16, 0, 5, 5, 9, 2, 13, 1, 7;
    Gpt2KvCache<float> cache(model, 1);
    for (Index t = 0; t < 9; ++t) {
        const sae::Matrix<float> cached = cache.append(columns(tokens, t, 1));
        INFO("position " << t);
        CHECK(max_abs_diff(cached, model.last_token_logits(columns(tokens, 0, t + 1))) < 1e-5);
    }
}

TEST_CASE("kv cache: sampling draws the tokens sample_continuations draws", "[kv_cache]") {
    const Gpt2<float> model = random_model();
    // Prompts of two lengths (two caches); 10 new tokens take the 4-token prompts past
    // n_ctx = 12, so the sliding-window fallback runs too.
    const std::vector<std::vector<int>> prompts = {{1, 2, 3, 4}, {5}, {6, 7, 8, 9}, {22, 0, 11, 4}};
    for (const int top_k : {0, 5}) {
        const auto reference = sae::models::sample_continuations(model, prompts, 10, 1.0, top_k, 99);
        const auto cached = sae::models::sample_continuations_cached(model, prompts, 10, 1.0, top_k, 99);
        CHECK(cached == reference);
    }
    const auto greedy = sae::models::sample_continuations_cached(model, prompts, 3, 0.0, 0, 1);
    CHECK(greedy == sae::models::sample_continuations(model, prompts, 3, 0.0, 0, 1));
    CHECK(sae::models::sample_continuations_cached(model, prompts, 0, 1.0, 0, 1) ==
          std::vector<std::vector<int>>(prompts.size()));
}

TEST_CASE("kv cache: banned tokens are never drawn", "[kv_cache]") {
    const Gpt2<float> model = random_model();
    const std::vector<std::vector<int>> prompts = {{1, 2}, {3}};
    // Greedy decoding picks the argmax; banning each greedy choice in turn forces another.
    const auto free_run = sae::models::sample_continuations_cached(model, prompts, 6, 0.0, 0, 1);
    const std::vector<int> banned = {free_run[0][0], free_run[1][0]};
    const auto restricted = sae::models::sample_continuations_cached(model, prompts, 6, 0.0, 0, 1, banned);
    // Sampled at temperature 1 for 30 steps per prompt: the two ids are drawn without the
    // ban (so the check below can fail), never with it.
    const auto unrestricted = sae::models::sample_continuations_cached(model, prompts, 30, 1.0, 0, 5);
    long drawn = 0;
    for (const auto& run : unrestricted) {
        for (int banned_id : banned) drawn += std::count(run.begin(), run.end(), banned_id);
    }
    CHECK(drawn > 0);
    const auto sampled = sae::models::sample_continuations_cached(model, prompts, 30, 1.0, 0, 5, banned);
    for (const auto& run : {restricted[0], restricted[1], sampled[0], sampled[1]}) {
        for (int banned_id : banned) CHECK(std::count(run.begin(), run.end(), banned_id) == 0);
    }
    CHECK_THROWS_WITH(sae::models::sample_continuations_cached(model, prompts, 2, 1.0, 0, 1, {23}),
                      Contains("banned token id 23"));
}

TEST_CASE("kv cache: errors name the problem and leave the cache unchanged", "[kv_cache][errors]") {
    const Gpt2<float> model = random_model();
    CHECK_THROWS_AS(Gpt2KvCache<float>(model, 0), sae::config_error);
    Gpt2KvCache<float> cache(model, 2);
    CHECK_THROWS_WITH(cache.append(TokenBatch::Zero(1, 3)), Contains("1 sequences for a cache of 2"));
    CHECK_THROWS_AS(cache.append(TokenBatch(2, 0)), sae::shape_error);
    TokenBatch bad = TokenBatch::Zero(2, 3);
    bad(1, 2) = 23;
    CHECK_THROWS_WITH(cache.append(bad), Contains("token id 23 (sequence 1, position 2)"));
    CHECK(cache.length() == 0);
    cache.append(TokenBatch::Zero(2, 10));
    CHECK_THROWS_WITH(cache.append(TokenBatch::Zero(2, 3)), Contains("10 stored + 3 new positions exceed"));
    CHECK(cache.length() == 10);
    CHECK_THROWS_AS(sae::models::sample_continuations_cached(model, {{1}, {}}, 2, 1.0, 0, 1), sae::shape_error);
    CHECK_THROWS_AS(sae::models::sample_continuations_cached(model, {{1}}, 2, -1.0, 0, 1), sae::config_error);
}

}  // namespace test_kv_cache_cases
