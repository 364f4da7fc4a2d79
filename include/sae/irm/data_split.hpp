#pragma once
/// \file data_split.hpp
/// A seeded train/test split of n items (the IRM probe's 80/20 split of contrastive
/// triples: both rows of a triple fall on the same side, so no held-out row shares its
/// context with a training row).
///
///   train_test_split(n, train_fraction = 0.8, seed)
///     requires: train_fraction in (0, 1) (config_error), n >= 2 (shape_error: one side
///               would be empty).
///     ensures:  train holds floor(n * train_fraction) items, clamped to [1, n - 1], test the
///               rest (the authors' int(len * 0.8)); both sorted ascending; together a
///               permutation of 0..n-1 chosen by std::shuffle with std::mt19937_64(seed)
///               (the same seed gives the same split with one standard library).

#include "input_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace sae::irm {

/// Indices of the two sides of a split.
struct TrainTestSplit {
    std::vector<std::size_t> train;
    std::vector<std::size_t> test;
};

/// The seeded split of the file abstract.
inline TrainTestSplit train_test_split(std::size_t n, double train_fraction = 0.8, std::uint64_t seed = 0) {
    if (!(train_fraction > 0.0 && train_fraction < 1.0)) {
        throw config_error("train_test_split: train_fraction = " + detail::number_text(train_fraction) + " must be in (0, 1)");
    }
    if (n < 2) throw shape_error("train_test_split: " + std::to_string(n) + " items cannot be split into two non-empty parts");
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    const auto wanted = static_cast<std::size_t>(std::floor(static_cast<double>(n) * train_fraction));
    const std::size_t train_size = std::clamp<std::size_t>(wanted, 1, n - 1);
    TrainTestSplit split;
    split.train.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(train_size));
    split.test.assign(order.begin() + static_cast<std::ptrdiff_t>(train_size), order.end());
    std::sort(split.train.begin(), split.train.end());
    std::sort(split.test.begin(), split.test.end());
    return split;
}

}  // namespace sae::irm
