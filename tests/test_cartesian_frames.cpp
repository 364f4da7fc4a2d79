// Tests for sae/cartesian/: Cartesian frames (frame, units, morphisms, ⊕ & ⊗ ⅋, collapse
// and equivalence, Ensure/Prevent/Ctrl, Obs, subagents) and Cartesian objects
// (view_from, restriction, per-agent powers, manageability).
//
// Expected values are derived by hand in the comments from the definitions of
// Garrabrant's "Cartesian Frames" sequence (cited per case), or are theorems of the
// sequence / its HOL4 formalisation checked on random small frames against an
// independent route (e.g. the categorical definition of Ensure via hom(1_S, C), the
// homotopy-equivalence definition against collapse isomorphism, the definition of Obs
// against the partition algorithm).
#include "sae/cartesian/additive_operations.hpp"
#include "sae/cartesian/biextensional.hpp"
#include "sae/cartesian/cartesian_object.hpp"
#include "sae/cartesian/controllables.hpp"
#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/frame_units.hpp"
#include "sae/cartesian/manageability.hpp"
#include "sae/cartesian/morphism.hpp"
#include "sae/cartesian/multiplicative_operations.hpp"
#include "sae/cartesian/observables.hpp"
#include "sae/cartesian/random_sampling.hpp"
#include "sae/cartesian/subagents.hpp"
#include "sae/cartesian/world_set.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace Catch {
template <>
struct StringMaker<sae::cartesian::WorldSet> {
    static std::string convert(const sae::cartesian::WorldSet& s) { return sae::cartesian::to_string(s); }
};
}  // namespace Catch

// Own namespace: the tests may be unity-built with other files.
namespace test_cartesian_frames_cases {

namespace {

using namespace sae::cartesian;

/// A random frame over `worlds` worlds with 1..max_rows rows and 1..max_columns columns.
Frame random_frame(std::mt19937_64& rng, std::size_t worlds, std::size_t max_rows, std::size_t max_columns) {
    const std::size_t rows = 1 + uniform_index(rng, max_rows);
    const std::size_t columns = 1 + uniform_index(rng, max_columns);
    return Frame::from_function(worlds, rows, columns,
                                [&](std::size_t, std::size_t) { return uniform_index(rng, worlds); });
}

/// C with a random row and a random column duplicated and the rows and columns shuffled:
/// biextensionally equivalent to C by construction.
Frame equivalent_variant(const Frame& c, std::mt19937_64& rng) {
    std::vector<std::size_t> rows;
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        rows.push_back(a);
    }
    rows.push_back(uniform_index(rng, c.agent_count()));
    std::vector<std::size_t> columns;
    for (std::size_t e = 0; e < c.environment_count(); ++e) {
        columns.push_back(e);
    }
    columns.push_back(uniform_index(rng, c.environment_count()));
    std::shuffle(rows.begin(), rows.end(), rng);
    std::shuffle(columns.begin(), columns.end(), rng);
    return restrict_environments(restrict_agents(c, rows), columns);
}

/// The issue's frame over W = {w0, w1, w2, w3}: rows a0 = (w0, w1), a1 = (w2, w3).
Frame issue_frame() { return Frame::from_rows(4, {{0, 1}, {2, 3}}); }

}  // namespace

TEST_CASE("WorldSet is a sorted set of world ids with the usual algebra", "[cartesian]") {
    const WorldSet s{3, 1, 3, 0};
    CHECK(s.ids() == std::vector<WorldId>{0, 1, 3});
    CHECK(s.contains(3));
    CHECK_FALSE(s.contains(2));
    CHECK(to_string(s) == "{0, 1, 3}");
    CHECK(complement(s, 5) == WorldSet{2, 4});
    CHECK(set_union(s, WorldSet{2}) == WorldSet{0, 1, 2, 3});
    CHECK(set_intersection(s, WorldSet{1, 2, 3}) == WorldSet{1, 3});
    CHECK(set_difference(s, WorldSet{1}) == WorldSet{0, 3});
    CHECK(is_subset(WorldSet{0, 3}, s));
    CHECK_FALSE(is_subset(WorldSet{2}, s));
    CHECK(disjoint(s, WorldSet{2, 4}));
    CHECK_FALSE(disjoint(s, WorldSet{4, 3}));
    CHECK(WorldSet::from_mask(0b1011) == s);
    CHECK(s.to_mask() == 0b1011U);
    CHECK_THROWS_AS(WorldSet{64}.to_mask(), sae::config_error);
    CHECK_THROWS_WITH(require_worlds_in_range(s, 3, "test"), Catch::Contains("world 3"));
    std::size_t visited = 0;
    for_each_subset(3, "test", [&](std::uint64_t) { ++visited; });
    CHECK(visited == 8);
    CHECK_THROWS_AS(for_each_subset(21, "test", [](std::uint64_t) {}), sae::config_error);
}

TEST_CASE("Frame: entries, rows, columns, image, dual, and bad input", "[cartesian]") {
    const Frame c = Frame::from_rows(5, {{0, 1, 4}, {2, 3, 4}});
    CHECK(c.agent_count() == 2);
    CHECK(c.environment_count() == 3);
    CHECK(c(1, 0) == 2);
    CHECK(c.row(1) == std::vector<WorldId>{2, 3, 4});
    CHECK(c.column(2) == std::vector<WorldId>{4, 4});
    CHECK(c.row_image(0) == WorldSet{0, 1, 4});
    CHECK(c.image() == WorldSet{0, 1, 2, 3, 4});
    // C* is the transpose, and C** = C exactly.
    const Frame d = dual(c);
    CHECK(d.agent_count() == 3);
    CHECK(d.row(0) == std::vector<WorldId>{0, 2});
    CHECK(dual(d) == c);
    // Commit_B and Assume_F keep the listed rows / columns in order.
    CHECK(restrict_agents(c, {1}) == Frame::from_rows(5, {{2, 3, 4}}));
    CHECK(restrict_environments(c, {2, 0}) == Frame::from_rows(5, {{4, 0}, {4, 2}}));

    CHECK_THROWS_AS(Frame::from_rows(4, {{0, 1}, {2, 4}}), sae::config_error);
    CHECK_THROWS_WITH(Frame::from_rows(4, {{0, 1}, {2, 4}}), Catch::Contains("world 4"));
    CHECK_THROWS_AS(Frame::from_rows(4, {{0, 1}, {2}}), sae::shape_error);
    CHECK_THROWS_WITH(Frame::from_rows(4, {{0, 1}, {2}}), Catch::Contains("row 1"));
    CHECK_THROWS_AS(Frame(4, 2, 2, {0, 1, 2}), sae::shape_error);
    CHECK_THROWS_AS(c.at(2, 0), sae::config_error);
    CHECK_THROWS_AS(c.row(7), sae::config_error);
    CHECK_THROWS_AS(restrict_agents(c, {0, 2}), sae::config_error);
    CHECK_THROWS_AS(sum(c, issue_frame()), sae::config_error);  // 5 worlds against 4
}

TEST_CASE("Units 0, top, null, 1_S and bottom_S have the sequence's shapes", "[cartesian]") {
    // "Cartesian Frames Definitions" §1: 0 = ({}, {e}), ⊤ = ({a}, {}), null = ({}, {}),
    // 1_S = ({a}, S) with a ⋆ s = s, ⊥_S = (S, {e}) with s ⋆ e = s.
    CHECK(zero_frame(4).agent_count() == 0);
    CHECK(zero_frame(4).environment_count() == 1);
    CHECK(top_frame(4).agent_count() == 1);
    CHECK(top_frame(4).environment_count() == 0);
    CHECK(null_frame(4).agent_count() == 0);
    CHECK(null_frame(4).environment_count() == 0);
    CHECK(one_frame(4, WorldSet{1, 3}) == Frame::from_rows(4, {{1, 3}}));
    CHECK(bottom_frame(4, WorldSet{1, 3}) == Frame::from_rows(4, {{1}, {3}}));
    CHECK(one_frame(3) == Frame::from_rows(3, {{0, 1, 2}}));
    // ⊥_S = (1_S)*; 0 = ⊥_{} and ⊤ = 1_{}.
    CHECK(dual(one_frame(4, WorldSet{0, 2})) == bottom_frame(4, WorldSet{0, 2}));
    CHECK(top_frame(4) == one_frame(4, WorldSet{}));
    CHECK(bottom_frame(4, WorldSet{}) == Frame(4, 0, 1, {}));
    CHECK(zero_frame(4) == bottom_frame(4, WorldSet{}));
    CHECK_THROWS_AS(one_frame(4, WorldSet{4}), sae::config_error);
}

TEST_CASE("Sum and product: the issue's 3 x 4 sum, entries, units, commutativity, duality", "[cartesian]") {
    const Frame c = issue_frame();
    const Frame d = Frame::from_rows(4, {{0, 3}});  // one row, two columns
    // C ⊕ D = (A ⊔ B, E × F): 2 + 1 = 3 rows, 2 · 2 = 4 columns (e, f) in the order
    // (e0,f0), (e0,f1), (e1,f0), (e1,f1). Rows of A read a · e, the row of B reads b ⋆ f.
    const Frame s = sum(c, d);
    CHECK(s == Frame::from_rows(4, {{0, 0, 1, 1}, {2, 2, 3, 3}, {0, 3, 0, 3}}));
    // C & D = (A × B, E ⊔ F): 2 · 1 = 2 rows, 2 + 2 = 4 columns.
    CHECK(product(c, d) == Frame::from_rows(4, {{0, 1, 0, 3}, {2, 3, 0, 3}}));
    // 0 is the unit of ⊕, ⊤ the unit of & (up to isomorphism; here even equal, because
    // E × {e} and A × {a} keep the order of E and A).
    CHECK(sum(c, zero_frame(4)) == c);
    CHECK(sum(zero_frame(4), c) == c);
    CHECK(product(c, top_frame(4)) == c);
    CHECK(product(top_frame(4), c) == c);
    // Commutative up to isomorphism, not equal (the rows come in another order).
    CHECK(sum(d, c) != s);
    CHECK(find_isomorphism(sum(d, c), s).has_value());
    CHECK(find_isomorphism(product(d, c), product(c, d)).has_value());
    // (C ⊕ D)* = C* & D*, exactly with these index conventions.
    CHECK(dual(s) == product(dual(c), dual(d)));
}

TEST_CASE("Morphisms: checking, composing, identity and enumeration", "[cartesian]") {
    const Frame c = issue_frame();
    // Every entry of C is distinct, so a · h(e) = g(a) · e forces g(a) = a and h(e) = e:
    // hom(C, C) = {identity}.
    const std::vector<Morphism> endo = enumerate_morphisms(c, c);
    REQUIRE(endo.size() == 1);
    CHECK(endo[0] == identity_morphism(c));
    CHECK(is_morphism(c, c, identity_morphism(c)));
    CHECK_FALSE(is_morphism(c, c, Morphism{{1, 0}, {0, 1}}));
    // A morphism C → ⊥ is a column of C: g(a) = a · e, h = the point e (the agent of ⊥
    // is W, so g lists worlds). Columns of C: (w0, w2) and (w1, w3).
    const Frame bottom = bottom_frame(4);
    const std::vector<Morphism> to_bottom = enumerate_morphisms(c, bottom);
    REQUIRE(to_bottom.size() == 2);
    CHECK(to_bottom[0] == Morphism{{0, 2}, {0}});
    CHECK(to_bottom[1] == Morphism{{1, 3}, {1}});
    // A morphism 1_S → C is a row of C inside S ("Controllables and Observables,
    // Revisited"): S = {w0, w1, w2} holds row a0 only; h(e) is the index in S of a0 · e.
    const std::vector<Morphism> from_one = enumerate_morphisms(one_frame(4, WorldSet{0, 1, 2}), c);
    REQUIRE(from_one.size() == 1);
    CHECK(from_one[0] == Morphism{{0}, {0, 1}});
    // 0 is initial and ⊤ terminal: exactly one morphism 0 → C and C → ⊤.
    CHECK(enumerate_morphisms(zero_frame(4), c).size() == 1);
    CHECK(enumerate_morphisms(c, top_frame(4)).size() == 1);
    CHECK(enumerate_morphisms(c, zero_frame(4)).empty());  // no agent to send a0 to
    // Composition: (column e0 of C) ∘ identity = column e0; the composite of C → C ⊕ D
    // (inclusion of A, first coordinate) with the column (e1, f0) of C ⊕ D is column e1.
    const Frame d = Frame::from_rows(4, {{0, 3}});
    const Frame s = sum(c, d);
    const Morphism inclusion{{0, 1}, {0, 0, 1, 1}};  // h(e, f) = e
    REQUIRE(is_morphism(c, s, inclusion));
    const std::vector<Morphism> columns_of_sum = enumerate_morphisms(s, bottom);
    REQUIRE(columns_of_sum.size() == 4);
    const Morphism column_e1_f0 = columns_of_sum[2];
    CHECK(compose(column_e1_f0, inclusion) == Morphism{{1, 3}, {1}});
    CHECK(compose(to_bottom[0], identity_morphism(c)) == to_bottom[0]);
    // Bad shapes.
    CHECK_THROWS_AS(is_morphism(c, c, Morphism{{0}, {0, 1}}), sae::shape_error);
    CHECK_THROWS_AS(is_morphism(c, c, Morphism{{0, 5}, {0, 1}}), sae::config_error);
    CHECK_THROWS_AS(compose(identity_morphism(c), Morphism{{3}, {}}), sae::config_error);
    CHECK_THROWS_AS(enumerate_morphisms(one_frame(4), bottom_frame(4), 3), sae::config_error);  // 4 > 3
}

TEST_CASE("Tensor and par: hand-derived teams, units, sizes", "[cartesian]") {
    // Alice picks the first binary digit x, Bob the second y, world = 2x + y.
    // Alice's frame C = (x, y): [[0, 1], [2, 3]]; Bob's frame is C* = (y, x).
    // hom(C, (C*)*) = hom(C, C) = {identity} (previous case), so C ⊗ C* has one
    // environment and row (x, y) reads x · h(y) = C(x, y) = 2x + y: the team picks any
    // world, i.e. C ⊗ C* = ⊥ (rows in the order 0, 1, 2, 3).
    const Frame c = issue_frame();
    const Frame team = tensor(c, dual(c));
    CHECK(team == bottom_frame(4));
    CHECK(tensor_environments(c, dual(c)).size() == 1);

    // 1 is the unit of ⊗: hom(C, 1*) = hom(C, ⊥_W) are the |E| columns, so C ⊗ 1 has
    // |A| rows and |E| columns; it is isomorphic to C (here equal: the column order is E's).
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 20; ++trial) {
        const Frame x = random_frame(rng, 4, 3, 3);
        const Frame with_one = tensor(x, one_frame(4));
        CHECK(with_one.agent_count() == x.agent_count());
        CHECK(with_one.environment_count() == x.environment_count());
        CHECK(biextensionally_equivalent(with_one, x));
        CHECK(find_isomorphism(with_one, x).has_value());
        // ⊥ is the unit of ⅋: C ⅋ ⊥ = (C* ⊗ 1)* ≅ C.
        CHECK(find_isomorphism(par(x, bottom_frame(4)), x).has_value());
        // ⊗ is commutative up to isomorphism.
        const Frame y = random_frame(rng, 4, 2, 2);
        CHECK(find_isomorphism(tensor(x, y), tensor(y, x)).has_value());
    }
    // C ⊗ 0: no agent (A × {}), and hom(C, 0*) = hom(C, ⊤) has exactly one element.
    const Frame with_zero = tensor(c, zero_frame(4));
    CHECK(with_zero.agent_count() == 0);
    CHECK(with_zero.environment_count() == 1);
    CHECK_THROWS_AS(tensor(one_frame(4), one_frame(4), 2), sae::config_error);  // hom(1, ⊥) has 4
}

TEST_CASE("Biextensional collapse, isomorphism and homotopy equivalence", "[cartesian]") {
    // Rows 0 and 2 are equal, columns 0 and 2 are equal.
    const Frame c = Frame::from_rows(4, {{0, 1, 0}, {2, 3, 2}, {0, 1, 0}});
    const Collapse collapsed = biextensional_collapse(c);
    CHECK(collapsed.frame == Frame::from_rows(4, {{0, 1}, {2, 3}}));
    CHECK(collapsed.agent_class == std::vector<std::size_t>{0, 1, 0});
    CHECK(collapsed.environment_class == std::vector<std::size_t>{0, 1, 0});
    CHECK(collapsed.agent_representative == std::vector<std::size_t>{0, 1});
    CHECK_FALSE(is_biextensional(c));
    CHECK(is_biextensional(collapsed.frame));
    CHECK(biextensionally_equivalent(c, issue_frame()));
    // A homotopy equivalence by the definition: φ = (collapse classes), ψ = (representatives).
    const Morphism phi{collapsed.agent_class, {0, 1}};
    const Morphism psi{collapsed.agent_representative, collapsed.environment_class};
    CHECK(is_homotopy_equivalence(c, collapsed.frame, phi, psi));
    CHECK(find_homotopy_equivalence(c, collapsed.frame).has_value());
    // Rows {0, 1}, {2, 3} against rows {0, 3}, {2, 1}: both biextensional, the sorted rows
    // differ, so no isomorphism and no equivalence.
    const Frame other = Frame::from_rows(4, {{0, 3}, {2, 1}});
    CHECK_FALSE(find_isomorphism(issue_frame(), other).has_value());
    CHECK_FALSE(biextensionally_equivalent(issue_frame(), other));
    CHECK_FALSE(find_homotopy_equivalence(issue_frame(), other).has_value());
    // A wide frame goes through the dual search: columns permuted.
    const Frame wide = Frame::from_rows(5, {{0, 1, 2, 3}});
    const Frame wide_permuted = Frame::from_rows(5, {{2, 0, 3, 1}});
    const auto iso = find_isomorphism(wide, wide_permuted);
    REQUIRE(iso.has_value());
    CHECK(is_morphism(wide, wide_permuted, *iso));
    const Frame tall = dual(wide);
    const auto tall_iso = find_isomorphism(tall, dual(wide_permuted));
    REQUIRE(tall_iso.has_value());
    CHECK(is_morphism(tall, dual(wide_permuted), *tall_iso));

    // The sequence's theorem: C ≃ D (homotopy equivalence, searched by its definition)
    // exactly when the collapses are isomorphic. Half the pairs are equivalent by
    // construction, the others random.
    std::mt19937_64 rng(11);
    int equivalent_pairs = 0;
    for (int trial = 0; trial < 60; ++trial) {
        const Frame x = random_frame(rng, 3, 3, 3);
        const Frame y = trial % 2 == 0 ? equivalent_variant(x, rng) : random_frame(rng, 3, 3, 3);
        const bool by_collapse = biextensionally_equivalent(x, y);
        const auto by_definition = find_homotopy_equivalence(x, y);
        CHECK(by_collapse == by_definition.has_value());
        if (by_definition) {
            CHECK(is_homotopy_equivalence(x, y, by_definition->first, by_definition->second));
        }
        if (trial % 2 == 0) {
            CHECK(by_collapse);
        }
        equivalent_pairs += by_collapse ? 1 : 0;
    }
    CHECK(equivalent_pairs < 60);  // the random pairs are not all equivalent
    // Homotopic: two columns of C with equal vectors give homotopic maps into ⊥.
    CHECK(homotopic(c, bottom_frame(4), Morphism{{0, 2, 0}, {0}}, Morphism{{0, 2, 0}, {2}}));
    CHECK_FALSE(homotopic(c, bottom_frame(4), Morphism{{0, 2, 0}, {0}}, Morphism{{1, 3, 1}, {1}}));
}

TEST_CASE("Ensure, prevent, control: the issue's example and the generator forms", "[cartesian]") {
    // Rows a0 = (w0, w1), a1 = (w2, w3). Ensure = supersets of {w0,w1} or of {w2,w3};
    // Prevent = subsets of {w2,w3} or of {w0,w1}. Ctrl = both: S ⊇ {w0,w1} with
    // S ⊆ {w0,w1} (S = {w0,w1}), or S ⊇ {w2,w3} with S ⊆ {w2,w3}; the mixed pairs are
    // impossible ({w0,w1} ⊆ S ⊆ {w2,w3}). So Ctrl = {{w0,w1},{w2,w3}}.
    const Frame c = issue_frame();
    CHECK(controllables(c) == std::vector<WorldSet>{WorldSet{0, 1}, WorldSet{2, 3}});
    CHECK(ensure_generators(c) == std::vector<WorldSet>{WorldSet{0, 1}, WorldSet{2, 3}});
    CHECK(prevent_generators(c) == std::vector<WorldSet>{WorldSet{0, 1}, WorldSet{2, 3}});
    const std::vector<WorldInterval> intervals = controllable_intervals(c);
    REQUIRE(intervals.size() == 2);
    CHECK(intervals[0] == WorldInterval{WorldSet{0, 1}, WorldSet{0, 1}});
    CHECK(intervals[1] == WorldInterval{WorldSet{2, 3}, WorldSet{2, 3}});
    // 4 supersets of each generator, W counted twice: 7 ensurables; likewise 7 preventables.
    CHECK(ensurables(c).size() == 7);
    CHECK(preventables(c).size() == 7);
    CHECK(can_ensure(c, WorldSet{0, 1, 2}));
    CHECK_FALSE(can_ensure(c, WorldSet{0, 2}));
    CHECK(can_prevent(c, WorldSet{3}));
    CHECK_FALSE(can_control(c, WorldSet{0, 1, 2}));
    CHECK(can_control(c, WorldSet{2, 3}));
    CHECK_THROWS_AS(can_ensure(c, WorldSet{9}), sae::config_error);
    // No environment (⊤): every S is ensured and prevented (HOL4 empty_env_large_ctrl);
    // no agent (0): nothing is ensurable.
    CHECK(controllables(top_frame(3)).size() == 8);
    CHECK(ensurables(zero_frame(3)).empty());
    CHECK_THROWS_AS(ensurables(Frame(21, 1, 1, {0})), sae::config_error);

    // Independent routes on random frames: (1) the categorical definitions of
    // "Controllables and Observables, Revisited": S ∈ Ensure(C) iff hom(1_S, C) ≠ ∅, and
    // S ∈ Prevent(C) iff W \ S ∈ Ensure(C); (2) the generator and interval forms describe
    // the same families as the enumeration.
    std::mt19937_64 rng(3);
    for (int trial = 0; trial < 20; ++trial) {
        const Frame x = random_frame(rng, 4, 3, 3);
        const std::vector<WorldSet> ensured = ensurables(x);
        const std::vector<WorldSet> prevented = preventables(x);
        const std::vector<WorldSet> controlled = controllables(x);
        const std::vector<WorldSet> generators = ensure_generators(x);
        const std::vector<WorldInterval> ctrl_intervals = controllable_intervals(x);
        for_each_subset(4, "test", [&](std::uint64_t mask) {
            const WorldSet s = WorldSet::from_mask(mask);
            const bool in_ensure = std::binary_search(ensured.begin(), ensured.end(), s);
            const bool in_prevent = std::binary_search(prevented.begin(), prevented.end(), s);
            const bool in_ctrl = std::binary_search(controlled.begin(), controlled.end(), s);
            CHECK(in_ensure == !enumerate_morphisms(one_frame(4, s), x).empty());
            CHECK(in_prevent == !enumerate_morphisms(one_frame(4, complement(s, 4)), x).empty());
            CHECK(in_ctrl == (in_ensure && in_prevent));
            CHECK(in_ensure == std::any_of(generators.begin(), generators.end(),
                                           [&](const WorldSet& g) { return is_subset(g, s); }));
            CHECK(in_ctrl == std::any_of(ctrl_intervals.begin(), ctrl_intervals.end(),
                                         [&](const WorldInterval& i) { return i.contains(s); }));
            CHECK(in_ensure == can_ensure(x, s));
            CHECK(in_ctrl == can_control(x, s));
        });
    }
}

TEST_CASE("Observables: partitions, hand examples and the sequence's theorems", "[cartesian]") {
    // Rows (w0,w2), (w0,w3), (w1,w2), (w1,w3): the agent picks the first world of
    // {w0,w1} and the second of {w2,w3} independently. Column e0 = {w0,w1}, column
    // e1 = {w2,w3}. S = {w0,w1}: every mixed row (a0 on e0, a1 on e1) is a row, so S is
    // observable, and so is its complement: Obs = {∅, {w0,w1}, {w2,w3}, W}.
    const Frame free_choice = Frame::from_rows(4, {{0, 2}, {0, 3}, {1, 2}, {1, 3}});
    CHECK(observable_partition(free_choice) == std::vector<WorldSet>{WorldSet{0, 1}, WorldSet{2, 3}});
    CHECK(observables(free_choice) ==
          std::vector<WorldSet>{WorldSet{}, WorldSet{0, 1}, WorldSet{0, 1, 2, 3}, WorldSet{2, 3}});
    CHECK(can_observe(free_choice, WorldSet{0, 1}));
    CHECK_FALSE(can_observe(free_choice, WorldSet{0}));  // splits column e0
    // Its controllables are the four rows: {w_i, w_j} ⊆ S ⊆ W \ (a disjoint row).
    CHECK(controllables(free_choice) ==
          std::vector<WorldSet>{WorldSet{0, 2}, WorldSet{0, 3}, WorldSet{1, 2}, WorldSet{1, 3}});
    // The issue's frame: columns {w0,w2} and {w1,w3}; S = {w0,w2} needs the row (w0, w3),
    // which is missing, so only ∅ and W are observable: one block.
    CHECK(observable_partition(issue_frame()) == std::vector<WorldSet>{WorldSet{0, 1, 2, 3}});
    CHECK_FALSE(can_observe(issue_frame(), WorldSet{0, 2}));
    // Worlds outside the image are blocks of their own.
    CHECK(observable_partition(Frame::from_rows(5, {{0, 1}, {2, 3}})) ==
          std::vector<WorldSet>{WorldSet{0, 1, 2, 3}, WorldSet{4}});

    // On random frames: the partition describes Obs exactly as the definition does, and
    // the theorems of the HOL4 formalisation (theory cf0) hold: Ctrl ∩ Obs = ∅ when E ≠ ∅
    // (ctrl_obs_disjoint); Ensure ∩ Obs = supersets of Image (ensure_inter_obs); one
    // agent option observes everything (small_agent_large_obs).
    std::mt19937_64 rng(5);
    for (int trial = 0; trial < 30; ++trial) {
        const Frame x = random_frame(rng, 4, 4, 3);
        const std::vector<WorldSet> observable = observables(x);
        const WorldSet image = x.image();
        for_each_subset(4, "test", [&](std::uint64_t mask) {
            const WorldSet s = WorldSet::from_mask(mask);
            const bool obs = std::binary_search(observable.begin(), observable.end(), s);
            CHECK(obs == can_observe(x, s));
            CHECK_FALSE((obs && can_control(x, s)));
            CHECK((obs && can_ensure(x, s)) == is_subset(image, s));
        });
        CHECK(observables(restrict_agents(x, {0})).size() == 16);
    }
}

TEST_CASE("Subagents: additive, multiplicative, hand cases and constructions", "[cartesian]") {
    const Frame d = issue_frame();
    // Commit to row a0: C = (w0, w1). C ◁₊ D by the committing definition. C ◁× D fails:
    // a morphism C → D sends C's one row to a row b of D whose entries are columns of C,
    // i.e. b = a0 (a1 gives w2 ∉ {w0, w1}); row a1 is never reached. By hand with the
    // externalising definition: C ≃ (X, Y × Z) has one distinct row, so every x has the
    // same ρ(x, ·); covering both rows of D needs y0 ↦ a0, y1 ↦ a1, and then the columns
    // of (X, Y × Z) are w0, w1, w2, w3, which C does not have.
    const Frame committed = restrict_agents(d, {0});
    CHECK(is_additive_subagent(committed, d));
    CHECK(is_subagent(committed, d));
    CHECK_FALSE(is_multiplicative_subagent(committed, d));

    // Football team: Alice picks x, Bob picks y, world 2x + y. Alice's frame C = (x, y);
    // the team's frame (x × y, {e}) = ⊥_W. Externalising with X = x, Y = y, Z = {e} gives
    // C ◁× team. Additive fails: a single morphism C → ⊥ is one column of C, and C has two
    // distinct columns.
    const Frame alice = issue_frame();
    const Frame team = bottom_frame(4);
    CHECK(is_multiplicative_subagent(alice, team));
    CHECK_FALSE(is_additive_subagent(alice, team));
    CHECK(is_subagent(alice, team));
    // Every frame is a subagent of ⊥ (φ = id_⊥ ∘ φ). C ◁× ⊥ iff Image(C) = W (⊥ ≃ (X × Y, Z)
    // forces one column and all worlds as rows; C ≃ (X, Y) then has image W; conversely
    // X = A, Y = E, Z = {*} works). C ◁₊ ⊥ iff C's collapse has exactly one column
    // (committing: all columns of ⊥'s presentation are equal).
    std::mt19937_64 rng(13);
    for (int trial = 0; trial < 40; ++trial) {
        const Frame x = random_frame(rng, 3, 3, 3);
        CHECK(is_subagent(x, bottom_frame(3)));
        CHECK(is_multiplicative_subagent(x, bottom_frame(3)) == (x.image() == WorldSet::all(3)));
        CHECK(is_additive_subagent(x, bottom_frame(3)) ==
              (biextensional_collapse(x).frame.environment_count() == 1));
    }

    for (int trial = 0; trial < 25; ++trial) {
        // Externalising construction: f : X × Y × Z → W, C = (X, Y × Z), D = (X × Y, Z).
        const std::size_t xs = 1 + uniform_index(rng, 3);
        const std::size_t ys = 1 + uniform_index(rng, 3);
        const std::size_t zs = 1 + uniform_index(rng, 3);
        std::vector<WorldId> f(xs * ys * zs);
        for (WorldId& w : f) {
            w = uniform_index(rng, 4);
        }
        const Frame player = Frame::from_function(4, xs, ys * zs, [&](std::size_t x, std::size_t yz) {
            return f[x * ys * zs + yz];
        });
        const Frame whole = Frame::from_function(4, xs * ys, zs, [&](std::size_t xy, std::size_t z) {
            return f[xy * zs + z];
        });
        CHECK(is_multiplicative_subagent(player, whole));
        CHECK(is_multiplicative_subagent(equivalent_variant(player, rng), equivalent_variant(whole, rng)));
        CHECK(is_subagent(player, whole));

        // Committing construction: C ≃ Commit_B(D).
        const Frame big = random_frame(rng, 4, 4, 3);
        std::vector<std::size_t> kept;
        for (std::size_t a = 0; a < big.agent_count(); ++a) {
            if (uniform_index(rng, 2) == 0) {
                kept.push_back(a);
            }
        }
        if (kept.empty()) {
            kept.push_back(0);
        }
        const Frame small = restrict_agents(big, kept);
        CHECK(is_additive_subagent(small, big));
        CHECK(is_additive_subagent(equivalent_variant(small, rng), big));
        CHECK(is_subagent(small, big));

        // Both refinements imply the plain relation (sequence: ◁₊ ⇒ ◁ and ◁× ⇒ ◁).
        const Frame p = random_frame(rng, 3, 2, 3);
        const Frame q = random_frame(rng, 3, 3, 2);
        if (is_additive_subagent(p, q) || is_multiplicative_subagent(p, q)) {
            CHECK(is_subagent(p, q));
        }
    }
    CHECK_THROWS_AS(is_subagent(issue_frame(), bottom_frame(3)), sae::config_error);
}

TEST_CASE("Cartesian object: the 27-world object, view_from, restriction and bad input", "[cartesian]") {
    // Two agents and an environment with three actions each; world id = row-major cell
    // index 9·a1 + 3·a2 + e (the 27 worlds w1..w27 of Marks' post, numbered from 0).
    const CartesianObject object = CartesianObject::enumerated(
        {{"A1", AxisKind::agent, 3}, {"A2", AxisKind::agent, 3}, {"E", AxisKind::environment, 3}});
    CHECK(object.world_count() == 27);
    CHECK(object.world({1, 2, 0}) == 15);
    CHECK(object.coordinates(15) == std::vector<std::size_t>{1, 2, 0});
    CHECK(object.axis_index("E") == 2);
    CHECK(object.axes_of_kind(AxisKind::agent) == std::vector<std::size_t>{0, 1});
    CHECK_FALSE(object.token_axis().has_value());

    // A1's frame: row a1 holds worlds 9·a1 .. 9·a1 + 8, column k = (a2, e) = 3·a2 + e.
    const Frame a1 = object.view_from(0);
    CHECK(a1.agent_count() == 3);
    CHECK(a1.environment_count() == 9);
    CHECK(a1.row(1) == std::vector<WorldId>{9, 10, 11, 12, 13, 14, 15, 16, 17});
    // A2's frame: column k = (a1, e) = 3·a1 + e, entry 9·a1 + 3·a2 + e.
    const Frame a2 = object.view_from(1);
    CHECK(a2.row(2) == std::vector<WorldId>{6, 7, 8, 15, 16, 17, 24, 25, 26});
    CHECK(object.environment_coordinates(1, 5) == std::vector<std::size_t>{1, 2});
    // Each agent ensures exactly "my action is a": three disjoint blocks of 9 worlds,
    // so it controls the 6 intervals [block a, W \ block a'] with a ≠ a'.
    CHECK(agent_ensure_generators(object, 0) ==
          std::vector<WorldSet>{WorldSet{0, 1, 2, 3, 4, 5, 6, 7, 8}, WorldSet{9, 10, 11, 12, 13, 14, 15, 16, 17},
                                WorldSet{18, 19, 20, 21, 22, 23, 24, 25, 26}});
    CHECK(agent_controllable_intervals(object, 0).size() == 6);
    CHECK(agent_can_control(object, 0, WorldSet{0, 1, 2, 3, 4, 5, 6, 7, 8}));
    CHECK_FALSE(agent_can_ensure(object, 0, WorldSet{0}));
    CHECK(agent_can_prevent(object, 2, WorldSet{0}));
    // The team of both agents against the environment: A1 ⊗ A2 has 9 rows and
    // hom(A1, A2*) = 3 morphisms (h(a2) = (a2, e) and g(a1) = (a1, e) for one shared e),
    // so the tensor is the 9 x 3 team frame, up to isomorphism.
    const Frame team = Frame::from_function(27, 9, 3, [](std::size_t pair, std::size_t e) { return 3 * pair + e; });
    const Frame a1_with_a2 = tensor(a1, a2);
    CHECK(a1_with_a2.agent_count() == 9);
    CHECK(a1_with_a2.environment_count() == 3);
    CHECK(find_isomorphism(a1_with_a2, team).has_value());
    // Each agent is a multiplicative, not additive, subagent of the team.
    CHECK(is_multiplicative_subagent(a1, team));
    CHECK_FALSE(is_additive_subagent(a1, team));
    // A2 observes only ∅ and W: a policy "action 0 on some columns, action 1 on the
    // others" is never one of A2's rows unless the split is trivial.
    CHECK(observable_partition(a2).size() == 1);

    // Restriction and selection.
    const CartesianObject restricted = object.restrict_axis(2, {2, 0});
    CHECK(restricted.axes()[2].size == 2);
    CHECK(restricted.world({1, 1, 0}) == 9 + 3 + 2);
    const CartesianObject fixed = object.select(2, 1);
    CHECK(fixed.axis_count() == 2);
    CHECK(fixed.world({2, 0}) == 18 + 0 + 1);

    // Bad input.
    CHECK_THROWS_AS(CartesianObject({{"A", AxisKind::agent, 2}, {"B", AxisKind::agent, 2}}, 4, {0, 1, 2}),
                    sae::shape_error);
    CHECK_THROWS_WITH(CartesianObject({{"A", AxisKind::agent, 2}}, 2, {0, 2}), Catch::Contains("world 2"));
    CHECK_THROWS_AS(CartesianObject({{"A", AxisKind::agent, 2}}, 2, {0, 2}), sae::config_error);
    CHECK_THROWS_AS(CartesianObject({{"A", AxisKind::agent, 1}, {"A", AxisKind::agent, 1}}, 1, {0}),
                    sae::config_error);
    CHECK_THROWS_AS(
        CartesianObject({{"E1", AxisKind::environment, 1}, {"E2", AxisKind::environment, 1}}, 1, {0}),
        sae::config_error);
    CHECK_THROWS_AS(CartesianObject({}, 1, {0}), sae::config_error);
    CHECK_THROWS_AS(CartesianObject({{"A", AxisKind::agent, 0}}, 1, {}), sae::config_error);
    CHECK_THROWS_WITH(object.view_from(3), Catch::Contains("axis 3"));
    CHECK_THROWS_AS(object.view_from(3), sae::config_error);
    CHECK_THROWS_AS(object.world({0, 3, 0}), sae::config_error);
    CHECK_THROWS_AS(object.world({0, 0}), sae::shape_error);
    CHECK_THROWS_AS(object.axis_index("B"), sae::config_error);
    CHECK_THROWS_AS(object.restrict_axis(0, {0, 0}), sae::config_error);
    CHECK_THROWS_AS(object.restrict_axis(0, {}), sae::config_error);
    CHECK_THROWS_AS(object.select(0, 3), sae::config_error);
}

TEST_CASE("Manageability: control under a belief about the other axes", "[cartesian]") {
    const CartesianObject object = CartesianObject::enumerated(
        {{"A1", AxisKind::agent, 3}, {"A2", AxisKind::agent, 3}, {"E", AxisKind::environment, 3}});
    // S = "both agents pick the same action" = {9a + 3a + e}. A1 cannot ensure S for sure
    // (A2 may deviate). Belief: A2 plays 0, 1, 2 with 0.8, 0.1, 0.1, the environment is
    // uniform. Then P(S | a1 = 0) = P(a2 = 0) = 0.8 and P(S | a1 = 1) = 0.1, so the best
    // θ-ensure probability is 0.8 (action 0) and the best θ-prevent probability is
    // 1 - 0.1 = 0.9 (action 1, the first reaching it).
    std::vector<WorldId> same;
    for (std::size_t a = 0; a < 3; ++a) {
        for (std::size_t e = 0; e < 3; ++e) {
            same.push_back(9 * a + 3 * a + e);
        }
    }
    const WorldSet s(same);
    const std::vector<double> belief =
        product_belief(object, 0, {{0.8, 0.1, 0.1}, {1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0}});
    REQUIRE(belief.size() == 9);
    CHECK(belief[0] == Approx(0.8 / 3.0));
    const Frame view = object.view_from(0);
    CHECK(probability_in(view, belief, 0, s) == Approx(0.8));
    CHECK(probability_in(view, belief, 2, s) == Approx(0.1));
    const Management m = manage(view, belief, s, 0.75);
    CHECK(m.ensure_probability == Approx(0.8));
    CHECK(m.ensuring_action == 0);
    CHECK(m.prevent_probability == Approx(0.9));
    CHECK(m.preventing_action == 1);
    CHECK(m.manageable);
    CHECK_FALSE(manage(view, belief, s, 0.85).manageable);  // 0.8 < 0.85
    CHECK(manage(view, belief, s, 0.8).manageable);         // ties reach θ
    CHECK(can_manage(object, 0, belief, s, 0.75));
    CHECK_FALSE(agent_can_control(object, 0, s));

    // θ = 1 under a full-support belief is exactly control (random frames, every S).
    std::mt19937_64 rng(17);
    for (int trial = 0; trial < 15; ++trial) {
        const Frame x = random_frame(rng, 4, 3, 4);
        std::vector<double> weights(x.environment_count());
        double total = 0.0;
        for (double& w : weights) {
            w = 0.1 + uniform_unit(rng);
            total += w;
        }
        for (double& w : weights) {
            w /= total;
        }
        for_each_subset(4, "test", [&](std::uint64_t mask) {
            const WorldSet t = WorldSet::from_mask(mask);
            CHECK(manage(x, weights, t, 1.0).manageable == can_control(x, t));
            if (manage(x, weights, t, 0.9).manageable) {
                CHECK(manage(x, weights, t, 0.6).manageable);  // monotone in θ
            }
        });
    }

    // Bad beliefs and thresholds.
    CHECK_THROWS_AS(manage(view, std::vector<double>(8, 1.0 / 8.0), s, 0.5), sae::shape_error);
    std::vector<double> bad = belief;
    bad[3] = -0.01;
    bad[4] += 0.01;
    CHECK_THROWS_AS(manage(view, bad, s, 0.5), sae::config_error);
    bad = belief;
    bad[0] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(manage(view, bad, s, 0.5), sae::numeric_error);
    CHECK_THROWS_WITH(manage(view, std::vector<double>(9, 0.1), s, 0.5), Catch::Contains("sums to"));
    CHECK_THROWS_AS(manage(view, belief, s, 0.0), sae::config_error);
    CHECK_THROWS_AS(manage(view, belief, s, 1.5), sae::config_error);
    CHECK_THROWS_AS(product_belief(object, 0, {{1.0, 0.0, 0.0}}), sae::shape_error);
}

}  // namespace test_cartesian_frames_cases
