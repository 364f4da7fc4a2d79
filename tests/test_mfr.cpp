// MFR coupling: the penalty's value and gradient, the ensemble's step order, and the
// guarantee that lambda = 0 reduces the ensemble to independent SAEs.
#include <sae/core/activations/topk.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/mfr/ensemble.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_mfr_cases {

namespace {

using sae::Index;
using Catch::Matchers::WithinAbs;


sae::TrainingConfig paper_training(double lr) {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = lr;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
    training.init_decoder_bias_to_median = false;
    return training;
}

const sae::AutoencoderConfig tied_config(Index d_in, Index d_sae) { return {d_in, d_sae, true, false, true}; }

using Decoders = std::vector<sae::Matrix<double>>;

std::vector<const sae::Matrix<double>*> pointers_to(const Decoders& decoders) {
    std::vector<const sae::Matrix<double>*> p;
    for (const auto& d : decoders) p.push_back(&d);
    return p;
}

std::vector<sae::Matrix<double>*> pointers_to(Decoders& gradients) {
    std::vector<sae::Matrix<double>*> p;
    for (auto& g : gradients) p.push_back(&g);
    return p;
}

/// Members of different sizes (n_a != n_b) and row norms, so that one_to_one leaves
/// rows unmatched and max_cosine rows receive several terms.
Decoders uneven_decoders(Index width, std::uint64_t seed) {
    return {sae::test::gaussian_matrix<double>(9, width, seed) * 2.0, sae::test::gaussian_matrix<double>(6, width, seed + 1),
            sae::test::gaussian_matrix<double>(8, width, seed + 2) * 0.5, sae::test::gaussian_matrix<double>(7, width, seed + 3)};
}

/// The pair-by-pair formula (the penalty's first implementation), written out as the
/// reference: for every pair in order, with matchings from the public matching API, the
/// mean matched cosine and, per matched (i, j), -scale / M (v_j - c u_i) / ||w_i|| added
/// to row i of a's gradient and the mirror to row j of b's.
struct PairwiseReference {
    double value = 0.0;
    std::vector<double> pair_dissimilarities;
    Decoders gradients;
};

PairwiseReference pairwise_reference(const Decoders& decoders, sae::MatchingMode mode, double weight) {
    PairwiseReference r;
    Decoders unit;
    std::vector<sae::RowVector<double>> norms;
    for (const auto& w : decoders) {
        norms.push_back(w.rowwise().norm().transpose());
        unit.push_back(norms.back().asDiagonal().inverse() * w);
        r.gradients.push_back(sae::Matrix<double>::Zero(w.rows(), w.cols()));
    }
    const std::size_t m = decoders.size();
    const double pair_weight = weight / static_cast<double>(m * (m - 1) / 2);
    const auto matched = [&](const sae::FeatureMatch& match, std::size_t a, std::size_t b, double scale) {
        const double count = static_cast<double>(match.a_index.size());
        double total = 0.0;
        for (std::size_t k = 0; k < match.a_index.size(); ++k) {
            const Index i = match.a_index[k], j = match.b_index[k];
            const double c = unit[a].row(i).dot(unit[b].row(j));
            total += c;
            r.gradients[a].row(i) += (-scale / count / norms[a](i)) * (unit[b].row(j) - c * unit[a].row(i));
            r.gradients[b].row(j) += (-scale / count / norms[b](j)) * (unit[a].row(i) - c * unit[b].row(j));
        }
        return total / count;
    };
    for (std::size_t a = 0; a < m; ++a) {
        for (std::size_t b = a + 1; b < m; ++b) {
            const sae::Matrix<double> cosines = sae::cosine_similarity(decoders[a], decoders[b]);
            double similarity = 0.0;
            if (mode == sae::MatchingMode::one_to_one) {
                similarity = matched(sae::match_features(cosines, mode), a, b, pair_weight);
            } else {
                const sae::Matrix<double> transposed = cosines.transpose();
                similarity = 0.5 * matched(sae::match_features(cosines, mode), a, b, 0.5 * pair_weight) +
                             0.5 * matched(sae::match_features(transposed, mode), b, a, 0.5 * pair_weight);
            }
            r.pair_dissimilarities.push_back(1.0 - similarity);
            r.value += 1.0 - similarity;
        }
    }
    r.value /= static_cast<double>(m * (m - 1) / 2);
    return r;
}

/// The StateDict surface MfrPenalty::save_state / load_state use.
struct JsonDict {
    nlohmann::json values = nlohmann::json::object();
    template <class T>
    void set(const std::string& key, const T& value) { values[key] = value; }
    template <class T>
    T get(const std::string& key) const { return values.at(key).get<T>(); }
};

}  // namespace

TEST_CASE("MFR penalty of a hand-built pair", "[mfr][penalty]") {
    // a = identity rows {e0, e1}; b = {(1,1)/sqrt2, e1} (b0 given unnormalised as (1,1)).
    // cos = [[1/sqrt2, 0], [1/sqrt2, 1]].
    // one_to_one: the identity matching (1/sqrt2 + 1) beats the swap (0 + 1/sqrt2),
    //   MMCS = (1/sqrt2 + 1)/2 and D = 1 - MMCS.
    // max_cosine: a->b picks (0,0),(1,1): (1/sqrt2 + 1)/2; b->a picks b0 -> a0 (tie at
    //   1/sqrt2, lower index) and b1 -> a1: (1/sqrt2 + 1)/2; D is the same.
    sae::Matrix<double> a(2, 2), b(2, 2);
    a << 1, 0, 0, 1;
    b << 1, 1, 0, 1;
    const double expected = 1.0 - (1.0 / std::sqrt(2.0) + 1.0) / 2.0;
    for (const auto mode : {sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine}) {
        sae::MfrPenalty<double> penalty(2, mode);
        CHECK_THAT(penalty.evaluate({&a, &b}, true, 1.0, {}), WithinAbs(expected, 1e-12));
    }
    // A permuted copy is a perfect match: D = 0.
    sae::Matrix<double> c(2, 2);
    c << 0, 3, 2, 0;
    sae::MfrPenalty<double> penalty(2, sae::MatchingMode::one_to_one);
    CHECK_THAT(penalty.evaluate({&a, &c}, true, 1.0, {}), WithinAbs(0.0, 1e-12));
}

TEST_CASE("MFR penalty: a non-finite decoder entry is named before any matching", "[mfr][penalty]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    const auto bad = GENERATE(std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity());
    std::vector<sae::Matrix<float>> decoders;
    for (std::uint64_t m = 0; m < 3; ++m) decoders.push_back(sae::test::gaussian_matrix<float>(4, 6, 70 + m));
    decoders[1](2, 3) = bad;
    sae::MfrPenalty<float> penalty(3, mode);
    CHECK_THROWS_AS(penalty.evaluate({&decoders[0], &decoders[1], &decoders[2]}, true, 1.0, {}), sae::numeric_error);
    CHECK_THROWS_WITH(penalty.evaluate({&decoders[0], &decoders[1], &decoders[2]}, true, 1.0, {}),
                      Catch::Contains("MfrPenalty: decoder 1 (2, 3) = ") && Catch::Contains("is not finite"));
    // A finite row whose squared norm overflows float has no direction (a zero row, as
    // for a zero row): cosine 0 with everything, no error.
    decoders[1](2, 3) = 0.0f;
    decoders[1].row(2).setConstant(1e20f);
    const double value = penalty.evaluate({&decoders[0], &decoders[1], &decoders[2]}, true, 1.0, {});
    CHECK(std::isfinite(value));
}

TEST_CASE("MFR penalty gradient matches finite differences", "[mfr][penalty][gradients]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    // Three members with different sizes and row norms; the matching is frozen after
    // the first evaluation, which is exactly what the gradient differentiates.
    std::vector<sae::Matrix<double>> decoders = {sae::test::gaussian_matrix<double>(6, 4, 1) * 2.0, sae::test::gaussian_matrix<double>(5, 4, 2),
                                                 sae::test::gaussian_matrix<double>(6, 4, 3) * 0.5};
    std::vector<sae::Matrix<double>> gradients;
    for (const auto& d : decoders) gradients.push_back(sae::Matrix<double>::Zero(d.rows(), d.cols()));
    sae::MfrPenalty<double> penalty(3, mode);
    const double weight = 0.7;
    const auto pointers = [&]() {
        std::vector<const sae::Matrix<double>*> p;
        for (const auto& d : decoders) p.push_back(&d);
        return p;
    };
    std::vector<sae::Matrix<double>*> gradient_pointers;
    for (auto& g : gradients) gradient_pointers.push_back(&g);
    penalty.evaluate(pointers(), true, weight, gradient_pointers);

    const double h = 1e-6;
    for (std::size_t m = 0; m < decoders.size(); ++m) {
        for (Index i = 0; i < decoders[m].size(); ++i) {
            double& w = decoders[m].data()[i];
            const double saved = w;
            w = saved + h;
            const double up = weight * penalty.evaluate(pointers(), false, weight, {});
            w = saved - h;
            const double down = weight * penalty.evaluate(pointers(), false, weight, {});
            w = saved;
            INFO("member " << m << " element " << i);
            CHECK_THAT(gradients[m].data()[i], WithinAbs((up - down) / (2 * h), 1e-7));
        }
    }
}

TEST_CASE("MFR penalty on the pairs of some members only", "[mfr][penalty]") {
    // What a rank of a distributed ensemble holding member 0 of three does: it wants
    // member 0's gradient only, so pairs (0, 1) and (0, 2) are evaluated and (1, 2),
    // which touches no member of its own, is skipped.
    std::vector<sae::Matrix<double>> decoders = {sae::test::gaussian_matrix<double>(5, 4, 11),
                                                 sae::test::gaussian_matrix<double>(5, 4, 12),
                                                 sae::test::gaussian_matrix<double>(5, 4, 13)};
    const std::vector<const sae::Matrix<double>*> pointers = {&decoders[0], &decoders[1], &decoders[2]};
    sae::Matrix<double> full0 = sae::Matrix<double>::Zero(5, 4), full1 = full0, full2 = full0, only0 = full0;
    sae::MfrPenalty<double> all(3, sae::MatchingMode::one_to_one), some(3, sae::MatchingMode::one_to_one);
    const double d_all = all.evaluate(pointers, true, 0.3, {&full0, &full1, &full2});
    const double d_some = some.evaluate(pointers, true, 0.3, {&only0, nullptr, nullptr});
    // Member 0's gradient is the same bits: the same pairs, in the same order.
    CHECK(only0 == full0);
    const std::vector<double>& pairs = some.pair_dissimilarities();
    REQUIRE(pairs.size() == 3);
    CHECK(pairs[0] == all.pair_dissimilarities()[0]);  // (0, 1)
    CHECK(pairs[1] == all.pair_dissimilarities()[1]);  // (0, 2)
    CHECK(std::isnan(pairs[2]));                       // (1, 2): skipped
    CHECK(some.pair_members(2) == std::pair<Index, Index>{1, 2});
    // The skipped pair counts 0 in the mean.
    CHECK_THAT(d_some, WithinAbs((pairs[0] + pairs[1]) / 3.0, 1e-15));
    CHECK_THAT(d_all, WithinAbs((pairs[0] + pairs[1] + all.pair_dissimilarities()[2]) / 3.0, 1e-15));
}

TEST_CASE("MFR penalty: the per-member pass equals the pair-by-pair formula", "[mfr][penalty][gradients]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    // Reversed, member 0 is not the largest: rows of the others that no row of member 0
    // is matched with are visited after the clusters of member 0's rows (build_visit_order).
    const bool reversed = GENERATE(false, true);
    // 5: shorter than one cache-line chunk (8 doubles) of row_streams.hpp; 21: two chunks
    // and a tail.
    const Index width = GENERATE(Index(5), Index(21));
    const Decoders decoders = [&] {
        Decoders in_order = uneven_decoders(width, 40);
        if (reversed) std::reverse(in_order.begin(), in_order.end());
        return in_order;
    }();
    const double weight = 0.8;
    const PairwiseReference reference = pairwise_reference(decoders, mode, weight);

    sae::MfrPenalty<double> penalty(4, mode);
    // GradientOutput::add onto existing values, GradientOutput::overwrite onto garbage.
    Decoders added, overwritten;
    for (const auto& d : decoders) {
        added.push_back(sae::Matrix<double>::Constant(d.rows(), d.cols(), 0.25));
        overwritten.push_back(sae::Matrix<double>::Constant(d.rows(), d.cols(), std::numeric_limits<double>::quiet_NaN()));
    }
    CHECK_THAT(penalty.evaluate(pointers_to(decoders), true, weight, pointers_to(added)), WithinAbs(reference.value, 1e-14));
    CHECK_THAT(penalty.evaluate(pointers_to(decoders), false, weight, pointers_to(overwritten), sae::GradientOutput::overwrite),
               WithinAbs(reference.value, 1e-14));
    REQUIRE(penalty.pair_dissimilarities().size() == 6);
    for (std::size_t p = 0; p < 6; ++p) CHECK_THAT(penalty.pair_dissimilarities()[p], WithinAbs(reference.pair_dissimilarities[p], 1e-14));
    for (std::size_t member = 0; member < decoders.size(); ++member) {
        INFO("member " << member);
        const sae::Matrix<double> expected_added = reference.gradients[member].array() + 0.25;
        CHECK((added[member] - expected_added).cwiseAbs().maxCoeff() < 1e-14);
        CHECK((overwritten[member] - reference.gradients[member]).cwiseAbs().maxCoeff() < 1e-14);
    }
}

TEST_CASE("MFR penalty: pair order and per-pair dissimilarities", "[mfr][penalty]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    const Decoders decoders = uneven_decoders(4, 50);
    sae::MfrPenalty<double> penalty(4, mode);
    REQUIRE(penalty.pair_dissimilarities().size() == 6);
    CHECK(std::isnan(penalty.pair_dissimilarities()[0]));  // nothing evaluated yet
    const double value = penalty.evaluate(pointers_to(decoders), true, 1.0, {});
    // (0,1), (0,2), (0,3), (1,2), (1,3), (2,3); D_ab from feature_matching's own mmcs.
    const std::pair<Index, Index> order[] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    double sum = 0.0;
    for (std::size_t p = 0; p < 6; ++p) {
        const auto [a, b] = order[p];
        CHECK(penalty.pair_members(p) == order[p]);
        const auto& wa = decoders[static_cast<std::size_t>(a)];
        const auto& wb = decoders[static_cast<std::size_t>(b)];
        const double similarity = mode == sae::MatchingMode::one_to_one
                                      ? sae::mmcs(wa, wb, mode)
                                      : 0.5 * sae::mmcs(wa, wb, mode) + 0.5 * sae::mmcs(wb, wa, mode);
        CHECK_THAT(penalty.pair_dissimilarities()[p], WithinAbs(1.0 - similarity, 1e-14));
        sum += penalty.pair_dissimilarities()[p];
    }
    CHECK_THAT(value, WithinAbs(sum / 6.0, 1e-15));
    CHECK_THROWS_AS(penalty.pair_members(6), sae::shape_error);
}

TEST_CASE("MFR penalty: members without a gradient, and skipped pairs", "[mfr][penalty]") {
    const auto mode = GENERATE(sae::MatchingMode::one_to_one, sae::MatchingMode::max_cosine);
    const Decoders decoders = uneven_decoders(5, 60);
    const double weight = 0.6;
    const PairwiseReference reference = pairwise_reference(decoders, mode, weight);
    // Gradients of members 0 and 3 only: pair (1,2) (index 3) has neither and is
    // skipped; every other pair is evaluated in full.
    Decoders gradients;
    for (const auto& d : decoders) gradients.push_back(sae::Matrix<double>::Zero(d.rows(), d.cols()));
    std::vector<sae::Matrix<double>*> wanted = {&gradients[0], nullptr, nullptr, &gradients[3]};
    sae::MfrPenalty<double> penalty(4, mode);
    const double value = penalty.evaluate(pointers_to(decoders), true, weight, wanted);
    double expected = 0.0;
    for (std::size_t p = 0; p < 6; ++p) {
        INFO("pair " << p);
        if (p == 3) {
            CHECK(std::isnan(penalty.pair_dissimilarities()[p]));
            continue;
        }
        CHECK_THAT(penalty.pair_dissimilarities()[p], WithinAbs(reference.pair_dissimilarities[p], 1e-14));
        expected += reference.pair_dissimilarities[p];
    }
    CHECK_THAT(value, WithinAbs(expected / 6.0, 1e-14));  // divided by ALL pairs
    CHECK((gradients[0] - reference.gradients[0]).cwiseAbs().maxCoeff() < 1e-14);
    CHECK((gradients[3] - reference.gradients[3]).cwiseAbs().maxCoeff() < 1e-14);
    CHECK(gradients[1].isZero(0.0));  // untouched
    // The skipped pair was never matched; the others were.
    JsonDict state;
    penalty.save_state(state, "");
    const auto matchings = state.get<std::vector<std::array<std::vector<Index>, 4>>>("matchings");
    for (std::size_t p = 0; p < 6; ++p) CHECK(matchings[p][0].empty() == (p == 3));
    // A value-only evaluation matches the skipped pair too and evaluates every pair.
    CHECK_THAT(penalty.evaluate(pointers_to(decoders), false, weight, {}), WithinAbs(reference.value, 1e-14));
    CHECK_FALSE(std::isnan(penalty.pair_dissimilarities()[3]));
}

TEST_CASE("MFR penalty: a matching that does not fit the decoders is rejected", "[mfr][penalty][errors]") {
    const Decoders decoders = uneven_decoders(3, 70);
    sae::MfrPenalty<double> penalty(4, sae::MatchingMode::one_to_one);
    penalty.evaluate(pointers_to(decoders), true, 1.0, {});
    JsonDict state;
    penalty.save_state(state, "run/");
    state.values["run/matchings"][2][1][0] = 7;  // pair (0,3): member 3 has 7 rows (0..6)
    penalty.load_state(state, "run/");
    CHECK_THROWS_WITH(penalty.evaluate(pointers_to(decoders), false, 1.0, {}),
                      Catch::Contains("members 0 -> 3") && Catch::Contains("row 7"));
    // A refresh replaces the bad matching.
    CHECK_NOTHROW(penalty.evaluate(pointers_to(decoders), true, 1.0, {}));
    Decoders gradients(decoders.size());
    std::vector<sae::Matrix<double>*> wrong = {&gradients[0], nullptr, nullptr, nullptr};
    CHECK_THROWS_AS(penalty.evaluate(pointers_to(decoders), false, 1.0, wrong), sae::shape_error);  // 0 x 0
}

TEST_CASE("MFR penalty rejects inconsistent members", "[mfr][penalty]") {
    sae::Matrix<float> a = sae::test::gaussian_matrix<float>(4, 3, 1), b = sae::test::gaussian_matrix<float>(4, 5, 2);
    sae::MfrPenalty<float> penalty(2, sae::MatchingMode::one_to_one);
    CHECK_THROWS_AS(penalty.evaluate({&a, &b}, true, 1.0, {}), sae::shape_error);
    CHECK_THROWS_AS(penalty.evaluate({&a}, true, 1.0, {}), sae::shape_error);
}

TEMPLATE_TEST_CASE("An ensemble with lambda = 0 is m independent SAEs", "[mfr][ensemble]", float, double) {
    sae::MfrConfig mfr;
    mfr.num_saes = 3;
    mfr.penalty_coefficient = 0.0;
    sae::TrainingConfig training = paper_training(0.01);
    training.reinit.enabled = true;  // the restart rule must behave identically too
    training.reinit.threshold = 0.05;
    const sae::AutoencoderConfig config = tied_config(8, 16);
    const typename sae::TopK<TestType>::Config topk{2, false};
    sae::MfrEnsemble<TestType, sae::TopK> ensemble(mfr, config, topk, training, 99);
    std::vector<sae::TrainableSae<TestType, sae::TopK>> alone;
    for (std::uint64_t i = 0; i < 3; ++i) alone.emplace_back(config, topk, training, sae::derive_seed(99, i));

    for (int step = 0; step < 20; ++step) {
        const sae::Matrix<TestType> batch = sae::test::gaussian_matrix<TestType>(32, 8, 1000 + static_cast<std::uint64_t>(step));
        ensemble.train_step(batch);
        for (auto& sae_alone : alone) sae_alone.train_step(batch);
    }
    std::size_t restarts = 0;
    for (std::size_t i = 0; i < alone.size(); ++i) {
        CHECK(ensemble.members()[i].model().W_enc() == alone[i].model().W_enc());
        CHECK(ensemble.members()[i].model().b_enc() == alone[i].model().b_enc());
        CHECK(ensemble.members()[i].reinit_count() == alone[i].reinit_count());
        restarts += alone[i].reinit_count();
    }
    CHECK(restarts > 0);  // the comparison covered the restart path
    CHECK(ensemble.last_penalty() == 0.0);
}

TEST_CASE("MFR pulls the members' dictionaries together", "[mfr][ensemble]") {
    // Two tied TopK SAEs on data with 24 true features in R^12. With lambda = 1 the
    // members must agree more (higher pairwise MMCS) than the same members with
    // lambda = 0 after the same 300 steps on the same batches.
    sae::IndependentFeaturesConfig data;
    data.input_dim = 12;
    data.num_features = 24;
    data.activation_probability = 0.1;
    const auto run = [&](double lambda) {
        sae::SyntheticGenerator<double> generator(data, 5);
        sae::MfrConfig mfr;
        mfr.num_saes = 2;
        mfr.penalty_coefficient = lambda;
        mfr.penalty_warmup_steps = 20;
        sae::MfrEnsemble<double, sae::TopK> ensemble(mfr, tied_config(12, 24), {3, false}, paper_training(0.01), 17);
        for (int step = 0; step < 300; ++step) ensemble.train_step(generator.sample(256));
        return ensemble.mean_pairwise_mmcs();
    };
    const double coupled = run(1.0);
    const double independent = run(0.0);
    INFO("pairwise MMCS with MFR " << coupled << ", without " << independent);
    CHECK(coupled > independent + 0.02);
}

TEST_CASE("The stale matching is reused until a refresh", "[mfr][penalty]") {
    // b is a row permutation of a, so the fresh matching is perfect (D = 0). After the
    // rows of b are swapped back and forth without a refresh, the stale pairs no
    // longer line up and D is exactly 1 - mean of the now-mismatched cosines.
    sae::Matrix<double> a(3, 2), b(3, 2);
    a << 1, 0, 0, 1, 1, 1;
    b << 0, 1, 1, 1, 1, 0;  // b = (a1, a2, a0)
    sae::MfrPenalty<double> penalty(2, sae::MatchingMode::one_to_one);
    CHECK_THAT(penalty.evaluate({&a, &b}, true, 1.0, {}), WithinAbs(0.0, 1e-12));
    b.row(0).swap(b.row(1));  // b = (a2, a1, a0); stale pairs a0-b2, a1-b0, a2-b1
    // stale cosines: a0.b2 = 1, a1.b0 = cos(e1, (1,1)) = 1/sqrt2, a2.b1 = 1/sqrt2
    const double stale_expected = 1.0 - (1.0 + 2.0 / std::sqrt(2.0)) / 3.0;
    CHECK_THAT(penalty.evaluate({&a, &b}, false, 1.0, {}), WithinAbs(stale_expected, 1e-12));
    CHECK_THAT(penalty.evaluate({&a, &b}, true, 1.0, {}), WithinAbs(0.0, 1e-12));
}

TEST_CASE("MFR penalty: warm-started refreshes equal cold matchings, and are not saved", "[mfr][penalty]") {
    // Refreshes on slowly drifting decoders (each refresh warm-starts from the last one)
    // must give the pair-by-pair reference, whose matchings are solved cold. The members
    // have different sizes, so the rectangular restart is exercised too.
    Decoders drifting = uneven_decoders(6, 90);
    const Decoders& decoders = drifting;
    sae::MfrPenalty<double> penalty(4, sae::MatchingMode::one_to_one);
    JsonDict saved;
    for (int refresh = 0; refresh < 4; ++refresh) {
        const PairwiseReference reference = pairwise_reference(decoders, sae::MatchingMode::one_to_one, 1.0);
        CHECK_THAT(penalty.evaluate(pointers_to(decoders), true, 1.0, {}), WithinAbs(reference.value, 1e-14));
        for (std::size_t p = 0; p < 6; ++p) {
            CHECK_THAT(penalty.pair_dissimilarities()[p], WithinAbs(reference.pair_dissimilarities[p], 1e-14));
        }
        if (refresh == 1) penalty.save_state(saved, "");
        for (std::size_t m = 0; m < drifting.size(); ++m) {
            drifting[m] += 0.05 * sae::test::gaussian_matrix<double>(decoders[m].rows(), 6, static_cast<std::uint64_t>(900 + 10 * refresh) + m);
        }
    }
    // The checkpoint holds the matchings only; a penalty resumed from it refreshes cold
    // and agrees with the one that kept its warm state.
    CHECK(saved.values.size() == 1);
    sae::MfrPenalty<double> resumed(4, sae::MatchingMode::one_to_one);
    resumed.load_state(saved, "");
    CHECK_THAT(resumed.evaluate(pointers_to(decoders), true, 1.0, {}),
               WithinAbs(penalty.evaluate(pointers_to(decoders), true, 1.0, {}), 1e-14));
}

TEST_CASE("Firing-rate deviation of the re-initialisation rule", "[mfr][reinit]") {
    // d_sae = 4, k = 1: target rate t = 1/4. Four rows all firing latent 0:
    // r = (1, 0, 0, 0); |r - t| / t = (3, 1, 1, 1); cubes (27, 1, 1, 1); mean 7.5.
    sae::TrainingConfig training = paper_training(0.01);
    training.reinit.enabled = true;
    sae::TrainableSae<double, sae::TopK> sae_model(tied_config(3, 4), {1, false}, training, 1);
    sae::SparseCode<double> code(4, 4);
    for (int r = 0; r < 4; ++r) code.insert(r, 0) = 1.0;
    code.makeCompressed();
    CHECK_THAT(sae_model.firing_rate_deviation(code), WithinAbs(7.5, 1e-12));
}

TEST_CASE("Bad ensemble settings are rejected", "[mfr][errors]") {
    const sae::TrainingConfig training = paper_training(0.01);
    sae::MfrConfig mfr;
    mfr.num_saes = 0;
    CHECK_THROWS_AS((sae::MfrEnsemble<float, sae::TopK>(mfr, tied_config(4, 8), {2, false}, training, 1)),
                    sae::config_error);
    mfr.num_saes = 2;
    mfr.penalty_coefficient = -1.0;
    CHECK_THROWS_WITH((sae::MfrEnsemble<float, sae::TopK>(mfr, tied_config(4, 8), {2, false}, training, 1)),
                      Catch::Contains("penalty_coefficient"));
    mfr.penalty_coefficient = 1.0;
    CHECK_THROWS_WITH((sae::MfrEnsemble<float, sae::TopK>(mfr, tied_config(4, 8), {9, false}, training, 1)),
                      Catch::Contains("k = 9"));
    sae::MfrEnsemble<float, sae::TopK> ensemble(mfr, tied_config(4, 8), {2, false}, training, 1);
    sae::Matrix<float> batch = sae::Matrix<float>::Ones(3, 4);
    batch(1, 2) = std::nanf("");
    CHECK_THROWS_AS(ensemble.train_step(batch), sae::numeric_error);
    CHECK_THROWS_AS(ensemble.train_step(sae::Matrix<float>::Ones(3, 5)), sae::shape_error);
}

}  // namespace test_mfr_cases
