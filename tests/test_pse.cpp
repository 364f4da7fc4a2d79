// Tests for sae/cartesian/: seeded sampling, token selection, the simulation-complexity
// proxy, Student's t, the risk fits and Partial Simulation Extrapolation.
//
// Expected values: hand derivations written next to each check, closed forms of the t
// distribution (ν = 1, 2), the t table of the NIST/SEMATECH e-Handbook of Statistical
// Methods (§1.3.6.7.2, three decimals), and the C++ standard's required value of
// std::mt19937_64 ([rand.predef]).
#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/pse.hpp"
#include "sae/cartesian/random_sampling.hpp"
#include "sae/cartesian/risk_fit.hpp"
#include "sae/cartesian/simulation_complexity.hpp"
#include "sae/cartesian/student_t.hpp"
#include "sae/cartesian/token_selection.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

// Own namespace: the tests may be unity-built with other files.
namespace test_pse_cases {

namespace {

using namespace sae::cartesian;

const double pi = std::acos(-1.0);

/// Observations r = risk(b) at the given budgets.
template <class Risk>
std::vector<RiskObservation> exact_observations(const std::vector<double>& budgets, Risk risk) {
    std::vector<RiskObservation> out;
    for (double b : budgets) {
        out.push_back(RiskObservation{b, risk(b)});
    }
    return out;
}

/// Agent A (2 actions) and environment E (2 actions), optionally with a token axis T in
/// front; world id = row-major cell index (4t + 2a + e with the token axis).
CartesianObject small_object(std::size_t token_positions) {
    if (token_positions == 0) {
        return CartesianObject::enumerated({{"A", AxisKind::agent, 2}, {"E", AxisKind::environment, 2}});
    }
    return CartesianObject::enumerated(
        {{"T", AxisKind::token, token_positions}, {"A", AxisKind::agent, 2}, {"E", AxisKind::environment, 2}});
}

}  // namespace

TEST_CASE("Seeded sampling is written out from the engine's raw output", "[pse]") {
    // The standard fixes the engine: the 10000th output of a default-constructed
    // std::mt19937_64 is 9981545732273789042.
    std::mt19937_64 standard;
    standard.discard(9999);
    CHECK(standard() == 9981545732273789042ULL);
    // uniform_unit = (x >> 11) · 2^-53 of the next output.
    std::mt19937_64 a(42);
    std::mt19937_64 b(42);
    const std::uint64_t raw = b();
    CHECK(uniform_unit(a) == static_cast<double>(raw >> 11U) / 9007199254740992.0);
    // Categorical inversion with weights {1, 3}: index 0 exactly when u · 4 < 1.
    for (int i = 0; i < 50; ++i) {
        std::mt19937_64 peek = a;
        const double u = uniform_unit(peek);
        CHECK(sample_categorical(std::vector<double>{1.0, 3.0}, a) == (u * 4.0 < 1.0 ? 0U : 1U));
    }
    // Zero weights are never drawn; frequencies follow the weights.
    std::mt19937_64 rng(1);
    std::size_t ones = 0;
    for (int i = 0; i < 4000; ++i) {
        CHECK(sample_categorical(std::vector<float>{0.0F, 2.0F, 0.0F}, rng) == 1U);
        ones += sample_categorical(std::vector<double>{1.0, 3.0}, rng);
    }
    CHECK(static_cast<double>(ones) / 4000.0 == Approx(0.75).margin(0.035));  // 5 sd = 0.034
    std::size_t counts[3] = {0, 0, 0};
    for (int i = 0; i < 3000; ++i) {
        ++counts[uniform_index(rng, 3)];
    }
    for (std::size_t c : counts) {
        CHECK(static_cast<double>(c) == Approx(1000.0).margin(130.0));  // 5 sd = 129
    }
    CHECK_THROWS_AS(uniform_index(rng, 0), sae::config_error);
    CHECK_THROWS_AS(sample_categorical(std::vector<double>{}, rng), sae::config_error);
    CHECK_THROWS_AS(sample_categorical(std::vector<double>{0.0, 0.0}, rng), sae::config_error);
    CHECK_THROWS_AS(sample_categorical(std::vector<double>{1.0, -1.0}, rng), sae::config_error);
    CHECK_THROWS_WITH(sample_categorical(std::vector<double>{1.0, std::nan("")}, rng),
                      Catch::Contains("weight[1]"));
    CHECK(trajectory_seed(5, 0) != trajectory_seed(5, 1));
}

TEST_CASE("Token selection: trajectories, history, seeds, token axis and bad policies", "[pse]") {
    // Deterministic policy: A plays step % 2, E plays 1. With the token axis in front the
    // world of step t is 4t + 2(t % 2) + 1: 1, 7, 9, 15, 17, 23.
    const TokenSimulation deterministic(small_object(6), [](std::size_t step, const Trajectory&) {
        return std::vector<std::vector<double>>{{step % 2 == 0 ? 1.0 : 0.0, step % 2 == 0 ? 0.0 : 1.0}, {0.0, 1.0}};
    });
    CHECK(deterministic.acting_axes() == std::vector<std::size_t>{1, 2});
    CHECK(deterministic.max_steps() == std::optional<std::size_t>(6));
    const Trajectory fixed = deterministic.sample(6, 123);
    CHECK(fixed.worlds == std::vector<WorldId>{1, 7, 9, 15, 17, 23});
    CHECK(fixed.actions[3] == std::vector<std::size_t>{1, 1});
    CHECK(fixed.log_probability == 0.0);
    CHECK_THROWS_AS(deterministic.sample(7, 0), sae::config_error);  // 6 token positions

    // Selecting the token axis: the first 3 positions are a shorter simulation.
    const TokenSimulation partial = deterministic.first_tokens(3);
    CHECK(partial.max_steps() == std::optional<std::size_t>(3));
    CHECK(partial.sample(3, 9).worlds == std::vector<WorldId>{1, 7, 9});
    CHECK_THROWS_AS(partial.sample(4, 0), sae::config_error);
    CHECK_THROWS_AS(TokenSimulation(small_object(0), deterministic.policy()).first_tokens(2), sae::config_error);

    // History-conditioned policy: A copies E's previous action, E is uniform; A weights
    // {1, 3} at step 0. Without a token axis any number of steps is allowed.
    const TokenSimulation copying(small_object(0), [](std::size_t step, const Trajectory& history) {
        std::vector<double> a = {1.0, 3.0};
        if (step > 0) {
            const std::size_t previous_e = history.actions.back()[1];
            a = {previous_e == 0 ? 1.0 : 0.0, previous_e == 1 ? 1.0 : 0.0};
        }
        return std::vector<std::vector<double>>{a, {0.5, 0.5}};
    });
    CHECK_FALSE(copying.max_steps().has_value());
    const std::vector<Trajectory> runs = copying.sample_many(10, 400, 2024);
    std::size_t first_a_is_one = 0;
    for (const Trajectory& run : runs) {
        REQUIRE(run.steps() == 10);
        for (std::size_t t = 1; t < 10; ++t) {
            CHECK(run.actions[t][0] == run.actions[t - 1][1]);
        }
        for (std::size_t t = 0; t < 10; ++t) {
            CHECK(run.worlds[t] == 2 * run.actions[t][0] + run.actions[t][1]);
        }
        // log P = log P(a_0) + 10 log(1/2) (the copies have probability 1).
        const double expected = std::log(run.actions[0][0] == 1 ? 0.75 : 0.25) + 10.0 * std::log(0.5);
        CHECK(run.log_probability == Approx(expected));
        CHECK(copying.log_probability(run.actions) == Approx(expected));
        first_a_is_one += run.actions[0][0];
    }
    CHECK(static_cast<double>(first_a_is_one) / 400.0 == Approx(0.75).margin(0.11));  // 5 sd = 0.108
    // Same seed, same trajectory; another seed, another one.
    CHECK(copying.sample(10, 77).actions == copying.sample(10, 77).actions);
    CHECK(copying.sample(10, 77).actions != copying.sample(10, 78).actions);
    CHECK(runs[3].actions == copying.sample(10, trajectory_seed(2024, 3)).actions);
    CHECK(copying.log_probability({{0, 1}, {0, 1}}) == -std::numeric_limits<double>::infinity());

    // Bad policies.
    const TokenSimulation too_few(small_object(0), [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{1.0, 1.0}};
    });
    CHECK_THROWS_AS(too_few.sample(1, 0), sae::shape_error);
    const TokenSimulation wrong_size(small_object(0), [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{1.0, 1.0, 1.0}, {1.0, 1.0}};
    });
    CHECK_THROWS_WITH(wrong_size.sample(1, 0), Catch::Contains("axis 'A'"));
    const TokenSimulation negative(small_object(0), [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{-1.0, 2.0}, {1.0, 1.0}};
    });
    CHECK_THROWS_AS(negative.sample(1, 0), sae::config_error);
    CHECK_THROWS_AS(TokenSimulation(small_object(0), StepPolicy{}), sae::config_error);
}

TEST_CASE("Simulation complexity: hand-computed code lengths", "[pse]") {
    CHECK(elias_gamma_bits(1) == 1.0);
    CHECK(elias_gamma_bits(2) == 3.0);
    CHECK(elias_gamma_bits(5) == 5.0);
    CHECK(elias_gamma_bits(8) == 7.0);
    CHECK_THROWS_AS(elias_gamma_bits(0), sae::config_error);
    CHECK(empirical_entropy_bits({0, 1, 2, 3}) == Approx(8.0));  // 4 symbols x 2 bits
    CHECK(empirical_entropy_bits({5, 5, 5}) == 0.0);
    // x = 0000: header gamma(5) + gamma(2) + gamma(1) = 5 + 3 + 1 = 9; one count field of
    // ceil(log2 5) = 3 bits; entropy 0: order-0 = 12. LZ78 parse: 0 | 00 | 0 -> 3 phrases,
    // prefix fields 0 + 1 + 2 bits, symbol fields 0 bits (one symbol): 9 + 3 = 12.
    CHECK(order0_code_bits({0, 0, 0, 0}) == Approx(12.0));
    CHECK(lz78_phrase_count({0, 0, 0, 0}) == 3);
    CHECK(lz78_code_bits({0, 0, 0, 0}) == Approx(12.0));
    CHECK(description_length_bits({0, 0, 0, 0}) == Approx(13.0));
    // x = 0101: header 5 + 3 + 1 + 3 = 12; two count fields 6; entropy 4 x 1 bit: 22.
    // LZ78: 0 | 1 | 01 -> 3 phrases; 0 + 1 + 2 prefix bits, 3 x 1 symbol bits: 12 + 6 = 18.
    CHECK(order0_code_bits({0, 1, 0, 1}) == Approx(22.0));
    CHECK(lz78_phrase_count({0, 1, 0, 1}) == 3);
    CHECK(lz78_code_bits({0, 1, 0, 1}) == Approx(18.0));
    CHECK(description_length_bits({0, 1, 0, 1}) == Approx(19.0));

    // The 27-world object, run for 0 steps, no policy description:
    //   header = gamma(3 axes) + gamma(27 + 1) + 3 x (gamma(3) + 2) = 3 + 9 + 15 = 27;
    //   structure = 3 log2 3;
    //   tensor 0..26: every symbol starts a new LZ78 phrase, c = 27: prefix bits
    //   Σ_{i=1..27} ceil(log2 i) = 0 + 1 + 2·2 + 4·3 + 8·4 + 11·5 = 104, symbol bits
    //   27 x ceil(log2 27) = 135, header gamma(28) + gamma(28) + Σ_{v=1..27} gamma(v)
    //   = 9 + 9 + (1 + 2·3 + 4·5 + 8·7 + 12·9) = 209: LZ78 = 448. Order-0 adds 27 count
    //   fields of 5 bits and 27 log2 27 = 128.4 bits to the same 209: 472.4. So 1 + 448.
    //   steps: gamma(1) = 1; total 27 + 449 + 1 = 477.
    const CartesianObject object = CartesianObject::enumerated(
        {{"A1", AxisKind::agent, 3}, {"A2", AxisKind::agent, 3}, {"E", AxisKind::environment, 3}});
    const SimulationComplexity c = simulation_complexity(object, 0);
    CHECK(c.header_bits == Approx(27.0));
    CHECK(c.structure_bits == Approx(3.0 * std::log2(3.0)));
    CHECK(c.world_tensor_bits == Approx(449.0));
    CHECK(c.policy_bits == 0.0);
    CHECK(c.step_bits == 1.0);
    CHECK(c.total_bits == Approx(477.0));
    CHECK(c.axis_count == 3);
    CHECK(c.agent_axis_count == 2);
    // A tensor that is one world everywhere is much simpler than 27 distinct worlds.
    const CartesianObject constant = CartesianObject::from_function(
        {{"A1", AxisKind::agent, 3}, {"A2", AxisKind::agent, 3}, {"E", AxisKind::environment, 3}}, 27,
        [](const std::vector<std::size_t>&) { return 0; });
    CHECK(simulation_complexity(constant, 0).world_tensor_bits < 100.0);

    // Policy description: a uniform policy over A and E tabulated with 11 levels gives the
    // symbol round(0.5 · 10) = 5 four times per step.
    const TokenSimulation uniform(small_object(0), [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{1.0, 1.0}, {1.0, 1.0}};
    });
    const Trajectory run = uniform.sample(8, 1);
    const std::vector<std::uint64_t> table = tabulate_policy(uniform, run, 11);
    CHECK(table == std::vector<std::uint64_t>(32, 5));
    const SimulationComplexity with_policy = simulation_complexity(small_object(0), 8, table);
    CHECK(with_policy.policy_bits == Approx(description_length_bits(table)));
    CHECK(with_policy.step_bits == elias_gamma_bits(9));
    CHECK(with_policy.total_bits == Approx(with_policy.header_bits + with_policy.world_tensor_bits +
                                           with_policy.policy_bits + with_policy.step_bits));
    CHECK_THROWS_AS(tabulate_policy(uniform, run, 1), sae::config_error);
}

TEST_CASE("Student t: closed forms, the NIST table and the incomplete beta", "[pse]") {
    // ν = 1 (Cauchy): q(p) = tan(π(p - 1/2)).
    for (double p : {0.6, 0.9, 0.975, 0.995}) {
        CHECK(student_t_quantile(p, 1.0) == Approx(std::tan(pi * (p - 0.5))).epsilon(1e-10));
    }
    // ν = 2: F(t) = 1/2 + t / (2 sqrt(2 + t²)), so q(p) = (2p - 1) sqrt(2 / (1 - (2p - 1)²)).
    for (double p : {0.6, 0.9, 0.975, 0.995}) {
        const double z = 2.0 * p - 1.0;
        CHECK(student_t_quantile(p, 2.0) == Approx(z * std::sqrt(2.0 / (1.0 - z * z))).epsilon(1e-10));
    }
    // NIST/SEMATECH e-Handbook §1.3.6.7.2, upper critical values (three decimals).
    CHECK(student_t_quantile(0.975, 5.0) == Approx(2.571).margin(5e-4));
    CHECK(student_t_quantile(0.975, 10.0) == Approx(2.228).margin(5e-4));
    CHECK(student_t_quantile(0.975, 30.0) == Approx(2.042).margin(5e-4));
    CHECK(student_t_quantile(0.95, 3.0) == Approx(2.353).margin(5e-4));
    CHECK(student_t_quantile(0.95, 20.0) == Approx(1.725).margin(5e-4));
    CHECK(student_t_quantile(0.995, 4.0) == Approx(4.604).margin(5e-4));
    // ν → ∞: the normal quantile 1.959964.
    CHECK(student_t_quantile(0.975, 1e6) == Approx(1.959964).margin(1e-4));
    // Symmetry and inversion.
    CHECK(student_t_quantile(0.025, 7.0) == Approx(-student_t_quantile(0.975, 7.0)));
    CHECK(student_t_quantile(0.5, 3.0) == 0.0);
    for (double p : {0.01, 0.3, 0.8, 0.999}) {
        CHECK(student_t_cdf(student_t_quantile(p, 6.5), 6.5) == Approx(p).epsilon(1e-12));
    }
    // Incomplete beta identities: I_x(1, 1) = x, I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b,
    // I_{1/2}(a, a) = 1/2.
    CHECK(regularized_incomplete_beta(1.0, 1.0, 0.3) == Approx(0.3).epsilon(1e-13));
    CHECK(regularized_incomplete_beta(3.0, 1.0, 0.7) == Approx(0.343).epsilon(1e-13));
    CHECK(regularized_incomplete_beta(1.0, 4.0, 0.2) == Approx(1.0 - std::pow(0.8, 4.0)).epsilon(1e-13));
    CHECK(regularized_incomplete_beta(2.5, 2.5, 0.5) == Approx(0.5).epsilon(1e-13));
    CHECK_THROWS_AS(student_t_quantile(1.0, 3.0), sae::config_error);
    CHECK_THROWS_AS(student_t_quantile(0.0, 3.0), sae::config_error);
    CHECK_THROWS_AS(student_t_quantile(0.9, 0.0), sae::config_error);
    CHECK_THROWS_AS(regularized_incomplete_beta(1.0, 1.0, 1.5), sae::config_error);
    CHECK_THROWS_AS(student_t_cdf(std::nan(""), 3.0), sae::numeric_error);
}

TEST_CASE("PSE: r(b) = 0.1 b on budgets 1..4 extrapolates to 1.0 at b = 10 and is refused", "[pse]") {
    // Exact linear data: slope 0.1, intercept 0, no residual, so the interval is the point
    // 1.0 itself; 1.0 is not below ε = 0.5: refuse. With r(b) = 0.01 b the prediction is 0.1 < 0.5: allow.
    std::vector<double> calls;
    const auto simulate = [&calls](double budget) {
        calls.push_back(budget);
        return 0.1 * budget;
    };
    const PseResult refused = pse(simulate, {1, 2, 3, 4}, 10.0, identity_risk{}, RiskModel::linear, 0.5);
    CHECK(calls == std::vector<double>{1, 2, 3, 4});
    CHECK(refused.fit.slope == Approx(0.1));
    CHECK(refused.fit.intercept == Approx(0.0).margin(1e-12));
    CHECK(refused.interval.predicted == Approx(1.0));
    CHECK(refused.interval.lower == Approx(1.0));
    CHECK(refused.interval.upper == Approx(1.0));
    CHECK_FALSE(refused.allow);
    CHECK(refused.observations.size() == 4);

    const PseResult allowed =
        pse([](double b) { return 0.01 * b; }, {1, 2, 3, 4}, 10.0, identity_risk{}, RiskModel::linear, 0.5);
    CHECK(allowed.interval.predicted == Approx(0.1));
    CHECK(allowed.allow);
}

TEST_CASE("Risk fits: power law and exponential recover exact parameters", "[pse]") {
    // r = 0.02 b^1.5 on b = 1, 2, 4, 8: in log-log space exactly log r = log 0.02 + 1.5 log b.
    const auto power = exact_observations({1, 2, 4, 8}, [](double b) { return 0.02 * std::pow(b, 1.5); });
    const RiskFit power_fit = fit_risk_model(power, RiskModel::power_law);
    CHECK(power_fit.slope == Approx(1.5).epsilon(1e-12));
    CHECK(power_fit.scale() == Approx(0.02).epsilon(1e-12));
    CHECK(power_fit.predict(100.0) == Approx(20.0).epsilon(1e-10));  // 0.02 · 100^1.5
    CHECK(power_fit.r_squared == Approx(1.0));
    CHECK(pse_decide(power, 100.0, RiskModel::power_law, 25.0).allow);
    CHECK_FALSE(pse_decide(power, 100.0, RiskModel::power_law, 10.0).allow);
    // r = 0.001 e^(0.7 b) on b = 1..5: log r = log 0.001 + 0.7 b.
    const auto growth = exact_observations({1, 2, 3, 4, 5}, [](double b) { return 0.001 * std::exp(0.7 * b); });
    const RiskFit exp_fit = fit_risk_model(growth, RiskModel::exponential);
    CHECK(exp_fit.slope == Approx(0.7).epsilon(1e-12));
    CHECK(exp_fit.scale() == Approx(0.001).epsilon(1e-12));
    const PseResult exp_decision = pse_decide(growth, 10.0, RiskModel::exponential, 1.0);
    CHECK(exp_decision.interval.predicted == Approx(0.001 * std::exp(7.0)).epsilon(1e-10));  // 1.0966
    CHECK_FALSE(exp_decision.allow);
    // A linear fit of the same exponential data is a different, worse model.
    CHECK(fit_risk_model(growth, RiskModel::linear).r_squared < 0.95);
}

TEST_CASE("Analytic t-interval hand-checked on a small noisy case", "[pse]") {
    // Budgets 1..4, risks 0.1, 0.3, 0.2, 0.4. By hand: x̄ = 2.5, ȳ = 0.25, Sxx = 5,
    // Sxy = (-1.5)(-0.15) + (-0.5)(0.05) + (0.5)(-0.05) + (1.5)(0.15) = 0.4, so β = 0.08,
    // α = 0.25 - 0.2 = 0.05. Fitted 0.13, 0.21, 0.29, 0.37; residuals -0.03, 0.09, -0.09,
    // 0.03; SSE = 0.018, s² = 0.018 / 2 = 0.009, s = 0.0948683.
    // At b* = 10: ŷ = 0.85; SE(mean) = s sqrt(1/4 + 7.5² / 5) = s sqrt(11.5) = 0.3217142.
    // t_{0.975, 2} = 4.302653 (table: 4.303; closed form 0.95 sqrt(2 / 0.0975)).
    // Half-width 1.3842243: interval [-0.5342243, 2.2342243]. Prediction interval:
    // s sqrt(12.5) · t = 1.4431536.
    const std::vector<RiskObservation> data = {{1, 0.1}, {2, 0.3}, {3, 0.2}, {4, 0.4}};
    const RiskFit fit = fit_risk_model(data, RiskModel::linear);
    CHECK(fit.intercept == Approx(0.05));
    CHECK(fit.slope == Approx(0.08));
    CHECK(fit.residual_standard_error == Approx(0.0948683).epsilon(1e-6));
    CHECK(fit.degrees_of_freedom == 2);
    const RiskInterval mean = analytic_interval(fit, 10.0, 0.95);
    CHECK(mean.predicted == Approx(0.85));
    CHECK(mean.lower == Approx(-0.5342243).epsilon(1e-6));
    CHECK(mean.upper == Approx(2.2342243).epsilon(1e-6));
    const RiskInterval single = analytic_interval(fit, 10.0, 0.95, IntervalKind::prediction);
    CHECK(single.upper - single.predicted == Approx(1.4431536).epsilon(1e-6));
    // The decision uses the upper end: 2.23 is not below 2, but is below 2.5.
    CHECK_FALSE(pse_decide(data, 10.0, RiskModel::linear, 2.0).allow);
    CHECK(pse_decide(data, 10.0, RiskModel::linear, 2.5).allow);
    PseOptions conservative;
    conservative.interval = IntervalMethod::analytic_prediction;
    CHECK_FALSE(pse_decide(data, 10.0, RiskModel::linear, 2.25, conservative).allow);  // 0.85 + 1.443
}

TEST_CASE("PSE with several samples per budget and a simulator taking the sample index", "[pse]") {
    // r = 0.1 b ± 0.01 (sample 0 above, sample 1 below): the ± cancel in every budget's
    // mean, so β = 0.1, α = 0; the 8 residuals are ±0.01, SSE = 8e-4, s = sqrt(8e-4 / 6).
    PseOptions options;
    options.samples_per_budget = 2;
    const PseResult result = pse(
        [](double budget, std::size_t sample) { return 0.1 * budget + (sample == 0 ? 0.01 : -0.01); },
        {1, 2, 3, 4}, 10.0, identity_risk{}, RiskModel::linear, 2.0, options);
    CHECK(result.observations.size() == 8);
    CHECK(result.observations[1].budget == 1.0);
    CHECK(result.observations[1].risk == Approx(0.09));
    CHECK(result.fit.slope == Approx(0.1));
    CHECK(result.fit.residual_standard_error == Approx(std::sqrt(8e-4 / 6.0)));
    CHECK(result.interval.predicted == Approx(1.0));
    CHECK(result.allow);
}

TEST_CASE("Bootstrap interval: seeded, exact on exact data, close to the t-interval", "[pse]") {
    const auto exact = exact_observations({1, 2, 3, 4}, [](double b) { return 0.1 * b; });
    const RiskInterval point = bootstrap_interval(exact, RiskModel::linear, 10.0, 0.95, 500, 1);
    CHECK(point.lower == Approx(1.0).margin(1e-12));
    CHECK(point.upper == Approx(1.0).margin(1e-12));
    // 60 noisy points around r = 0.05 b: the residual bootstrap and the t-interval estimate
    // the same sampling spread, so their widths agree to within a sampling error.
    std::mt19937_64 rng(99);
    std::vector<RiskObservation> noisy;
    for (int b = 1; b <= 6; ++b) {
        for (int k = 0; k < 10; ++k) {
            noisy.push_back(RiskObservation{static_cast<double>(b), 0.05 * b + 0.1 * (uniform_unit(rng) - 0.5)});
        }
    }
    const RiskInterval boot = bootstrap_interval(noisy, RiskModel::linear, 12.0, 0.95, 4000, 5);
    const RiskInterval analytic = analytic_interval(fit_risk_model(noisy, RiskModel::linear), 12.0, 0.95);
    CHECK(boot.predicted == Approx(analytic.predicted));
    const double ratio = (boot.upper - boot.lower) / (analytic.upper - analytic.lower);
    CHECK(ratio > 0.8);
    CHECK(ratio < 1.2);
    // Same seed, same interval; the PSE option routes to it.
    const RiskInterval again = bootstrap_interval(noisy, RiskModel::linear, 12.0, 0.95, 4000, 5);
    CHECK(again.lower == boot.lower);
    CHECK(again.upper == boot.upper);
    PseOptions options;
    options.interval = IntervalMethod::bootstrap;
    options.bootstrap_resamples = 4000;
    options.bootstrap_seed = 5;
    const PseResult decided = pse_decide(noisy, 12.0, RiskModel::linear, 10.0, options);
    CHECK(decided.interval.upper == boot.upper);
    CHECK(decided.allow);
    CHECK_THROWS_AS(bootstrap_interval(noisy, RiskModel::linear, 12.0, 0.95, 5, 0), sae::config_error);
}

TEST_CASE("PSE on a token simulation: the risk is a count of bad worlds", "[pse]") {
    // A and E choose independently each step, A uniform, E = 1 with probability 0.4; the bad
    // world is 3 (A = 1, E = 1), probability 0.2 per step. The risk of a run of b steps is
    // its number of bad steps, expected 0.2 b: 20 at the full budget of 100 steps.
    const TokenSimulation simulation(small_object(0), [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{0.5, 0.5}, {0.6, 0.4}};
    });
    const auto run = [&simulation](double budget, std::size_t sample) {
        return simulation.sample(static_cast<std::size_t>(budget),
                                 trajectory_seed(7, static_cast<std::uint64_t>(budget) * 1000 + sample));
    };
    const auto bad_steps = [](const Trajectory& trajectory) {
        double count = 0.0;
        for (WorldId w : trajectory.worlds) {
            count += w == 3 ? 1.0 : 0.0;
        }
        return count;
    };
    PseOptions options;
    options.samples_per_budget = 40;
    const PseResult loose = pse(run, {5, 10, 15, 20}, 100.0, bad_steps, RiskModel::linear, 40.0, options);
    CHECK(loose.observations.size() == 160);
    CHECK(loose.fit.slope == Approx(0.2).margin(0.05));
    CHECK(loose.interval.lower < 20.0);
    CHECK(loose.interval.upper > 20.0);
    CHECK(loose.allow);
    CHECK_FALSE(pse(run, {5, 10, 15, 20}, 100.0, bad_steps, RiskModel::linear, 10.0, options).allow);
}

TEST_CASE("PSE rejects bad input with typed errors naming the value", "[pse]") {
    const auto linear = [](double b) { return 0.1 * b; };
    CHECK_THROWS_AS(pse(linear, {}, 10.0, identity_risk{}, RiskModel::linear, 0.5), sae::config_error);
    CHECK_THROWS_WITH(pse(linear, {1, 3, 2}, 10.0, identity_risk{}, RiskModel::linear, 0.5),
                      Catch::Contains("budget 2 = 2.0"));
    CHECK_THROWS_AS(pse(linear, {1, 1, 2}, 10.0, identity_risk{}, RiskModel::linear, 0.5), sae::config_error);
    CHECK_THROWS_AS(pse(linear, {1, 2, 3}, 3.0, identity_risk{}, RiskModel::linear, 0.5), sae::config_error);
    CHECK_THROWS_AS(pse(linear, {1, 2, 3}, 10.0, identity_risk{}, RiskModel::linear, std::nan("")),
                    sae::config_error);
    // Too few points for a fit with an interval: 2 observations.
    CHECK_THROWS_WITH(pse(linear, {1, 2}, 10.0, identity_risk{}, RiskModel::linear, 0.5),
                      Catch::Contains("too few points"));
    // Three observations at one budget: no slope.
    CHECK_THROWS_AS(pse_decide({{2, 0.1}, {2, 0.2}, {2, 0.3}}, 10.0, RiskModel::linear, 0.5), sae::config_error);
    // A NaN risk names the budget.
    const auto nan_at_two = [](double b) { return b == 2.0 ? std::nan("") : 0.1 * b; };
    CHECK_THROWS_AS(pse(nan_at_two, {1, 2, 3}, 10.0, identity_risk{}, RiskModel::linear, 0.5), sae::numeric_error);
    CHECK_THROWS_WITH(pse(nan_at_two, {1, 2, 3}, 10.0, identity_risk{}, RiskModel::linear, 0.5),
                      Catch::Contains("budget 2.0"));
    // Log models need positive risks (and a power law positive budgets).
    CHECK_THROWS_AS(pse([](double b) { return b - 2.0; }, {1, 2, 3, 4}, 10.0, identity_risk{},
                        RiskModel::exponential, 0.5),
                    sae::numeric_error);
    CHECK_THROWS_WITH(pse([](double b) { return b - 2.0; }, {1, 2, 3, 4}, 10.0, identity_risk{},
                          RiskModel::power_law, 0.5),
                      Catch::Contains("risk -1.0"));
    CHECK_THROWS_AS(pse(linear, {0, 1, 2}, 10.0, identity_risk{}, RiskModel::power_law, 0.5), sae::config_error);
    PseOptions options;
    options.confidence = 1.0;
    CHECK_THROWS_AS(pse(linear, {1, 2, 3}, 10.0, identity_risk{}, RiskModel::linear, 0.5, options),
                    sae::config_error);
    options = PseOptions{};
    options.samples_per_budget = 0;
    CHECK_THROWS_AS(pse(linear, {1, 2, 3}, 10.0, identity_risk{}, RiskModel::linear, 0.5, options),
                    sae::config_error);
}

}  // namespace test_pse_cases
