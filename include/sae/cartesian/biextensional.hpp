#pragma once
/// \file biextensional.hpp
/// Biextensional collapse and equivalence ("Biextensional Equivalence", the sequence's
/// third post).
///
/// A frame is biextensional when no two rows are equal and no two columns are equal (as
/// functions into W). Its biextensional collapse merges equal rows and equal columns.
/// Two morphisms (g0, h0), (g1, h1) : C → D are homotopic when (g0, h1) is also a
/// morphism. C and D are homotopy equivalent, C ≃ D, when there are φ : C → D and
/// ψ : D → C with ψ ∘ φ homotopic to id_C and φ ∘ ψ homotopic to id_D. The sequence
/// proves that C ≃ D exactly when the biextensional collapses of C and D are isomorphic,
/// which is how biextensionally_equivalent decides it; find_homotopy_equivalence searches
/// the definition directly (small frames) and the tests check the two agree.
///
/// Abstract:
///   Collapse biextensional_collapse(C)
///     frame: the collapse; agent_class[a] / environment_class[e]: the row / column of the
///     collapse that row a / column e of C became; classes are numbered in order of first
///     appearance, so the collapse keeps the order of C's first rows and columns.
///   is_biextensional(C).
///   find_isomorphism(C, D, max_search_nodes) -> optional<Morphism>
///     a morphism (g, h) : C → D with g and h bijections. Backtracking over g on the
///     shorter side (rows or columns), pruned by the multiset of rows and the multiset of
///     partial columns; config_error after max_search_nodes nodes.
///   biextensionally_equivalent(C, D)           collapses isomorphic (≃).
///   homotopic(C, D, m0, m1)                    (g0, h1) is a morphism.
///   is_homotopy_equivalence(C, D, phi, psi).
///   find_homotopy_equivalence(C, D, max_morphisms) -> optional<pair<Morphism, Morphism>>
///     tries every pair in hom(C, D) × hom(D, C).

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/morphism.hpp"
#include "sae/core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// The biextensional collapse of a frame and where each row and column went.
struct Collapse {
    Frame frame;                                 ///< distinct rows × distinct columns
    std::vector<std::size_t> agent_class;        ///< [|A|]: row of `frame` for each row of C
    std::vector<std::size_t> environment_class;  ///< [|E|]: column of `frame` for each column of C
    std::vector<std::size_t> agent_representative;        ///< first row of C in each class
    std::vector<std::size_t> environment_representative;  ///< first column of C in each class
};

namespace detail {

/// Class of each vector in `items`, numbered by first appearance, and the first index of
/// each class.
inline void classify_vectors(const std::vector<std::vector<WorldId>>& items, std::vector<std::size_t>& class_of,
                             std::vector<std::size_t>& representative) {
    std::vector<std::size_t> order(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return items[x] < items[y]; });
    // First index of each distinct vector, then number the distinct vectors by that index.
    std::vector<std::size_t> first_of(items.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
        const bool new_group = k == 0 || items[order[k]] != items[order[k - 1]];
        first_of[order[k]] = new_group ? order[k] : first_of[order[k - 1]];
    }
    class_of.assign(items.size(), 0);
    representative.clear();
    std::vector<std::size_t> number_of_first(items.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (first_of[i] == i) {
            number_of_first[i] = representative.size();
            representative.push_back(i);
        }
        class_of[i] = number_of_first[first_of[i]];
    }
}

inline std::vector<std::vector<WorldId>> rows_of(const Frame& c) {
    std::vector<std::vector<WorldId>> rows(c.agent_count());
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        rows[a] = c.row(a);
    }
    return rows;
}

inline std::vector<std::vector<WorldId>> columns_of(const Frame& c) {
    std::vector<std::vector<WorldId>> columns(c.environment_count());
    for (std::size_t e = 0; e < c.environment_count(); ++e) {
        columns[e] = c.column(e);
    }
    return columns;
}

/// Backtracking search for a row bijection g with matching column multisets.
class IsomorphismSearch {
public:
    IsomorphismSearch(const Frame& c, const Frame& d, std::size_t max_nodes) : c_(c), d_(d), max_nodes_(max_nodes) {
        const std::size_t rows = c.agent_count();
        sorted_row_c_.resize(rows);
        sorted_row_d_.resize(rows);
        for (std::size_t a = 0; a < rows; ++a) {
            sorted_row_c_[a] = c.row(a);
            std::sort(sorted_row_c_[a].begin(), sorted_row_c_[a].end());
            sorted_row_d_[a] = d.row(a);
            std::sort(sorted_row_d_[a].begin(), sorted_row_d_[a].end());
        }
        g_.assign(rows, 0);
        used_.assign(rows, false);
    }

    std::optional<Morphism> run() {
        if (!search(0)) {
            return std::nullopt;
        }
        return result_;
    }

private:
    /// The multiset of column prefixes over rows 0..depth-1 of `frame`, rows mapped by `map`.
    std::vector<std::vector<WorldId>> prefixes(const Frame& frame, std::size_t depth, bool through_g) const {
        std::vector<std::vector<WorldId>> out(frame.environment_count(), std::vector<WorldId>(depth));
        for (std::size_t e = 0; e < frame.environment_count(); ++e) {
            for (std::size_t a = 0; a < depth; ++a) {
                out[e][a] = frame(through_g ? g_[a] : a, e);
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    bool search(std::size_t depth) {
        if (++nodes_ > max_nodes_) {
            throw config_error("find_isomorphism: gave up after " + std::to_string(max_nodes_) +
                               " search nodes; raise max_search_nodes for frames this large");
        }
        if (depth > 0 && prefixes(c_, depth, false) != prefixes(d_, depth, true)) {
            return false;
        }
        if (depth == c_.agent_count()) {
            return finish();
        }
        for (std::size_t b = 0; b < d_.agent_count(); ++b) {
            if (used_[b] || sorted_row_c_[depth] != sorted_row_d_[b]) {
                continue;
            }
            used_[b] = true;
            g_[depth] = b;
            if (search(depth + 1)) {
                return true;
            }
            used_[b] = false;
        }
        return false;
    }

    /// With g fixed and the full column multisets equal, pair the columns of D with equal
    /// columns of C (h : F → E).
    bool finish() {
        const std::size_t columns = c_.environment_count();
        std::vector<std::vector<WorldId>> c_columns(columns);
        std::vector<std::vector<WorldId>> d_columns(columns);
        for (std::size_t e = 0; e < columns; ++e) {
            c_columns[e] = c_.column(e);
            d_columns[e].resize(c_.agent_count());
            for (std::size_t a = 0; a < c_.agent_count(); ++a) {
                d_columns[e][a] = d_(g_[a], e);
            }
        }
        std::vector<std::size_t> c_order(columns);
        std::vector<std::size_t> d_order(columns);
        for (std::size_t e = 0; e < columns; ++e) {
            c_order[e] = e;
            d_order[e] = e;
        }
        std::sort(c_order.begin(), c_order.end(),
                  [&](std::size_t x, std::size_t y) { return c_columns[x] < c_columns[y]; });
        std::sort(d_order.begin(), d_order.end(),
                  [&](std::size_t x, std::size_t y) { return d_columns[x] < d_columns[y]; });
        result_.agent_map = g_;
        result_.environment_map.assign(columns, 0);
        for (std::size_t k = 0; k < columns; ++k) {
            if (c_columns[c_order[k]] != d_columns[d_order[k]]) {
                return false;
            }
            result_.environment_map[d_order[k]] = c_order[k];
        }
        return true;
    }

    const Frame& c_;
    const Frame& d_;
    std::size_t max_nodes_;
    std::size_t nodes_ = 0;
    std::vector<std::vector<WorldId>> sorted_row_c_;
    std::vector<std::vector<WorldId>> sorted_row_d_;
    std::vector<std::size_t> g_;
    std::vector<bool> used_;
    Morphism result_;
};

/// Inverse of a bijection on {0, ..., n - 1}.
inline std::vector<std::size_t> inverse_permutation(const std::vector<std::size_t>& p) {
    std::vector<std::size_t> inverse(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
        inverse[p[i]] = i;
    }
    return inverse;
}

}  // namespace detail

/// Merge equal rows and equal columns.
inline Collapse biextensional_collapse(const Frame& c) {
    Collapse out;
    detail::classify_vectors(detail::rows_of(c), out.agent_class, out.agent_representative);
    detail::classify_vectors(detail::columns_of(c), out.environment_class, out.environment_representative);
    out.frame = restrict_environments(restrict_agents(c, out.agent_representative), out.environment_representative);
    return out;
}

/// No two equal rows and no two equal columns.
inline bool is_biextensional(const Frame& c) {
    const Collapse collapsed = biextensional_collapse(c);
    return collapsed.frame.agent_count() == c.agent_count() &&
           collapsed.frame.environment_count() == c.environment_count();
}

/// An isomorphism C → D (bijective g and h), if there is one.
inline std::optional<Morphism> find_isomorphism(const Frame& c, const Frame& d,
                                                std::size_t max_search_nodes = 10000000) {
    require_same_world_count(c, d, "find_isomorphism");
    if (c.agent_count() != d.agent_count() || c.environment_count() != d.environment_count()) {
        return std::nullopt;
    }
    if (c.agent_count() <= c.environment_count()) {
        return detail::IsomorphismSearch(c, d, max_search_nodes).run();
    }
    // Search the duals, whose "rows" are the shorter side. An isomorphism (g', h') :
    // C* → D* has g' : E → F and h' : B → A; its inverse pair is an isomorphism C → D.
    const Frame c_dual = dual(c);
    const Frame d_dual = dual(d);
    const std::optional<Morphism> dual_iso = detail::IsomorphismSearch(c_dual, d_dual, max_search_nodes).run();
    if (!dual_iso) {
        return std::nullopt;
    }
    Morphism iso;
    iso.agent_map = detail::inverse_permutation(dual_iso->environment_map);
    iso.environment_map = detail::inverse_permutation(dual_iso->agent_map);
    return iso;
}

/// C ≃ D: their biextensional collapses are isomorphic.
inline bool biextensionally_equivalent(const Frame& c, const Frame& d, std::size_t max_search_nodes = 10000000) {
    require_same_world_count(c, d, "biextensionally_equivalent");
    return find_isomorphism(biextensional_collapse(c).frame, biextensional_collapse(d).frame, max_search_nodes)
        .has_value();
}

/// (g0, h0) and (g1, h1) : C → D are homotopic when (g0, h1) is also a morphism.
inline bool homotopic(const Frame& from, const Frame& to, const Morphism& m0, const Morphism& m1) {
    detail::require_morphism_shape(from, to, m0, "homotopic");
    detail::require_morphism_shape(from, to, m1, "homotopic");
    return is_morphism(from, to, Morphism{m0.agent_map, m1.environment_map});
}

/// phi : C → D and psi : D → C are morphisms with psi ∘ phi ~ id_C and phi ∘ psi ~ id_D.
inline bool is_homotopy_equivalence(const Frame& c, const Frame& d, const Morphism& phi, const Morphism& psi) {
    if (!is_morphism(c, d, phi) || !is_morphism(d, c, psi)) {
        return false;
    }
    return homotopic(c, c, compose(psi, phi), identity_morphism(c)) &&
           homotopic(d, d, compose(phi, psi), identity_morphism(d));
}

/// A homotopy equivalence (phi, psi) found by trying every pair of morphisms.
inline std::optional<std::pair<Morphism, Morphism>> find_homotopy_equivalence(const Frame& c, const Frame& d,
                                                                              std::size_t max_morphisms = 100000) {
    const std::vector<Morphism> forward = enumerate_morphisms(c, d, max_morphisms);
    const std::vector<Morphism> backward = enumerate_morphisms(d, c, max_morphisms);
    for (const Morphism& phi : forward) {
        for (const Morphism& psi : backward) {
            if (homotopic(c, c, compose(psi, phi), identity_morphism(c)) &&
                homotopic(d, d, compose(phi, psi), identity_morphism(d))) {
                return std::make_pair(phi, psi);
            }
        }
    }
    return std::nullopt;
}

}  // namespace cartesian
}  // namespace sae
