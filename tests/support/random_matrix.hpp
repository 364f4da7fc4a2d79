#pragma once
// Seeded Gaussian test matrices, shared by the test files so that every test draws
// its random inputs the same way.

#include <sae/core/types.hpp>

#include <cstdint>
#include <random>

namespace sae::test {

/// [rows, cols] with i.i.d. N(0, stddev^2) entries drawn from `rng` in storage order.
template <class Scalar>
Matrix<Scalar> gaussian_matrix(Index rows, Index cols, std::mt19937_64& rng, double stddev = 1.0) {
    std::normal_distribution<double> normal(0.0, stddev);
    Matrix<Scalar> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(normal(rng));
    return m;
}

/// The same from a fresh generator seeded with `seed`.
template <class Scalar>
Matrix<Scalar> gaussian_matrix(Index rows, Index cols, std::uint64_t seed, double stddev = 1.0) {
    std::mt19937_64 rng(seed);
    return gaussian_matrix<Scalar>(rows, cols, rng, stddev);
}

}  // namespace sae::test
