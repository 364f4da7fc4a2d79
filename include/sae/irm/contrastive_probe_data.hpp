#pragma once
/// \file contrastive_probe_data.hpp
/// The implicit reward model's regression data from contrastive triples. Each triple t
/// gives two rows: its positive swap, with target +||p_t - u_t||, and its negative swap,
/// with target -||q_t - u_t||, where p_t, q_t, u_t are the representations of the
/// positive, negative and neutral swaps at the swapped token. The distance says how far
/// the model moved away from a neutral word; the sign says which way the explicit reward
/// points. (The IRM authors take p, q, u and the probe's inputs to be the concatenated SAE
/// features of the chosen layers; the distances can also be taken in another
/// representation, e.g. the raw activations.)
///
/// Abstract:
///   signed_targets(positive [n, m], negative [n, m], neutral [n, m]) -> [2n]
///     row 2t = +||positive_t - neutral_t||, row 2t + 1 = -||negative_t - neutral_t||
///     (Euclidean, in double).
///   contrastive_probe_data(inputs_positive, inputs_negative, distance_positive,
///                          distance_negative, distance_neutral, triples)
///     inputs: rows 2t / 2t + 1 = inputs_positive_t / inputs_negative_t; targets from the
///     distance matrices; words, utilities (lexicon valences) and the triple of each row.
///   contrastive_probe_data(positive, negative, neutral, triples)   the same with the
///     inputs as the distance representation (the authors' choice).
///   requires: equal shapes within the inputs and within the distance matrices, n rows =
///     triples.size() (shape_error naming both); finite values (numeric_error).
///   ContrastiveProbeData::rows_of(triple_indices)  the rows of those triples, in that
///     order (two per triple): a train or test part of a split by triple (data_split.hpp);
///     shape_error for an index out of range.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "contrastive_triples.hpp"
#include "input_checks.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

namespace sae::irm {

/// Probe rows of contrastive triples (see the file abstract).
template <class Scalar>
struct ContrastiveProbeData {
    Matrix<Scalar> inputs;              ///< [2n, m]
    Eigen::VectorXd targets;            ///< [2n] signed distances
    std::vector<std::string> words;     ///< [2n] the swapped word of each row
    Eigen::VectorXd utilities;          ///< [2n] its valence under the explicit reward
    std::vector<std::size_t> triple;    ///< [2n] the triple each row comes from

    Index rows() const { return inputs.rows(); }

    /// The two rows of each listed triple, in the listed order.
    ContrastiveProbeData rows_of(const std::vector<std::size_t>& triple_indices) const {
        const std::size_t triples = static_cast<std::size_t>(inputs.rows() / 2);
        ContrastiveProbeData part;
        const Index n = static_cast<Index>(2 * triple_indices.size());
        part.inputs.resize(n, inputs.cols());
        part.targets.resize(n);
        part.utilities.resize(n);
        for (std::size_t k = 0; k < triple_indices.size(); ++k) {
            const std::size_t t = triple_indices[k];
            if (t >= triples) {
                throw shape_error("ContrastiveProbeData::rows_of: triple index " + std::to_string(t) + " (entry " +
                                  std::to_string(k) + ") is outside the " + std::to_string(triples) + " triples");
            }
            for (Index side = 0; side < 2; ++side) {
                const Index from = static_cast<Index>(2 * t) + side, to = static_cast<Index>(2 * k) + side;
                part.inputs.row(to) = inputs.row(from);
                part.targets(to) = targets(from);
                part.utilities(to) = utilities(from);
                part.words.push_back(words[static_cast<std::size_t>(from)]);
                part.triple.push_back(t);
            }
        }
        return part;
    }
};

namespace detail {

inline std::string shape_text(Index rows, Index cols) {
    return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

template <class DA, class DB>
void require_same_shape(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b, const std::string& name_a,
                        const std::string& name_b) {
    if (a.rows() != b.rows() || a.cols() != b.cols()) {
        throw shape_error(name_a + " is " + shape_text(a.rows(), a.cols()) + " but " + name_b + " is " +
                          shape_text(b.rows(), b.cols()));
    }
}

}  // namespace detail

/// [+||p_0 - u_0||, -||q_0 - u_0||, +||p_1 - u_1||, ...].
template <class DP, class DN, class DU>
Eigen::VectorXd signed_targets(const Eigen::MatrixBase<DP>& positive, const Eigen::MatrixBase<DN>& negative,
                               const Eigen::MatrixBase<DU>& neutral) {
    detail::require_same_shape(positive, neutral, "signed_targets: positive", "neutral");
    detail::require_same_shape(negative, neutral, "signed_targets: negative", "neutral");
    detail::require_finite(positive, "signed_targets: positive");
    detail::require_finite(negative, "signed_targets: negative");
    detail::require_finite(neutral, "signed_targets: neutral");
    const Eigen::MatrixXd u = neutral.template cast<double>();
    const Eigen::VectorXd up = (positive.template cast<double>() - u).rowwise().norm();
    const Eigen::VectorXd down = (negative.template cast<double>() - u).rowwise().norm();
    Eigen::VectorXd targets(2 * u.rows());
    for (Index t = 0; t < u.rows(); ++t) {
        targets(2 * t) = up(t);
        targets(2 * t + 1) = -down(t);
    }
    return targets;
}

/// Probe rows with targets measured in a separate representation.
template <class DIP, class DIN, class DP, class DN, class DU>
ContrastiveProbeData<typename DIP::Scalar> contrastive_probe_data(
    const Eigen::MatrixBase<DIP>& inputs_positive, const Eigen::MatrixBase<DIN>& inputs_negative,
    const Eigen::MatrixBase<DP>& distance_positive, const Eigen::MatrixBase<DN>& distance_negative,
    const Eigen::MatrixBase<DU>& distance_neutral, const std::vector<ContrastiveTriple>& triples) {
    using Scalar = typename DIP::Scalar;
    static_assert(std::is_same<Scalar, typename DIN::Scalar>::value,
                  "contrastive_probe_data: both input matrices must have one Scalar type");
    detail::require_same_shape(inputs_positive, inputs_negative, "contrastive_probe_data: inputs_positive",
                               "inputs_negative");
    detail::require_same_length(inputs_positive.rows(), static_cast<Index>(triples.size()),
                                "contrastive_probe_data: inputs_positive (rows)", "triples");
    detail::require_same_length(distance_neutral.rows(), static_cast<Index>(triples.size()),
                                "contrastive_probe_data: distance_neutral (rows)", "triples");
    detail::require_finite(inputs_positive, "contrastive_probe_data: inputs_positive");
    detail::require_finite(inputs_negative, "contrastive_probe_data: inputs_negative");

    ContrastiveProbeData<Scalar> data;
    data.targets = signed_targets(distance_positive, distance_negative, distance_neutral);
    const Index n = static_cast<Index>(triples.size());
    data.inputs.resize(2 * n, inputs_positive.cols());
    data.utilities.resize(2 * n);
    for (Index t = 0; t < n; ++t) {
        const ContrastiveTriple& triple = triples[static_cast<std::size_t>(t)];
        data.inputs.row(2 * t) = inputs_positive.row(t);
        data.inputs.row(2 * t + 1) = inputs_negative.row(t);
        data.utilities(2 * t) = triple.positive.utility;
        data.utilities(2 * t + 1) = triple.negative.utility;
        data.words.push_back(triple.positive.word);
        data.words.push_back(triple.negative.word);
        data.triple.push_back(static_cast<std::size_t>(t));
        data.triple.push_back(static_cast<std::size_t>(t));
    }
    return data;
}

/// Probe rows whose inputs are also the representation the distances are taken in.
template <class DP, class DN, class DU>
ContrastiveProbeData<typename DP::Scalar> contrastive_probe_data(const Eigen::MatrixBase<DP>& positive,
                                                                 const Eigen::MatrixBase<DN>& negative,
                                                                 const Eigen::MatrixBase<DU>& neutral,
                                                                 const std::vector<ContrastiveTriple>& triples) {
    return contrastive_probe_data(positive, negative, positive, negative, neutral, triples);
}

}  // namespace sae::irm
