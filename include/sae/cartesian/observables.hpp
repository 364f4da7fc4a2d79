#pragma once
/// \file observables.hpp
/// What an agent can observe ("Introduction to Cartesian Frames", §4; "Eight Definitions
/// of Observability"). The agent of C = (A, E, ·) can observe S ⊆ W when it can implement
/// every conditional policy "if the world is in S act like a0, else act like a1":
///
///   if(S, a0, a1) = {a ∈ A : ∀e ∈ E, (a·e ∈ S ⇒ a·e = a0·e) and (a·e ∉ S ⇒ a·e = a1·e)}
///   Obs(C)        = {S ⊆ W : if(S, a0, a1) ≠ ∅ for all a0, a1 ∈ A}.
///
/// This is the sequence's definition, in the form the HOL4 formalisation of the sequence
/// uses (Google's HOL4 formalisation, theory cf0: ifs_def, obs_def). Obs(C) contains ∅
/// and W and is closed under complement, union and intersection, so for finite W it is
/// the set of all unions of the blocks of one partition of W ("Eight Definitions of
/// Observability" works with exactly such partitions). observable_partition returns that
/// partition; S is observable exactly when it is a union of its blocks.
///
/// How the partition is found without trying all 2^|W| sets (both facts are proved in
/// the HOL development, obs_env_for, and follow directly from the definition):
///   1. Only S ∩ Image(C) matters, so every world outside the image is a block by itself.
///   2. An observable S never splits a column: for every e, the worlds {a·e : a ∈ A} lie
///      all in S or all outside it. So S ∩ Image(C) is a union of the connected
///      components of "appear in the same column".
///   For such an S each column is wholly in or out, and S is observable exactly when for
///   all rows r0, r1 the row that agrees with r0 on the in-columns and with r1 on the
///   out-columns is a row of C. The function tries every union of components (refused with
///   config_error beyond max_observable_components = 20 components) and groups the
///   components that no observable set separates.
///
/// Abstract:
///   can_observe(C, S)           the definition, O(|A|^3 |E|); S must lie in W.
///   observable_partition(C)     blocks sorted by their smallest world.
///   observables(C)              every observable S, sorted; |W| <= max_enumerated_worlds.

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/world_set.hpp"
#include "sae/core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sae {
namespace cartesian {

/// Unions of more column components than this are not enumerated.
constexpr std::size_t max_observable_components = 20;

/// S ∈ Obs(C), by the definition.
inline bool can_observe(const Frame& c, const WorldSet& s) {
    require_worlds_in_range(s, c.world_count(), "can_observe: S");
    std::vector<bool> in_s(c.world_count(), false);
    for (WorldId w : s) {
        in_s[w] = true;
    }
    const std::size_t agents = c.agent_count();
    const std::size_t environments = c.environment_count();
    for (std::size_t a0 = 0; a0 < agents; ++a0) {
        for (std::size_t a1 = 0; a1 < agents; ++a1) {
            bool implemented = false;
            for (std::size_t a = 0; a < agents && !implemented; ++a) {
                bool fits = true;
                for (std::size_t e = 0; e < environments && fits; ++e) {
                    const WorldId w = c(a, e);
                    fits = w == (in_s[w] ? c(a0, e) : c(a1, e));
                }
                implemented = fits;
            }
            if (!implemented) {
                return false;
            }
        }
    }
    return true;
}

namespace detail {

inline std::size_t find_root(std::vector<std::size_t>& parent, std::size_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

}  // namespace detail

/// The partition of W whose unions are exactly Obs(C).
inline std::vector<WorldSet> observable_partition(const Frame& c) {
    const std::size_t world_count = c.world_count();
    const std::size_t agents = c.agent_count();
    const std::size_t environments = c.environment_count();

    // Components of the image under "appear in the same column".
    std::vector<std::size_t> parent(world_count);
    for (std::size_t w = 0; w < world_count; ++w) {
        parent[w] = w;
    }
    for (std::size_t e = 0; e < environments; ++e) {
        for (std::size_t a = 1; a < agents; ++a) {
            const std::size_t x = detail::find_root(parent, c(0, e));
            const std::size_t y = detail::find_root(parent, c(a, e));
            parent[x] = y;
        }
    }
    const WorldSet image = c.image();
    std::vector<std::size_t> component_of_world(world_count, 0);
    std::vector<std::size_t> root_to_component(world_count, world_count);
    std::size_t component_count = 0;
    for (WorldId w : image) {
        const std::size_t root = detail::find_root(parent, w);
        if (root_to_component[root] == world_count) {
            root_to_component[root] = component_count++;
        }
        component_of_world[w] = root_to_component[root];
    }
    if (component_count > max_observable_components) {
        throw config_error("observable_partition: the image splits into " + std::to_string(component_count) +
                           " column components; at most " + std::to_string(max_observable_components) +
                           " are enumerated");
    }

    // Distinct rows, sorted, for the lookups of mixed rows.
    std::vector<std::vector<WorldId>> rows;
    for (std::size_t a = 0; a < agents; ++a) {
        rows.push_back(c.row(a));
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    std::vector<std::size_t> column_component(environments, 0);
    for (std::size_t e = 0; e < environments; ++e) {
        column_component[e] = agents > 0 ? component_of_world[c(0, e)] : 0;
    }

    std::vector<std::uint64_t> observable_masks;
    std::vector<WorldId> mixed(environments);
    const std::uint64_t candidate_count = std::uint64_t{1} << component_count;
    for (std::uint64_t mask = 0; mask < candidate_count; ++mask) {
        bool observable = true;
        for (std::size_t i = 0; i < rows.size() && observable; ++i) {
            for (std::size_t j = 0; j < rows.size() && observable; ++j) {
                for (std::size_t e = 0; e < environments; ++e) {
                    const bool in = ((mask >> column_component[e]) & 1U) != 0;
                    mixed[e] = in ? rows[i][e] : rows[j][e];
                }
                observable = std::binary_search(rows.begin(), rows.end(), mixed);
            }
        }
        if (observable) {
            observable_masks.push_back(mask);
        }
    }

    // Components that every observable set treats alike form one block.
    std::vector<std::vector<bool>> signature(component_count, std::vector<bool>(observable_masks.size()));
    for (std::size_t k = 0; k < component_count; ++k) {
        for (std::size_t m = 0; m < observable_masks.size(); ++m) {
            signature[k][m] = ((observable_masks[m] >> k) & 1U) != 0;
        }
    }
    std::vector<std::size_t> block_of_component(component_count, 0);
    std::vector<std::size_t> block_leader;  // first component of each block
    for (std::size_t k = 0; k < component_count; ++k) {
        std::size_t block = block_leader.size();
        for (std::size_t b = 0; b < block_leader.size(); ++b) {
            if (signature[block_leader[b]] == signature[k]) {
                block = b;
                break;
            }
        }
        if (block == block_leader.size()) {
            block_leader.push_back(k);
        }
        block_of_component[k] = block;
    }
    std::vector<std::vector<WorldId>> blocks(block_leader.size());
    std::vector<WorldSet> partition;
    for (std::size_t w = 0; w < world_count; ++w) {
        if (image.contains(w)) {
            blocks[block_of_component[component_of_world[w]]].push_back(w);
        } else {
            partition.push_back(WorldSet{w});
        }
    }
    for (std::vector<WorldId>& block : blocks) {
        partition.push_back(WorldSet(std::move(block)));
    }
    std::sort(partition.begin(), partition.end(),
              [](const WorldSet& x, const WorldSet& y) { return x.ids().front() < y.ids().front(); });
    return partition;
}

/// Every S ∈ Obs(C), sorted; |W| <= max_enumerated_worlds.
inline std::vector<WorldSet> observables(const Frame& c) {
    if (c.world_count() > max_enumerated_worlds) {
        throw config_error("observables: enumerating the subsets of " + std::to_string(c.world_count()) +
                           " worlds is refused (at most " + std::to_string(max_enumerated_worlds) +
                           "); use observable_partition instead");
    }
    const std::vector<WorldSet> partition = observable_partition(c);
    std::vector<WorldSet> out;
    const std::uint64_t count = std::uint64_t{1} << partition.size();
    for (std::uint64_t mask = 0; mask < count; ++mask) {
        std::vector<WorldId> members;
        for (std::size_t b = 0; b < partition.size(); ++b) {
            if (((mask >> b) & 1U) != 0) {
                members.insert(members.end(), partition[b].begin(), partition[b].end());
            }
        }
        out.push_back(WorldSet(std::move(members)));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace cartesian
}  // namespace sae
