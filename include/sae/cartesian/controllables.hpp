#pragma once
/// \file controllables.hpp
/// What an agent can ensure, prevent and control ("Introduction to Cartesian Frames", §3,
/// and "Controllables and Observables, Revisited"). For C = (A, E, ·) over W and S ⊆ W:
///
///   Ensure(C)  = {S : ∃a ∈ A ∀e ∈ E, a · e ∈ S}     (some row lies inside S)
///   Prevent(C) = {S : ∃a ∈ A ∀e ∈ E, a · e ∉ S}     (some row avoids S)
///   Ctrl(C)    = Ensure(C) ∩ Prevent(C).
///
/// These are sets of subsets of W, 2^|W| candidates. They have short exact descriptions
/// that scale to any W:
///   Ensure(C)  = the supersets of some ensure generator: the minimal row images
///                {a · e : e ∈ E}.
///   Prevent(C) = the subsets of some prevent generator: the maximal W \ (row image).
///   Ctrl(C)    = the union of the intervals [row image of a, W \ row image of a'] over
///                pairs of rows with disjoint images.
/// The full lists (ensurables, preventables, controllables) are produced only for
/// |W| <= max_enumerated_worlds; each list is sorted (WorldSet's operator<).
///
/// Abstract:
///   can_ensure(C, S), can_prevent(C, S), can_control(C, S)    S must lie in W (config_error).
///   ensure_generators(C), prevent_generators(C)               sorted, no repeats.
///   controllable_intervals(C) -> vector<WorldInterval>        sorted, no repeats.
///   ensurables(C), preventables(C), controllables(C)          every such S; config_error
///                                                             when |W| > 20.
/// Edge cases follow the definitions: with no agent option nothing is ensurable; with no
/// environment every S is ensurable and preventable (as long as A is not empty).

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/world_set.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sae {
namespace cartesian {

/// All S with lower ⊆ S ⊆ upper.
struct WorldInterval {
    WorldSet lower;
    WorldSet upper;

    friend bool operator==(const WorldInterval& x, const WorldInterval& y) {
        return x.lower == y.lower && x.upper == y.upper;
    }
    friend bool operator<(const WorldInterval& x, const WorldInterval& y) {
        return x.lower < y.lower || (x.lower == y.lower && x.upper < y.upper);
    }
    bool contains(const WorldSet& s) const { return is_subset(lower, s) && is_subset(s, upper); }
};

namespace detail {

inline std::vector<WorldSet> distinct_row_images(const Frame& c) {
    std::vector<WorldSet> images;
    images.reserve(c.agent_count());
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        images.push_back(c.row_image(a));
    }
    std::sort(images.begin(), images.end());
    images.erase(std::unique(images.begin(), images.end()), images.end());
    return images;
}

/// The members of `sets` that have no strict subset in `sets` (sets: sorted, distinct).
inline std::vector<WorldSet> minimal_sets(const std::vector<WorldSet>& sets) {
    std::vector<WorldSet> out;
    for (const WorldSet& s : sets) {
        const bool dominated = std::any_of(sets.begin(), sets.end(), [&](const WorldSet& t) {
            return t != s && is_subset(t, s);
        });
        if (!dominated) {
            out.push_back(s);
        }
    }
    return out;
}

/// Row images as bit masks, for the enumerations (|W| <= 20).
inline std::vector<std::uint64_t> row_image_masks(const Frame& c) {
    std::vector<std::uint64_t> masks;
    for (const WorldSet& image : distinct_row_images(c)) {
        masks.push_back(image.to_mask());
    }
    return masks;
}

}  // namespace detail

/// S ∈ Ensure(C): some agent option guarantees a world in S.
inline bool can_ensure(const Frame& c, const WorldSet& s) {
    require_worlds_in_range(s, c.world_count(), "can_ensure: S");
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        if (is_subset(c.row_image(a), s)) {
            return true;
        }
    }
    return false;
}

/// S ∈ Prevent(C): some agent option guarantees a world outside S.
inline bool can_prevent(const Frame& c, const WorldSet& s) {
    require_worlds_in_range(s, c.world_count(), "can_prevent: S");
    for (std::size_t a = 0; a < c.agent_count(); ++a) {
        if (disjoint(c.row_image(a), s)) {
            return true;
        }
    }
    return false;
}

/// S ∈ Ctrl(C).
inline bool can_control(const Frame& c, const WorldSet& s) { return can_ensure(c, s) && can_prevent(c, s); }

/// The minimal row images: S is ensurable exactly when it contains one of them.
inline std::vector<WorldSet> ensure_generators(const Frame& c) {
    return detail::minimal_sets(detail::distinct_row_images(c));
}

/// The maximal complements of row images: S is preventable exactly when it lies in one.
inline std::vector<WorldSet> prevent_generators(const Frame& c) {
    std::vector<WorldSet> out;
    for (const WorldSet& image : ensure_generators(c)) {
        out.push_back(complement(image, c.world_count()));
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// Ctrl(C) as a union of intervals [image(a), W \ image(a')] over rows with disjoint
/// images (only minimal images are needed: a larger lower end or a smaller upper end
/// gives a sub-interval).
inline std::vector<WorldInterval> controllable_intervals(const Frame& c) {
    const std::vector<WorldSet> generators = ensure_generators(c);
    std::vector<WorldInterval> out;
    for (const WorldSet& ensured : generators) {
        for (const WorldSet& avoided : generators) {
            if (disjoint(ensured, avoided)) {
                out.push_back(WorldInterval{ensured, complement(avoided, c.world_count())});
            }
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

/// Every S ∈ Ensure(C), sorted; |W| <= max_enumerated_worlds.
inline std::vector<WorldSet> ensurables(const Frame& c) {
    const std::vector<std::uint64_t> images = detail::row_image_masks(c);
    std::vector<WorldSet> out;
    for_each_subset(c.world_count(), "ensurables", [&](std::uint64_t s) {
        if (std::any_of(images.begin(), images.end(), [s](std::uint64_t image) { return (image & ~s) == 0; })) {
            out.push_back(WorldSet::from_mask(s));
        }
    });
    std::sort(out.begin(), out.end());
    return out;
}

/// Every S ∈ Prevent(C), sorted; |W| <= max_enumerated_worlds.
inline std::vector<WorldSet> preventables(const Frame& c) {
    const std::vector<std::uint64_t> images = detail::row_image_masks(c);
    std::vector<WorldSet> out;
    for_each_subset(c.world_count(), "preventables", [&](std::uint64_t s) {
        if (std::any_of(images.begin(), images.end(), [s](std::uint64_t image) { return (image & s) == 0; })) {
            out.push_back(WorldSet::from_mask(s));
        }
    });
    std::sort(out.begin(), out.end());
    return out;
}

/// Every S ∈ Ctrl(C), sorted; |W| <= max_enumerated_worlds.
inline std::vector<WorldSet> controllables(const Frame& c) {
    const std::vector<std::uint64_t> images = detail::row_image_masks(c);
    std::vector<WorldSet> out;
    for_each_subset(c.world_count(), "controllables", [&](std::uint64_t s) {
        const bool ensured =
            std::any_of(images.begin(), images.end(), [s](std::uint64_t image) { return (image & ~s) == 0; });
        const bool prevented =
            std::any_of(images.begin(), images.end(), [s](std::uint64_t image) { return (image & s) == 0; });
        if (ensured && prevented) {
            out.push_back(WorldSet::from_mask(s));
        }
    });
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace cartesian
}  // namespace sae
