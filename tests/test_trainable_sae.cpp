// Training one SAE: every activation learns, the decoder constraint holds, the
// data-dependent initialisation and input scaling do what they promise, and runs are
// reproducible.
#include <sae/core/activations/batch_topk.hpp>
#include <sae/core/activations/jump_relu.hpp>
#include <sae/core/activations/relu_l1.hpp>
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/mfr/feature_matching.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_trainable_sae_cases {

namespace {

using sae::Index;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

sae::IndependentFeaturesConfig small_data() {
    sae::IndependentFeaturesConfig data;
    data.input_dim = 16;
    data.num_features = 32;
    data.activation_probability = 0.08;
    return data;
}

sae::TrainingConfig adam_at(double lr) {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = lr;
    return training;
}

// Mean squared error of the model on fresh samples, relative to predicting zero.
template <class Model>
double relative_error(const Model& model, sae::SyntheticGenerator<double>& generator, double input_scale = 1.0) {
    const sae::Matrix<double> x = generator.sample(512) * input_scale;
    return (model.forward(x) - x).squaredNorm() / x.squaredNorm();
}

template <template <class> class Act>
double train_and_measure(const typename Act<double>::Config& activation, const sae::TrainingConfig& training,
                         std::size_t steps) {
    sae::SyntheticGenerator<double> generator(small_data(), 3);
    sae::TrainableSae<double, Act> sae_model({16, 32}, activation, training, 7);
    const double before = relative_error(sae_model.model(), generator);
    for (std::size_t step = 0; step < steps; ++step) sae_model.train_step(generator.sample(128));
    const double after = relative_error(sae_model.model(), generator);
    INFO(Act<double>::architecture << ": relative error " << before << " -> " << after);
    CHECK(after < 0.25 * before);
    return after;
}

/// A TopK model (no ReLU) with random biases, as the streamed-inference tests use.
sae::Autoencoder<float, sae::TopK> model_with_biases(Index d_in, Index d_sae, Index k, std::uint64_t seed) {
    sae::Autoencoder<float, sae::TopK> model({d_in, d_sae}, {k, false}, seed);
    model.mutable_b_enc() = sae::RowVector<float>::Random(d_sae) * 0.1f;
    model.mutable_b_dec() = sae::RowVector<float>::Random(d_in);
    return model;
}

/// pre = (x - b_dec) W_enc + b_enc formed in double: the definition streamed inference
/// selects from.
Eigen::MatrixXd exact_pre_activations(const sae::Autoencoder<float, sae::TopK>& model, const sae::Matrix<float>& x) {
    return ((x.cast<double>().rowwise() - model.b_dec().cast<double>()) * model.W_enc().cast<double>()).rowwise() +
           model.b_enc().cast<double>();
}

/// The k-th largest entry of row r of `pre`, by a full sort.
double kth_largest_in_row(const Eigen::MatrixXd& pre, Index r, Index k) {
    std::vector<double> sorted(static_cast<std::size_t>(pre.cols()));
    for (Index c = 0; c < pre.cols(); ++c) sorted[static_cast<std::size_t>(c)] = pre(r, c);
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    return sorted[static_cast<std::size_t>(k - 1)];
}

}  // namespace

TEST_CASE("Every activation learns to reconstruct", "[training]") {
    train_and_measure<sae::TopK>({4, true}, adam_at(3e-3), 400);
    train_and_measure<sae::BatchTopK>({4, 0.99}, adam_at(3e-3), 400);
    sae::TrainingConfig relu = adam_at(3e-3);
    relu.sparsity.target = 0.01;
    relu.sparsity.warmup_steps = 50;
    train_and_measure<sae::ReluL1>({}, relu, 400);
    sae::TrainingConfig jump = adam_at(3e-3);
    jump.sparsity.target = 1e-3;
    train_and_measure<sae::JumpReLU>({0.01, 0.01}, jump, 400);
}

TEST_CASE("TopK recovers the true features of clean synthetic data", "[training][recovery]") {
    // 32 unit features in R^16 and an SAE with 32 latents: a correct trainer finds most
    // of them (a random dictionary has recovery MMCS around 0.4 here).
    sae::SyntheticGenerator<double> generator(small_data(), 11);
    sae::TrainableSae<double, sae::TopK> sae_model({16, 32}, {4, true}, adam_at(3e-3), 5);
    const double initial = sae::feature_recovery(generator.true_features(), sae_model.model().feature_directions()).mmcs;
    for (int step = 0; step < 1500; ++step) sae_model.train_step(generator.sample(256));
    const sae::Recovery recovery = sae::feature_recovery(generator.true_features(), sae_model.model().feature_directions());
    INFO("recovery " << initial << " -> " << recovery.mmcs << ", above 0.9: " << recovery.fraction_above);
    CHECK(recovery.mmcs > 0.8);
    CHECK(recovery.mmcs > initial + 0.3);
}

TEMPLATE_TEST_CASE("Decoder rows stay at unit norm and training is reproducible", "[training]", float, double) {
    const auto run = [](std::uint64_t seed) {
        sae::SyntheticGenerator<TestType> generator(small_data(), 1);
        sae::TrainableSae<TestType, sae::TopK> sae_model({16, 24}, {3, true}, adam_at(1e-2), seed);
        for (int step = 0; step < 25; ++step) sae_model.train_step(generator.sample(64));
        return sae_model;
    };
    const auto a = run(4), b = run(4), c = run(5);
    const auto norms = a.model().decoder_row_norms();
    CHECK((norms.array() - TestType(1)).abs().maxCoeff() < TestType(1e-5));
    CHECK(a.model().W_enc() == b.model().W_enc());
    CHECK(a.model().W_dec() == b.model().W_dec());
    CHECK(a.model().W_enc() != c.model().W_enc());
    CHECK(a.step() == 25);
    CHECK(a.samples() == 25 * 64);
}

TEST_CASE("The decoder bias starts at the geometric median of the first batch", "[training][init]") {
    sae::SyntheticGenerator<double> generator(small_data(), 2);
    const sae::Matrix<double> batch = generator.sample(200) + sae::Matrix<double>::Constant(200, 16, 3.0);
    sae::TrainableSae<double, sae::TopK> sae_model({16, 32}, {4, true}, adam_at(1e-3), 1);
    sae_model.compute_gradients(batch);  // initialises from the batch, updates nothing yet
    const sae::RowVector<double> median = sae::geometric_median(batch);
    CHECK((sae_model.model().b_dec() - median).cwiseAbs().maxCoeff() < 1e-12);
    // Sanity of the reference: every coordinate was shifted by +3.
    CHECK(median.mean() > 2.0);
}

TEST_CASE("Input normalisation is folded back into the exported weights", "[training][scaling]") {
    // Inputs ~ 40x the unit scale; the trainer scales by s = sqrt(d) / E||x||.
    sae::SyntheticGenerator<double> generator(small_data(), 8);
    sae::TrainingConfig training = adam_at(3e-3);
    training.normalize_inputs = true;
    sae::TrainableSae<double, sae::TopK> sae_model({16, 32}, {4, true}, training, 3);
    const sae::Matrix<double> first = generator.sample(256) * 40.0;
    const double expected_scale = std::sqrt(16.0) / first.rowwise().norm().mean();
    sae_model.train_step(first);
    CHECK_THAT(static_cast<double>(sae_model.input_scale()), WithinRel(expected_scale, 1e-12));
    for (int step = 0; step < 50; ++step) sae_model.train_step(generator.sample(256) * 40.0);

    // exported(x) must equal model(s x) / s on raw inputs.
    const sae::Matrix<double> x = generator.sample(32) * 40.0;
    const double s = sae_model.input_scale();
    const sae::Matrix<double> expected = sae_model.model().forward(x * s) / s;
    const sae::Matrix<double> exported = sae_model.exported_model().forward(x);
    CHECK((exported - expected).cwiseAbs().maxCoeff() < 1e-9 * expected.cwiseAbs().maxCoeff());
}

TEST_CASE("A batch that the input scale overflows is rejected before the step", "[training][scaling]") {
    // A first batch of rows of norm 4 * 1e-15 sets s = sqrt(16) / 4e-15 = 1e15; a later
    // batch of finite entries 1e24 becomes 1e39 after scaling, beyond float's 3.4e38: Inf.
    sae::TrainingConfig training = adam_at(3e-3);
    training.normalize_inputs = true;
    training.init_decoder_bias_to_median = false;
    sae::TrainableSae<float, sae::TopK> sae_model({16, 32}, {4, true}, training, 3);
    sae_model.train_step(sae::Matrix<float>::Constant(64, 16, 1e-15f));
    REQUIRE(sae_model.input_scale() > 0.9e15f);
    const sae::Matrix<float> before = sae_model.model().W_enc();
    const sae::Matrix<float> large = sae::Matrix<float>::Constant(64, 16, 1e24f);
    REQUIRE(large.allFinite());
    CHECK_THROWS_AS(sae_model.train_step(large), sae::numeric_error);
    CHECK_THROWS_WITH(sae_model.train_step(large), Catch::Contains("input scale") && Catch::Contains("row 0"));
    CHECK(sae_model.model().W_enc() == before);  // nothing was updated
}

TEST_CASE("AuxK revives latents that no longer fire", "[training][auxk]") {
    // Silence half the latents by shrinking their encoder columns 100x (so they never
    // win a TopK slot), and count a latent dead after one batch without firing. With
    // AuxK the dead latents with positive pre-activations reconstruct the residual and
    // grow back; without it they get gradient only by accident (a few win a slot as the
    // other latents move), so most stay silent.
    const auto silent_after = [](double aux_coefficient) {
        sae::SyntheticGenerator<double> generator(small_data(), 4);
        sae::TrainingConfig training = adam_at(1e-2);
        training.loss.aux_coefficient = aux_coefficient;
        training.loss.aux_k = 8;
        training.dead_after_tokens = 64;
        sae::TrainableSae<double, sae::TopK> sae_model({16, 32}, {4, true}, training, 9);
        sae_model.model().mutable_W_enc().leftCols(16) *= 0.01;
        for (int step = 0; step < 300; ++step) sae_model.train_step(generator.sample(64));
        sae::SparseCode<double> code;
        sae_model.model().encode_sparse(generator.sample(2000), code);
        Eigen::ArrayXd fired = Eigen::ArrayXd::Zero(32);
        for (Index r = 0; r < code.outerSize(); ++r) {
            for (sae::SparseCode<double>::InnerIterator it(code, r); it; ++it) fired(it.col()) = 1.0;
        }
        return 16.0 - fired.head(16).sum();
    };
    const double without = silent_after(0.0);
    const double with = silent_after(1.0);
    INFO("silent latents of the killed half: without AuxK " << without << ", with " << with);
    CHECK(without >= 10.0);
    CHECK(with <= 4.0);
}

TEST_CASE("The trainer loop drives a TrainableSae", "[training][trainer]") {
    sae::SyntheticGenerator<float> generator(small_data(), 6);
    sae::SyntheticBatchSource<float> source(generator, 64);
    sae::TrainableSae<float, sae::TopK> sae_model({16, 32}, {4, true}, adam_at(1e-2), 2);
    sae::TrainerConfig config;
    config.total_steps = 40;
    const sae::TrainSummary summary = sae::train(sae_model, source, config);
    CHECK(summary.steps == 40);
    CHECK(sae_model.step() == 40);
    CHECK(summary.last.metric("l0", -1.0) <= 4.0);
}

TEST_CASE("Bad training settings are rejected with the field named", "[training][errors]") {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = -1.0;
    CHECK_THROWS_AS((sae::TrainableSae<float, sae::TopK>({4, 8}, {2, true}, training, 1)), sae::config_error);
    training = sae::TrainingConfig{};
    training.max_grad_norm = -2.0;
    CHECK_THROWS_WITH((sae::TrainableSae<float, sae::TopK>({4, 8}, {2, true}, training, 1)),
                      Catch::Contains("max_grad_norm"));
    training = sae::TrainingConfig{};
    training.normalize_inputs = true;
    CHECK_THROWS_AS((sae::TrainableSae<float, sae::TopK>({4, 8, true, false}, {2, true}, training, 1)),
                    sae::config_error);
    training = sae::TrainingConfig{};
    training.reinit.enabled = true;  // ReLU has no k, so the target rate must be given
    CHECK_THROWS_WITH((sae::TrainableSae<float, sae::ReluL1>({4, 8}, {}, training, 1)),
                      Catch::Contains("target_rate"));
    CHECK_THROWS_WITH((sae::TrainableSae<float, sae::TopK>({0, 8}, {2, true}, sae::TrainingConfig{}, 1)),
                      Catch::Contains("d_in = 0"));
    sae::TrainableSae<float, sae::TopK> ok({4, 8}, {2, true}, sae::TrainingConfig{}, 1);
    sae::Matrix<float> batch = sae::Matrix<float>::Ones(2, 4);
    batch(0, 3) = INFINITY;
    CHECK_THROWS_AS(ok.train_step(batch), sae::numeric_error);
}

TEST_CASE("Autoencoder inference checks its input", "[autoencoder][errors]") {
    sae::Autoencoder<float, sae::TopK> model({4, 8}, {2, true}, 1);
    CHECK_THROWS_WITH(model.encode(sae::Matrix<float>::Ones(3, 5)), Catch::Contains("d_in = 4"));
    CHECK_THROWS_AS(model.decode(sae::Matrix<float>::Ones(3, 7)), sae::shape_error);
    CHECK_THROWS_WITH((sae::Autoencoder<float, sae::TopK>({4, 8}, {9, true}, 1)), Catch::Contains("k = 9"));
    CHECK_THROWS_AS((sae::Autoencoder<float, sae::JumpReLU>({4, 8}, {-1.0, 0.1}, 1)), sae::config_error);
    // A TopK code has at most k active latents per row, and encode == decode(code) path.
    const sae::Matrix<float> x = sae::Matrix<float>::Random(6, 4);
    const sae::Matrix<float> f = model.encode(x);
    CHECK(((f.array() != 0.0f).rowwise().count() <= 2).all());
    CHECK((model.forward(x) - model.decode(f)).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("Streamed inference selects from the pre-activations' definition", "[autoencoder][topk]") {
    // 600 rows and 1100 latents: three row blocks and three latent chunks of the stream
    // (encoder_stream.hpp), the last of each partial. Expected: pre = (x - b_dec) W_enc + b_enc
    // formed in double, each row's k largest by a full sort.
    const Index rows = 600, d_in = 40, d_sae = 1100, k = 7;
    sae::Autoencoder<float, sae::TopK> model = model_with_biases(d_in, d_sae, k, 5);
    const sae::Matrix<float> x = sae::Matrix<float>::Random(rows, d_in);
    const Eigen::MatrixXd pre = exact_pre_activations(model, x);
    sae::SparseCode<float> code;
    model.encode_sparse(x, code);
    REQUIRE(code.rows() == rows);
    REQUIRE(code.cols() == d_sae);
    int worst_rank = 0;
    double worst_value = 0.0;
    for (Index r = 0; r < rows; ++r) {
        const double kth = kth_largest_in_row(pre, r, k);
        int count = 0;
        for (sae::SparseCode<float>::InnerIterator it(code, r); it; ++it, ++count) {
            const double exact = pre(r, it.col());
            worst_value = std::max(worst_value, std::abs(exact - it.value()));
            // Chosen: at least as large as the exact k-th largest, up to float rounding.
            if (exact < kth - 1e-4) ++worst_rank;
        }
        CHECK(count == k);
    }
    CHECK(worst_rank == 0);
    CHECK(worst_value < 1e-4);

    // ReLU + L1 streams too: every positive pre-activation, nothing else.
    sae::Autoencoder<float, sae::ReluL1> relu({d_in, d_sae}, {}, 5);
    relu.mutable_b_enc() = model.b_enc();
    const Eigen::MatrixXd relu_pre = (x.cast<double>() * relu.W_enc().cast<double>()).rowwise() + relu.b_enc().cast<double>();
    const sae::Matrix<float> dense = relu.encode(x);
    CHECK((dense.cast<double>() - relu_pre.cwiseMax(0.0)).cwiseAbs().maxCoeff() < 1e-4);

    // A NaN is reported with its row, wherever the stream meets it.
    sae::Matrix<float> bad = x;
    bad(437, 3) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(model.encode_sparse(bad, code), Catch::Contains("row 437"));
    bad(437, 3) = 0.0f;
    bad(599, 39) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(model.encode_sparse(bad, code), sae::numeric_error);
    // A finite batch whose x - b_dec overflows is named as such, with its row.
    sae::Autoencoder<float, sae::TopK> shifted = model;
    shifted.mutable_b_dec()(5) = -3e38f;
    sae::Matrix<float> large = x;
    large(301, 5) = 3e38f;
    CHECK_THROWS_WITH(shifted.encode_sparse(large, code), Catch::Contains("x - b_dec is not finite in row 301"));

    // The encoder keeps its scratch from call to call (EncodeWorkspace): a batch of 600
    // rows, then one of 10, then the 600 again give what fresh calls give.
    sae::SparseCode<float> first, small, again;
    model.encode_sparse(x, first);
    model.encode_sparse(x.topRows(10), small);
    model.encode_sparse(x, again);
    CHECK(sae::Matrix<float>(again) == sae::Matrix<float>(first));
    // (A 10-row block meets other GEMM shapes than a 256-row one: equal up to rounding.)
    CHECK((sae::Matrix<float>(small) - sae::Matrix<float>(first).topRows(10)).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("A TopK code with short rows is written in place and closed up", "[autoencoder][topk]") {
    // TopK with ReLU keeps a row's k largest only where they are positive. b_enc = -t,
    // t the median over rows of the third largest pre-activation (b_enc = 0): rows hold
    // 0 to k entries, in all three blocks of 600 rows, so the in-place code
    // (BoundedRowsWriter, row r at entry r * k) must be closed up row by row. Expected:
    // pre formed in double; a row holds its entries above 0 among its k largest.
    const Index rows = 600, d_in = 40, d_sae = 1100, k = 7;
    sae::Autoencoder<float, sae::TopK> model({d_in, d_sae}, {k, true}, 8);
    const sae::Matrix<float> x = sae::Matrix<float>::Random(rows, d_in);
    std::vector<double> third;
    const Eigen::MatrixXd unbiased = exact_pre_activations(model, x);
    for (Index r = 0; r < rows; ++r) third.push_back(kth_largest_in_row(unbiased, r, 3));
    std::nth_element(third.begin(), third.begin() + rows / 2, third.end());
    model.mutable_b_enc().setConstant(static_cast<float>(-third[static_cast<std::size_t>(rows / 2)]));
    const Eigen::MatrixXd pre = exact_pre_activations(model, x);
    sae::SparseCode<float> code;
    model.encode_sparse(x, code);
    REQUIRE(code.isCompressed());
    std::vector<int> rows_with(static_cast<std::size_t>(k + 1), 0);
    Index total = 0;
    int wrong = 0, unclear = 0;
    for (Index r = 0; r < rows; ++r) {
        const double kth = kth_largest_in_row(pre, r, k);
        int expected = 0, count = 0, within_rounding = 0;
        for (Index c = 0; c < d_sae; ++c) {
            expected += pre(r, c) > 0.0 && pre(r, c) >= kth;
            within_rounding += pre(r, c) > -1e-4 && pre(r, c) >= kth;
        }
        // A row float might order otherwise (a kept value near 0, or the k-th near the
        // next) is not held to the double definition's count.
        const bool clear = within_rounding == expected && kth - kth_largest_in_row(pre, r, k + 1) >= 1e-4;
        unclear += !clear;
        for (sae::SparseCode<float>::InnerIterator it(code, r); it; ++it, ++count) {
            wrong += it.value() <= 0.0f || pre(r, it.col()) < kth - 1e-4 || std::abs(pre(r, it.col()) - it.value()) > 1e-4;
        }
        wrong += clear && count != expected;
        ++rows_with[static_cast<std::size_t>(std::min<Index>(count, k))];
        total += count;
    }
    CHECK(unclear < rows / 50);
    CHECK(wrong == 0);
    CHECK(code.nonZeros() == total);
    CHECK(code.outerIndexPtr()[rows] == total);
    INFO("rows by entries 0.." << k << ": " << Eigen::Map<Eigen::VectorXi>(rows_with.data(), k + 1).transpose());
    CHECK(rows_with[0] > 0);
    CHECK(rows_with[1] + rows_with[2] + rows_with[3] > 0);
    CHECK(rows_with[static_cast<std::size_t>(k)] > 0);

    // A call that throws leaves the caller's code as it was (the code is made aside).
    sae::Matrix<float> bad = x;
    bad(450, 0) = std::numeric_limits<float>::quiet_NaN();
    const sae::Matrix<float> before = sae::Matrix<float>(code);
    CHECK_THROWS_AS(model.encode_sparse(bad, code), sae::numeric_error);
    CHECK(code.nonZeros() == total);
    CHECK(sae::Matrix<float>(code) == before);
    // An empty batch gives an empty code of d_sae columns.
    model.encode_sparse(x.topRows(0), code);
    CHECK(code.rows() == 0);
    CHECK(code.cols() == d_sae);
    CHECK(code.nonZeros() == 0);
}

// ---- micro-batches (TrainingConfig::micro_batch_rows) ---------------------------------

namespace {

/// What a caller does between compute_gradients and apply_gradients.
enum class Between { nothing, coupling, exchange };

/// max |a - b| <= tolerance * (1 + max |b|), for any two Eigen objects of one shape.
template <class A, class B>
void require_close(const A& a, const B& b, const std::string& what, double tolerance = 1e-12) {
    INFO(what);
    REQUIRE(a.rows() == b.rows());
    REQUIRE(a.cols() == b.cols());
    if (a.size() == 0) return;
    const double scale = 1.0 + static_cast<double>(b.cwiseAbs().maxCoeff());
    CHECK(static_cast<double>((a - b).cwiseAbs().maxCoeff()) <= tolerance * scale);
}

/// Steps two SAEs built alike on the same batches of 50 rows: one whole (the automatic
/// rule does not split 50 rows), one with micro_batch_rows = 7, i.e. 8 slices, the last
/// being rows 43..49. The expected values are the whole-batch step's: the split step must
/// reproduce them (loss terms, metrics, weights, Adam's moments) up to rounding.
/// `silence` scales the first 6 encoder columns, so that those latents stop firing and
/// become dead (AuxK, dead_fraction); returns the whole-batch SAE's last report.
template <template <class> class Act>
sae::StepReport check_micro_batches(const sae::AutoencoderConfig& shape, const typename Act<double>::Config& activation,
                                    sae::TrainingConfig training, Between between = Between::nothing,
                                    double silence = 1.0) {
    training.micro_batch_rows = 0;
    sae::TrainableSae<double, Act> whole(shape, activation, training, 17);
    training.micro_batch_rows = 7;
    sae::TrainableSae<double, Act> split(shape, activation, training, 17);
    for (sae::TrainableSae<double, Act>* member : {&whole, &split}) member->model().mutable_W_enc().leftCols(6) *= silence;
    sae::SyntheticGenerator<double> generator(small_data(), 21);
    sae::StepReport last;
    for (int step = 0; step < 4; ++step) {
        INFO("step " << step);
        // Offset from the origin, so that b_dec (geometric median) matters.
        const sae::Matrix<double> batch = generator.sample(50) + sae::Matrix<double>::Constant(50, 16, 0.5);
        const sae::LossBreakdown whole_loss = whole.compute_gradients(batch);
        const sae::LossBreakdown split_loss = split.compute_gradients(batch);
        REQUIRE(whole.cache().code.rows() == 50);
        REQUIRE(split.cache().code.rows() == 7);  // the split happened: the cache holds the last slice
        require_close(split.cache().d_b_enc, whole.cache().d_b_enc, "dL/db_enc");
        require_close(split.cache().d_b_dec, whole.cache().d_b_dec, "dL/db_dec");
        if (between == Between::coupling) {
            // A term that depends on the weights only, as the MFR penalty's.
            for (sae::TrainableSae<double, Act>* member : {&whole, &split}) {
                member->coupling_gradient() = 0.1 * member->model().W_dec().colwise().reverse();
            }
        }
        if (between == Between::exchange) {
            // As reduce_gradients on two ranks: every tensor weighted by 1/2, in place.
            std::vector<std::string> whole_names, split_names;
            whole.exchange_gradients([&](const std::string& name, double* data, std::size_t size) {
                whole_names.push_back(name);
                Eigen::Map<Eigen::ArrayXd>(data, static_cast<Index>(size)) *= 0.5;
            });
            split.exchange_gradients([&](const std::string& name, double* data, std::size_t size) {
                split_names.push_back(name);
                Eigen::Map<Eigen::ArrayXd>(data, static_cast<Index>(size)) *= 0.5;
            });
            CHECK(split_names == whole_names);
            require_close(split.exchanged_gradients().decoder, whole.exchanged_gradients().decoder, "exchanged W_dec rows");
            require_close(split.exchanged_gradients().encoder, whole.exchanged_gradients().encoder, "exchanged W_enc columns");
        }
        whole.apply_gradients();
        split.apply_gradients();

        const sae::StepReport expected = whole.report(whole_loss), got = split.report(split_loss);
        CHECK_THAT(got.loss, WithinAbs(expected.loss, 1e-12 * (1.0 + std::abs(expected.loss))));
        for (const auto& [name, value] : expected.metrics) {
            INFO("metric " << name);
            CHECK_THAT(got.metric(name, -1.0), WithinAbs(value, 1e-12 * (1.0 + std::abs(value))));
        }
        CHECK(split.reinit_count() == whole.reinit_count());
        require_close(split.model().W_enc(), whole.model().W_enc(), "W_enc");
        require_close(split.model().W_dec(), whole.model().W_dec(), "W_dec");
        require_close(split.model().b_enc(), whole.model().b_enc(), "b_enc");
        require_close(split.model().b_dec(), whole.model().b_dec(), "b_dec");
        require_close(split.model().activation().parameter(), whole.model().activation().parameter(), "activation parameter");
        REQUIRE(split.optimizer().state_names() == whole.optimizer().state_names());
        for (const std::string& name : whole.optimizer().state_names()) {
            require_close(split.optimizer().first_moment(name), whole.optimizer().first_moment(name), "Adam m of " + name);
            require_close(split.optimizer().second_moment(name), whole.optimizer().second_moment(name), "Adam v of " + name);
        }
        CHECK((split.firing().tokens_since_fired() == whole.firing().tokens_since_fired()).all());
        CHECK((split.firing().fire_counts() == whole.firing().fire_counts()).all());
        last = expected;
    }
    return last;
}

sae::TrainingConfig clipped(double max_grad_norm) {
    sae::TrainingConfig training = adam_at(1e-2);
    training.max_grad_norm = max_grad_norm;
    return training;
}

}  // namespace

TEST_CASE("Inference centres x while packing it, with the same code and errors", "[autoencoder][topk]") {
    // At 1024 latents every chunk is whole, so the two full 256-row blocks of 600 rows
    // are centred while packed (PackedTileRows::pack_difference) and the short last block
    // through a stored x - b_dec. Expected: pre = (x - b_dec) W_enc + b_enc in double.
    const Index rows = 600, d_in = 40, d_sae = 1024, k = 9;
    sae::Autoencoder<float, sae::TopK> model = model_with_biases(d_in, d_sae, k, 6);
    const sae::Matrix<float> x = sae::Matrix<float>::Random(rows, d_in);
    const Eigen::MatrixXd pre = exact_pre_activations(model, x);
    sae::SparseCode<float> code;
    model.encode_sparse(x, code);
    int wrong = 0;
    for (Index r = 0; r < rows; ++r) {
        const double kth = kth_largest_in_row(pre, r, k);
        for (sae::SparseCode<float>::InnerIterator it(code, r); it; ++it) {
            wrong += pre(r, it.col()) < kth - 1e-4;
            wrong += std::abs(pre(r, it.col()) - it.value()) > 1e-4;
        }
    }
    CHECK(wrong == 0);
    CHECK(code.nonZeros() == rows * k);
    // A column-major x is copied block by block, then centred the same way: same bits.
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> column_major = x;
    sae::SparseCode<float> from_columns;
    model.encode_sparse(column_major, from_columns);
    CHECK(sae::Matrix<float>(from_columns) == sae::Matrix<float>(code));
    // NaN/Inf named with its row in a packed block and in the short one.
    for (const Index row : {Index(37), Index(300), Index(590)}) {
        sae::Matrix<float> bad = x;
        bad(row, 11) = std::numeric_limits<float>::quiet_NaN();
        CHECK_THROWS_WITH(model.encode_sparse(bad, code), Catch::Contains("row " + std::to_string(row)));
        bad(row, 11) = -std::numeric_limits<float>::infinity();
        CHECK_THROWS_WITH(model.encode_sparse(bad, code), Catch::Contains("row " + std::to_string(row)));
    }
    sae::Autoencoder<float, sae::TopK> shifted = model;
    shifted.mutable_b_dec()(5) = -3e38f;
    sae::Matrix<float> large = x;
    large(101, 5) = 3e38f;
    CHECK_THROWS_WITH(shifted.encode_sparse(large, code), Catch::Contains("x - b_dec is not finite in row 101"));
}

TEST_CASE("A step cut into micro-batches equals the whole-batch step", "[training][micro_batches]") {
    SECTION("TopK with AuxK on dead latents, clipping and input normalisation") {
        sae::TrainingConfig training = clipped(0.05);
        training.loss.aux_coefficient = 0.5;
        training.loss.aux_k = 3;
        training.dead_after_tokens = 40;  // silent for one batch of 50 rows: dead
        training.normalize_inputs = true;
        const sae::StepReport last = check_micro_batches<sae::TopK>({16, 24}, {3, true}, training, Between::nothing, 0.01);
        CHECK(last.metric("dead_fraction") >= 6.0 / 24.0);  // the expected values exercise AuxK ...
        CHECK(last.metric("aux") > 0.0);
        CHECK(last.metric("grad_norm") > 0.05);  // ... and the clip
    }
    SECTION("TopK with the re-initialisation rule firing") {
        sae::TrainingConfig training = clipped(0.5);
        training.reinit.enabled = true;
        training.reinit.threshold = 0.9;  // the 6 silenced latents alone give a deviation of 6/24 * 1 ...
        const sae::StepReport last = check_micro_batches<sae::TopK>({16, 24}, {3, true}, training, Between::nothing, 0.01);
        CHECK(last.metric("reinits") >= 1.0);  // ... and the others' spread makes up the rest
        CHECK(last.metric("activity_deviation") > 0.0);
    }
    SECTION("ReLU + L1 weighted by free decoder norms") {
        sae::TrainingConfig training = clipped(0.2);
        training.sparsity.target = 0.05;
        const sae::StepReport last = check_micro_batches<sae::ReluL1>({16, 24, false, true, false}, {}, training);
        CHECK(last.metric("sparsity") > 0.0);
    }
    SECTION("JumpReLU with its threshold trained, mean over elements") {
        sae::TrainingConfig training = clipped(0.2);
        training.sparsity.target = 0.01;
        training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
        const sae::StepReport last = check_micro_batches<sae::JumpReLU>({16, 24}, {0.05, 0.2}, training);
        CHECK(last.metric("sparsity") > 0.0);
    }
    SECTION("A tied SAE without b_dec, as the MFR authors train") {
        sae::TrainingConfig training = clipped(0.05);
        training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
        check_micro_batches<sae::TopK>({16, 24, true, false}, {3, false}, training);
    }
    SECTION("with an MFR coupling term added between the halves of the step") {
        check_micro_batches<sae::TopK>({16, 24, true, false}, {3, false}, clipped(0.05), Between::coupling);
        check_micro_batches<sae::TopK>({16, 24}, {3, true}, clipped(0.05), Between::coupling);
    }
    SECTION("with the gradient handed out for a data-parallel exchange") {
        sae::TrainingConfig training = clipped(0.05);
        training.sparsity.target = 0.01;
        check_micro_batches<sae::JumpReLU>({16, 24}, {0.05, 0.2}, training, Between::exchange);
    }
}

TEST_CASE("The automatic micro-batch rule splits only batches much taller than the dictionary",
          "[training][micro_batches]") {
    // Slices of s = max(1024, d_sae) rows, only when rows > s + d_sae (the rows saved must
    // outweigh the 2 d_sae d_in accumulators); micro-batch counts worked out by hand.
    CHECK(sae::micro_batch_count(0, 10000, 512) == 10);    // the MFR paper's 256 -> 512, B 10,000
    CHECK(sae::micro_batch_count(0, 4096, 24576) == 1);    // 768 -> 24,576, B 4096: never split
    CHECK(sae::micro_batch_count(0, 500, 3072) == 1);      // GPT-2 768 -> 3072, B 500
    CHECK(sae::micro_batch_count(0, 1536, 512) == 1);      // rows = s + d_sae: no saving
    CHECK(sae::micro_batch_count(0, 1537, 512) == 2);
    CHECK(sae::micro_batch_count(0, 40000, 3072) == 14);   // s = d_sae: ceil(40000 / 3072)
    CHECK(sae::micro_batch_count(7, 50, 24) == 8);         // explicit: at most 7 rows each
    CHECK(sae::micro_batch_count(50, 50, 24) == 1);        // >= the rows: never split
    CHECK(sae::micro_batch_count(1000, 50, 24) == 1);
    CHECK(sae::micro_batch_count(0, 0, 512) == 1);

    // A batch 250x taller than the dictionary is cut in two slices of 1000 rows ...
    const sae::Matrix<float> batch = sae::Matrix<float>::Random(2000, 4);
    sae::TrainableSae<float, sae::TopK> topk({4, 8}, {2, true}, sae::TrainingConfig{}, 1);
    topk.train_step(batch);
    CHECK(topk.cache().code.rows() == 1000);
    // ... but never with BatchTopK, whose selection spans the whole batch.
    sae::TrainableSae<float, sae::BatchTopK> batch_topk({4, 8}, {2, 0.99}, sae::TrainingConfig{}, 1);
    batch_topk.train_step(batch);
    CHECK(batch_topk.cache().code.rows() == 2000);
}

TEST_CASE("Bad micro-batch settings are rejected with the key named", "[training][micro_batches][errors]") {
    sae::TrainingConfig training;
    training.micro_batch_rows = -1;
    CHECK_THROWS_WITH((sae::TrainableSae<float, sae::TopK>({4, 8}, {2, true}, training, 1)),
                      Catch::Contains("micro_batch_rows = -1"));
    training.micro_batch_rows = 7;  // BatchTopK cannot be split: an explicit value is an error
    CHECK_THROWS_AS((sae::TrainableSae<float, sae::BatchTopK>({4, 8}, {2, 0.99}, training, 1)), sae::config_error);
    CHECK_THROWS_WITH((sae::TrainableSae<float, sae::BatchTopK>({4, 8}, {2, 0.99}, training, 1)),
                      Catch::Contains("micro_batch_rows = 7") && Catch::Contains("batchtopk"));
}

}  // namespace test_trainable_sae_cases
