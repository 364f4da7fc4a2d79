#pragma once
// REQUIREs that two saved training states are bit-identical: every tensor (weights, Adam
// moments) and every value (step and sample counters, schedules, RNG, data position).
// Used wherever a run that was interrupted, skipped or resumed must equal a reference run.
#include <sae/core/state_dict.hpp>

#include <catch2/catch.hpp>

namespace sae::test {

template <class Scalar>
void require_same_state(const StateDict<Scalar>& a, const StateDict<Scalar>& b) {
    REQUIRE(a.values() == b.values());
    REQUIRE(a.tensors().size() == b.tensors().size());
    for (const auto& [name, tensor] : a.tensors()) {
        INFO("tensor " << name);
        REQUIRE(b.has_tensor(name));
        REQUIRE(b.tensors().at(name) == tensor);
    }
}

}  // namespace sae::test
