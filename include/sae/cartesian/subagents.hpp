#pragma once
/// \file subagents.hpp
/// Subagent relations on small frames ("Subagents of Cartesian Frames", "Additive and
/// Multiplicative Subagents"). Every check below reduces the sequence's definition to a
/// search over the agent parts g of morphisms C → D (morphism.hpp), on the biextensional
/// collapses of C and D (the relations are invariant under ≃, so nothing is lost). Write
/// cols(C) for the set of distinct column vectors of C and, for the agent part g of a
/// morphism C → D, cols_g = {(g(a) ⋆ f)_a : f ∈ F}; the morphism condition says
/// cols_g ⊆ cols(C), and h(f) may be any column of C equal to (g(a) ⋆ f)_a.
///
/// Subagent, C ◁ D. Definition: for every φ : C → ⊥ there are ψ : C → D and χ : D → ⊥
///   with φ = χ ∘ ψ. A morphism C → ⊥ is exactly a column e of C (g = that column,
///   h = the point e), and χ ∘ ψ for ψ = (g, h) and χ = column f of D is the column h(f).
///   So C ◁ D  ⇔  every column of C is h(f) for some morphism (g, h) : C → D and some f
///            ⇔  ⋃_g cols_g = cols(C).
///
/// Additive subagent, C ◁₊ D. Categorical definition (proved equivalent to the sub-sum,
///   brother and committing definitions in the sequence and in the HOL4 formalisation,
///   theory cf8, additive_subagent_categorical): there is one φ0 : C → D such that every
///   φ : C → ⊥ is homotopic to χ ∘ φ0 for some χ : D → ⊥. Homotopic maps into ⊥ are
///   columns with equal vectors, so
///   C ◁₊ D  ⇔  cols_g = cols(C) for a single g.
///   (Committing reading: D's agent committed to the rows g(A) sees C.)
///
/// Multiplicative subagent, C ◁× D. Externalising definition (sequence; HOL4 theory cf8,
///   multiplicative_subagent_externalising): there are sets X, Y (Y finite), Z and
///   f : X × Y × Z → W with C ≃ (X, Y × Z, f) and D ≃ (X × Y, Z, f). Working through the
///   collapses (derivation below) gives
///   C ◁× D  ⇔  C ◁ D  and every row of D's collapse is g(a) for some g (some morphism).
///   Derivation. (⇐) Take X = rows of C's collapse, Y = the set of all valid g, Z = the
///   columns of D's collapse and f(x, g, z) = g(x) ⋆ z. The rows (x, g) of (X × Y, Z, f)
///   are rows of D's collapse, every one of them used, so that frame ≃ D; the columns
///   (g, z) of (X, Y × Z, f) are the vectors of ⋃_g cols_g = cols(C), so that frame ≃ C.
///   (⇒) From D ≃ (X × Y, Z, f) every (x, y) stands for a row ρ(x, y) of D's collapse and
///   every z for a column, all rows used; each y gives a map x ↦ ρ(x, y) that factors
///   through C's collapse (x, x' with equal rows in (X, Y × Z, f) have equal ρ(·, y)
///   because D's collapse has distinct rows) and is the agent part of a morphism, because
///   its column vectors are columns of (X, Y × Z, f) ≃ C. These maps cover cols(C) and all
///   rows of D.
///   (Football-team reading: every team option is some player option combined with the
///   rest of the team, and the player can be handed any of the team's environments.)
///
/// Abstract:
///   is_subagent(C, D), is_additive_subagent(C, D), is_multiplicative_subagent(C, D)
///   Frames over different world counts: config_error. Cost: one morphism search on the
///   collapses, worst case O(|B|^|A| ...), fine for the sequence's small frames.

#include "sae/cartesian/biextensional.hpp"
#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/morphism.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace sae {
namespace cartesian {

namespace detail {

/// What the agent parts of the morphisms between two collapsed frames cover.
struct AgentMapCover {
    std::vector<bool> columns_of_source;  ///< column e of C is in ⋃_g cols_g
    std::vector<bool> rows_of_target;     ///< row b of D is g(a) for some g
    bool single_map_covers_all_columns = false;
    bool any_morphism = false;
};

/// Runs the agent-map search on collapsed frames (each candidate list has one entry).
inline AgentMapCover agent_map_cover(const Frame& c_collapsed, const Frame& d_collapsed) {
    AgentMapCover cover;
    cover.columns_of_source.assign(c_collapsed.environment_count(), false);
    cover.rows_of_target.assign(d_collapsed.agent_count(), false);
    std::vector<bool> this_map(c_collapsed.environment_count());
    for_each_agent_map(c_collapsed, d_collapsed, [&](const std::vector<std::size_t>& g,
                                                     const std::vector<std::vector<std::size_t>>& candidates) {
        cover.any_morphism = true;
        std::fill(this_map.begin(), this_map.end(), false);
        for (const std::vector<std::size_t>& choice : candidates) {
            for (std::size_t e : choice) {
                this_map[e] = true;
                cover.columns_of_source[e] = true;
            }
        }
        for (std::size_t b : g) {
            cover.rows_of_target[b] = true;
        }
        bool all = true;
        for (bool covered : this_map) {
            all = all && covered;
        }
        cover.single_map_covers_all_columns = cover.single_map_covers_all_columns || all;
        return true;
    });
    return cover;
}

inline bool all_of(const std::vector<bool>& flags) {
    for (bool flag : flags) {
        if (!flag) {
            return false;
        }
    }
    return true;
}

}  // namespace detail

/// C ◁ D.
inline bool is_subagent(const Frame& c, const Frame& d) {
    require_same_world_count(c, d, "is_subagent");
    const detail::AgentMapCover cover =
        detail::agent_map_cover(biextensional_collapse(c).frame, biextensional_collapse(d).frame);
    return detail::all_of(cover.columns_of_source);
}

/// C ◁₊ D.
inline bool is_additive_subagent(const Frame& c, const Frame& d) {
    require_same_world_count(c, d, "is_additive_subagent");
    const detail::AgentMapCover cover =
        detail::agent_map_cover(biextensional_collapse(c).frame, biextensional_collapse(d).frame);
    return cover.single_map_covers_all_columns;
}

/// C ◁× D.
inline bool is_multiplicative_subagent(const Frame& c, const Frame& d) {
    require_same_world_count(c, d, "is_multiplicative_subagent");
    const detail::AgentMapCover cover =
        detail::agent_map_cover(biextensional_collapse(c).frame, biextensional_collapse(d).frame);
    return detail::all_of(cover.columns_of_source) && detail::all_of(cover.rows_of_target);
}

}  // namespace cartesian
}  // namespace sae
