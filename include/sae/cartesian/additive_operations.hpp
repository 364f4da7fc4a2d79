#pragma once
/// \file additive_operations.hpp
/// The additive operations of the sequence ("Additive Operations on Cartesian Frames").
/// For C = (A, E, ·) and D = (B, F, ⋆) over the same W:
///
///   sum      C ⊕ D = (A ⊔ B, E × F, ◇),  a ◇ (e, f) = a · e for a ∈ A, b ◇ (e, f) = b ⋆ f for b ∈ B.
///            The agent chooses which of the two games to play; the environment must be
///            ready for both.
///   product  C & D = (A × B, E ⊔ F, ◇),  (a, b) ◇ e = a · e for e ∈ E, (a, b) ◇ f = b ⋆ f for f ∈ F.
///            The environment chooses the game; the agent must be ready for both.
///
/// Index conventions (what the rows and columns of the result mean):
///   ⊕: rows 0..|A|-1 are A, rows |A|..|A|+|B|-1 are B; column e·|F| + f is (e, f).
///   &: row a·|B| + b is (a, b); columns 0..|E|-1 are E, columns |E|..|E|+|F|-1 are F.
/// Both are commutative and associative up to isomorphism, 0 is the unit of ⊕ and ⊤ the
/// unit of &, also up to isomorphism; (C ⊕ D)* = C* & D*, exactly.
/// Frames over different world counts: config_error.

#include "sae/cartesian/frame.hpp"

#include <cstddef>

namespace sae {
namespace cartesian {

/// C ⊕ D.
inline Frame sum(const Frame& c, const Frame& d) {
    require_same_world_count(c, d, "sum");
    const std::size_t a_count = c.agent_count();
    const std::size_t f_count = d.environment_count();
    return Frame::from_function(c.world_count(), a_count + d.agent_count(), c.environment_count() * f_count,
                                [&](std::size_t row, std::size_t column) {
                                    const std::size_t e = column / f_count;
                                    const std::size_t f = column % f_count;
                                    return row < a_count ? c(row, e) : d(row - a_count, f);
                                });
}

/// C & D.
inline Frame product(const Frame& c, const Frame& d) {
    require_same_world_count(c, d, "product");
    const std::size_t b_count = d.agent_count();
    const std::size_t e_count = c.environment_count();
    return Frame::from_function(c.world_count(), c.agent_count() * b_count, e_count + d.environment_count(),
                                [&](std::size_t row, std::size_t column) {
                                    const std::size_t a = row / b_count;
                                    const std::size_t b = row % b_count;
                                    return column < e_count ? c(a, column) : d(b, column - e_count);
                                });
}

}  // namespace cartesian
}  // namespace sae
