// Every parser of libsae fed 10,000 damaged versions of real files (the seeds in
// tests/fixtures/mutations/, written by fuzz/make_seeds.py), deterministically: the
// same inputs on every run and machine. Each input must end in success or a
// sae::error; another exception fails the test, and a crash, an out-of-bounds access,
// undefined behaviour or a leak fails it in CI, which runs this file under
// AddressSanitizer + UndefinedBehaviorSanitizer. The drivers (fuzz/drivers/) and the
// mutation engine (tests/support/mutations.hpp) are those of the libFuzzer targets, so
// an input reported here replays there: `sae_fuzz_<parser> <saved input>`.
//
// The regression cases at the end hold the exact inputs of the bugs found on the way.

// GCC 12 at -O2 reports a false "may be used uninitialized" inside Eigen's triangular
// matrix-vector kernel (reached from the QR that initialises an Autoencoder); the
// warning is about Eigen's code, not this file's, and clang builds check the rest.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "../fuzz/drivers/activation_manifest.hpp"
#include "../fuzz/drivers/bpe.hpp"
#include "../fuzz/drivers/checkpoint.hpp"
#include "../fuzz/drivers/edf.hpp"
#include "../fuzz/drivers/eeglab.hpp"
#include "../fuzz/drivers/gpt2_hf.hpp"
#include "../fuzz/drivers/gpt2_mingpt.hpp"
#include "../fuzz/drivers/lexicon.hpp"
#include "../fuzz/drivers/npy.hpp"
#include "../fuzz/drivers/run_config.hpp"
#include "../fuzz/drivers/saelens.hpp"
#include "../fuzz/drivers/safetensors.hpp"
#include "support/mutations.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <typeinfo>
#include <vector>

namespace test_parser_mutations_cases {

using sae::fuzz::Driver;
using sae::fuzz::Workspace;
namespace mutation = sae::test::mutation;

constexpr std::size_t mutants_per_parser = 10'000;
constexpr std::size_t max_part_bytes = std::size_t{1} << 16;

/// How a driver ended on one input.
enum class Outcome { accepted, rejected, failed };

/// Runs the driver on `parts`; unless it succeeds, `what` says what happened.
Outcome run_driver(const Driver& driver, Workspace& workspace, const std::vector<std::string>& parts, std::string& what) {
    workspace.set_files(driver.slots, parts);
    try {
        driver.run(workspace);
        return Outcome::accepted;
    } catch (const sae::error& e) {
        what = e.what();
        return Outcome::rejected;
    } catch (const std::exception& e) {
        what = std::string("exception ") + typeid(e).name() + ": " + e.what();
    } catch (...) {
        what = "an exception that is not a std::exception";
    }
    return Outcome::failed;
}

/// The bundle of a failing input, saved where the fuzz target can replay it.
std::string save_failure(const Driver& driver, std::size_t index, const std::vector<std::string>& parts) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("sae_mutation_failure_" + std::string(driver.name) + "_" + std::to_string(index)))
                                 .string();
    sae::test::write_bytes(path, mutation::join_parts(parts));
    return path;
}

/// The mutation test of one parser (see the file comment).
void check_mutants(const Driver& driver) {
    const std::vector<mutation::Seed> seeds =
        mutation::load_seeds(std::string(SAE_TEST_FIXTURES_DIR "/mutations/") + driver.name, driver.slots);
    REQUIRE(!seeds.empty());
    Workspace workspace(driver.name);
    std::string what;
    // The seeds are valid files: a driver that rejected them would test nothing.
    for (const mutation::Seed& seed : seeds) {
        if (run_driver(driver, workspace, seed.parts, what) != Outcome::accepted) {
            FAIL(driver.name << " seed " << seed.name << " is not read: " << what);
        }
    }
    std::vector<std::vector<std::string>> donors;
    for (const mutation::Seed& seed : seeds) donors.push_back(seed.parts);

    std::uint64_t stream = 0xC0FFEE;
    for (const char* c = driver.name; *c != '\0'; ++c) stream = stream * 131 + static_cast<unsigned char>(*c);
    mutation::Mutator mutator(stream);
    std::size_t accepted = 0, rejected = 0;
    for (std::size_t i = 0; i < mutants_per_parser; ++i) {
        const mutation::Seed& seed = seeds[i % seeds.size()];
        const std::vector<std::string> parts = mutator.mutate_parts(seed.parts, donors, max_part_bytes);
        const Outcome outcome = run_driver(driver, workspace, parts, what);
        if (outcome == Outcome::failed) {
            FAIL(driver.name << " mutant " << i << " of seed " << seed.name << ": " << what << "\n  input saved as "
                             << save_failure(driver, i, parts) << " (replay: sae_fuzz_" << driver.name << " FILE)");
        }
        (outcome == Outcome::accepted ? accepted : rejected) += 1;
    }
    std::printf("parser mutations: %s: %zu mutants of %zu seeds, %zu read, %zu rejected with a sae::error\n", driver.name,
                mutants_per_parser, seeds.size(), accepted, rejected);
    INFO(driver.name << ": " << accepted << " mutants accepted, " << rejected << " rejected");
    // Both outcomes occur: the mutants reach past the first check of the parser.
    CHECK(accepted > 0);
    CHECK(rejected > 0);
}

TEST_CASE("mutated .npy files end in success or a sae::error", "[mutation]") { check_mutants(sae::fuzz::npy_driver()); }

TEST_CASE("mutated safetensors files end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::safetensors_driver());
}

TEST_CASE("mutated SAELens and sparsify directories end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::saelens_driver());
}

TEST_CASE("mutated run configurations end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::run_config_driver());
}

TEST_CASE("mutated checkpoints end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::checkpoint_driver());
}

TEST_CASE("mutated EDF, EDF+ and BDF files end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::edf_driver());
}

TEST_CASE("mutated EEGLAB .set/.fdt/.locs files end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::eeglab_driver());
}

TEST_CASE("mutated GPT-2 vocab.json/merges.txt end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::bpe_driver());
}

TEST_CASE("mutated Hugging Face GPT-2 directories end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::gpt2_hf_driver());
}

TEST_CASE("mutated minGPT JSON weights end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::gpt2_mingpt_driver());
}

TEST_CASE("mutated VADER lexicons end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::lexicon_driver());
}

TEST_CASE("mutated activation manifests and shards end in success or a sae::error", "[mutation]") {
    check_mutants(sae::fuzz::activation_manifest_driver());
}

// ---- regressions: inputs of the bugs found with the fuzz targets or while writing their
// drivers (each case names its fix) ----

using Catch::Matchers::Contains;
using sae::test::TempDir;

/// 10^6 nested arrays, 2 MB. nlohmann parses them without recursion, but what came after
/// the parse recursed once per level (dump() in error messages, copies, comparisons,
/// json::diff, the minGPT nested-list reader): a stack overflow in every JSON reader, and
/// key paths quadratic in the depth in the run-config reader (the sae_fuzz_* targets on
/// 400 KB inputs: AddressSanitizer stack-overflow, libFuzzer out-of-memory). Fixed by a nesting limit of 64 in every JSON parse
/// (include/sae/io/json_depth.hpp).
std::string deeply_nested() { return std::string(1'000'000, '[') + std::string(1'000'000, ']'); }

/// A safetensors file with no tensors and this header JSON.
std::string safetensors_with_header(const std::string& json) {
    std::string bytes(8, '\0');
    for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFFu);
    return bytes + json;
}

TEST_CASE("Every JSON reader rejects JSON nested 10^6 deep with an io_error (regression)", "[mutation][regression]") {
    TempDir dir("json_depth");
    const std::string deep = deeply_nested();
    const auto nested_error = Contains("JSON nested deeper than 64 levels");
    SECTION("safetensors header") {
        CHECK_THROWS_WITH(sae::SafetensorsFile(dir.file("a.safetensors", safetensors_with_header("{\"a\": " + deep + "}"))),
                          nested_error);
    }
    SECTION("SAELens cfg.json") {
        dir.file("sae/cfg.json", "{\"d_in\": " + deep + ", \"d_sae\": 8}");
        dir.file("sae/sae_weights.safetensors", safetensors_with_header("{}"));
        CHECK_THROWS_WITH(sae::load_any_sae<float>(dir.file("sae")), nested_error);
        CHECK_THROWS_WITH(sae::read_sae_info(dir.file("sae")), nested_error);
    }
    SECTION("run configuration") {
        CHECK_THROWS_WITH(sae::load_run_config(dir.file("run.json", "{\"seed\": " + deep + "}")), nested_error);
    }
    SECTION("checkpoint metadata") {
        const std::string metadata = nlohmann::json{{"__metadata__",
                                                     {{"format", "libsae-checkpoint"},
                                                      {"version", "1"},
                                                      {"state", "{}"},
                                                      {"config", "{\"seed\": " + deep + "}"}}}}
                                         .dump();
        CHECK_THROWS_WITH(sae::load_checkpoint<float>(dir.file("c.safetensors", safetensors_with_header(metadata))),
                          nested_error);
    }
    SECTION("GPT-2 config.json and vocab_map.json") {
        CHECK_THROWS_WITH(sae::models::read_hf_gpt2_config(dir.file("config.json", "{\"n_layer\": " + deep + "}")),
                          nested_error);
        CHECK_THROWS_WITH(sae::models::VocabMap::load(dir.file("vocab_map.json", "{\"model_to_gpt2\": " + deep + "}")),
                          nested_error);
    }
    SECTION("minGPT weights") {
        const std::string one = std::string(1'000'000, '[') + "1" + std::string(1'000'000, ']');
        CHECK_THROWS_WITH(sae::models::load_mingpt_json<float>(dir.file("m.json", "{\"transformer.wte.weight\": " + one + "}")),
                          nested_error);
    }
    SECTION("activation manifest") {
        CHECK_THROWS_WITH(sae::models::ActivationManifest::load(dir.file("manifest.json", "{\"format\": " + deep + "}")),
                          nested_error);
    }
}

TEST_CASE("Shard row counts that overflow 64 bits are an io_error (regression)", "[mutation][regression]") {
    // rows 2^63 - 1 and 1: the running total overflowed (undefined behaviour, UBSan).
    // Fixed in ActivationManifest::from_json (models/activation_extractor.hpp).
    const nlohmann::json manifest = nlohmann::json::parse(R"({
        "format": "libsae-activations", "version": 1, "model": "m", "hook": "blocks.0.hook_mlp_out", "d": 3,
        "dtype": "F32", "tokens": 0, "windows": 0, "context_length": 4, "prepend_bos": true, "exclude_bos": true,
        "document_separator": "", "encoder": "", "text_files": [], "tensor": "",
        "shards": [{"file": "a.npy", "rows": 9223372036854775807}, {"file": "b.npy", "rows": 1}]})");
    CHECK_THROWS_WITH(sae::models::ActivationManifest::from_json(manifest, "manifest.json"),
                      Contains("'shards[1].rows'") && Contains("overflow"));
}

TEST_CASE("A shard of 10^12 rows without values is an io_error, not a 10^12-entry chunk table (regression)",
          "[mutation][regression]") {
    // shape (10^12, 0): zero data bytes, so the file is consistent, but ShardSource cut
    // the rows into chunks of two (10^12 / 2 table entries). Fixed in ShardSource
    // (data/shard_source.hpp).
    TempDir dir("zero_width_shard");
    sae::ShardSourceConfig config;
    config.files = {dir.file("empty_rows.npy", sae::npy_header(sae::DType::f32, {1'000'000'000'000, 0}))};
    config.batch_size = 2;
    config.shuffle_buffer_rows = 4;
    config.chunks_per_window = 2;
    CHECK_THROWS_WITH(sae::ShardSource<float>(config), Contains("empty_rows.npy") && Contains("no values"));
}

}  // namespace test_parser_mutations_cases
