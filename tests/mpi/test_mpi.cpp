// Tests of the MPI component, run under mpirun with 1, 2 and 3 ranks. Every rank
// also runs the single-process reference (the same seeds, the whole batch), so each
// case checks the distributed run against what one process computes.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/shard_source.hpp>
#include <sae/io/npy.hpp>
#include <sae/mpi/mpi.hpp>

#include "seeded_batches.hpp"
#include "support/temp_dir.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>

namespace {

using sae::Index;
using sae::Matrix;
using Batches = sae::test::SeededBatches<float>;

constexpr Index d_in = 8;
constexpr Index d_sae = 16;
constexpr Index batch_rows = 13;  // not a multiple of 2 or 3: the ranks get unequal rows

sae::AutoencoderConfig model_config() {
    sae::AutoencoderConfig config;
    config.d_in = d_in;
    config.d_sae = d_sae;
    return config;
}

sae::TopK<float>::Config topk() {
    sae::TopK<float>::Config config;
    config.k = 3;
    return config;
}

/// |a - b| <= tolerance * max(1, max|b|) for every entry.
template <class A, class B>
void require_close(const A& a, const B& b, double tolerance, const std::string& what) {
    INFO(what);
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    const double scale = std::max(1.0, static_cast<double>(b.cwiseAbs().maxCoeff()));
    REQUIRE(static_cast<double>((a - b).cwiseAbs().maxCoeff()) <= tolerance * scale);
}

/// The same directory name on every rank (rank 0 creates it).
class SharedTempDir {
public:
    explicit SharedTempDir(const sae::Communicator& comm) : comm_(&comm) {
        std::string path;
        if (comm.is_root()) {
            dir_ = std::make_unique<sae::test::TempDir>("mpi");
            path = dir_->path();
        }
        std::int64_t length = static_cast<std::int64_t>(path.size());
        comm.broadcast(&length, 1, 0, "temp dir length");
        path.resize(static_cast<std::size_t>(length));
        comm.broadcast(path.data(), path.size(), 0, "temp dir");
        path_ = path;
    }
    SharedTempDir(const SharedTempDir&) = delete;
    SharedTempDir& operator=(const SharedTempDir&) = delete;
    /// Removed only once every rank is done with its files.
    ~SharedTempDir() {
        MPI_Barrier(comm_->handle());
        dir_.reset();
    }
    const std::string& path() const { return path_; }

private:
    const sae::Communicator* comm_;
    std::unique_ptr<sae::test::TempDir> dir_;
    std::string path_;
};

}  // namespace

TEST_CASE("Communicator: collectives and typed errors", "[mpi]") {
    const sae::Communicator world;
    const int p = world.size(), r = world.rank();
    CHECK(world.sum<std::int64_t>(r + 1, "ranks") == std::int64_t(p) * (p + 1) / 2);

    std::vector<double> mine(static_cast<std::size_t>(r + 1), double(r));  // rank r sends r + 1 copies of r
    const std::vector<double> all = world.allgather(mine, "test values");
    REQUIRE(all.size() == static_cast<std::size_t>(p * (p + 1) / 2));
    std::size_t at = 0;
    for (int q = 0; q < p; ++q) {
        for (int i = 0; i <= q; ++i) CHECK(all[at++] == double(q));
    }

    const auto parts = world.gather(mine, 0, "test values");
    CHECK(parts.size() == (world.is_root() ? static_cast<std::size_t>(p) : 0u));
    for (std::size_t q = 0; q < parts.size(); ++q) CHECK(parts[q].size() == q + 1);

    float value = r == 0 ? 2.5f : -1.0f;
    world.broadcast(&value, 1, 0, "value");
    CHECK(value == 2.5f);

    const sae::Communicator odd_even = world.split(r % 2, r);
    CHECK(odd_even.size() == (p + 1 - r % 2) / 2);
    CHECK(odd_even.rank() == r / 2);

    // A bad root is an MPI error (parameter checking is on in Open MPI's default build).
    CHECK_THROWS_AS(world.broadcast(&value, 1, p, "value to a rank that does not exist"), sae::mpi_error);
    CHECK_THROWS_WITH(world.broadcast(&value, 1, p, "bad root"),
                      Catch::Contains("MPI_Bcast (bad root) failed on rank " + std::to_string(r)));
}

TEST_CASE("Reduced rank gradients equal the gradient of the union batch", "[mpi]") {
    const sae::Communicator world;
    sae::TrainingConfig training;
    training.init_decoder_bias_to_median = false;  // the median would differ per rank
    training.sparsity.target = 0.01;               // ReLU + L1: the sparsity term is reduced too
    Matrix<float> batch;
    Batches(batch_rows, d_in, 3).next_batch(batch);
    const std::pair<Index, Index> part = sae::rank_rows(batch_rows, world.rank(), world.size());
    const Index count = part.second;  // not a structured binding: the lambda below captures it
    const Matrix<float> local = batch.middleRows(part.first, count);

    // `single` steps on the whole batch, `rank` on its rows with the gradient reduced
    // over the ranks; the reduced gradient and the step taken from it must agree.
    const auto compare_steps = [&](auto& single, auto& rank) {
        // exchange_gradients with nothing to exchange: the batch's own gradient, materialised.
        const auto materialise = [](auto& sae) { sae.exchange_gradients([](const std::string&, float*, std::size_t) {}); };
        single.compute_gradients(batch);
        materialise(single);
        rank.compute_gradients(local);
        sae::reduce_gradients(world, rank, count, batch_rows);
        if (world.size() == 1) materialise(rank);  // one rank: nothing to reduce, nothing exchanged
        require_close(rank.exchanged_gradients().encoder, single.exchanged_gradients().encoder, 2e-6, "W_enc");
        require_close(rank.cache().d_b_enc, single.cache().d_b_enc, 2e-6, "b_enc");
        require_close(rank.exchanged_gradients().decoder, single.exchanged_gradients().decoder, 2e-6, "W_dec");
        require_close(rank.cache().d_b_dec, single.cache().d_b_dec, 2e-6, "b_dec");
        if (world.size() > 1) CHECK(rank.exchanged_gradients().encoder != Matrix<float>::Zero(d_sae, d_in));
        single.apply_gradients();
        rank.apply_gradients();
        require_close(rank.model().W_enc(), single.model().W_enc(), 2e-6, "W_enc after the step");
        require_close(rank.model().W_dec(), single.model().W_dec(), 2e-6, "W_dec after the step");
    };
    SECTION("ReLU + L1") {
        sae::TrainableSae<float, sae::ReluL1> single(model_config(), {}, training, 5), rank(model_config(), {}, training, 5);
        compare_steps(single, rank);
    }
    SECTION("TopK, tied") {
        sae::AutoencoderConfig tied = model_config();
        tied.tied = true;
        sae::TrainableSae<float, sae::TopK> single(tied, topk(), training, 5), rank(tied, topk(), training, 5);
        compare_steps(single, rank);
    }
}

TEST_CASE("Data-parallel training matches the single-process run", "[mpi]") {
    const sae::Communicator world;
    sae::TrainingConfig training;
    training.normalize_inputs = true;  // first-step input scale and median: from the whole batch
    training.learning_rate.base_rate = 1e-2;
    training.max_grad_norm = 1.0;      // clipping sees the reduced gradient

    sae::TrainableSae<float, sae::TopK> single(model_config(), topk(), training, 9);
    Batches single_batches(batch_rows, d_in, 21);
    sae::TrainerConfig trainer;
    trainer.total_steps = 6;
    const sae::TrainSummary expected = sae::train(single, single_batches, trainer);

    sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), training, 9);
    sae::DataParallelSae<float, sae::TopK> model(replica, world);
    Batches batches(batch_rows, d_in, 21);
    sae::RankSliceSource<Batches> source(batches, world);
    const sae::TrainSummary summary = sae::train(model, source, trainer);

    CHECK(replica.input_scale() == single.input_scale());
    require_close(replica.model().W_enc(), single.model().W_enc(), 1e-5, "W_enc");
    require_close(replica.model().W_dec(), single.model().W_dec(), 1e-5, "W_dec");
    require_close(replica.model().b_enc(), single.model().b_enc(), 1e-5, "b_enc");
    require_close(replica.model().b_dec(), single.model().b_dec(), 1e-5, "b_dec");
    CHECK(summary.last.loss == Approx(expected.last.loss).epsilon(1e-4));
    CHECK(summary.last.metric("l0") == Approx(expected.last.metric("l0")).epsilon(1e-6));
    CHECK(model.samples() == 6u * batch_rows);
    CHECK(summary.last.samples == 6u * batch_rows);
}

/// SeededBatches whose batch `poisoned` (0-based) has `value` in its last row, which
/// RankSliceSource gives to the last rank only.
class PoisonedBatches {
public:
    PoisonedBatches(std::uint64_t poisoned, float value) : batches_(batch_rows, d_in, 33), poisoned_(poisoned), value_(value) {}
    void next_batch(Matrix<float>& out) {
        batches_.next_batch(out);
        if (served_++ == poisoned_) out.row(out.rows() - 1).setConstant(value_);
    }

private:
    Batches batches_;
    std::uint64_t poisoned_;
    float value_;
    std::uint64_t served_ = 0;
};

TEST_CASE("A numeric fault on one rank is handled alike on every rank", "[mpi]") {
    const sae::Communicator world;
    sae::TrainingConfig training;
    training.init_decoder_bias_to_median = false;
    sae::TrainerConfig trainer;
    trainer.total_steps = 5;
    const int last = world.size() - 1;

    SECTION("NaN in the last rank's rows: every rank skips the batch, as one process does") {
        trainer.faults.input = sae::FaultPolicy::skip_batch;
        sae::TrainableSae<float, sae::TopK> single(model_config(), topk(), training, 3);
        PoisonedBatches single_batches(2, std::numeric_limits<float>::quiet_NaN());
        const sae::TrainSummary expected = sae::train(single, single_batches, trainer);
        REQUIRE(expected.skipped_batches == 1);

        sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), training, 3);
        sae::DataParallelSae<float, sae::TopK> model(replica, world);
        PoisonedBatches batches(2, std::numeric_limits<float>::quiet_NaN());
        sae::RankSliceSource<PoisonedBatches> source(batches, world);
        const sae::TrainSummary summary = sae::train(model, source, trainer);
        CHECK(summary.skipped_batches == 1);
        REQUIRE(summary.faults.size() == 1);
        CHECK(summary.faults[0].kind == sae::FaultKind::input);
        CHECK(summary.faults[0].step == 3);
        if (world.rank() != last) CHECK_THAT(summary.faults[0].detail, Catch::Contains("(on rank " + std::to_string(last) + ")"));
        CHECK(replica.step() == 5);
        require_close(replica.model().W_enc(), single.model().W_enc(), 1e-5, "W_enc");
        require_close(replica.model().W_dec(), single.model().W_dec(), 1e-5, "W_dec");
    }
    SECTION("A loss that overflows in the last rank's rows stops every rank with the same fault") {
        trainer.faults.loss = sae::FaultPolicy::stop;
        sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), training, 3);
        sae::DataParallelSae<float, sae::TopK> model(replica, world);
        PoisonedBatches batches(2, 3e30f);  // finite input, infinite squared error
        sae::RankSliceSource<PoisonedBatches> source(batches, world);
        try {
            sae::train(model, source, trainer);
            FAIL("training went on past a non-finite loss");
        } catch (const sae::numeric_fault_error& e) {
            CHECK(e.fault().step == 3);
            CHECK(e.fault().action == sae::FaultPolicy::stop);
            // The reduced gradient is non-finite on every rank, so each may fail; all
            // report the lowest failing rank's fault.
            int kind = static_cast<int>(e.fault().kind), lowest = kind, highest = kind;
            world.allreduce_min(&lowest, 1, "fault kinds");
            world.allreduce_max(&highest, 1, "fault kinds");
            CHECK(lowest == highest);
        }
        CHECK(replica.step() <= 3);
        // Every rank is still in step: a collective after the fault completes.
        CHECK(world.sum<int>(1, "ranks after the fault") == world.size());
    }
}

TEST_CASE("Data-parallel training on shard files: each rank reads its own rows", "[mpi]") {
    const sae::Communicator world;
    const SharedTempDir dir(world);
    sae::ShardSourceConfig shards;
    shards.batch_size = batch_rows;
    shards.shuffle_buffer_rows = 40;
    shards.chunks_per_window = 4;
    shards.epochs = 2;
    shards.seed = 6;
    for (int file = 0; file < 3; ++file) shards.files.push_back(dir.path() + "/shard" + std::to_string(file) + ".npy");
    if (world.is_root()) {
        Batches rows(31, d_in, 50);
        Matrix<float> shard;
        for (const std::string& path : shards.files) {
            rows.next_batch(shard);
            sae::write_npy(path, shard);
        }
    }
    MPI_Barrier(world.handle());

    sae::TrainingConfig training;
    training.learning_rate.base_rate = 1e-2;
    sae::TrainerConfig trainer;
    trainer.total_steps = 9;  // 117 rows: the second epoch
    sae::TrainableSae<float, sae::TopK> single(model_config(), topk(), training, 2);
    sae::ShardSource<float> single_source(shards);
    sae::train(single, single_source, trainer);

    sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), training, 2);
    sae::DataParallelSae<float, sae::TopK> model(replica, world);
    sae::ShardSource<float> shard_source(shards);
    sae::RankSliceSource<sae::ShardSource<float>> source(shard_source, world);
    CHECK(shard_source.part_rows() == sae::rank_rows(batch_rows, world.rank(), world.size()).second);
    sae::train(model, source, trainer);
    require_close(replica.model().W_enc(), single.model().W_enc(), 1e-5, "W_enc");
    require_close(replica.model().W_dec(), single.model().W_dec(), 1e-5, "W_dec");
}

TEST_CASE("Data-parallel training refuses settings that need per-rank state", "[mpi]") {
    const sae::Communicator world;
    sae::TrainingConfig training;
    training.reinit.enabled = true;
    sae::TrainableSae<float, sae::TopK> sae_model(model_config(), topk(), training, 1);
    if (world.size() > 1) {
        CHECK_THROWS_WITH((sae::DataParallelSae<float, sae::TopK>(sae_model, world)),
                          Catch::Contains("reinit.enabled") && Catch::Contains(std::to_string(world.size()) + " ranks"));
        training.reinit.enabled = false;
        training.loss.aux_coefficient = 0.03;
        sae::TrainableSae<float, sae::TopK> with_aux(model_config(), topk(), training, 1);
        CHECK_THROWS_AS((sae::DataParallelSae<float, sae::TopK>(with_aux, world)), sae::config_error);
    } else {
        CHECK_NOTHROW(sae::DataParallelSae<float, sae::TopK>(sae_model, world));
    }
    // Replicas built with different seeds are caught before the first step.
    sae::TrainableSae<float, sae::TopK> other_seed(model_config(), topk(), sae::TrainingConfig{}, 1 + world.rank());
    if (world.size() > 1) {
        CHECK_THROWS_WITH((sae::DataParallelSae<float, sae::TopK>(other_seed, world)), Catch::Contains("diverged"));
    }
}

namespace {

sae::MfrConfig mfr_config() {
    sae::MfrConfig config;
    config.num_saes = 3;
    config.penalty_coefficient = 0.5;
    config.penalty_warmup_steps = 2;
    config.matching_refresh_steps = 2;
    return config;
}

sae::TrainingConfig mfr_training() {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = 1e-2;
    return training;
}

using Ensemble = sae::MfrEnsemble<float, sae::TopK>;
using Distributed = sae::DistributedMfrEnsemble<float, sae::TopK>;

/// Every tensor and the step, penalty and matchings of `actual` match `expected`.
void require_same_ensemble_state(const sae::StateDict<float>& actual, const sae::StateDict<float>& expected,
                                 double tolerance) {
    for (const auto& [name, tensor] : expected.tensors()) {
        INFO(name);
        REQUIRE(actual.has_tensor(name));
        require_close(actual.tensors().at(name), tensor, tolerance, name);
    }
    CHECK(actual.get<std::size_t>("step") == expected.get<std::size_t>("step"));
    CHECK(actual.get<double>("penalty") == Approx(expected.get<double>("penalty")).epsilon(1e-5));
    CHECK(actual.values().at("penalty/matchings") == expected.values().at("penalty/matchings"));
}

}  // namespace

TEST_CASE("Distributed MFR ensemble matches MfrEnsemble", "[mpi]") {
    const sae::Communicator world;
    const int replicas = GENERATE(1, 2, 3, 4);
    if (world.size() % replicas != 0 || world.size() / replicas > 3) return;
    INFO("replicas: " << replicas << " of " << world.size() << " ranks");
    const sae::ProcessGrid grid = sae::make_process_grid(world, replicas);

    sae::TrainerConfig trainer;
    trainer.total_steps = 5;
    Ensemble single(mfr_config(), model_config(), topk(), mfr_training(), 17);
    Batches single_batches(batch_rows, d_in, 4);
    const sae::TrainSummary expected = sae::train(single, single_batches, trainer);

    Distributed ensemble(grid, mfr_config(), model_config(), topk(), mfr_training(), 17);
    Batches batches(batch_rows, d_in, 4);
    sae::RankSliceSource<Batches> source(batches, grid.replicas);
    const sae::TrainSummary summary = sae::train(ensemble, source, trainer);

    CHECK(summary.last.metric("penalty") == Approx(expected.last.metric("penalty")).epsilon(1e-5));
    CHECK(summary.last.loss == Approx(expected.last.loss).epsilon(1e-4));
    CHECK(ensemble.last_penalty() > 0.0);
    sae::StateDict<float> distributed_state, single_state;
    ensemble.save_state(distributed_state);
    single.save_state(single_state);
    // Pure ensemble parallelism changes no sum: the weights are the same bits.
    if (world.is_root()) require_same_ensemble_state(distributed_state, single_state, replicas == 1 ? 0.0 : 1e-5);
}

TEST_CASE("A rank-0 checkpoint resumes on a different number of ranks", "[mpi]") {
    const sae::Communicator world;
    const SharedTempDir dir(world);
    const std::string path = dir.path() + "/run.safetensors";
    sae::TrainerConfig trainer;
    trainer.total_steps = 3;

    SECTION("data-parallel SAE, resumed in one process and on fewer ranks") {
        sae::TrainingConfig training = mfr_training();
        sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), training, 2);
        sae::DataParallelSae<float, sae::TopK> model(replica, world);
        Batches batches(batch_rows, d_in, 8);
        sae::RankSliceSource<Batches> source(batches, world);
        sae::train(model, source, trainer);
        sae::save_distributed_checkpoint(world, path, model, source);
        trainer.total_steps = 6;
        sae::train(model, source, trainer);  // the uninterrupted run

        // One process, plain TrainableSae: the checkpoint has its layout.
        sae::TrainableSae<float, sae::TopK> alone(model_config(), topk(), training, 99);
        Batches alone_batches(batch_rows, d_in, 8);
        sae::resume_training(path, alone, alone_batches);
        CHECK(alone.step() == 3);
        sae::train(alone, alone_batches, trainer);
        require_close(alone.model().W_enc(), replica.model().W_enc(), 1e-5, "W_enc, resumed in one process");

        // The first max(1, P - 1) ranks together.
        const int fewer = std::max(1, world.size() - 1);
        const sae::Communicator group = world.split(world.rank() < fewer ? 0 : 1, world.rank());
        sae::TrainableSae<float, sae::TopK> resumed(model_config(), topk(), training, 2);
        sae::DataParallelSae<float, sae::TopK> resumed_model(resumed, group);
        Batches resumed_batches(batch_rows, d_in, 8);
        sae::RankSliceSource<Batches> resumed_source(resumed_batches, group);
        sae::resume_distributed_training(group, path, resumed_model, resumed_source);
        CHECK(resumed_model.samples() == 3u * batch_rows);
        sae::train(resumed_model, resumed_source, trainer);
        require_close(resumed.model().W_enc(), replica.model().W_enc(), 1e-5, "W_enc, resumed on fewer ranks");
        require_close(resumed.model().W_dec(), replica.model().W_dec(), 1e-5, "W_dec, resumed on fewer ranks");
    }
    SECTION("distributed MFR ensemble, resumed by MfrEnsemble in one process") {
        // Members spread as widely as they go (3 members: over 1, 2, 3 ranks; on 4
        // ranks, 2 replicas of 2).
        int spread = 1;
        for (int e = 1; e <= std::min(world.size(), 3); ++e) spread = world.size() % e == 0 ? e : spread;
        const sae::ProcessGrid grid = sae::make_process_grid(world, world.size() / spread);
        Distributed ensemble(grid, mfr_config(), model_config(), topk(), mfr_training(), 5);
        Batches batches(batch_rows, d_in, 6);
        sae::RankSliceSource<Batches> source(batches, grid.replicas);
        sae::train(ensemble, source, trainer);
        sae::save_distributed_checkpoint(world, path, ensemble, source);
        trainer.total_steps = 6;
        sae::train(ensemble, source, trainer);
        sae::StateDict<float> finished;
        ensemble.save_state(finished);

        Ensemble single(mfr_config(), model_config(), topk(), mfr_training(), 123);
        Batches single_batches(batch_rows, d_in, 6);
        sae::resume_training(path, single, single_batches);
        CHECK(single.step() == 3);
        sae::train(single, single_batches, trainer);
        sae::StateDict<float> single_state;
        single.save_state(single_state);
        if (world.is_root()) require_same_ensemble_state(finished, single_state, grid.replicas.size() == 1 ? 0.0 : 1e-5);
    }
    SECTION("a checkpoint that cannot be read fails on every rank") {
        sae::TrainableSae<float, sae::TopK> replica(model_config(), topk(), sae::TrainingConfig{}, 2);
        sae::DataParallelSae<float, sae::TopK> model(replica, world);
        Batches batches(batch_rows, d_in, 8);
        CHECK_THROWS_WITH(sae::resume_distributed_training(world, dir.path() + "/missing.safetensors", model, batches),
                          Catch::Contains("missing.safetensors") && Catch::Contains("failed on rank 0"));
    }
}

int main(int argc, char** argv) {
    sae::MpiEnvironment environment(argc, argv);
    return Catch::Session().run(argc, argv);
}
