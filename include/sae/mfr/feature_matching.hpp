#pragma once
/// \file feature_matching.hpp
/// Matching the features of two dictionaries and the mean matched cosine similarity
/// (MMCS) between them. A dictionary is a matrix `[n_features, d]` whose ROWS are the
/// feature directions (decoder rows, tied encoder directions, true features); rows
/// need not be unit norm.
///
/// Abstract:
///   cosine_similarity(a [na, d], b [nb, d]) -> [na, nb]
///     requires: a.cols() == b.cols() (else shape_error); a and b of one Scalar type.
///     ensures:  cos(i, j) = <a_i, b_j> / (|a_i| |b_j|); 0 wherever a_i or b_j is zero.
///               Cost: one GEMM, O(na nb d), on row-normalised copies.
///   match_features(cos [na, nb], mode, warm = nullptr) -> FeatureMatch (pairs sorted by a_index)
///     requires: cos finite (else numeric_error).
///     one_to_one: the min(na, nb) pairs, each row and column used at most once, that
///                 maximise the summed cosine, i.e. minimise sum(1 - cos) (Hungarian /
///                 linear assignment). O(n^2 m) with n = min(na, nb), m = max(na, nb).
///                 `warm` (AssignmentWarmStart, linear_assignment.hpp): the state of the
///                 previous matching of a similar cosine matrix of this shape, and filled
///                 for the next one; the pairs stay optimal, and differ from a cold
///                 solve's only where several matchings are optimal. Ignored (untouched)
///                 by max_cosine.
///     max_cosine: every row i of A paired with its most similar row of B (the first on
///                 ties); rows of B may repeat. O(na nb). No pairs when nb == 0.
///   mean_matched_cosine(cos, match) = mean of cos(a_k, b_k) over the pairs
///     requires: at least one pair, indices inside cos (else shape_error).
///   mmcs(a, b, mode)                 = mean_matched_cosine of the matching A -> B.
///   feature_recovery(true, learned, mode, threshold)
///     ensures:  mmcs(true -> learned), and the fraction of ALL true features whose matched
///               cosine exceeds `threshold` (a true feature left unmatched, possible in
///               one_to_one when there are more true than learned features, counts as not
///               recovered). requires: threshold finite (else config_error).
///
/// The MFR penalty takes gradients through the matched cosines only, so a FeatureMatch
/// is plain index vectors that can be kept (stale) across steps.

#include "sae/core/error.hpp"
#include "sae/core/types.hpp"
#include "sae/mfr/linear_assignment.hpp"

#include <Eigen/Core>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace sae {

/// How the features of dictionary A are paired with those of dictionary B.
enum class MatchingMode {
    one_to_one,  ///< optimal one-to-one matching (Hungarian on 1 - cos): min(na, nb) pairs
    max_cosine,  ///< each row of A to its most similar row of B: na pairs, B rows may repeat
};

/// Matched pairs (a_index[k], b_index[k]) in increasing order of a_index.
struct FeatureMatch {
    std::vector<Index> a_index;
    std::vector<Index> b_index;
};

/// Ground-truth recovery of a learned dictionary (see the file abstract).
struct Recovery {
    double mmcs = 0.0;            ///< mean matched cosine, true -> learned
    double fraction_above = 0.0;  ///< fraction of true features with matched cosine > threshold
    double threshold = 0.9;
};

namespace detail {

inline std::string matching_shape_string(Index rows, Index cols) {
    return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

/// Rows scaled to unit length. A zero row has no direction: it is scaled by 0 (not
/// 1/0), so each of its cosines is 0 rather than NaN. stableNorm keeps rows whose
/// squared entries would underflow (tiny float rows) from being taken for zero.
template <class Derived>
Matrix<typename Derived::Scalar> cosine_unit_rows(const Eigen::MatrixBase<Derived>& m) {
    using Scalar = typename Derived::Scalar;
    using Column = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
    const Column norms = m.rowwise().stableNorm();
    const Column inverse_norms = (norms.array() > Scalar(0)).select(norms.array().inverse(), Scalar(0));
    Matrix<Scalar> unit(m.rows(), m.cols());
    unit.noalias() = inverse_norms.asDiagonal() * m;
    return unit;
}

template <class Scalar>
FeatureMatch match_one_to_one(const Matrix<Scalar>& cosines, AssignmentWarmStart* warm) {
    // Every assignment has exactly min(na, nb) pairs, so maximising sum(cos) is the same
    // as minimising sum(1 - cos): no need to build the 1 - cos matrix. match_features
    // has already checked that the cosines are finite.
    const Assignment assignment = solve_finite_assignment(cosines, AssignmentObjective::maximise, warm);
    FeatureMatch match;
    for (Index a = 0; a < cosines.rows(); ++a) {
        const Index b = assignment.row_to_col[static_cast<std::size_t>(a)];
        if (b >= 0) {
            match.a_index.push_back(a);
            match.b_index.push_back(b);
        }
    }
    return match;
}

template <class Scalar>
FeatureMatch match_max_cosine(const Matrix<Scalar>& cosines) {
    FeatureMatch match;
    if (cosines.cols() == 0) {
        return match;
    }
    match.a_index.resize(static_cast<std::size_t>(cosines.rows()));
    match.b_index.resize(static_cast<std::size_t>(cosines.rows()));
    for (Index a = 0; a < cosines.rows(); ++a) {
        Index best = 0;
        cosines.row(a).maxCoeff(&best);
        match.a_index[static_cast<std::size_t>(a)] = a;
        match.b_index[static_cast<std::size_t>(a)] = best;
    }
    return match;
}

}  // namespace detail

/// Cosine of every row of `a` [na, d] with every row of `b` [nb, d]: [na, nb].
template <class DA, class DB>
Matrix<typename DA::Scalar> cosine_similarity(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
    using Scalar = typename DA::Scalar;
    static_assert(std::is_same<Scalar, typename DB::Scalar>::value,
                  "cosine_similarity: both dictionaries must have the same Scalar type");
    if (a.cols() != b.cols()) {
        throw shape_error("cosine_similarity: a is " + detail::matching_shape_string(a.rows(), a.cols()) + " and b is " +
                          detail::matching_shape_string(b.rows(), b.cols()) + "; their feature dimensions d differ");
    }
    const Matrix<Scalar> a_unit = detail::cosine_unit_rows(a);
    const Matrix<Scalar> b_unit = detail::cosine_unit_rows(b);
    Matrix<Scalar> cosines(a.rows(), b.rows());
    cosines.noalias() = a_unit * b_unit.transpose();
    return cosines;
}

namespace detail {

/// match_features for cosines the caller knows to be finite (MfrPenalty's, made from
/// finite decoders: checking its n x d decoders costs far less than its n x n cosines).
template <class Scalar>
FeatureMatch match_finite_features(const Matrix<Scalar>& cosines, MatchingMode mode, AssignmentWarmStart* warm) {
    switch (mode) {
        case MatchingMode::one_to_one:
            return match_one_to_one(cosines, warm);
        case MatchingMode::max_cosine:
            return match_max_cosine(cosines);
    }
    throw config_error("match_features: unknown MatchingMode " + std::to_string(static_cast<int>(mode)));
}

}  // namespace detail

/// Pair the rows of A with the rows of B from their cosine matrix [na, nb]; `warm`
/// warm-starts (and is updated by) the one_to_one assignment (see the file abstract).
template <class Scalar>
FeatureMatch match_features(const Matrix<Scalar>& cosines, MatchingMode mode, AssignmentWarmStart* warm = nullptr) {
    detail::assignment_require_finite(cosines, "match_features: cosines");
    return detail::match_finite_features(cosines, mode, warm);
}

/// Mean of the cosines of the matched pairs.
template <class Scalar>
double mean_matched_cosine(const Matrix<Scalar>& cosines, const FeatureMatch& match) {
    const std::size_t n_pairs = match.a_index.size();
    if (match.b_index.size() != n_pairs) {
        throw shape_error("mean_matched_cosine: a_index has " + std::to_string(n_pairs) + " entries but b_index has " +
                          std::to_string(match.b_index.size()));
    }
    if (n_pairs == 0) {
        throw shape_error("mean_matched_cosine: the match has no pairs (cosines is " +
                          detail::matching_shape_string(cosines.rows(), cosines.cols()) + ")");
    }
    double sum = 0.0;
    for (std::size_t k = 0; k < n_pairs; ++k) {
        const Index a = match.a_index[k];
        const Index b = match.b_index[k];
        if (a < 0 || a >= cosines.rows() || b < 0 || b >= cosines.cols()) {
            throw shape_error("mean_matched_cosine: pair " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                              std::to_string(b) + ") is outside cosines " +
                              detail::matching_shape_string(cosines.rows(), cosines.cols()));
        }
        sum += static_cast<double>(cosines(a, b));
    }
    return sum / static_cast<double>(n_pairs);
}

/// MMCS(A -> B): mean matched cosine of the rows of `a` [na, d] matched to rows of `b` [nb, d].
template <class DA, class DB>
double mmcs(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b,
            MatchingMode mode = MatchingMode::one_to_one) {
    const Matrix<typename DA::Scalar> cosines = cosine_similarity(a, b);
    return mean_matched_cosine(cosines, match_features(cosines, mode));
}

/// How well `learned` [n_learned, d] recovers `true_features` [n_true, d].
template <class DT, class DL>
Recovery feature_recovery(const Eigen::MatrixBase<DT>& true_features, const Eigen::MatrixBase<DL>& learned,
                          MatchingMode mode = MatchingMode::one_to_one, double threshold = 0.9) {
    if (!std::isfinite(threshold)) {
        throw config_error("feature_recovery: threshold = " + std::to_string(threshold) + " is not finite");
    }
    const Matrix<typename DT::Scalar> cosines = cosine_similarity(true_features, learned);
    const FeatureMatch match = match_features(cosines, mode);
    Index n_above = 0;
    for (std::size_t k = 0; k < match.a_index.size(); ++k) {
        if (static_cast<double>(cosines(match.a_index[k], match.b_index[k])) > threshold) {
            ++n_above;
        }
    }
    Recovery recovery;
    recovery.mmcs = mean_matched_cosine(cosines, match);
    recovery.fraction_above = static_cast<double>(n_above) / static_cast<double>(true_features.rows());
    recovery.threshold = threshold;
    return recovery;
}

}  // namespace sae
