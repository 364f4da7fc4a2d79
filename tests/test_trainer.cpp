// Tests of sae::train and the ready-made callbacks, driven by a real trainable model:
// least-squares regression y = x w fitted by plain mini-batch gradient descent on a
// fixed, seeded, noise-free data set (so the exact solution w_true is known).

#include <sae/core/callbacks.hpp>
#include <sae/core/trainer.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_trainer_cases {

namespace {

using sae::Index;
using sae::Matrix;
using sae::StepReport;

constexpr Index kFeatures = 4;
constexpr Index kRows = 64;
constexpr Index kBatch = 16;

/// The true weights the data set was made with; gradient descent must find them.
Eigen::VectorXd true_weights() {
    Eigen::VectorXd w(kFeatures);
    w << 1.5, -2.0, 0.5, 3.0;
    return w;
}

/// [kRows, kFeatures + 1]: standard normal features, then the exact target x . w_true.
template <class Scalar>
Matrix<Scalar> make_data_set(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd x(kRows, kFeatures);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
    Eigen::MatrixXd data(kRows, kFeatures + 1);
    data.leftCols(kFeatures) = x;
    data.col(kFeatures).noalias() = x * true_weights();
    return data.cast<Scalar>();
}

/// Linear least-squares regression trained by gradient descent; a batch is [x | y].
template <class Scalar>
class LeastSquaresModel {
public:
    using scalar_type = Scalar;
    using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

    /// `start_step` > 0 stands for a model restored from a checkpoint at that step.
    LeastSquaresModel(Scalar learning_rate, std::size_t start_step = 0)
        : weights_(Vector::Zero(kFeatures)), learning_rate_(learning_rate), step_(start_step),
          samples_(start_step * static_cast<std::size_t>(kBatch)) {}

    StepReport train_step(const sae::ConstMatrixRef<Scalar>& batch) {
        const Index n = batch.rows();
        Vector residual(n);
        residual.noalias() = batch.leftCols(kFeatures) * weights_;
        residual -= batch.col(kFeatures);
        Vector gradient(kFeatures);
        gradient.noalias() = (Scalar(2) / Scalar(n)) * (batch.leftCols(kFeatures).transpose() * residual);
        const double loss = static_cast<double>(residual.squaredNorm()) / static_cast<double>(n);
        weights_ -= learning_rate_ * gradient;
        ++step_;
        samples_ += static_cast<std::size_t>(n);
        return StepReport{step_, samples_, loss, {{"grad_norm", static_cast<double>(gradient.norm())}}};
    }

    std::size_t step() const { return step_; }
    const Vector& weights() const { return weights_; }

private:
    Vector weights_;
    Scalar learning_rate_;
    std::size_t step_;
    std::size_t samples_;
};

/// Cycles through the data set in consecutive batches of kBatch rows.
template <class Scalar>
class CyclingSource {
public:
    explicit CyclingSource(std::uint64_t seed = 7) : data_(make_data_set<Scalar>(seed)) {}

    void next_batch(Matrix<Scalar>& out) {
        out = data_.middleRows(offset_, kBatch);
        offset_ = (offset_ + kBatch) % kRows;
    }

private:
    Matrix<Scalar> data_;
    Index offset_ = 0;
};

/// Writes a NaN at (row, col) of the batch served on call number `bad_call` (1-based).
template <class Scalar>
class CorruptingSource {
public:
    CorruptingSource(std::size_t bad_call, Index row, Index col) : bad_call_(bad_call), row_(row), col_(col) {}

    void next_batch(Matrix<Scalar>& out) {
        inner_.next_batch(out);
        if (++calls_ == bad_call_) out(row_, col_) = std::numeric_limits<Scalar>::quiet_NaN();
    }

private:
    CyclingSource<Scalar> inner_;
    std::size_t bad_call_;
    Index row_, col_;
    std::size_t calls_ = 0;
};

/// A slow source: each batch takes at least `delay`.
template <class Scalar>
class SlowSource {
public:
    explicit SlowSource(std::chrono::milliseconds delay) : delay_(delay) {}
    void next_batch(Matrix<Scalar>& out) {
        std::this_thread::sleep_for(delay_);
        inner_.next_batch(out);
    }

private:
    CyclingSource<Scalar> inner_;
    std::chrono::milliseconds delay_;
};

/// Trains the wrapped model and adds a metric "scripted" whose value at step s is
/// values[s - 1]: lets a test control exactly what EarlyStopping sees.
template <class Scalar>
class WithScriptedMetric {
public:
    using scalar_type = Scalar;
    explicit WithScriptedMetric(std::vector<double> values) : model_(Scalar(0.05)), values_(std::move(values)) {}

    StepReport train_step(const sae::ConstMatrixRef<Scalar>& batch) {
        StepReport report = model_.train_step(batch);
        report.metrics.emplace_back("scripted", values_.at(report.step - 1));
        return report;
    }
    std::size_t step() const { return model_.step(); }

private:
    LeastSquaresModel<Scalar> model_;
    std::vector<double> values_;
};

/// A model that trains but never advances its step counter (a user bug).
template <class Scalar>
class StuckCounterModel {
public:
    using scalar_type = Scalar;
    StepReport train_step(const sae::ConstMatrixRef<Scalar>& batch) { return model_.train_step(batch); }
    std::size_t step() const { return 0; }

private:
    LeastSquaresModel<Scalar> model_{Scalar(0.05)};
};

/// A callback with only on_train_end.
struct EndOnly {
    int calls = 0;
    sae::TrainSummary summary;
    void on_train_end(const sae::TrainSummary& s) {
        ++calls;
        summary = s;
    }
};

/// A callback with only on_train_begin.
struct BeginOnly {
    int calls = 0;
    sae::TrainContext context;
    void on_train_begin(const sae::TrainContext& c) {
        ++calls;
        context = c;
    }
};

/// Asks to stop at a given step, without a stop_reason().
struct StopAtStep {
    std::size_t at;
    bool on_step_end(const StepReport& report) const { return report.step == at; }
};

/// A temporary file path removed when the test ends.
struct TempPath {
    std::filesystem::path path;
    explicit TempPath(const std::string& stem) {
        const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
        path = std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(tick) + ".jsonl");
        std::filesystem::remove(path);
    }
    ~TempPath() {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
    }
};

std::vector<std::string> read_lines(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::size_t count_of(const std::string& text, char c) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), c));
}

}  // namespace

// ---------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("train runs exactly total_steps and the model learns w_true", "[trainer]", float, double) {
    LeastSquaresModel<TestType> model(TestType(0.1));
    CyclingSource<TestType> source;
    sae::MetricsHistory history;
    const sae::TrainSummary summary = sae::train(model, source, sae::TrainerConfig{300, true}, history);

    CHECK(model.step() == 300);
    CHECK(summary.steps == 300);
    CHECK(summary.samples == 300 * static_cast<std::size_t>(kBatch));
    CHECK_FALSE(summary.stopped_early);
    CHECK(summary.stop_reason.empty());
    CHECK(summary.last.step == 300);
    CHECK(summary.seconds >= 0.0);

    REQUIRE(history.size() == 300);
    for (std::size_t i = 0; i < history.size(); ++i) {
        CHECK(history.reports()[i].step == i + 1);
        CHECK(history.reports()[i].samples == (i + 1) * static_cast<std::size_t>(kBatch));
    }
    const std::vector<double> losses = history.series("loss");
    REQUIRE(losses.size() == 300);
    CHECK(losses.front() == history.reports().front().loss);
    CHECK(losses.back() < 1e-6 * losses.front());  // noise-free data: the loss goes to 0

    // The data are exact, so every mini-batch shares the minimiser w_true.
    const Eigen::VectorXd w_true = true_weights();
    for (Index j = 0; j < kFeatures; ++j) {
        CHECK_THAT(static_cast<double>(model.weights()(j)), Catch::Matchers::WithinAbs(w_true(j), 1e-3));
    }
}

TEMPLATE_TEST_CASE("a resumed model runs only the remaining steps", "[trainer]", float, double) {
    const std::size_t start = GENERATE(std::size_t{0}, std::size_t{4}, std::size_t{19}, std::size_t{20}, std::size_t{25});
    LeastSquaresModel<TestType> model(TestType(0.05), start);
    CyclingSource<TestType> source;
    sae::MetricsHistory history;
    BeginOnly begin;
    const sae::TrainSummary summary = sae::train(model, source, sae::TrainerConfig{20, true}, history, begin);

    const std::size_t expected_steps = start < 20 ? 20 - start : 0;
    CHECK(summary.steps == expected_steps);
    CHECK(history.size() == expected_steps);
    CHECK(model.step() == std::max<std::size_t>(start, 20));
    if (expected_steps > 0) CHECK(history.reports().front().step == start + 1);
    CHECK(begin.calls == 1);
    CHECK(begin.context.start_step == start);
    CHECK(begin.context.total_steps == 20);
}

TEST_CASE("TrainerConfig rejects zero total_steps", "[trainer]") {
    CHECK_THROWS_AS((sae::TrainerConfig{0, true}.validate()), sae::config_error);
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    CHECK_THROWS_WITH(sae::train(model, source, sae::TrainerConfig{0, true}),
                      Catch::Matchers::Contains("total_steps"));
    CHECK(model.step() == 0);
}

TEMPLATE_TEST_CASE("with input = stop a NaN in a batch throws numeric_error naming step, row and column", "[trainer]",
                   float, double) {
    CorruptingSource<TestType> source(/*bad_call=*/4, /*row=*/2, /*col=*/1);
    LeastSquaresModel<TestType> model(TestType(0.05));
    sae::TrainerConfig config{10, true};
    config.faults.input = sae::FaultPolicy::stop;  // the default skips the batch (test_numeric_faults.cpp)
    try {
        sae::train(model, source, config);
        FAIL("expected sae::numeric_error");
    } catch (const sae::numeric_error& e) {
        const std::string message = e.what();
        CHECK_THAT(message, Catch::Matchers::Contains("step 4 "));
        CHECK_THAT(message, Catch::Matchers::Contains("row 2"));
        CHECK_THAT(message, Catch::Matchers::Contains("column 1"));
        CHECK_THAT(message, Catch::Matchers::Contains("nan"));
    }
    CHECK(model.step() == 3);  // the bad batch was not trained on
}

TEMPLATE_TEST_CASE("without check_finite a NaN batch surfaces as a diverged loss", "[trainer]", float, double) {
    CorruptingSource<TestType> source(/*bad_call=*/2, /*row=*/0, /*col=*/0);
    LeastSquaresModel<TestType> model(TestType(0.05));
    CHECK_THROWS_WITH(sae::train(model, source, sae::TrainerConfig{10, false}),
                      Catch::Matchers::Contains("loss diverged at step 2 (loss = nan)"));
}

TEMPLATE_TEST_CASE("a diverging model throws numeric_error naming the step", "[trainer]", float, double) {
    // lr = 5 is far above 2 / lambda_max of the mini-batch Hessians (~0.4-0.5), so the
    // weights grow geometrically until the loss overflows.
    LeastSquaresModel<TestType> model(TestType(5));
    CyclingSource<TestType> source;
    sae::MetricsHistory history;
    try {
        sae::train(model, source, sae::TrainerConfig{100000, true}, history);
        FAIL("expected sae::numeric_error");
    } catch (const sae::numeric_error& e) {
        const std::string message = e.what();
        // The model counted the failed step before returning its report.
        CHECK_THAT(message, Catch::Matchers::Contains("loss diverged at step " + std::to_string(model.step()) + " "));
        CHECK_THAT(message, Catch::Matchers::Contains("(loss = "));
    }
    // Callbacks never saw the bad step; every step they saw had a finite, growing loss.
    REQUIRE(history.size() + 1 == model.step());
    CHECK(history.size() > 5);
    CHECK(history.reports().back().loss > 1e3 * history.reports().front().loss);
}

TEST_CASE("a model whose step() does not advance is reported, not looped on forever", "[trainer]") {
    StuckCounterModel<double> model;
    CyclingSource<double> source;
    CHECK_THROWS_WITH(sae::train(model, source, sae::TrainerConfig{5, true}),
                      Catch::Matchers::Contains("did not advance"));
}

TEMPLATE_TEST_CASE("early stopping triggers at the step derived by hand", "[trainer][callbacks]", float, double) {
    // step:   1  2  3    4  5    6      7    8      9    10   11 ... 19   20
    const std::vector<double> script = {5,   4,   4.5, 3,   3.2, 2.995, 3.1, 2.995, 3.0, 1.0,
                                        0.9, 0.8, 0.7, 0.6, 0.5, 0.4,   0.3, 0.2, 0.1, 0.05};
    struct Case {
        std::size_t patience;
        double min_delta;
        std::size_t stop_step;  // 0: runs to the end
        std::size_t best_step;
    };
    // Improvement means value < best - min_delta; the first step always improves on +inf.
    //  (3, 0.01): best 3 @4; 3.2 (1), 2.995 is not < 2.99 (2), 3.1 (3)      -> stop at 7
    //  (3, 0):    best 2.995 @6; 3.1 (1), 2.995 equals best (2), 3.0 (3)   -> stop at 9
    //  (1, 0):    best 4 @2; 4.5 (1)                                        -> stop at 3
    //  (5, 0):    at most 3 stale steps (7-9) before steady descent from 10 -> no stop, best @20
    const Case c = GENERATE(values<Case>({{3, 0.01, 7, 4}, {3, 0.0, 9, 6}, {1, 0.0, 3, 2}, {5, 0.0, 0, 20}}));
    CAPTURE(c.patience, c.min_delta);

    WithScriptedMetric<TestType> model(script);
    CyclingSource<TestType> source;
    sae::EarlyStopping stopper("scripted", c.patience, c.min_delta);
    sae::MetricsHistory history;
    const sae::TrainSummary summary = sae::train(model, source, sae::TrainerConfig{20, true}, stopper, history);

    const std::size_t expected_end = c.stop_step == 0 ? 20 : c.stop_step;
    CHECK(model.step() == expected_end);
    CHECK(history.size() == expected_end);  // later callbacks still see the stopping step
    CHECK(summary.stopped_early == (c.stop_step != 0));
    CHECK(stopper.best_step() == c.best_step);
    CHECK(stopper.best() == script[c.best_step - 1]);
    if (c.stop_step != 0) {
        CHECK_THAT(summary.stop_reason, Catch::Matchers::Contains("scripted"));
        CHECK_THAT(summary.stop_reason, Catch::Matchers::Contains("step " + std::to_string(c.stop_step)));
    } else {
        CHECK(summary.stop_reason.empty());
    }
}

TEST_CASE("early stopping on a metric the model does not report is a config_error", "[callbacks]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    CHECK_THROWS_WITH(sae::train(model, source, sae::TrainerConfig{5, true}, sae::EarlyStopping("msee")),
                      Catch::Matchers::Contains("msee") && Catch::Matchers::Contains("grad_norm"));
}

TEST_CASE("early stopping on the default loss metric stops a converged model", "[callbacks]") {
    // min_delta = 1e6 is larger than any loss of this data set after step 1, so the loss
    // can never improve by it again: the stop comes exactly `patience` steps later.
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    const sae::TrainSummary summary =
        sae::train(model, source, sae::TrainerConfig{1000, true}, sae::EarlyStopping("loss", 10, 1e6));
    CHECK(summary.stopped_early);
    CHECK(model.step() == 11);
    CHECK_THAT(summary.stop_reason, Catch::Matchers::Contains("loss"));
}

TEST_CASE("the first callback to ask for a stop gives the reason; all callbacks see the step", "[trainer]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    sae::MetricsHistory history;
    const StopAtStep stop_at_5{5};  // const: its const on_step_end is still found
    const sae::TrainSummary summary =
        sae::train(model, source, sae::TrainerConfig{20, true}, stop_at_5, StopAtStep{8}, history);
    CHECK(model.step() == 5);
    CHECK(history.size() == 5);
    CHECK(summary.stopped_early);
    CHECK_THAT(summary.stop_reason, Catch::Matchers::Contains("step 5"));
}

TEST_CASE("a stop requested at the last step is not an early stop", "[trainer]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    const sae::TrainSummary summary = sae::train(model, source, sae::TrainerConfig{6, true}, StopAtStep{6});
    CHECK(model.step() == 6);
    CHECK_FALSE(summary.stopped_early);
    CHECK(summary.stop_reason.empty());
}

TEST_CASE("a callback with only on_train_end compiles and is called once", "[trainer]") {
    LeastSquaresModel<float> model(0.05f);
    CyclingSource<float> source;
    EndOnly end;
    sae::train(model, source, sae::TrainerConfig{7, true}, end);
    CHECK(end.calls == 1);
    CHECK(end.summary.steps == 7);
    CHECK(end.summary.last.step == 7);
    CHECK(end.summary.samples == 7 * static_cast<std::size_t>(kBatch));
}

TEST_CASE("CheckpointEvery saves every N steps and once at the end", "[callbacks]") {
    struct Case {
        std::size_t every, start, total;
        bool at_end;
        std::vector<std::size_t> expected;
    };
    const Case c = GENERATE(values<Case>({
        {3, 0, 10, true, {3, 6, 9, 10}},
        {3, 0, 9, true, {3, 6, 9}},     // the last step was just saved: no duplicate
        {3, 4, 10, true, {6, 9, 10}},   // resumed at 4: steps 5..10
        {3, 0, 10, false, {3, 6, 9}},
        {5, 10, 10, true, {}},          // nothing to train, nothing to save
    }));
    CAPTURE(c.every, c.start, c.total, c.at_end);

    LeastSquaresModel<double> model(0.05, c.start);
    CyclingSource<double> source;
    std::vector<std::size_t> saved;
    sae::train(model, source, sae::TrainerConfig{c.total, true},
               sae::CheckpointEvery(c.every, [&saved](std::size_t step) { saved.push_back(step); }, c.at_end));
    CHECK(saved == c.expected);
}

TEST_CASE("CheckpointEvery saves the step an early stop ended at", "[callbacks]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    std::vector<std::size_t> saved;
    sae::train(model, source, sae::TrainerConfig{20, true},
               sae::CheckpointEvery(3, [&saved](std::size_t step) { saved.push_back(step); }), StopAtStep{7});
    CHECK(saved == std::vector<std::size_t>{3, 6, 7});
}

TEMPLATE_TEST_CASE("JsonLinesLogger writes one valid JSON line per logged step and appends on resume",
                   "[callbacks]", float, double) {
    TempPath file("sae_test_trainer");
    LeastSquaresModel<TestType> model(TestType(0.05));
    CyclingSource<TestType> source;
    sae::MetricsHistory history;

    sae::train(model, source, sae::TrainerConfig{10, true}, sae::JsonLinesLogger(file.path.string(), 3), history);
    // Resume in a new logger on the same file: steps 11..15 -> logged 12 and 15 (the last).
    sae::train(model, source, sae::TrainerConfig{15, true}, sae::JsonLinesLogger(file.path.string(), 3), history);

    const std::vector<std::string> lines = read_lines(file.path);
    const std::vector<std::size_t> logged = {3, 6, 9, 10, 12, 15};
    REQUIRE(lines.size() == logged.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        CAPTURE(lines[i]);
        const nlohmann::json record = nlohmann::json::parse(lines[i]);  // throws if not valid JSON
        REQUIRE(record.is_object());
        CHECK(record.size() == 5);
        for (const char* key : {"step", "samples", "loss", "elapsed_s", "grad_norm"}) CHECK(record.contains(key));
        const std::size_t step = logged[i];
        const StepReport& report = history.reports().at(step - 1);
        CHECK(record["step"].get<std::size_t>() == step);
        CHECK(record["samples"].get<std::size_t>() == step * static_cast<std::size_t>(kBatch));
        CHECK_THAT(record["loss"].get<double>(), Catch::Matchers::WithinRel(report.loss, 1e-12));
        CHECK_THAT(record["grad_norm"].get<double>(), Catch::Matchers::WithinRel(report.metric("grad_norm"), 1e-12));
        CHECK(record["elapsed_s"].get<double>() >= 0.0);
    }
}

TEST_CASE("JsonLinesLogger writes non-finite values as null", "[callbacks]") {
    TempPath file("sae_test_trainer_null");
    {
        sae::JsonLinesLogger logger(file.path.string());
        StepReport report{1, 32, 0.5, {{"mse", std::numeric_limits<double>::quiet_NaN()},
                                       {"l0", std::numeric_limits<double>::infinity()},
                                       {"fvu", 0.25}}};
        logger.on_step_end(report);
    }
    const std::vector<std::string> lines = read_lines(file.path);
    REQUIRE(lines.size() == 1);
    const nlohmann::json record = nlohmann::json::parse(lines[0]);
    CHECK(record["mse"].is_null());
    CHECK(record["l0"].is_null());
    CHECK(record["fvu"].get<double>() == 0.25);
    CHECK(record["loss"].get<double>() == 0.5);
}

TEST_CASE("JsonLinesLogger names the path it cannot open", "[callbacks]") {
    const std::string path = "/nonexistent-sae-dir/sub/log.jsonl";
    CHECK_THROWS_AS(sae::JsonLinesLogger(path), sae::io_error);
    CHECK_THROWS_WITH(sae::JsonLinesLogger(path), Catch::Matchers::Contains(path));
}

TEMPLATE_TEST_CASE("ProgressBar writes plain lines off a terminal", "[callbacks]", float, double) {
    LeastSquaresModel<TestType> model(TestType(0.05));
    CyclingSource<TestType> source;
    std::ostringstream out;
    sae::train(model, source, sae::TrainerConfig{12, true}, sae::ProgressBar(out, 5));
    const std::string text = out.str();
    CAPTURE(text);
    CHECK(count_of(text, '\n') == 3);  // steps 5, 10 and the last one, 12
    CHECK(count_of(text, '\r') == 0);
    CHECK_THAT(text, Catch::Matchers::Contains("5/12"));
    CHECK_THAT(text, Catch::Matchers::Contains("10/12"));
    CHECK_THAT(text, Catch::Matchers::Contains("12/12 100%"));
    CHECK_THAT(text, Catch::Matchers::Contains("[####################]"));
    CHECK_THAT(text, Catch::Matchers::Contains("ETA"));
    CHECK_THAT(text, Catch::Matchers::Contains("steps/s"));
    CHECK_THAT(text, Catch::Matchers::Contains("samples/s"));
    CHECK_THAT(text, Catch::Matchers::Contains("loss "));
    CHECK_THAT(text, Catch::Matchers::Contains("grad_norm "));
}

TEST_CASE("ProgressBar prints the step an early stop ended at", "[callbacks]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    std::ostringstream out;
    sae::train(model, source, sae::TrainerConfig{100, true}, sae::ProgressBar(out, 50), StopAtStep{7});
    CHECK_THAT(out.str(), Catch::Matchers::Contains("7/100 7%"));
    CHECK(count_of(out.str(), '\n') == 1);
}

TEST_CASE("ProgressBar forced to terminal mode redraws one line", "[callbacks]") {
    LeastSquaresModel<double> model(0.05);
    CyclingSource<double> source;
    std::ostringstream out;
    sae::train(model, source, sae::TrainerConfig{30, true}, sae::ProgressBar(out, 1, /*force_tty=*/true));
    const std::string text = out.str();
    CHECK(count_of(text, '\r') >= 1);
    CHECK(count_of(text, '\n') == 1);  // only the final newline that keeps the bar
    CHECK(text.back() == '\n');
    CHECK_THAT(text, Catch::Matchers::Contains("30/30 100%"));
}

TEST_CASE("StopAfterSeconds stops within the time budget", "[callbacks]") {
    // Each batch takes >= 10 ms, so 50 ms are used up after at most 5 steps.
    LeastSquaresModel<double> model(0.05);
    SlowSource<double> source(std::chrono::milliseconds(10));
    const sae::TrainSummary summary =
        sae::train(model, source, sae::TrainerConfig{1000, true}, sae::StopAfterSeconds(0.05));
    CHECK(summary.stopped_early);
    CHECK(summary.steps >= 1);
    CHECK(summary.steps <= 5);
    CHECK_THAT(summary.stop_reason, Catch::Matchers::Contains("time budget"));
}

TEST_CASE("callbacks reject bad settings with config_error", "[callbacks]") {
    std::ostringstream out;
    CHECK_THROWS_AS(sae::ProgressBar(out, 0), sae::config_error);
    CHECK_THROWS_AS(sae::EarlyStopping("loss", 0), sae::config_error);
    CHECK_THROWS_AS(sae::EarlyStopping("loss", 5, -1.0), sae::config_error);
    CHECK_THROWS_AS(sae::EarlyStopping("loss", 5, std::numeric_limits<double>::quiet_NaN()), sae::config_error);
    CHECK_THROWS_AS(sae::CheckpointEvery(0, [](std::size_t) {}), sae::config_error);
    CHECK_THROWS_AS(sae::CheckpointEvery(3, nullptr), sae::config_error);
    CHECK_THROWS_AS(sae::StopAfterSeconds(0.0), sae::config_error);
    CHECK_THROWS_AS(sae::StopAfterSeconds(-1.0), sae::config_error);
    CHECK_THROWS_AS(sae::StopAfterSeconds(std::numeric_limits<double>::infinity()), sae::config_error);
}

}  // namespace test_trainer_cases
