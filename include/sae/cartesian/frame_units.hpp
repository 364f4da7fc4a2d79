#pragma once
/// \file frame_units.hpp
/// The small frames of the sequence (Bensinger, "Cartesian Frames Definitions", §1;
/// Garrabrant, "Additive Operations on Cartesian Frames" and "Multiplicative Operations
/// on Cartesian Frames"), over W = {0, ..., world_count - 1}:
///
///   null        = ({}, {}, ·)      no agent option, no environment.
///   0           = ({}, {e}, ·)     no agent option, one environment. Initial object;
///                                  the identity of the sum ⊕. 0 = ⊥_{}.
///   ⊤ (top)     = ({a}, {}, ·)     one agent option, no environment. Terminal object;
///                                  the identity of the product &. ⊤ = 1_{}.
///   1_S         = ({a}, S, ⋆)      a ⋆ s = s: a powerless agent promised that the world is
///                                  in S. 1 = 1_W is the identity of the tensor ⊗.
///   ⊥_S         = (S, {e}, ⋆)      s ⋆ e = s: an agent that picks the world in S.
///                                  ⊥ = ⊥_W is the identity of par ⅋. ⊥_S = (1_S)*.
///
/// The environments of 1_S and the agent options of ⊥_S are the worlds of S in increasing
/// order. S must lie in W (config_error naming the world otherwise).

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/world_set.hpp"

#include <cstddef>
#include <vector>

namespace sae {
namespace cartesian {

/// null = ({}, {}, ·).
inline Frame null_frame(std::size_t world_count) { return Frame(world_count, 0, 0, {}); }

/// 0 = ({}, {e}, ·): the identity of ⊕.
inline Frame zero_frame(std::size_t world_count) { return Frame(world_count, 0, 1, {}); }

/// ⊤ = ({a}, {}, ·): the identity of &.
inline Frame top_frame(std::size_t world_count) { return Frame(world_count, 1, 0, {}); }

/// 1_S = ({a}, S, ⋆) with a ⋆ s = s.
inline Frame one_frame(std::size_t world_count, const WorldSet& s) {
    require_worlds_in_range(s, world_count, "one_frame: S");
    return Frame(world_count, 1, s.size(), s.ids());
}

/// 1 = 1_W: the identity of ⊗.
inline Frame one_frame(std::size_t world_count) { return one_frame(world_count, WorldSet::all(world_count)); }

/// ⊥_S = (S, {e}, ⋆) with s ⋆ e = s.
inline Frame bottom_frame(std::size_t world_count, const WorldSet& s) {
    require_worlds_in_range(s, world_count, "bottom_frame: S");
    return Frame(world_count, s.size(), 1, s.ids());
}

/// ⊥ = ⊥_W: the identity of ⅋.
inline Frame bottom_frame(std::size_t world_count) { return bottom_frame(world_count, WorldSet::all(world_count)); }

}  // namespace cartesian
}  // namespace sae
