// Tests of the implicit-reward-model toolkit (include/sae/irm/): rank correlations, ridge
// regression, percentiles and the utility mapping, the token-utility table and its
// agreement statistics, the random-probe baseline, the train/test split, contrastive
// triples, signed targets, swapped-token activations, feature classification and layer
// divergence. Expected values are derived by hand in the comments, or read from
// tests/fixtures/irm/reference.json, which tools/reference/irm_reference.py writes with
// SciPy (kendalltau, spearmanr, rankdata) and NumPy (percentile, ridge as an augmented
// least-squares problem solved by SVD).

#include <sae/irm/irm.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sae/io/file.hpp>
#include <sae/models/gpt2_weights.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

// The tests are unity-built (tests/CMakeLists.txt): this file's helpers live in their own
// namespace so that they never meet another file's.
namespace test_irm_cases {

namespace {

using sae::Index;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
namespace irm = sae::irm;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

Eigen::VectorXd vec(std::initializer_list<double> values) {
    Eigen::VectorXd v(static_cast<Index>(values.size()));
    Index i = 0;
    for (const double x : values) v(i++) = x;
    return v;
}

Eigen::VectorXd vec(const nlohmann::json& values) {
    const std::vector<double> v = values.get<std::vector<double>>();
    return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Index>(v.size()));
}

const nlohmann::json& reference() {
    static const nlohmann::json j = nlohmann::json::parse(sae::read_whole_file(SAE_TEST_FIXTURES_DIR "/irm/reference.json"));
    return j;
}

/// Kendall's tau-b by the definition, O(n^2): the independent check for large inputs.
double kendall_tau_b_by_pairs(const Eigen::VectorXd& x, const Eigen::VectorXd& y) {
    double concordant_minus_discordant = 0, untied_x = 0, untied_y = 0;
    for (Index i = 0; i < x.size(); ++i) {
        for (Index j = i + 1; j < x.size(); ++j) {
            const double sx = (x(i) > x(j)) - (x(i) < x(j)), sy = (y(i) > y(j)) - (y(i) < y(j));
            concordant_minus_discordant += sx * sy;
            untied_x += sx != 0;
            untied_y += sy != 0;
        }
    }
    return concordant_minus_discordant / std::sqrt(untied_x * untied_y);
}

irm::TokenUtility row(const std::string& token, double truth, double predicted) {
    return irm::TokenUtility{token, truth, predicted, 1};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Rank correlations

TEST_CASE("kendall_tau_b on hand-counted pairs with ties", "[irm]") {
    // x = [1, 2, 2, 3], y = [1, 3, 2, 2]. The 6 pairs:
    //   (0,1) (0,2) (0,3) concordant; (1,2) tied in x only; (1,3) discordant (x up, y down);
    //   (2,3) tied in y only.  C = 3, D = 1, n0 = 6, n1 = 1 (x), n2 = 1 (y).
    //   tau_b = (3 - 1) / sqrt((6 - 1)(6 - 1)) = 2 / 5.
    CHECK_THAT(irm::kendall_tau_b(vec({1, 2, 2, 3}), vec({1, 3, 2, 2})), WithinAbs(0.4, 1e-15));
    // x = [1, 1, 2], y = [2, 2, 1]: (0,1) tied in both, (0,2) and (1,2) discordant;
    //   n0 = 3, n1 = n2 = 1: tau_b = (0 - 2) / sqrt(2 * 2) = -1.
    CHECK_THAT(irm::kendall_tau_b(vec({1, 1, 2}), vec({2, 2, 1})), WithinAbs(-1.0, 1e-15));
    // Symmetric in its arguments.
    CHECK_THAT(irm::kendall_tau_b(vec({1, 3, 2, 2}), vec({1, 2, 2, 3})), WithinAbs(0.4, 1e-15));
}

TEST_CASE("kendall_tau_b and spearman_rho are NaN when a side is constant", "[irm]") {
    CHECK(std::isnan(irm::kendall_tau_b(vec({2, 2, 2}), vec({1, 2, 3}))));
    CHECK(std::isnan(irm::kendall_tau_b(vec({1, 2, 3}), vec({5, 5, 5}))));
    CHECK(std::isnan(irm::kendall_tau_b(vec({1}), vec({1}))));
    CHECK(std::isnan(irm::spearman_rho(vec({2, 2, 2}), vec({1, 2, 3}))));
    CHECK(std::isnan(irm::spearman_rho(vec({7}), vec({1}))));
}

TEST_CASE("average_ranks and spearman_rho with ties, by hand", "[irm]") {
    // [1, 2, 2, 3]: the two 2s share ranks 2 and 3 -> 2.5 each.
    const Eigen::VectorXd ranks = irm::average_ranks(vec({3, 2, 1, 2}));
    CHECK(ranks == vec({4, 2.5, 1, 2.5}));
    // x = [1, 2, 2, 3] -> ranks [1, 2.5, 2.5, 4]; y = [1, 3, 2, 2] -> ranks [1, 4, 2.5, 2.5].
    // Both have mean 2.5; deviations dx = [-1.5, 0, 0, 1.5], dy = [-1.5, 1.5, 0, 0];
    // sum dx dy = 2.25, sum dx^2 = sum dy^2 = 4.5: rho = 2.25 / 4.5 = 0.5.
    CHECK_THAT(irm::spearman_rho(vec({1, 2, 2, 3}), vec({1, 3, 2, 2})), WithinAbs(0.5, 1e-15));
    // Without ties rho = 1 - 6 sum d^2 / (n (n^2 - 1)): ranks [1..5] vs [1, 3, 2, 4, 5],
    // sum d^2 = 2: rho = 1 - 12 / 120 = 0.9.
    CHECK_THAT(irm::spearman_rho(vec({1, 2, 3, 4, 5}), vec({-2, 0, -0.5, 1, 2.5})), WithinAbs(0.9, 1e-15));
    // Pearson by hand: x = [1, 2, 3], y = [1, 3, 2]: dx = [-1, 0, 1], dy = [-1, 1, 0]:
    // 1 / sqrt(2 * 2) = 0.5.
    CHECK_THAT(irm::pearson_correlation(vec({1, 2, 3}), vec({1, 3, 2})), WithinAbs(0.5, 1e-15));
}

TEST_CASE("rank correlations match SciPy on random samples with and without ties", "[irm]") {
    for (const nlohmann::json& c : reference().at("rank_correlation")) {
        INFO(c.at("name").get<std::string>());
        const Eigen::VectorXd x = vec(c.at("x")), y = vec(c.at("y"));
        CHECK_THAT(irm::kendall_tau_b(x, y), WithinAbs(c.at("kendall_tau_b").get<double>(), 1e-12));
        CHECK_THAT(irm::spearman_rho(x, y), WithinAbs(c.at("spearman_rho").get<double>(), 1e-12));
        const Eigen::VectorXd expected_ranks = vec(c.at("average_ranks_x"));
        CHECK((irm::average_ranks(x) - expected_ranks).cwiseAbs().maxCoeff() == 0.0);
        // The O(n log n) count agrees with the O(n^2) definition.
        CHECK_THAT(irm::kendall_tau_b(x, y), WithinAbs(kendall_tau_b_by_pairs(x, y), 1e-12));
    }
}

TEST_CASE("rank correlations reject bad input with typed errors", "[irm]") {
    CHECK_THROWS_AS(irm::kendall_tau_b(vec({1, 2}), vec({1, 2, 3})), sae::shape_error);
    CHECK_THROWS_WITH(irm::spearman_rho(vec({1, 2}), vec({1})), Contains("spearman_rho: x has 2 entries but spearman_rho: y has 1"));
    CHECK_THROWS_AS(irm::kendall_tau_b(Eigen::VectorXd(), Eigen::VectorXd()), sae::shape_error);
    CHECK_THROWS_WITH(irm::kendall_tau_b(vec({1, nan, 3}), vec({1, 2, 3})), Contains("kendall_tau_b: x[1] = nan"));
    CHECK_THROWS_AS(irm::spearman_rho(vec({1, 2, 3}), vec({1, 2, inf})), sae::numeric_error);
    CHECK_THROWS_AS(irm::average_ranks(Eigen::VectorXd()), sae::shape_error);
    CHECK_THROWS_AS(irm::pearson_correlation(vec({1, 2}), vec({nan, 1})), sae::numeric_error);
}

// ---------------------------------------------------------------------------------------
// Ridge regression

TEST_CASE("ridge regression on hand-solved problems", "[irm]") {
    // X = [1, 2, 3]^T, y = [2, 4, 6], alpha = 1. The intercept is not penalised, so
    // b = mean(y) - mean(x) w with mean(x) = 2, mean(y) = 4, and on the centred data
    // Xc = [-1, 0, 1], yc = [-2, 0, 2]: w = (Xc . yc) / (Xc . Xc + alpha) = 4 / (2 + 1) = 4/3,
    // b = 4 - 2 * 4/3 = 4/3.
    sae::Matrix<double> x(3, 1);
    x << 1, 2, 3;
    const irm::RidgeRegression ridge = irm::RidgeRegression::fit(x, vec({2, 4, 6}), 1.0);
    CHECK_THAT(ridge.weights()(0), WithinAbs(4.0 / 3.0, 1e-14));
    CHECK_THAT(ridge.intercept(), WithinAbs(4.0 / 3.0, 1e-14));
    sae::Matrix<double> at_four(1, 1);
    at_four << 4;
    CHECK_THAT(ridge.predict(at_four)(0), WithinAbs(20.0 / 3.0, 1e-13));  // 4 * 4/3 + 4/3

    // More features than rows (the dual system): X = [[1, 0, 0], [0, 1, 0]], y = [1, 3],
    // alpha = 1. mean(X) = [0.5, 0.5, 0], Xc = [[0.5, -0.5, 0], [-0.5, 0.5, 0]], yc = [-1, 1].
    // Xc Xc^T + I = [[1.5, -0.5], [-0.5, 1.5]]; solving it for yc gives d = [-0.5, 0.5], and
    // w = Xc^T d = [-0.5, 0.5, 0], b = 2 - mean(X) . w = 2. (Check in the primal:
    // (Xc^T Xc + I) w = [-0.5, 0.5, 0] + w = [-1, 1, 0] = Xc^T yc.)
    sae::Matrix<double> wide(2, 3);
    wide << 1, 0, 0,  //
        0, 1, 0;
    const irm::RidgeRegression dual = irm::RidgeRegression::fit(wide, vec({1, 3}), 1.0);
    CHECK_THAT(dual.weights()(0), WithinAbs(-0.5, 1e-14));
    CHECK_THAT(dual.weights()(1), WithinAbs(0.5, 1e-14));
    CHECK_THAT(dual.weights()(2), WithinAbs(0.0, 1e-14));
    CHECK_THAT(dual.intercept(), WithinAbs(2.0, 1e-14));

    // No features: the model is the mean of y.
    const irm::RidgeRegression constant = irm::RidgeRegression::fit(sae::Matrix<double>(3, 0), vec({1, 2, 6}), 1.0);
    CHECK(constant.weights().size() == 0);
    CHECK_THAT(constant.intercept(), WithinAbs(3.0, 1e-15));
}

TEST_CASE("ridge regression matches an SVD solution of the augmented problem", "[irm]") {
    for (const nlohmann::json& c : reference().at("ridge")) {
        INFO(c.at("name").get<std::string>());
        const Index rows = c.at("rows").get<Index>(), cols = c.at("cols").get<Index>();
        const std::vector<double> flat = c.at("x").get<std::vector<double>>();
        const sae::Matrix<double> x = Eigen::Map<const sae::Matrix<double>>(flat.data(), rows, cols);
        const irm::RidgeRegression ridge = irm::RidgeRegression::fit(x, vec(c.at("y")), c.at("alpha").get<double>());
        const Eigen::VectorXd expected = vec(c.at("weights"));
        CHECK((ridge.weights() - expected).cwiseAbs().maxCoeff() < 1e-10);
        CHECK_THAT(ridge.intercept(), WithinAbs(c.at("intercept").get<double>(), 1e-10));
        // Float features give the same probe to float precision.
        const irm::RidgeRegression from_float = irm::RidgeRegression::fit(x.cast<float>(), vec(c.at("y")), c.at("alpha").get<double>());
        CHECK((from_float.weights() - expected).cwiseAbs().maxCoeff() < 1e-4);
    }
}

TEST_CASE("ridge regression rejects bad input with typed errors", "[irm]") {
    sae::Matrix<double> x(3, 1);
    x << 1, 2, 3;
    CHECK_THROWS_AS(irm::RidgeRegression::fit(x, vec({1, 2}), 1.0), sae::shape_error);
    CHECK_THROWS_AS(irm::RidgeRegression::fit(sae::Matrix<double>(0, 2), Eigen::VectorXd(), 1.0), sae::shape_error);
    CHECK_THROWS_WITH(irm::RidgeRegression::fit(x, vec({1, 2, 3}), 0.0), Contains("alpha = 0 must be > 0"));
    CHECK_THROWS_AS(irm::RidgeRegression::fit(x, vec({1, 2, 3}), nan), sae::config_error);
    CHECK_THROWS_WITH(irm::RidgeRegression::fit(x, vec({1, inf, 3}), 1.0), Contains("targets[1] = inf"));
    x(2, 0) = nan;
    CHECK_THROWS_WITH(irm::RidgeRegression::fit(x, vec({1, 2, 3}), 1.0), Contains("features[2] = nan"));
    x(2, 0) = 3;
    const irm::RidgeRegression ridge = irm::RidgeRegression::fit(x, vec({1, 2, 3}), 1.0);
    CHECK_THROWS_AS(ridge.predict(sae::Matrix<double>(1, 2)), sae::shape_error);
}

// ---------------------------------------------------------------------------------------
// Percentiles, the utility scale and the token-utility table

TEST_CASE("percentile interpolates linearly between order statistics", "[irm]") {
    // Sorted [1, 2, 3, 4]: position (n - 1) q / 100 = 3q/100.
    const Eigen::VectorXd v = vec({4, 1, 3, 2});
    CHECK(irm::percentile(v, 0) == 1.0);
    CHECK(irm::percentile(v, 100) == 4.0);
    CHECK_THAT(irm::percentile(v, 10), WithinAbs(1.3, 1e-15));  // position 0.3
    CHECK_THAT(irm::percentile(v, 50), WithinAbs(2.5, 1e-15));  // position 1.5
    CHECK_THAT(irm::percentile(v, 90), WithinAbs(3.7, 1e-15));  // position 2.7
    CHECK(irm::percentile(vec({5}), 37) == 5.0);

    const nlohmann::json& p = reference().at("percentile");
    const Eigen::VectorXd values = vec(p.at("values"));
    const std::vector<double> qs = p.at("q").get<std::vector<double>>(), expected = p.at("expected").get<std::vector<double>>();
    for (std::size_t i = 0; i < qs.size(); ++i) {
        INFO("q = " << qs[i]);
        CHECK_THAT(irm::percentile(values, qs[i]), WithinAbs(expected[i], 1e-12));
    }
    CHECK_THROWS_AS(irm::percentile(v, 101), sae::config_error);
    CHECK_THROWS_AS(irm::percentile(v, nan), sae::config_error);
    CHECK_THROWS_AS(irm::percentile(Eigen::VectorXd(), 50), sae::shape_error);
    CHECK_THROWS_AS(irm::percentile(vec({1, nan}), 50), sae::numeric_error);
}

TEST_CASE("predictions are mapped onto the utility scale by their 10th and 90th percentiles", "[irm]") {
    // [1, 2, 3, 4]: p10 = 1.3, p90 = 3.7 (above). The map is
    // -3.9 + (v - 1.3) * (3.4 + 3.9) / (3.7 - 1.3), clamped to [-3.9, 3.4]:
    //   1 -> below -3.9 -> -3.9;  2 -> -3.9 + 0.7 * 7.3 / 2.4;  3 -> -3.9 + 1.7 * 7.3 / 2.4;
    //   4 -> above 3.4 -> 3.4.
    const Eigen::VectorXd mapped = irm::map_to_utility_scale(vec({1, 2, 3, 4}));
    CHECK(mapped(0) == -3.9);
    CHECK_THAT(mapped(1), WithinAbs(-3.9 + 0.7 * 7.3 / 2.4, 1e-14));
    CHECK_THAT(mapped(2), WithinAbs(-3.9 + 1.7 * 7.3 / 2.4, 1e-14));
    CHECK(mapped(3) == 3.4);

    // A mapping fitted on one set applies to another: [0, 10] with p10 = 1, p90 = 9 on
    // [0, 1] sends 5 to 0.5.
    irm::UtilityScale unit;
    unit.low = 0;
    unit.high = 1;
    const irm::UtilityMapping fitted = irm::UtilityMapping::fit(vec({0, 10}), unit);
    CHECK_THAT(fitted.from_low(), WithinAbs(1.0, 1e-15));
    CHECK_THAT(fitted.from_high(), WithinAbs(9.0, 1e-15));
    CHECK_THAT(fitted.apply(vec({5}))(0), WithinAbs(0.5, 1e-15));

    const nlohmann::json& m = reference().at("mapping");
    irm::UtilityScale scale;
    scale.low = m.at("low").get<double>();
    scale.high = m.at("high").get<double>();
    const Eigen::VectorXd numpy = vec(m.at("mapped"));
    CHECK((irm::map_to_utility_scale(vec(m.at("values")), scale) - numpy).cwiseAbs().maxCoeff() < 1e-12);

    CHECK_THROWS_WITH(irm::map_to_utility_scale(vec({2, 2, 2, 2})), Contains("no spread"));
    irm::UtilityScale reversed;
    reversed.low = 1;
    reversed.high = -1;
    CHECK_THROWS_AS(irm::map_to_utility_scale(vec({1, 2, 3}), reversed), sae::config_error);
    irm::UtilityScale bad_percentiles;
    bad_percentiles.lower_percentile = 90;
    bad_percentiles.upper_percentile = 10;
    CHECK_THROWS_AS(irm::map_to_utility_scale(vec({1, 2, 3}), bad_percentiles), sae::config_error);
    CHECK_THROWS_AS(fitted.apply(vec({nan})), sae::numeric_error);
}

TEST_CASE("token_utility_table averages the predictions of each token", "[irm]") {
    const std::vector<std::string> tokens{"good", "bad", "good", "awful"};
    const std::vector<irm::TokenUtility> table =
        irm::token_utility_table(tokens, vec({1.9, -2.5, 1.9, -2.0}), vec({1.0, -3.0, 2.0, 0.5}));
    // Sorted by true utility, highest first: good (1.9; mean of 1.0 and 2.0), awful, bad.
    REQUIRE(table.size() == 3);
    CHECK(table[0].token == "good");
    CHECK(table[0].predicted_utility == 1.5);
    CHECK(table[0].occurrences == 2);
    CHECK(table[1].token == "awful");
    CHECK(table[1].predicted_utility == 0.5);
    CHECK(table[2].token == "bad");
    CHECK(table[2].true_utility == -2.5);
    CHECK(irm::true_utilities(table) == vec({1.9, -2.0, -2.5}));
    CHECK(irm::predicted_utilities(table) == vec({1.5, 0.5, -3.0}));

    CHECK_THROWS_WITH(irm::token_utility_table(tokens, vec({1.9, -2.5, 1.8, -2.0}), vec({1, 2, 3, 4})),
                      Contains("token 'good' has true utility 1.9 and, at occurrence 2, 1.8"));
    CHECK_THROWS_AS(irm::token_utility_table(tokens, vec({1, 2, 3}), vec({1, 2, 3, 4})), sae::shape_error);
    CHECK_THROWS_AS(irm::token_utility_table({}, Eigen::VectorXd(), Eigen::VectorXd()), sae::shape_error);
    CHECK_THROWS_AS(irm::token_utility_table(tokens, vec({1, 2, 3, 4}), vec({1, 2, nan, 4})), sae::numeric_error);
}

// ---------------------------------------------------------------------------------------
// Agreement with the explicit reward and the random-probe baseline

TEST_CASE("reward_agreement counts recovered and wrong-sign tokens by hand", "[irm]") {
    // (true, predicted):
    //   A (3.0, 2.5)   strongly positive, recovered (both >= 2)
    //   B (2.0, 1.0)   strongly positive (true >= 2), not recovered
    //   C (1.0, -0.5)  wrong sign
    //   D (-2.5, -2.0) strongly negative, recovered (both <= -2)
    //   E (-1.0, 0.0)  predicted 0: no sign, so not wrong
    const std::vector<irm::TokenUtility> table{row("A", 3.0, 2.5), row("B", 2.0, 1.0), row("C", 1.0, -0.5),
                                               row("D", -2.5, -2.0), row("E", -1.0, 0.0)};
    const irm::RewardAgreement a = irm::reward_agreement(table);
    CHECK(a.tokens == 5);
    CHECK(a.positive_tokens == 3);
    CHECK(a.negative_tokens == 2);
    CHECK(a.strongly_positive == 2);
    CHECK(a.recovered_positive == 1);
    CHECK(a.strongly_negative == 1);
    CHECK(a.recovered_negative == 1);
    CHECK(a.wrong_sign == 1);
    // |errors| 0.5 + 1.0 + 1.5 + 0.5 + 1.0 = 4.5 over 5 tokens.
    CHECK_THAT(a.mean_absolute_error, WithinAbs(0.9, 1e-15));
    // In order of true value (D, E, C, B, A) the predictions are -2, 0, -0.5, 1, 2.5: one
    // discordant pair (E, C) of 10, no ties: tau_b = (9 - 1) / 10 = 0.8. Ranks of the
    // predictions in that order: 1, 3, 2, 4, 5: sum d^2 = 2, rho = 1 - 6 * 2 / (5 * 24) = 0.9.
    CHECK_THAT(a.kendall_tau_b, WithinAbs(0.8, 1e-15));
    CHECK_THAT(a.spearman_rho, WithinAbs(0.9, 1e-15));
    // Within the positive tokens (A, B, C) and the negative ones (D, E) the order is right.
    CHECK_THAT(a.kendall_tau_b_positive, WithinAbs(1.0, 1e-15));
    CHECK_THAT(a.kendall_tau_b_negative, WithinAbs(1.0, 1e-15));

    // A threshold of 1 recovers B too, and C (true 1, predicted -0.5) still is not.
    CHECK(irm::reward_agreement(table, 1.0).recovered_positive == 2);
    // One negative token: its within-class tau is undefined.
    CHECK(std::isnan(irm::reward_agreement({row("A", 3, 1), row("B", 2, 0), row("D", -1, -1)}).kendall_tau_b_negative));

    CHECK_THROWS_AS(irm::reward_agreement({}), sae::shape_error);
    CHECK_THROWS_AS(irm::reward_agreement(table, 0.0), sae::config_error);
    CHECK_THROWS_AS(irm::reward_agreement(table, nan), sae::config_error);
}

TEST_CASE("evaluate_predictions maps, tabulates and scores a probe", "[irm]") {
    // Predictions that increase with the true utility order the tokens perfectly whatever
    // their offset and unit.
    const std::vector<std::string> tokens{"a", "b", "c", "d", "e", "a"};
    const Eigen::VectorXd truth = vec({3.0, 2.1, 1.0, -1.5, -3.0, 3.0});
    const irm::ProbeEvaluation e = irm::evaluate_predictions(tokens, truth, (100.0 * truth.array() + 7.0).matrix());
    CHECK(e.table.size() == 5);
    CHECK(e.agreement.kendall_tau_b == 1.0);
    CHECK(e.agreement.spearman_rho == 1.0);
    // Reversed predictions reverse the order and flip every sign.
    const irm::ProbeEvaluation reversed = irm::evaluate_predictions(tokens, truth, -truth);
    CHECK(reversed.agreement.kendall_tau_b == -1.0);
    CHECK(reversed.agreement.wrong_sign == 5);
    CHECK_THROWS_AS(irm::evaluate_predictions(tokens, truth, vec({1, 2})), sae::shape_error);
}

TEST_CASE("random probes on one feature score tau_b = +-1, seeded", "[irm]") {
    // With the single feature equal to the true utility, a random probe predicts w * u:
    // a positive w orders the tokens exactly (tau_b = 1), a negative w exactly backwards.
    const std::vector<std::string> tokens{"a", "b", "c", "d", "e", "f"};
    const Eigen::VectorXd truth = vec({3.0, 2.0, 1.0, -1.0, -2.0, -3.0});
    const sae::Matrix<double> features = truth;
    const irm::RandomProbeBaseline baseline = irm::random_probe_baseline(features, tokens, truth, 40, /*seed=*/3);
    REQUIRE(baseline.probes.size() == 40);
    CHECK(baseline.degenerate == 0);
    std::size_t up = 0;
    for (const irm::RewardAgreement& a : baseline.probes) {
        CHECK(std::abs(a.kendall_tau_b) == 1.0);
        up += a.kendall_tau_b > 0;
    }
    const auto tau = [](const irm::RewardAgreement& a) { return a.kendall_tau_b; };
    CHECK_THAT(baseline.fraction_at_least(tau, 1.0), WithinAbs(static_cast<double>(up) / 40.0, 1e-15));
    CHECK_THAT(baseline.mean(tau), WithinAbs((2.0 * static_cast<double>(up) - 40.0) / 40.0, 1e-12));
    CHECK(up > 5);
    CHECK(up < 35);  // both signs occur (seeded; with another library's normal draws P(fail) = 2 P(Bin(40, 1/2) <= 5) < 2e-6)
    // The same seed gives the same probes; another seed other ones.
    const irm::RandomProbeBaseline again = irm::random_probe_baseline(features, tokens, truth, 40, 3);
    const irm::RandomProbeBaseline other = irm::random_probe_baseline(features, tokens, truth, 40, 4);
    bool same = true, differs = false;
    for (std::size_t i = 0; i < 40; ++i) {
        same = same && again.probes[i].kendall_tau_b == baseline.probes[i].kendall_tau_b;
        differs = differs || other.probes[i].kendall_tau_b != baseline.probes[i].kendall_tau_b;
    }
    CHECK(same);
    CHECK(differs);

    // All-zero features give every probe the output 0: nothing to map.
    const irm::RandomProbeBaseline silent =
        irm::random_probe_baseline(sae::Matrix<double>::Zero(6, 3), tokens, truth, 5, 0);
    CHECK(silent.probes.empty());
    CHECK(silent.degenerate == 5);
    CHECK(std::isnan(silent.mean(tau)));

    CHECK_THROWS_AS(irm::random_probe_baseline(features, tokens, truth, 0, 0), sae::config_error);
    CHECK_THROWS_AS(irm::random_probe_baseline(features.topRows(5), tokens, truth, 3, 0), sae::shape_error);
    sae::Matrix<double> with_nan = features;
    with_nan(1, 0) = nan;
    CHECK_THROWS_AS(irm::random_probe_baseline(with_nan, tokens, truth, 3, 0), sae::numeric_error);
}

// ---------------------------------------------------------------------------------------
// The split, triples, signed targets and swapped-token activations

TEST_CASE("train_test_split is a seeded 80/20 partition", "[irm]") {
    const irm::TrainTestSplit split = irm::train_test_split(10, 0.8, 5);
    CHECK(split.train.size() == 8);  // floor(10 * 0.8)
    CHECK(split.test.size() == 2);
    std::set<std::size_t> all(split.train.begin(), split.train.end());
    all.insert(split.test.begin(), split.test.end());
    CHECK(all.size() == 10);
    CHECK(*all.rbegin() == 9);
    CHECK(std::is_sorted(split.train.begin(), split.train.end()));
    CHECK(irm::train_test_split(10, 0.8, 5).test == split.test);
    CHECK(irm::train_test_split(1000, 0.8, 5).test != irm::train_test_split(1000, 0.8, 6).test);
    CHECK(irm::train_test_split(2, 0.99, 0).test.size() == 1);  // both sides keep one item
    CHECK(irm::train_test_split(7, 0.8, 0).train.size() == 5);  // floor(5.6)
    CHECK_THROWS_AS(irm::train_test_split(1, 0.8, 0), sae::shape_error);
    CHECK_THROWS_AS(irm::train_test_split(10, 1.0, 0), sae::config_error);
    CHECK_THROWS_AS(irm::train_test_split(10, nan, 0), sae::config_error);
}

namespace {

/// A toy tokenizer: a text is split at spaces, each piece is one token (unknown: 99).
/// Single tokens exist for the words listed, with their ids.
const std::map<std::string, int>& toy_ids() {
    static const std::map<std::string, int> ids{{"good", 10}, {"great", 11}, {"nice", 12}, {"bad", 20},  {"meh", 22},
                                                {"table", 30}, {"chair", 31}, {"life", 40}, {"is", 41},  {"a", 42},
                                                {"this", 43},  {"what", 44},  {"day", 45}};
    return ids;
}

std::vector<int> toy_encode(std::string_view text) {
    std::vector<int> ids;
    std::size_t begin = 0;
    while (begin < text.size()) {
        std::size_t end = text.find(' ', begin);
        if (end == std::string_view::npos) end = text.size();
        if (end > begin) {
            const auto found = toy_ids().find(std::string(text.substr(begin, end - begin)));
            ids.push_back(found == toy_ids().end() ? 99 : found->second);
        }
        begin = end + 1;
    }
    return ids;
}

std::optional<int> toy_single_token(const std::string& word) {
    const auto found = toy_ids().find(word);
    return found == toy_ids().end() ? std::nullopt : std::optional<int>(found->second);
}

// Valences sorted: -3.0 -2.5 -0.3 0.9 1.8 2.0 3.0 3.1 (n = 8). The 75th percentile sits
// at position 5.25: 2.0 + 0.25 (3.0 - 2.0) = 2.25; the 25th at 1.75: -2.5 + 0.75 (-0.3 + 2.5)
// = -0.85; the median at 3.5: 0.9 + 0.5 (1.8 - 0.9) = 1.35.
const char* const toy_lexicon_text = "good\t2.0\nbad\t-2.5\nawful\t-3.0\nok\t0.9\nmeh\t-0.3\ngreat\t3.1\nnice\t1.8\nbl\t3.0\n";

}  // namespace

TEST_CASE("word sites are whole lower-case words after a space", "[irm]") {
    // 0         1         2         3         4
    // 0123456789012345678901234567890123456789012345678
    // a good, b good's c good!) d (good e goodx f good
    const std::string document = "a good, b good's c good!) d (good e goodx f good";
    const auto good = [](std::string_view w) { return w == "good"; };
    CHECK(irm::word_sites(document, good) == std::vector<std::size_t>{2, 19, 44});
    // "good's" (letters after the apostrophe), "(good" (no space before), "goodx"
    // (another word) are not sites of "good"; "Good" is no site at all, "b" is.
    CHECK(irm::word_sites("x Good b", [](std::string_view) { return true; }) == std::vector<std::size_t>{7});
    CHECK(irm::word_sites("x good-natured good\tx good\xC3\xA9", good) == std::vector<std::size_t>{15});  // tab-ended
}

TEST_CASE("swap_vocabulary takes the lexicon's quartiles and frequent unrated words", "[irm]") {
    const sae::models::SentimentLexicon lexicon = sae::models::SentimentLexicon::parse(toy_lexicon_text, "toy");
    const std::vector<std::string_view> documents{"life is a good table", "so what a table and a chair", "and this table"};
    const irm::SwapVocabulary v = irm::swap_vocabulary(lexicon, documents, toy_single_token);
    CHECK_THAT(v.positive_threshold, WithinAbs(2.25, 1e-12));
    CHECK_THAT(v.negative_threshold, WithinAbs(-0.85, 1e-12));
    // >= 2.25: great (3.1); "bl" (3.0) is too short. <= -0.85: bad; "awful" has no token.
    REQUIRE(v.positive.size() == 1);
    CHECK(v.positive[0].word == "great");
    CHECK(v.positive[0].token == 11);
    CHECK(v.positive[0].utility == 3.1);
    REQUIRE(v.negative.size() == 1);
    CHECK(v.negative[0].word == "bad");
    // Unrated site words of >= 4 letters: table (3 times), chair, this, what (once each; by
    // word on ties). "life" opens its document, so it is not a site; "and" is too short.
    REQUIRE(v.neutral.size() == 4);
    CHECK(v.neutral[0].word == "table");
    CHECK(v.neutral[1].word == "chair");
    CHECK(v.neutral[2].word == "this");
    CHECK(v.neutral[3].utility == 0.0);

    irm::SwapVocabularyConfig median;
    median.strong_fraction = 0.5;  // thresholds at the median 1.35 (and the sign)
    median.neutral_words = 1;
    const irm::SwapVocabulary wide = irm::swap_vocabulary(lexicon, documents, toy_single_token, median);
    CHECK(wide.positive.size() == 3);  // good, great, nice
    CHECK(wide.negative.size() == 2);  // bad, meh
    CHECK(wide.neutral.size() == 1);

    CHECK_THROWS_WITH(irm::swap_vocabulary(lexicon, {"no words here"}, toy_single_token), Contains("no neutral"));
    median.strong_fraction = 0.0;
    CHECK_THROWS_AS(irm::swap_vocabulary(lexicon, documents, toy_single_token, median), sae::config_error);
}

TEST_CASE("contrastive_triples swap a positive word in its real context", "[irm]") {
    const sae::models::SentimentLexicon lexicon = sae::models::SentimentLexicon::parse(toy_lexicon_text, "toy");
    const std::vector<std::string_view> documents{"life is good and this table is nice", "what a great day, good!",
                                                  "a table a chair"};
    irm::SwapVocabularyConfig median;
    median.strong_fraction = 0.5;
    const irm::SwapVocabulary v = irm::swap_vocabulary(lexicon, documents, toy_single_token, median);
    irm::TripleConfig config;
    config.bos = 7;
    const std::vector<irm::ContrastiveTriple> triples = irm::contrastive_triples(documents, v, toy_encode, config);
    // Sites: good (doc 0), nice (doc 0), great (doc 1), good (doc 1).
    REQUIRE(triples.size() == 4);
    std::map<std::pair<std::size_t, std::size_t>, const irm::ContrastiveTriple*> by_site;
    for (const irm::ContrastiveTriple& t : triples) {
        by_site[{t.document, t.offset}] = &t;
        CHECK(t.negative.utility < 0);
        CHECK(t.neutral.utility == 0);
        CHECK(t.sequence(t.negative).back() == t.negative.token);
        CHECK(t.sequence(t.neutral).size() == t.context.size() + 1);
    }
    const irm::ContrastiveTriple& good = *by_site.at({0, 8});
    CHECK(good.positive.word == "good");
    CHECK(good.context == std::vector<int>{7, 40, 41});  // BOS, "life", "is"
    CHECK(good.sequence(good.positive) == std::vector<int>{7, 40, 41, 10});
    const irm::ContrastiveTriple& nice = *by_site.at({0, 31});
    CHECK(nice.context == std::vector<int>{7, 40, 41, 10, 99, 43, 30, 41});
    CHECK(by_site.at({1, 7})->positive.word == "great");
    CHECK(by_site.at({1, 18})->context == std::vector<int>{7, 44, 42, 11, 99});  // "day," is unknown

    // Seeded: the same seed, the same triples.
    const std::vector<irm::ContrastiveTriple> again = irm::contrastive_triples(documents, v, toy_encode, config);
    for (std::size_t i = 0; i < triples.size(); ++i) {
        CHECK(again[i].offset == triples[i].offset);
        CHECK(again[i].negative.word == triples[i].negative.word);
    }
    // Limits: one site per word drops the second "good"; max_triples caps the total.
    config.max_per_word = 1;
    CHECK(irm::contrastive_triples(documents, v, toy_encode, config).size() == 3);
    config.max_triples = 2;
    CHECK(irm::contrastive_triples(documents, v, toy_encode, config).size() == 2);
    // A short context window keeps BOS and the last tokens before the word.
    config = irm::TripleConfig();
    config.bos = 7;
    config.max_context_tokens = 3;
    for (const irm::ContrastiveTriple& t : irm::contrastive_triples(documents, v, toy_encode, config)) {
        if (t.document == 0 && t.offset == 31) CHECK(t.context == std::vector<int>{7, 30, 41});
    }
    config.max_context_tokens = 1;
    CHECK_THROWS_AS(irm::contrastive_triples(documents, v, toy_encode, config), sae::config_error);
    CHECK_THROWS_AS(irm::contrastive_triples(documents, irm::SwapVocabulary(), toy_encode, irm::TripleConfig()),
                    sae::config_error);
}

TEST_CASE("signed targets and probe rows interleave the positive and negative swaps", "[irm]") {
    sae::Matrix<double> positive(2, 2), negative(2, 2), neutral(2, 2);
    positive << 3, 4,  //
        1, 1;
    negative << 0, 1,  //
        2, 2;
    neutral << 0, 0,  //
        1, 2;
    // Triple 0: +||(3, 4)|| = 5, -||(0, 1)|| = -1; triple 1: +||(0, -1)|| = 1, -||(1, 0)|| = -1.
    CHECK(irm::signed_targets(positive, negative, neutral) == vec({5, -1, 1, -1}));

    std::vector<irm::ContrastiveTriple> triples(2);
    triples[0].positive = {"good", 10, 2.0};
    triples[0].negative = {"bad", 20, -2.5};
    triples[1].positive = {"great", 11, 3.1};
    triples[1].negative = {"meh", 22, -0.3};
    const irm::ContrastiveProbeData<double> data = irm::contrastive_probe_data(positive, negative, neutral, triples);
    CHECK(data.rows() == 4);
    CHECK(data.inputs.row(1) == negative.row(0));
    CHECK(data.inputs.row(2) == positive.row(1));
    CHECK(data.words == std::vector<std::string>{"good", "bad", "great", "meh"});
    CHECK(data.utilities == vec({2.0, -2.5, 3.1, -0.3}));
    CHECK(data.triple == std::vector<std::size_t>{0, 0, 1, 1});
    const irm::ContrastiveProbeData<double> second = data.rows_of({1});
    CHECK(second.words == std::vector<std::string>{"great", "meh"});
    CHECK(second.targets == vec({1, -1}));
    CHECK(second.inputs.row(1) == negative.row(1));
    CHECK_THROWS_AS(data.rows_of({2}), sae::shape_error);

    // Targets measured in another representation than the inputs.
    const irm::ContrastiveProbeData<double> other =
        irm::contrastive_probe_data(positive, negative, 2.0 * positive, 2.0 * negative, 2.0 * neutral, triples);
    CHECK(other.targets == vec({10, -2, 2, -2}));
    CHECK(other.inputs == data.inputs);

    CHECK_THROWS_AS(irm::signed_targets(positive, negative.leftCols(1), neutral), sae::shape_error);
    CHECK_THROWS_AS(irm::contrastive_probe_data(positive, negative, neutral, std::vector<irm::ContrastiveTriple>(3)),
                    sae::shape_error);
    neutral(1, 1) = nan;
    CHECK_THROWS_WITH(irm::signed_targets(positive, negative, neutral), Contains("neutral(1, 1) = nan"));
}

TEST_CASE("swapped-token activations equal the last row of a full forward pass", "[irm]") {
    sae::models::Gpt2Config config;
    config.n_layer = 2;
    config.n_head = 2;
    config.n_embd = 8;
    config.n_ctx = 8;
    config.vocab_size = 50;
    const sae::models::Gpt2<float> model(sae::models::random_gpt2_weights<float>(config, 11, 0.3));
    const std::vector<std::string> hooks{"blocks.1.hook_mlp_out", "blocks.0.hook_resid_mid"};

    // Different lengths, and more sequences of one length than fit one batch of 2.
    const std::vector<std::vector<int>> sequences{{1, 2, 3}, {4}, {5, 6, 7}, {8, 9, 10}, {11, 12}, {13, 14, 15}};
    const std::vector<sae::Matrix<float>> last = irm::last_token_activations(model, sequences, hooks, /*max_batch=*/2);
    REQUIRE(last.size() == 2);
    for (std::size_t h = 0; h < hooks.size(); ++h) {
        REQUIRE(last[h].rows() == 6);
        for (std::size_t i = 0; i < sequences.size(); ++i) {
            const sae::Matrix<float> alone = model.activation(sae::models::token_batch(sequences[i]), hooks[h]);
            INFO("hook " << hooks[h] << ", sequence " << i);
            CHECK((last[h].row(static_cast<Index>(i)) - alone.bottomRows(1)).cwiseAbs().maxCoeff() < 1e-5f);
        }
    }

    std::vector<irm::ContrastiveTriple> triples(2);
    triples[0].context = {1, 2};
    triples[1].context = {3};
    for (irm::ContrastiveTriple& t : triples) {
        t.positive.token = 20;
        t.negative.token = 21;
        t.neutral.token = 22;
    }
    const irm::TripleActivations<float> acts = irm::swapped_token_activations(model, triples, hooks);
    const sae::Matrix<float> negative_1 = model.activation(sae::models::token_batch(std::vector<int>{3, 21}), hooks[0]);
    CHECK((acts.negative[0].row(1) - negative_1.bottomRows(1)).cwiseAbs().maxCoeff() < 1e-5f);
    const sae::Matrix<float> neutral_0 = model.activation(sae::models::token_batch(std::vector<int>{1, 2, 22}), hooks[1]);
    CHECK((acts.neutral[1].row(0) - neutral_0.bottomRows(1)).cwiseAbs().maxCoeff() < 1e-5f);
    const sae::Matrix<float> both = acts.concatenated(irm::TripleSide::positive);
    CHECK(both.cols() == 16);
    CHECK(both.rightCols(8) == acts.positive[1]);

    CHECK_THROWS_AS(irm::last_token_activations(model, {{1}, {}}, hooks), sae::shape_error);
    CHECK_THROWS_AS(irm::last_token_activations(model, {{1}}, {}), sae::config_error);
    CHECK_THROWS_AS(irm::last_token_activations(model, {{1}}, {"blocks.0.attn.hook_pattern"}), sae::config_error);
    CHECK_THROWS_AS(irm::last_token_activations(model, {{1, 2, 3, 4, 5, 6, 7, 8, 9}}, hooks), sae::shape_error);
}

// ---------------------------------------------------------------------------------------
// Feature classification

TEST_CASE("TopActivations keeps the k strongest rows of each feature", "[irm]") {
    irm::TopActivations top(2, 2);
    sae::Matrix<double> first(3, 2), second(2, 2);
    first << 1, 0,  //
        3, 0,       //
        2, 0;
    second << 3, 0,  //
        0.5, 4;
    top.add(first, 0);
    top.add(second, 3);
    // Feature 0 saw 1, 3, 2, 3, 0.5 in rows 0..4: the two largest are the 3s (rows 1 and 3;
    // ties by row). Feature 1 fired once (row 4); zeros are not activations.
    const std::vector<irm::FeatureActivation> f0 = top.top(0), f1 = top.top(1);
    REQUIRE(f0.size() == 2);
    CHECK(f0[0].row == 1);
    CHECK(f0[1].row == 3);
    CHECK(f0[0].value == 3.0);
    REQUIRE(f1.size() == 1);
    CHECK(f1[0].row == 4);
    CHECK_THROWS_AS(top.top(2), sae::shape_error);
    CHECK_THROWS_AS(top.add(sae::Matrix<double>(1, 3), 0), sae::shape_error);
    CHECK_THROWS_AS(irm::TopActivations(2, 0), sae::config_error);
}

TEST_CASE("classify_features aligns features by weight and where they fire", "[irm]") {
    // Columns: f0 fires on positive words and has w > 0 (positive); f1 fires on negative
    // words and has w < 0 (negative); f2 fires on negative words but has w > 0 (mixed);
    // f3 never fires (inactive).
    sae::Matrix<double> positive(2, 4), negative(2, 4);
    positive << 2, 0, 0, 0,  //
        4, 1, 0, 0;
    negative << 0, 3, 1, 0,  //
        1, 3, 1, 0;
    const std::vector<irm::FeatureClassification> classes =
        irm::classify_features(vec({0.5, -2.0, 1.0, 3.0}), positive, negative);
    REQUIRE(classes.size() == 4);
    CHECK(classes[0].alignment == irm::UtilityAlignment::positive);
    CHECK(classes[1].alignment == irm::UtilityAlignment::negative);
    CHECK(classes[2].alignment == irm::UtilityAlignment::mixed);
    CHECK(classes[3].alignment == irm::UtilityAlignment::inactive);
    // f0: means 3 and 0.5, contribution 0.5 (3 - 0.5) = 1.25; fires on 2/2 and 1/2 rows.
    CHECK(classes[0].mean_positive == 3.0);
    CHECK(classes[0].mean_negative == 0.5);
    CHECK(classes[0].contribution == 1.25);
    CHECK(classes[0].firing_negative == 0.5);
    // f1: means 0.5 and 3: -2 (0.5 - 3) = 5. f2: 1 (0 - 1) = -1.
    CHECK(classes[1].contribution == 5.0);
    CHECK(classes[2].contribution == -1.0);
    CHECK(std::string(irm::to_string(classes[2].alignment)) == "mixed");
    const std::vector<irm::FeatureClassification> best = irm::strongest(classes, irm::UtilityAlignment::negative, 3);
    REQUIRE(best.size() == 1);
    CHECK(best[0].feature == 1);

    CHECK_THROWS_AS(irm::classify_features(vec({1, 2, 3}), positive, negative), sae::shape_error);
    CHECK_THROWS_AS(irm::classify_features(vec({1, 2, 3, 4}), positive, sae::Matrix<double>(0, 4)), sae::shape_error);
    CHECK_THROWS_AS(irm::classify_features(vec({1, 2, nan, 4}), positive, negative), sae::numeric_error);
}

// ---------------------------------------------------------------------------------------
// Layer divergence

TEST_CASE("model_divergence sums tensor distances per block", "[irm]") {
    sae::models::Gpt2Config config;
    config.n_layer = 3;
    config.n_head = 1;
    config.n_embd = 2;
    config.n_ctx = 2;
    config.vocab_size = 3;
    const sae::models::Gpt2Weights<float> base = sae::models::random_gpt2_weights<float>(config, 1);
    sae::models::Gpt2Weights<float> tuned = base;
    // Block 0: ln_1.weight += (1, 1) -> sqrt 2; attn.c_proj.weight(1, 1) -= 2 -> 2.
    tuned.blocks[0].ln_1.weight.array() += 1.0f;
    tuned.blocks[0].attn_c_proj.weight(1, 1) -= 2.0f;
    // Block 1: mlp.c_fc.weight(0, 0) += 3 -> 3, mlp.c_fc.bias(1) += 4 -> 4: total 7.
    tuned.blocks[1].mlp_c_fc.weight(0, 0) += 3.0f;
    tuned.blocks[1].mlp_c_fc.bias(1) += 4.0f;
    // Block 2 unchanged; wte(2, 1) += 0.5 belongs to no block.
    tuned.wte(2, 1) += 0.5f;

    const irm::ModelDivergence d = irm::model_divergence(base, tuned);
    REQUIRE(d.blocks.size() == 3);
    CHECK_THAT(d.blocks[0].total, WithinAbs(std::sqrt(2.0) + 2.0, 1e-6));
    CHECK_THAT(d.blocks[0].layer_norms, WithinAbs(std::sqrt(2.0), 1e-6));
    CHECK_THAT(d.blocks[0].attention, WithinAbs(2.0, 1e-6));
    CHECK(d.blocks[0].mlp == 0.0);
    CHECK_THAT(d.blocks[1].total, WithinAbs(7.0, 1e-6));
    CHECK_THAT(d.blocks[1].mlp, WithinAbs(7.0, 1e-6));
    CHECK(d.blocks[2].total == 0.0);
    REQUIRE(d.blocks[1].tensors.size() == 12);
    CHECK(d.blocks[1].tensors[8].name == "h.1.mlp.c_fc.weight");
    CHECK_THAT(d.blocks[1].tensors[8].distance, WithinAbs(3.0, 1e-6));
    REQUIRE(d.outside.size() == 4);  // tied head: wte, wpe, ln_f.weight, ln_f.bias
    CHECK(d.outside[0].name == "wte.weight");
    CHECK_THAT(d.outside[0].distance, WithinAbs(0.5, 1e-6));

    CHECK(irm::top_divergent_blocks(d.blocks, 1) == std::vector<Index>{1});
    CHECK(irm::top_divergent_blocks(d.blocks, 3) == std::vector<Index>{1, 0, 2});
    std::vector<irm::BlockDivergence> tied(2);
    tied[0].layer = 0;
    tied[1].layer = 1;
    CHECK(irm::top_divergent_blocks(tied, 2) == std::vector<Index>{0, 1});  // ties: lower layer first
    CHECK_THROWS_AS(irm::top_divergent_blocks(d.blocks, 0), sae::config_error);
    CHECK_THROWS_AS(irm::top_divergent_blocks(d.blocks, 4), sae::config_error);

    sae::models::Gpt2Weights<float> shorter = base;
    shorter.blocks.pop_back();
    CHECK_THROWS_AS(irm::model_divergence(base, shorter), sae::shape_error);
    sae::models::Gpt2Weights<float> wider = base;
    wider.blocks[2].mlp_c_fc.bias.resize(9);
    wider.blocks[2].mlp_c_fc.bias.setZero();
    CHECK_THROWS_WITH(irm::model_divergence(base, wider), Contains("tensor 'h.2.mlp.c_fc.bias' is [1, 8]"));
    tuned.blocks[2].ln_2.bias(0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(irm::model_divergence(base, tuned), Contains("tuned tensor 'h.2.ln_2.bias'"));
}

}  // namespace test_irm_cases
