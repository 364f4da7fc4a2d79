// Encoding with one const SAE from several threads at once (issue 10): four std::threads
// share one const Autoencoder and run encode, encode_sparse, decode and forward on their
// own batches and on one batch they all use, many times over; every result must be
// bit-identical to the same call made serially afterwards (so the threads are also the
// first to use Eigen's kernels). tools/run-tests builds this file alone under
// ThreadSanitizer (tests/CMakeLists.txt, SAE_TSAN), where any data race on those paths
// (a scratch buffer or cache hidden in the model or its activation) fails the run.
#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/autoencoder.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_concurrent_encode_cases {

namespace {

using sae::Matrix;

constexpr int threads = 4;
constexpr int repeats = 8;

/// What one call sequence produces for one batch.
struct Outputs {
    Matrix<float> dense_code;
    Matrix<float> sparse_code;  // encode_sparse, densified
    Matrix<float> decoded;      // decode of the sparse code
    Matrix<float> reconstruction;

    bool operator==(const Outputs& other) const {
        return dense_code == other.dense_code && sparse_code == other.sparse_code && decoded == other.decoded &&
               reconstruction == other.reconstruction;
    }
};

template <class Model>
Outputs run_all(const Model& sae, const Matrix<float>& batch) {
    Outputs out;
    out.dense_code = sae.encode(batch);
    sae::SparseCode<float> code;
    sae.encode_sparse(batch, code);
    out.sparse_code = Matrix<float>(code);
    out.decoded = sae.decode(code);
    out.reconstruction = sae.forward(batch);
    return out;
}

/// Every thread waits at the start line so that the calls really overlap.
template <class Model>
std::vector<std::vector<Outputs>> encode_concurrently(const Model& sae, const std::vector<Matrix<float>>& own,
                                                      const Matrix<float>& shared) {
    std::vector<std::vector<Outputs>> results(threads);
    std::atomic<int> ready{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < threads) std::this_thread::yield();
            for (int r = 0; r < repeats; ++r) {
                results[static_cast<std::size_t>(t)].push_back(run_all(sae, r % 2 == 0 ? own[static_cast<std::size_t>(t)] : shared));
            }
        });
    }
    for (std::thread& thread : pool) thread.join();
    return results;
}

template <class Model>
void check_against_serial(const Model& sae) {
    std::vector<Matrix<float>> own;
    for (int t = 0; t < threads; ++t) own.push_back(sae::test::gaussian_matrix<float>(64, 32, 100 + static_cast<std::uint64_t>(t)));
    // More rows than one selection block (256): the blocked TopK path is used too.
    const Matrix<float> shared = sae::test::gaussian_matrix<float>(300, 32, 99);

    const std::vector<std::vector<Outputs>> results = encode_concurrently(sae, own, shared);

    const Outputs shared_expected = run_all(sae, shared);
    for (int t = 0; t < threads; ++t) {
        const Outputs own_expected = run_all(sae, own[static_cast<std::size_t>(t)]);
        CHECK(own_expected.sparse_code.count() > 0);  // the codes are not trivially empty
        REQUIRE(results[static_cast<std::size_t>(t)].size() == static_cast<std::size_t>(repeats));
        for (int r = 0; r < repeats; ++r) {
            INFO("thread " << t << ", repeat " << r);
            CHECK(results[static_cast<std::size_t>(t)][static_cast<std::size_t>(r)] == (r % 2 == 0 ? own_expected : shared_expected));
        }
    }
}

}  // namespace

TEST_CASE("One const TopK SAE encodes from 4 threads at once exactly as serially", "[concurrency]") {
    const sae::Autoencoder<float, sae::TopK> sae({32, 128, false, true, true}, {8, true}, 5);
    check_against_serial(sae);
}

TEST_CASE("One const BatchTopK SAE (inference threshold) encodes from 4 threads at once exactly as serially",
          "[concurrency]") {
    sae::Autoencoder<float, sae::BatchTopK> trained({32, 128, false, true, true}, {8, 0.999}, 6);
    trained.activation().set_threshold(0.25f);  // as a trained SAE holds it
    const sae::Autoencoder<float, sae::BatchTopK>& sae = trained;
    check_against_serial(sae);
}

}  // namespace test_concurrent_encode_cases
