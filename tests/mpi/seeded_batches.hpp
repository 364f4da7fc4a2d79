#pragma once
// A batch source for the MPI tests: batch t is a pure function of (seed, t), with a
// few large directions so that training moves, and its position is one counter, so a
// checkpoint resumes it exactly.

#include <sae/core/state_dict.hpp>
#include <sae/core/trainable_sae.hpp>

#include <random>
#include <string>

namespace sae::test {

template <class Scalar>
class SeededBatches {
public:
    SeededBatches(Index rows, Index d_in, std::uint64_t seed) : rows_(rows), d_in_(d_in), seed_(seed) {}

    void next_batch(Matrix<Scalar>& out) {
        std::mt19937_64 rng(derive_seed(seed_, served_++));
        std::normal_distribution<double> normal(0.0, 1.0);
        out.resize(rows_, d_in_);
        for (Index r = 0; r < rows_; ++r) {
            for (Index c = 0; c < d_in_; ++c) out(r, c) = static_cast<Scalar>(normal(rng) * (1.0 + 2.0 * (c % 3 == 0)) + 0.5);
        }
    }

    template <class Dict>
    void save_state(Dict& dict, const std::string& prefix = "data/") const {
        dict.set(prefix + "served", served_);
    }
    template <class Dict>
    void load_state(const Dict& dict, const std::string& prefix = "data/") {
        served_ = dict.template get<std::uint64_t>(prefix + "served");
    }

private:
    Index rows_;
    Index d_in_;
    std::uint64_t seed_;
    std::uint64_t served_ = 0;
};

}  // namespace sae::test
