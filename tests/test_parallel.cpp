// What libsae runs on several threads gives the same result on any number of threads,
// bit for bit, and parallel_for keeps its contract (parallel.hpp): every body runs once,
// the first exception is rethrown after all have run, and a loop inside a loop's body
// stays on its thread. The regions covered: the streamed encoder, the training step
// (whole batch and micro-batches; TopK, BatchTopK, ReLU + L1), the MFR penalty and the
// ensemble's members. tools/run-tests also builds this file under ThreadSanitizer with
// OpenMP (tests/CMakeLists.txt, SAE_TSAN), where a data race in any of these regions
// fails the run. The tests are built with OpenMP wherever the compiler has it; without
// it a loop runs on one thread and the comparisons across thread counts are skipped.
#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/parallel.hpp>
#include <sae/core/tile_product.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/mfr/ensemble.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"
#include "support/state_equality.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_parallel_cases {

namespace {

using sae::Index;
using sae::Matrix;

/// Sets the OpenMP thread count for its lifetime (no effect without OpenMP).
class ThreadCount {
public:
    explicit ThreadCount(int threads) {
#if defined(_OPENMP)
        saved_ = omp_get_max_threads();
        omp_set_num_threads(threads);
#else
        (void)threads;
#endif
    }
    ~ThreadCount() {
#if defined(_OPENMP)
        omp_set_num_threads(saved_);
#endif
    }
    ThreadCount(const ThreadCount&) = delete;
    ThreadCount& operator=(const ThreadCount&) = delete;

private:
    int saved_ = 1;
};

/// Sets the cache sizes Eigen blocks its products for (and the encoder groups its row
/// blocks by, encoder_stream.hpp) for its lifetime.
class CacheSizes {
public:
    CacheSizes(std::ptrdiff_t l1, std::ptrdiff_t l2, std::ptrdiff_t l3) {
        Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1_, &l2_, &l3_);
        Eigen::setCpuCacheSizes(l1, l2, l3);
    }
    ~CacheSizes() { Eigen::setCpuCacheSizes(l1_, l2_, l3_); }
    CacheSizes(const CacheSizes&) = delete;
    CacheSizes& operator=(const CacheSizes&) = delete;

private:
    std::ptrdiff_t l1_ = 0, l2_ = 0, l3_ = 0;
};

/// run(threads) on one thread and on three; the caller compares the two results.
template <class Run>
auto on_one_and_three_threads(Run&& run) {
#if !defined(_OPENMP)
    WARN("built without OpenMP: both runs use one thread");
#endif
    auto one = [&] {
        ThreadCount threads(1);
        return run();
    }();
    auto three = [&] {
        ThreadCount threads(3);
        return run();
    }();
    return std::make_pair(std::move(one), std::move(three));
}

sae::TrainingConfig adam_at(double lr) {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = lr;
    return training;
}

/// Three steps of one SAE on a 700-row batch (three encoder blocks of 256 rows) with
/// 600 latents (two GEMM chunks of 512, several latent blocks).
template <template <class> class Act>
sae::TrainableSae<float, Act> trained(const typename Act<float>::Config& activation, sae::TrainingConfig training) {
    const Matrix<float> batch = sae::test::gaussian_matrix<float>(700, 24, 5);
    sae::TrainableSae<float, Act> model({24, 600}, activation, training, 11);
    for (int step = 0; step < 3; ++step) model.train_step(batch);
    return model;
}

/// Everything a checkpoint of `trained` would hold: weights, Adam's moments, counters,
/// firing statistics, activation state (and an ensemble's matchings).
template <class Trained>
sae::StateDict<float> state_of(const Trained& trained) {
    sae::StateDict<float> state;
    trained.save_state(state);
    return state;
}

}  // namespace

TEST_CASE("parallel_for runs every body once and rethrows the first failure", "[parallel]") {
    const int threads = GENERATE(1, 3);
    ThreadCount count(threads);
    std::vector<std::atomic<int>> runs(200);
    std::atomic<bool> slot_in_range{true};
    const int available = sae::detail::available_threads();
    const auto body = [&](Index i, int slot) {
        runs[static_cast<std::size_t>(i)].fetch_add(1);
        if (slot < 0 || slot >= available) slot_in_range = false;
        if (i % 50 == 7) throw std::runtime_error("body " + std::to_string(i));
    };
    CHECK_THROWS_AS(sae::detail::parallel_for(200, body), std::runtime_error);
    for (const auto& r : runs) CHECK(r.load() == 1);  // the failures did not stop the others
    CHECK(slot_in_range.load());
    // Nothing to run: the body is never called.
    CHECK_NOTHROW(sae::detail::parallel_for(0, [](Index, int) { throw std::logic_error("called"); }));
}

TEST_CASE("A parallel_for inside a parallel_for body stays on its thread", "[parallel]") {
    ThreadCount count(3);
    std::vector<int> inner_threads(6, -1);
    std::vector<std::vector<int>> inner_slots(6);
    sae::detail::parallel_for(6, [&](Index i, int) {
        inner_threads[static_cast<std::size_t>(i)] = sae::detail::available_threads();
        sae::detail::parallel_for(4, [&](Index, int slot) { inner_slots[static_cast<std::size_t>(i)].push_back(slot); });
    });
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(inner_threads[i] == 1);
        CHECK(inner_slots[i] == std::vector<int>{0, 0, 0, 0});  // in order, on slot 0
    }
}

TEST_CASE("Encoding a batch does not depend on the threads", "[parallel][encode]") {
    // 700 rows: three encoder blocks; 600 latents: two GEMM chunks (512 + 88).
    const Matrix<float> batch = sae::test::gaussian_matrix<float>(700, 24, 3);
    const sae::Autoencoder<float, sae::TopK> model({24, 600}, {8, true}, 7);
    const auto encode_both_ways = [&] {
        return on_one_and_three_threads([&] {
            sae::SparseCode<float> code;
            model.encode_sparse(batch, code);
            return std::make_pair(Matrix<float>(code), model.forward(batch));
        });
    };
    SECTION("W_enc in L2: a block per task") {
        const auto runs = encode_both_ways();
        CHECK(runs.first.first == runs.second.first);
        CHECK(runs.first.second == runs.second.second);
    }
    SECTION("W_enc beyond L2: one thread runs the three blocks as one group") {
        // 57 KiB of W_enc against a 16 KiB L2: on one thread the blocks share each packed
        // chunk (stream_pre_activations), on three each block is its own group.
        CacheSizes small(8 * 1024, 16 * 1024, 256 * 1024);
        const auto runs = encode_both_ways();
        CHECK(runs.first.first == runs.second.first);
        CHECK(runs.first.second == runs.second.second);
    }
}

TEST_CASE("The encoder's tile product equals Eigen's product to the bit", "[parallel][encode][tile_product]") {
    // add_tile_product (tile_product.hpp) runs Eigen's kernel with its own buffers and
    // Eigen's blocking: the same numbers as dst.noalias() += lhs * rhs, whether it does
    // the work itself (in a parallel region, or on one thread) or hands a product that
    // Eigen would split over threads back to Eigen. Blocks of larger matrices, as the
    // encoder passes them; shapes from GEMV-like and tiny (Eigen's other paths) to a
    // full tile; float and double.
    const auto check_shapes = [](auto scalar) {
        using Scalar = decltype(scalar);
        const Matrix<Scalar> lhs_all = sae::test::gaussian_matrix<Scalar>(310, 280, 1);
        const Matrix<Scalar> rhs_all = sae::test::gaussian_matrix<Scalar>(280, 615, 2);
        const Matrix<Scalar> start = sae::test::gaussian_matrix<Scalar>(310, 615, 3);
        const std::vector<std::array<Index, 3>> shapes{{256, 512, 256}, {37, 88, 24}, {1, 512, 256}, {256, 1, 256},
                                                       {5, 6, 7},       {0, 8, 8},    {8, 8, 0},      {300, 600, 270}};
        for (const auto& shape : shapes) {
            const Index rows = shape[0], cols = shape[1], depth = shape[2];
            INFO("rows " << rows << ", cols " << cols << ", depth " << depth);
            const auto lhs = lhs_all.block(3, 2, rows, depth);
            const auto rhs = rhs_all.block(1, 5, depth, cols);
            Matrix<Scalar> expected = start, serial = start;
            expected.block(4, 7, rows, cols).noalias() += lhs * rhs;
            sae::detail::add_tile_product(lhs, rhs, serial.block(4, 7, rows, cols));
            CHECK(serial == expected);
            // Two threads, each with its own destination: inside a parallel region.
            std::vector<Matrix<Scalar>> per_thread(2, start);
            sae::detail::parallel_for(2, [&](Index i, int) {
                sae::detail::add_tile_product(lhs, rhs, per_thread[static_cast<std::size_t>(i)].block(4, 7, rows, cols));
            });
            CHECK(per_thread[0] == expected);
            CHECK(per_thread[1] == expected);
        }
    };
    ThreadCount count(2);
    check_shapes(float{});
    check_shapes(double{});
}

TEST_CASE("A tile product from packed operands equals Eigen's product to the bit", "[parallel][encode][tile_product]") {
    // PackedTileRows / PackedTileColumns / add_packed_tile_product (tile_product.hpp)
    // pack each operand once and reuse it: one packed column block against several row
    // blocks and one packed row block against several column blocks, as the encoder's
    // groups do. Shapes where Eigen splits the depth (kc < depth), the columns (mc <
    // cols, including a last partial panel) and the rows into several panels; float
    // and double; in a parallel region, where add_tile_product blocks as Eigen does.
    const auto check_shapes = [](auto scalar) {
        using Scalar = decltype(scalar);
        const Matrix<Scalar> lhs_all = sae::test::gaussian_matrix<Scalar>(1200, 2100, 4);
        const Matrix<Scalar> rhs_all = sae::test::gaussian_matrix<Scalar>(2100, 1300, 5);
        const Matrix<Scalar> start = sae::test::gaussian_matrix<Scalar>(1200, 1300, 6);
        const std::vector<std::array<Index, 3>> shapes{{256, 512, 768}, {256, 500, 768},  {256, 512, 256},
                                                       {244, 512, 768}, {37, 88, 24},     {300, 600, 2000},
                                                       {1100, 1200, 64}};
        for (const auto& shape : shapes) {
            const Index rows = shape[0], cols = shape[1], depth = shape[2];
            INFO("rows " << rows << ", cols " << cols << ", depth " << depth);
            const sae::detail::TileBlocking blocking = sae::detail::tile_blocking<Scalar>(rows, cols, depth);
            INFO("kc " << blocking.kc << ", mc " << blocking.mc << ", nc " << blocking.nc);
            // Catch's assertions are not thread-safe: the threads record, the test checks.
            std::vector<int> same(4, 0), blocked(2, 0);
            sae::detail::parallel_for(2, [&](Index thread, int) {
                blocked[static_cast<std::size_t>(thread)] = sae::detail::tile_product_is_blocked(rows, cols, depth) ? 1 : 0;
                sae::detail::PackedTileRows<Scalar> packed_rows;
                sae::detail::PackedTileColumns<Scalar> packed_columns;
                // Two row blocks against one packed column block (thread 0), or one
                // row block against two column blocks (thread 1); packed buffers reused.
                for (Index other = 0; other < 2; ++other) {
                    const Index row0 = thread == 0 ? 3 + 50 * other : 7, col0 = thread == 0 ? 5 : 11 + 60 * other;
                    const auto lhs = lhs_all.block(row0, 2, rows, depth);
                    const auto rhs = rhs_all.block(1, col0, depth, cols);
                    if (thread == 1 || other == 0) packed_columns.pack(rhs, blocking);
                    if (thread == 0 || other == 0) packed_rows.pack(lhs, blocking);
                    Matrix<Scalar> expected = start, packed = start;
                    sae::detail::add_tile_product(lhs, rhs, expected.block(4, 7, rows, cols));
                    sae::detail::add_packed_tile_product(packed_rows, packed_columns, packed.block(4, 7, rows, cols));
                    same[static_cast<std::size_t>(2 * thread + other)] = packed == expected ? 1 : 0;
                }
            });
            CHECK(blocked == std::vector<int>{1, 1});
            CHECK(same == std::vector<int>{1, 1, 1, 1});
        }
    };
    ThreadCount count(2);
    check_shapes(float{});
    check_shapes(double{});
    // Again with fixed cache sizes (Eigen's blocking follows them; these are what it
    // reads on the benchmarks' 2-core VM), under which the panels surely split: the
    // columns (mc < cols, the last panel partial) at 256 x 500 x 768, and the depth
    // (kc < depth) and the rows (nc < rows) at 300 x 600 x 2000.
    CacheSizes fixed(48 * 1024, 2 * 1024 * 1024, 260 * 1024 * 1024);
    const sae::detail::TileBlocking tile = sae::detail::tile_blocking<float>(256, 500, 768);
    CHECK(tile.mc < 500);
    CHECK(500 % tile.mc != 0);
    const sae::detail::TileBlocking deep = sae::detail::tile_blocking<float>(300, 600, 2000);
    CHECK(deep.kc < 2000);
    CHECK(deep.nc < 300);
    check_shapes(float{});
    check_shapes(double{});
}

TEST_CASE("Rows packed minus an offset equal the packed differences to the bit", "[parallel][encode][tile_product]") {
    // PackedTileRows::pack_difference (the encoder's x - b_dec, centred while packed)
    // against pack() of the stored differences: the same panels, value for value, and so
    // the same tiles. Row counts that leave 1 to 3 rows after the groups of 4, depths
    // that leave a tail after the last whole packet, and (under fixed cache sizes) rows
    // and depth split into several panels. Then its finiteness answer: a NaN or Inf in
    // the rows (in a group of 4 and in a tail row, in a whole packet and in the depth
    // tail), a non-finite offset, and a difference that overflows.
    const auto check_shapes = [](auto scalar) {
        using Scalar = decltype(scalar);
        const Matrix<Scalar> rows_all = sae::test::gaussian_matrix<Scalar>(700, 2100, 7);
        const Matrix<Scalar> columns_all = sae::test::gaussian_matrix<Scalar>(2100, 700, 8);
        const sae::RowVector<Scalar> offset_all = sae::test::gaussian_matrix<Scalar>(1, 2100, 9);
        const std::vector<std::array<Index, 3>> shapes{{256, 512, 256}, {37, 88, 24},  {242, 96, 251},
                                                       {255, 64, 19},   {300, 600, 2000}};
        for (const auto& shape : shapes) {
            const Index rows = shape[0], cols = shape[1], depth = shape[2];
            INFO("rows " << rows << ", cols " << cols << ", depth " << depth);
            const sae::detail::TileBlocking blocking = sae::detail::tile_blocking<Scalar>(rows, cols, depth);
            INFO("kc " << blocking.kc << ", mc " << blocking.mc << ", nc " << blocking.nc);
            Matrix<Scalar> x = rows_all.block(3, 2, rows, depth);
            sae::RowVector<Scalar> offset = offset_all.segment(2, depth);
            const Matrix<Scalar> differences = x.rowwise() - offset;
            sae::detail::PackedTileRows<Scalar> expected, fused;
            sae::detail::PackedTileColumns<Scalar> columns;
            expected.pack(differences, blocking);
            CHECK(fused.pack_difference(x, offset, blocking));
            bool same_panels = true;
            for (Index e = 0; e * blocking.nc < rows; ++e) {
                for (Index d = 0; d * blocking.kc < depth; ++d) {
                    const Index size = std::min(blocking.kc, depth - d * blocking.kc) * std::min(blocking.nc, rows - e * blocking.nc);
                    same_panels &= std::equal(expected.panel(d, e), expected.panel(d, e) + size, fused.panel(d, e));
                }
            }
            CHECK(same_panels);
            columns.pack(columns_all.block(1, 5, depth, cols), blocking);
            Matrix<Scalar> tile_expected = Matrix<Scalar>::Zero(rows, cols), tile_fused = tile_expected;
            sae::detail::add_packed_tile_product(expected, columns, tile_expected);
            sae::detail::add_packed_tile_product(fused, columns, tile_fused);
            CHECK(tile_fused == tile_expected);

            const Scalar nan = std::numeric_limits<Scalar>::quiet_NaN(), inf = std::numeric_limits<Scalar>::infinity();
            for (const auto& spot : std::vector<std::array<Index, 2>>{{0, 0}, {rows / 2, depth / 2}, {rows - 1, depth - 1}}) {
                INFO("non-finite at row " << spot[0] << ", column " << spot[1]);
                for (Scalar bad : {nan, inf, -inf}) {
                    const Scalar kept = x(spot[0], spot[1]);
                    x(spot[0], spot[1]) = bad;
                    CHECK_FALSE(fused.pack_difference(x, offset, blocking));
                    x(spot[0], spot[1]) = kept;
                }
                const Scalar kept = offset(spot[1]);
                offset(spot[1]) = nan;
                CHECK_FALSE(fused.pack_difference(x, offset, blocking));
                offset(spot[1]) = -std::numeric_limits<Scalar>::max();
                const Scalar kept_x = x(spot[0], spot[1]);
                x(spot[0], spot[1]) = std::numeric_limits<Scalar>::max();  // max - (-max) overflows
                CHECK_FALSE(fused.pack_difference(x, offset, blocking));
                x(spot[0], spot[1]) = kept_x;
                offset(spot[1]) = kept;
            }
            CHECK(fused.pack_difference(x, offset, blocking));
        }
    };
    check_shapes(float{});
    check_shapes(double{});
    CacheSizes fixed(48 * 1024, 2 * 1024 * 1024, 260 * 1024 * 1024);
    const sae::detail::TileBlocking deep = sae::detail::tile_blocking<float>(300, 600, 2000);
    CHECK(deep.kc < 2000);
    CHECK(deep.nc < 300);
    check_shapes(float{});
    check_shapes(double{});
}

TEST_CASE("A training step does not depend on the threads", "[parallel][training]") {
    SECTION("TopK with AuxK") {
        sae::TrainingConfig training = adam_at(1e-2);
        training.loss.aux_coefficient = 1.0 / 32;
        training.loss.aux_k = 16;
        training.dead_after_tokens = 700;  // a latent silent for one step is dead: AuxK has work
        const auto runs = on_one_and_three_threads([&] { return state_of(trained<sae::TopK>({8, true}, training)); });
        sae::test::require_same_state(runs.first, runs.second);
    }
    SECTION("TopK with AuxK, W_enc beyond L2 (grouped row blocks)") {
        // As above with a 16 KiB L2: on one thread the three row blocks form one group,
        // each with its own selection and AuxK state through the shared chunks.
        CacheSizes small(8 * 1024, 16 * 1024, 256 * 1024);
        sae::TrainingConfig training = adam_at(1e-2);
        training.loss.aux_coefficient = 1.0 / 32;
        training.loss.aux_k = 16;
        training.dead_after_tokens = 700;
        const auto runs = on_one_and_three_threads([&] { return state_of(trained<sae::TopK>({8, true}, training)); });
        sae::test::require_same_state(runs.first, runs.second);
    }
    SECTION("BatchTopK (selection over the whole batch)") {
        const auto runs = on_one_and_three_threads([&] { return state_of(trained<sae::BatchTopK>({8, 0.99}, adam_at(1e-2))); });
        sae::test::require_same_state(runs.first, runs.second);
    }
    SECTION("ReLU + L1 (dense codes)") {
        sae::TrainingConfig training = adam_at(1e-2);
        training.sparsity.target = 0.05;
        const auto runs = on_one_and_three_threads([&] { return state_of(trained<sae::ReluL1>({}, training)); });
        sae::test::require_same_state(runs.first, runs.second);
    }
}

TEST_CASE("A step cut into micro-batches does not depend on the threads", "[parallel][training][micro_batches]") {
    // 1200 rows in 3 slices of 400 (two encoder blocks of 256 rows each) and 200 latents
    // (four latent blocks): the slices' sums are formed by several threads.
    const Matrix<float> batch = sae::test::gaussian_matrix<float>(1200, 16, 9);
    const auto runs = on_one_and_three_threads([&] {
        sae::TrainingConfig training = adam_at(1e-2);
        training.micro_batch_rows = 400;
        sae::TrainableSae<float, sae::TopK> model({16, 200}, {4, true}, training, 3);
        for (int step = 0; step < 2; ++step) model.train_step(batch);
        REQUIRE(model.cache().code.rows() == 400);
        return state_of(model);
    });
    sae::test::require_same_state(runs.first, runs.second);
}

TEST_CASE("The MFR penalty does not depend on the threads", "[parallel][mfr][penalty]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    std::vector<Matrix<float>> decoders;
    for (std::uint64_t i = 0; i < 4; ++i) {
        decoders.push_back(sae::test::gaussian_matrix<float>(300 + 17 * static_cast<Index>(i), 24, 80 + i));
    }
    std::vector<const Matrix<float>*> pointers;
    for (const auto& d : decoders) pointers.push_back(&d);
    const auto runs = on_one_and_three_threads([&] {
        sae::MfrPenalty<float> penalty(4, mode);
        std::vector<Matrix<float>> gradients;
        for (const auto& d : decoders) gradients.push_back(Matrix<float>::Zero(d.rows(), d.cols()));
        std::vector<Matrix<float>*> gradient_pointers;
        for (auto& g : gradients) gradient_pointers.push_back(&g);
        const double value = penalty.evaluate(pointers, true, 1.0, gradient_pointers);
        return std::make_pair(value, gradients);
    });
    CHECK(runs.first.first == runs.second.first);
    for (std::size_t i = 0; i < decoders.size(); ++i) CHECK(runs.first.second[i] == runs.second.second[i]);
}

TEST_CASE("An MFR ensemble's steps do not depend on the threads", "[parallel][mfr][ensemble]") {
    // Three members stepped in parallel, with the matching refreshed every other step.
    sae::MfrConfig mfr;
    mfr.num_saes = 3;
    mfr.penalty_warmup_steps = 0;
    mfr.matching_refresh_steps = 2;
    sae::TrainingConfig training = adam_at(1e-2);
    training.init_decoder_bias_to_median = false;
    const auto runs = on_one_and_three_threads([&] {
        sae::MfrEnsemble<float, sae::TopK> ensemble(mfr, {24, 300, true, false, true}, {6, false}, training, 21);
        for (std::uint64_t step = 0; step < 5; ++step) {
            ensemble.train_step(sae::test::gaussian_matrix<float>(300, 24, 100 + step));
        }
        return std::make_pair(ensemble.last_penalty(), state_of(ensemble));
    });
    CHECK(runs.first.first == runs.second.first);
    sae::test::require_same_state(runs.first.second, runs.second.second);
}

}  // namespace test_parallel_cases
