// ShardSource: every row of every shard is served exactly once per epoch, shuffling
// is seeded and bounded by the buffer, a saved position resumes the identical stream,
// and bad shard sets are rejected. Rows carry their own global index (value =
// 1000 * index + column), so the expected multiset of rows is known by construction.
#include <sae/data/shard_source.hpp>
#include <sae/io/npy.hpp>
#include <sae/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_shard_source_cases {

namespace {

using sae::Index;
constexpr Index width = 5;

sae::Matrix<float> indexed_rows(Index first, Index count) {
    sae::Matrix<float> rows(count, width);
    for (Index r = 0; r < count; ++r) {
        for (Index c = 0; c < width; ++c) rows(r, c) = static_cast<float>(1000 * (first + r) + c);
    }
    return rows;
}

/// Shards of 50, 0, 37 (as float16-exact values? no: f32) and 91 rows; the third is a
/// safetensors file holding its rows under "acts" next to an unrelated tensor.
struct Shards {
    sae::test::TempDir temp{"shards"};
    std::string dir = temp.path();
    std::vector<std::string> files;
    Index total = 0;

    Shards() {
        add_npy(50);
        add_npy(0);
        sae::SafetensorsWriter writer;
        writer.add("acts", indexed_rows(total, 37));
        writer.write(dir + "/shard2.safetensors");
        files.push_back(dir + "/shard2.safetensors");
        total += 37;
        add_npy(91);
    }
    void add_npy(Index rows) {
        const std::string path = dir + "/shard" + std::to_string(files.size()) + ".npy";
        sae::write_npy(path, rows > 0 ? indexed_rows(total, rows) : sae::Matrix<float>(0, width));
        files.push_back(path);
        total += rows;
    }
};

Index row_id(const sae::Matrix<float>& batch, Index r) {
    const Index id = static_cast<Index>(batch(r, 0)) / 1000;
    for (Index c = 0; c < width; ++c) REQUIRE(batch(r, c) == static_cast<float>(1000 * id + c));  // rows stay whole
    return id;
}

std::vector<Index> stream(sae::ShardSource<float>& source, std::size_t batches) {
    std::vector<Index> ids;
    sae::Matrix<float> batch;
    for (std::size_t b = 0; b < batches; ++b) {
        source.next_batch(batch);
        REQUIRE(batch.rows() == source.batch_size());
        for (Index r = 0; r < batch.rows(); ++r) ids.push_back(row_id(batch, r));
    }
    return ids;
}

sae::ShardSourceConfig config_for(const Shards& shards, Index batch, Index buffer, std::size_t epochs, std::uint64_t seed) {
    sae::ShardSourceConfig c;
    c.files = shards.files;
    c.tensor = "acts";  // ignored by the .npy shards
    c.batch_size = batch;
    c.shuffle_buffer_rows = buffer;
    c.chunks_per_window = 4;
    c.epochs = epochs;
    c.seed = seed;
    return c;
}

}  // namespace

TEST_CASE("Each row is served once per epoch, shuffled across shards", "[shards]") {
    const Shards shards;
    REQUIRE(shards.total == 178);
    // 178 rows * 2 epochs = 356 = 89 batches of 4: every row exactly twice.
    sae::ShardSource<float> source(config_for(shards, 4, 40, 2, 7));
    CHECK(source.total_rows() == 178);
    CHECK(source.input_dim() == width);
    REQUIRE(source.batches_available() == 89);
    const std::vector<Index> ids = stream(source, 89);
    std::map<Index, int> seen;
    for (Index id : ids) ++seen[id];
    REQUIRE(seen.size() == 178);
    for (const auto& [id, count] : seen) REQUIRE(count == 2);
    // Each epoch is a permutation of all rows, in a different order each time.
    std::vector<Index> first(ids.begin(), ids.begin() + 178), second(ids.begin() + 178, ids.end());
    CHECK(first != second);
    std::vector<Index> sorted = first;
    std::sort(sorted.begin(), sorted.end());
    for (Index i = 0; i < 178; ++i) REQUIRE(sorted[static_cast<std::size_t>(i)] == i);
    CHECK(first != sorted);
    // Chunks from different shards mix within the first 40 rows (one window).
    const auto shard_of = [](Index id) { return id < 50 ? 0 : id < 87 ? 2 : 3; };
    std::vector<int> shards_in_window;
    for (std::size_t i = 0; i < 40; ++i) shards_in_window.push_back(shard_of(first[i]));
    std::sort(shards_in_window.begin(), shards_in_window.end());
    CHECK(std::unique(shards_in_window.begin(), shards_in_window.end()) - shards_in_window.begin() >= 2);
    // The stream is used up after the configured epochs.
    sae::Matrix<float> batch;
    REQUIRE_THROWS_WITH(source.next_batch(batch), Catch::Contains("epochs"));
}

TEST_CASE("Without a shuffle buffer, rows come in file order", "[shards]") {
    const Shards shards;
    sae::ShardSource<float> source(config_for(shards, 7, 0, 1, 7));
    const std::vector<Index> ids = stream(source, source.batches_available());
    for (std::size_t i = 0; i < ids.size(); ++i) REQUIRE(ids[i] == static_cast<Index>(i));
}

TEST_CASE("The same seed gives the same stream, another seed another", "[shards]") {
    const Shards shards;
    sae::ShardSource<float> a(config_for(shards, 8, 32, 0, 1)), b(config_for(shards, 8, 32, 0, 1)),
        c(config_for(shards, 8, 32, 0, 2));
    REQUIRE(a.batches_available() == std::numeric_limits<std::size_t>::max());  // epochs = 0: forever
    const std::vector<Index> ids_a = stream(a, 60);  // crosses two epoch boundaries
    CHECK(ids_a == stream(b, 60));
    CHECK(ids_a != stream(c, 60));
}

TEST_CASE("A saved stream position resumes the identical stream", "[shards][resume]") {
    const Shards shards;
    const std::size_t stop = GENERATE(0, 1, 5, 22, 23, 30);  // inside windows, at their ends, in epoch 2
    sae::ShardSource<float> original(config_for(shards, 8, 32, 3, 9));
    stream(original, stop);
    sae::StateDict<float> state;
    original.save_state(state);
    const std::vector<Index> expected = stream(original, 20);

    sae::ShardSource<float> resumed(config_for(shards, 8, 32, 3, 9));
    stream(resumed, 3);  // elsewhere in the stream before loading
    resumed.load_state(state);
    CHECK(stream(resumed, 20) == expected);

    // A position saved on other data (here: another seed) is refused.
    sae::ShardSource<float> other(config_for(shards, 8, 32, 3, 10));
    REQUIRE_THROWS_WITH(other.load_state(state), Catch::Contains("data"));
}

TEST_CASE("Batch parts: P sources each read their rows, together the whole stream", "[shards][parts]") {
    const Shards shards;
    // Batch 7 against windows of 32 rows (chunks of 8) and 178 rows: batches cross
    // window and epoch ends; buffer 0 is file order.
    const Index buffer = GENERATE(Index{32}, Index{0});
    const int parts = GENERATE(1, 2, 3, 5);
    INFO("buffer " << buffer << ", parts " << parts);
    sae::ShardSource<float> whole(config_for(shards, 7, buffer, 3, 4));
    const std::size_t batches = 70;  // 490 rows: into the third epoch
    const std::vector<Index> expected = stream(whole, batches);

    std::vector<std::unique_ptr<sae::ShardSource<float>>> sources;
    for (int p = 0; p < parts; ++p) {
        sources.push_back(std::make_unique<sae::ShardSource<float>>(config_for(shards, 7, buffer, 3, 4)));
        sources.back()->keep_batch_part(p, parts);
    }
    std::vector<Index> joined;
    sae::Matrix<float> batch;
    for (std::size_t b = 0; b < batches; ++b) {
        Index rows = 0;
        for (int p = 0; p < parts; ++p) {
            sources[static_cast<std::size_t>(p)]->next_batch(batch);
            // Rank p's rows: [7 p / P, 7 (p + 1) / P), as rank_rows in sae/mpi/data_parallel.hpp.
            REQUIRE(batch.rows() == 7 * (p + 1) / parts - 7 * p / parts);
            for (Index r = 0; r < batch.rows(); ++r) joined.push_back(row_id(batch, r));
            rows += batch.rows();
        }
        REQUIRE(rows == 7);
    }
    CHECK(joined == expected);

    // A part keeps only its share of a window in memory... and a position saved by one
    // part resumes the whole stream, or another split of it.
    sae::StateDict<float> state;
    sources.front()->save_state(state);
    sae::ShardSource<float> resumed(config_for(shards, 7, buffer, 3, 4));
    resumed.load_state(state);
    sae::ShardSource<float> continued(config_for(shards, 7, buffer, 3, 4));
    stream(continued, batches);
    CHECK(stream(resumed, 5) == stream(continued, 5));
    sae::ShardSource<float> second_half(config_for(shards, 7, buffer, 3, 4));
    second_half.load_state(state);
    second_half.keep_batch_part(1, 2);
    second_half.next_batch(batch);
    REQUIRE(batch.rows() == 4);
    sae::ShardSource<float> reference(config_for(shards, 7, buffer, 3, 4));
    stream(reference, batches);
    const std::vector<Index> next = stream(reference, 1);
    for (Index r = 0; r < 4; ++r) CHECK(row_id(batch, r) == next[static_cast<std::size_t>(3 + r)]);

    CHECK_THROWS_AS(resumed.keep_batch_part(2, 2), sae::config_error);
}

TEST_CASE("Bad shard sets are rejected with the file named", "[shards][errors]") {
    const Shards shards;
    sae::ShardSourceConfig c = config_for(shards, 8, 32, 1, 0);

    const std::string narrow = shards.dir + "/narrow.npy";
    sae::write_npy(narrow, sae::Matrix<float>::Zero(3, width + 1));
    c.files.push_back(narrow);
    REQUIRE_THROWS_AS(sae::ShardSource<float>(c), sae::shape_error);
    REQUIRE_THROWS_WITH(sae::ShardSource<float>(c), Catch::Contains("narrow.npy"));

    c.files = {shards.dir + "/missing.npy"};
    REQUIRE_THROWS_WITH(sae::ShardSource<float>(c), Catch::Contains("missing.npy"));

    c.files = {shards.dir + "/notes.txt"};
    REQUIRE_THROWS_WITH(sae::ShardSource<float>(c), Catch::Contains("notes.txt") && Catch::Contains(".npy"));

    c.files = {shards.files[1]};  // only the empty shard
    REQUIRE_THROWS_WITH(sae::ShardSource<float>(c), Catch::Contains("no rows"));

    c = config_for(shards, 8, 32, 1, 0);
    c.tensor = "";  // the safetensors shard would still work (one tensor); give it two
    sae::SafetensorsWriter two;
    two.add("acts", indexed_rows(0, 2));
    two.add("other", indexed_rows(0, 2));
    two.write(shards.dir + "/two.safetensors");
    c.files = {shards.dir + "/two.safetensors"};
    REQUIRE_THROWS_WITH(sae::ShardSource<float>(c), Catch::Contains("data.tensor"));

    c.batch_size = 0;
    REQUIRE_THROWS_AS(sae::ShardSource<float>(c), sae::config_error);
}

}  // namespace test_shard_source_cases
