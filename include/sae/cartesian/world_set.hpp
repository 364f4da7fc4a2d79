#pragma once
/// \file world_set.hpp
/// Worlds and sets of worlds, the vocabulary every other header of sae::cartesian uses.
///
/// A Cartesian frame or object lives over a finite world set W = {0, 1, ..., n - 1}; a
/// world is named by its index (WorldId). A WorldSet is a subset of W kept as a sorted
/// list without repeats, so two sets are equal exactly when their lists are equal and a
/// list of sets can be sorted into a canonical order (operator<, lexicographic).
///
/// Abstract:
///   WorldSet(ids)                      any order, repeats removed.
///   WorldSet::all(n)                   {0, ..., n - 1}.
///   contains / size / empty / ids      the obvious.
///   is_subset, set_union, set_intersection, set_difference, complement(S, n), disjoint.
///   require_worlds_in_range(S, n, what)  config_error naming the first id >= n.
///   to_string(S)                       "{0, 3, 4}", for messages and printing.
///   for_each_subset(n, visit)          every subset of W as a bit mask, n <= 20
///                                      (max_enumerated_worlds), else config_error.

#include "sae/core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// A world, named by its index in W = {0, ..., world_count - 1}.
using WorldId = std::size_t;

/// Enumerating all subsets of W costs 2^|W|; beyond this many worlds the functions that
/// list every ensurable / controllable / observable set refuse (config_error) and the
/// caller uses the generator forms instead (ensure_generators, controllable_intervals...).
constexpr std::size_t max_enumerated_worlds = 20;

/// A subset of the world set: sorted world ids without repeats.
class WorldSet {
public:
    WorldSet() = default;
    WorldSet(std::initializer_list<WorldId> ids) : ids_(ids) { normalise(); }
    explicit WorldSet(std::vector<WorldId> ids) : ids_(std::move(ids)) { normalise(); }

    /// W itself: {0, ..., world_count - 1}.
    static WorldSet all(std::size_t world_count) {
        std::vector<WorldId> ids(world_count);
        for (std::size_t w = 0; w < world_count; ++w) {
            ids[w] = w;
        }
        return WorldSet(std::move(ids));
    }

    /// The set whose members are the set bits of `mask` (bit w = world w).
    static WorldSet from_mask(std::uint64_t mask) {
        std::vector<WorldId> ids;
        for (WorldId w = 0; mask != 0; ++w, mask >>= 1U) {
            if ((mask & 1U) != 0) {
                ids.push_back(w);
            }
        }
        WorldSet set;
        set.ids_ = std::move(ids);  // already sorted and unique
        return set;
    }

    bool contains(WorldId w) const { return std::binary_search(ids_.begin(), ids_.end(), w); }
    std::size_t size() const { return ids_.size(); }
    bool empty() const { return ids_.empty(); }
    const std::vector<WorldId>& ids() const { return ids_; }
    std::vector<WorldId>::const_iterator begin() const { return ids_.begin(); }
    std::vector<WorldId>::const_iterator end() const { return ids_.end(); }

    /// The set as a bit mask; requires every id < 64 (config_error otherwise).
    std::uint64_t to_mask() const {
        std::uint64_t mask = 0;
        for (WorldId w : ids_) {
            if (w >= 64) {
                throw config_error("WorldSet::to_mask: world " + std::to_string(w) +
                                   " does not fit a 64-bit mask");
            }
            mask |= std::uint64_t{1} << w;
        }
        return mask;
    }

    friend bool operator==(const WorldSet& a, const WorldSet& b) { return a.ids_ == b.ids_; }
    friend bool operator!=(const WorldSet& a, const WorldSet& b) { return a.ids_ != b.ids_; }
    /// Lexicographic order of the sorted id lists: a canonical order for lists of sets.
    friend bool operator<(const WorldSet& a, const WorldSet& b) { return a.ids_ < b.ids_; }

private:
    void normalise() {
        std::sort(ids_.begin(), ids_.end());
        ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
    }

    std::vector<WorldId> ids_;
};

/// Whether every world of `a` is in `b`.
inline bool is_subset(const WorldSet& a, const WorldSet& b) {
    return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

inline WorldSet set_union(const WorldSet& a, const WorldSet& b) {
    std::vector<WorldId> out;
    std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return WorldSet(std::move(out));
}

inline WorldSet set_intersection(const WorldSet& a, const WorldSet& b) {
    std::vector<WorldId> out;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return WorldSet(std::move(out));
}

/// a \ b.
inline WorldSet set_difference(const WorldSet& a, const WorldSet& b) {
    std::vector<WorldId> out;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return WorldSet(std::move(out));
}

/// W \ s for W = {0, ..., world_count - 1}.
inline WorldSet complement(const WorldSet& s, std::size_t world_count) {
    return set_difference(WorldSet::all(world_count), s);
}

inline bool disjoint(const WorldSet& a, const WorldSet& b) {
    auto i = a.begin();
    auto j = b.begin();
    while (i != a.end() && j != b.end()) {
        if (*i == *j) {
            return false;
        }
        if (*i < *j) {
            ++i;
        } else {
            ++j;
        }
    }
    return true;
}

/// "{0, 3, 4}".
inline std::string to_string(const WorldSet& s) {
    std::string text = "{";
    bool first = true;
    for (WorldId w : s) {
        if (!first) {
            text += ", ";
        }
        text += std::to_string(w);
        first = false;
    }
    return text + "}";
}

/// Throws config_error naming the first world of `s` that is not below `world_count`;
/// `what` says whose set it is (e.g. "can_ensure: S").
inline void require_worlds_in_range(const WorldSet& s, std::size_t world_count, const std::string& what) {
    for (WorldId w : s) {
        if (w >= world_count) {
            throw config_error(what + ": world " + std::to_string(w) + " is out of range (the world set has " +
                               std::to_string(world_count) + " worlds)");
        }
    }
}

/// Calls visit(mask) for every subset of {0, ..., world_count - 1}, as a bit mask, in
/// increasing mask order. `what` names the caller for the error when world_count exceeds
/// max_enumerated_worlds.
template <class Visitor>
void for_each_subset(std::size_t world_count, const std::string& what, Visitor&& visit) {
    if (world_count > max_enumerated_worlds) {
        throw config_error(what + ": enumerating the subsets of " + std::to_string(world_count) +
                           " worlds is refused (at most " + std::to_string(max_enumerated_worlds) +
                           "); use the generator form instead");
    }
    const std::uint64_t count = std::uint64_t{1} << world_count;
    for (std::uint64_t mask = 0; mask < count; ++mask) {
        visit(mask);
    }
}

}  // namespace cartesian
}  // namespace sae
