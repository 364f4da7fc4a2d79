#pragma once
/// \file multiplicative_operations.hpp
/// The multiplicative operations of the sequence ("Multiplicative Operations on Cartesian
/// Frames"). For C = (A, E, ·) and D = (B, F, ⋆) over the same W:
///
///   tensor  C ⊗ D = (A × B, hom(C, D*), ◇),  (a, b) ◇ (g, h) = b ⋆ g(a) = a · h(b).
///           An environment of the team is a morphism (g, h) : C → D*, i.e. a pair
///           g : A → F, h : B → E with b ⋆ g(a) = a · h(b): a way for the rest of the world
///           to respond to Alice's choice as Bob's environment and to Bob's choice as
///           Alice's, consistently.
///   par     C ⅋ D = (C* ⊗ D*)*: agent hom(C*, D), environment E × F.
///
/// Index conventions: row a·|B| + b of C ⊗ D is (a, b); column k is the k-th morphism of
/// enumerate_morphisms(C, dual(D)) (tensor_environments lists them). Column e·|F| + f of
/// C ⅋ D is (e, f); row k is the k-th morphism of enumerate_morphisms(dual(C), D).
/// Both are commutative and associative up to isomorphism; 1 is the unit of ⊗ and ⊥ the
/// unit of ⅋ (up to isomorphism); C ⊗ 0 ≅ 0.
///
/// The environment of C ⊗ D can be large (it is a hom-set): more than max_morphisms of
/// them is refused with config_error. Frames over different world counts: config_error.

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/morphism.hpp"

#include <cstddef>
#include <vector>

namespace sae {
namespace cartesian {

/// hom(C, D*): the environments of C ⊗ D, in column order.
inline std::vector<Morphism> tensor_environments(const Frame& c, const Frame& d,
                                                 std::size_t max_morphisms = 1000000) {
    require_same_world_count(c, d, "tensor");
    return enumerate_morphisms(c, dual(d), max_morphisms);
}

/// C ⊗ D.
inline Frame tensor(const Frame& c, const Frame& d, std::size_t max_morphisms = 1000000) {
    const std::vector<Morphism> environments = tensor_environments(c, d, max_morphisms);
    const std::size_t b_count = d.agent_count();
    return Frame::from_function(c.world_count(), c.agent_count() * b_count, environments.size(),
                                [&](std::size_t row, std::size_t column) {
                                    const std::size_t a = row / b_count;
                                    const std::size_t b = row % b_count;
                                    // (a, b) ◇ (g, h) = a · h(b)
                                    return c(a, environments[column].environment_map[b]);
                                });
}

/// C ⅋ D = (C* ⊗ D*)*.
inline Frame par(const Frame& c, const Frame& d, std::size_t max_morphisms = 1000000) {
    require_same_world_count(c, d, "par");
    return dual(tensor(dual(c), dual(d), max_morphisms));
}

}  // namespace cartesian
}  // namespace sae
