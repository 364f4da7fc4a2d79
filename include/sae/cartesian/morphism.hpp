#pragma once
/// \file morphism.hpp
/// Morphisms of Cartesian frames ("Introduction to Cartesian Frames", §2 of the
/// sequence; Chu-space morphisms). For C = (A, E, ·) and D = (B, F, ⋆) over the same W, a
/// morphism (g, h) : C → D is a pair g : A → B, h : F → E with
///     a · h(f) = g(a) ⋆ f     for all a ∈ A, f ∈ F.
/// Composition is (g', h') ∘ (g, h) = (g' ∘ g, h ∘ h'); the identity is (id_A, id_E).
///
/// Abstract:
///   Morphism { agent_map [|A|] (g), environment_map [|F|] (h) }
///   is_morphism(C, D, m)       shape_error when the maps have the wrong lengths,
///                              config_error when an index is out of range; otherwise
///                              whether the equation holds.
///   compose(second, first)     second ∘ first; config_error when they do not chain.
///   identity_morphism(C).
///   for_each_agent_map(C, D, visit)
///     calls visit(g, candidates) for every g : A → B that is the agent part of at least
///     one morphism, in lexicographic order of g; candidates[f] lists, increasing, the e
///     with column e of C equal to (g(a) ⋆ f)_a, i.e. the values h(f) may take. The
///     morphisms with agent part g are exactly all choices h(f) ∈ candidates[f]. visit
///     returns false to stop; the function returns false when it was stopped.
///   enumerate_morphisms(C, D, max_count)   every morphism, in lexicographic order of
///                              (g, h); config_error as soon as more than max_count exist.
///
/// Cost: the search assigns g row by row and keeps, for each f, the columns of C that still
/// agree with the partial g, so a branch dies as soon as some f has no candidate left.
/// Worst case O(|B|^|A| · |A| · |E| · |F|); meant for the small frames of the sequence.

#include "sae/cartesian/frame.hpp"
#include "sae/core/error.hpp"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// A morphism (g, h) : C → D. g sends each agent option of C to one of D; h sends each
/// environment of D to one of C.
struct Morphism {
    std::vector<std::size_t> agent_map;        ///< g : Agent(C) → Agent(D), length |A|
    std::vector<std::size_t> environment_map;  ///< h : Env(D) → Env(C), length |F|

    friend bool operator==(const Morphism& x, const Morphism& y) {
        return x.agent_map == y.agent_map && x.environment_map == y.environment_map;
    }
    friend bool operator!=(const Morphism& x, const Morphism& y) { return !(x == y); }
};

namespace detail {

/// Checks the lengths and index ranges of m as a map C → D; `what` names the caller.
inline void require_morphism_shape(const Frame& from, const Frame& to, const Morphism& m, const std::string& what) {
    if (m.agent_map.size() != from.agent_count() || m.environment_map.size() != to.environment_count()) {
        throw shape_error(what + ": the morphism has an agent map of length " + std::to_string(m.agent_map.size()) +
                          " and an environment map of length " + std::to_string(m.environment_map.size()) +
                          "; expected " + std::to_string(from.agent_count()) + " and " +
                          std::to_string(to.environment_count()));
    }
    for (std::size_t a = 0; a < m.agent_map.size(); ++a) {
        if (m.agent_map[a] >= to.agent_count()) {
            throw config_error(what + ": g(" + std::to_string(a) + ") = " + std::to_string(m.agent_map[a]) +
                               " is out of range (the target has " + std::to_string(to.agent_count()) + " agents)");
        }
    }
    for (std::size_t f = 0; f < m.environment_map.size(); ++f) {
        if (m.environment_map[f] >= from.environment_count()) {
            throw config_error(what + ": h(" + std::to_string(f) + ") = " + std::to_string(m.environment_map[f]) +
                               " is out of range (the source has " + std::to_string(from.environment_count()) +
                               " environments)");
        }
    }
}

/// Depth-first search over g, one agent row per level. candidates[level][f] are the
/// columns of `from` that agree with g on rows 0..level-1.
template <class Visitor>
bool agent_map_search(const Frame& from, const Frame& to, std::size_t row, std::vector<std::size_t>& g,
                      std::vector<std::vector<std::vector<std::size_t>>>& candidates, Visitor& visit) {
    if (row == from.agent_count()) {
        return visit(static_cast<const std::vector<std::size_t>&>(g),
                     static_cast<const std::vector<std::vector<std::size_t>>&>(candidates[row]));
    }
    const std::size_t environments_of_target = to.environment_count();
    for (std::size_t b = 0; b < to.agent_count(); ++b) {
        std::vector<std::vector<std::size_t>>& next = candidates[row + 1];
        bool alive = true;
        for (std::size_t f = 0; f < environments_of_target && alive; ++f) {
            next[f].clear();
            const WorldId wanted = to(b, f);
            for (std::size_t e : candidates[row][f]) {
                if (from(row, e) == wanted) {
                    next[f].push_back(e);
                }
            }
            alive = !next[f].empty();
        }
        if (!alive) {
            continue;
        }
        g[row] = b;
        if (!agent_map_search(from, to, row + 1, g, candidates, visit)) {
            return false;
        }
    }
    return true;
}

}  // namespace detail

/// Whether (g, h) satisfies a · h(f) = g(a) ⋆ f for all a, f.
inline bool is_morphism(const Frame& from, const Frame& to, const Morphism& m) {
    require_same_world_count(from, to, "is_morphism");
    detail::require_morphism_shape(from, to, m, "is_morphism");
    for (std::size_t a = 0; a < from.agent_count(); ++a) {
        for (std::size_t f = 0; f < to.environment_count(); ++f) {
            if (from(a, m.environment_map[f]) != to(m.agent_map[a], f)) {
                return false;
            }
        }
    }
    return true;
}

/// second ∘ first = (g2 ∘ g1, h1 ∘ h2) for first : C → D and second : D → E.
inline Morphism compose(const Morphism& second, const Morphism& first) {
    Morphism out;
    out.agent_map.resize(first.agent_map.size());
    for (std::size_t a = 0; a < first.agent_map.size(); ++a) {
        const std::size_t middle = first.agent_map[a];
        if (middle >= second.agent_map.size()) {
            throw config_error("compose: the first morphism sends agent " + std::to_string(a) + " to " +
                               std::to_string(middle) + ", but the second is defined on " +
                               std::to_string(second.agent_map.size()) + " agents");
        }
        out.agent_map[a] = second.agent_map[middle];
    }
    out.environment_map.resize(second.environment_map.size());
    for (std::size_t f = 0; f < second.environment_map.size(); ++f) {
        const std::size_t middle = second.environment_map[f];
        if (middle >= first.environment_map.size()) {
            throw config_error("compose: the second morphism sends environment " + std::to_string(f) + " to " +
                               std::to_string(middle) + ", but the first is defined on " +
                               std::to_string(first.environment_map.size()) + " environments");
        }
        out.environment_map[f] = first.environment_map[middle];
    }
    return out;
}

/// (id_A, id_E) : C → C.
inline Morphism identity_morphism(const Frame& c) {
    Morphism m;
    m.agent_map.resize(c.agent_count());
    m.environment_map.resize(c.environment_count());
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        m.agent_map[a] = a;
    }
    for (std::size_t e = 0; e < c.environment_count(); ++e) {
        m.environment_map[e] = e;
    }
    return m;
}

/// Visits the agent part g of every morphism C → D together with the allowed values of
/// h(f) (see the file comment). Returns false when visit stopped the search.
template <class Visitor>
bool for_each_agent_map(const Frame& from, const Frame& to, Visitor&& visit) {
    require_same_world_count(from, to, "for_each_agent_map");
    const std::size_t rows = from.agent_count();
    const std::size_t targets = to.environment_count();
    std::vector<std::vector<std::vector<std::size_t>>> candidates(rows + 1,
                                                                  std::vector<std::vector<std::size_t>>(targets));
    for (std::size_t f = 0; f < targets; ++f) {
        candidates[0][f].resize(from.environment_count());
        for (std::size_t e = 0; e < from.environment_count(); ++e) {
            candidates[0][f][e] = e;
        }
        if (candidates[0][f].empty()) {
            return true;  // h(f) has nowhere to go: no morphism at all
        }
    }
    std::vector<std::size_t> g(rows);
    return detail::agent_map_search(from, to, 0, g, candidates, visit);
}

/// Every morphism C → D (hom(C, D)); config_error once more than max_count are found.
inline std::vector<Morphism> enumerate_morphisms(const Frame& from, const Frame& to,
                                                 std::size_t max_count = 1000000) {
    std::vector<Morphism> out;
    for_each_agent_map(from, to, [&](const std::vector<std::size_t>& g,
                                     const std::vector<std::vector<std::size_t>>& choices) {
        // Odometer over h(f) ∈ choices[f], last f fastest (lexicographic order).
        std::vector<std::size_t> position(choices.size(), 0);
        while (true) {
            if (out.size() == max_count) {
                throw config_error("enumerate_morphisms: more than " + std::to_string(max_count) +
                                   " morphisms between a " + std::to_string(from.agent_count()) + " x " +
                                   std::to_string(from.environment_count()) + " and a " +
                                   std::to_string(to.agent_count()) + " x " + std::to_string(to.environment_count()) +
                                   " frame; raise max_count if that many are wanted");
            }
            Morphism m;
            m.agent_map = g;
            m.environment_map.resize(choices.size());
            for (std::size_t f = 0; f < choices.size(); ++f) {
                m.environment_map[f] = choices[f][position[f]];
            }
            out.push_back(std::move(m));
            std::size_t f = choices.size();
            while (f > 0) {
                --f;
                if (++position[f] < choices[f].size()) {
                    break;
                }
                position[f] = 0;
                if (f == 0) {
                    return true;
                }
            }
            if (choices.empty()) {
                return true;
            }
        }
    });
    return out;
}

}  // namespace cartesian
}  // namespace sae
