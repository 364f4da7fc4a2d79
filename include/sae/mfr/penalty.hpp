#pragma once
/// \file penalty.hpp
/// `MfrPenalty`: the Mutual Feature Regularization coupling term and its gradient.
///
///   D(W_1..W_m) = mean over pairs (a, b), a < b, of (1 - MMCS(a, b))
///
/// where W_i are the members' decoder rows (any norm; they are normalised here) and
/// MMCS(a, b) is the mean cosine over matched rows:
///  - one_to_one: the Hungarian matching of 1 - cos (the authors'), min(n_a, n_b) pairs;
///  - max_cosine: 0.5 MMCS(a->b) + 0.5 MMCS(b->a), each row to its best partner.
/// Matchings are cached per pair and recomputed only when asked (`refresh`), so a
/// step without a refresh costs O(n d) per pair. The matching is piecewise constant:
/// the gradient flows through the matched cosines,
///   d cos(u_i, v_j) / d w_i = (v_j - cos * u_i) / ||w_i||,   u_i = w_i / ||w_i||.
///
/// Threads (parallel.hpp) take the heavy work: the unit directions member by member and
/// the refreshed pairs' cosine matrices and assignments pair by pair. The matched cosines
/// and their gradient (one memory-bound O(n d) pass per pair) run on the calling thread,
/// pair after pair, so each gradient row receives its terms in pair order and no result
/// depends on the threads. Buffers are kept between calls.

#include "../core/parallel.hpp"
#include "../core/types.hpp"
#include "feature_matching.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sae {

template <class Scalar>
class MfrPenalty {
public:
    MfrPenalty(Index num_members, MatchingMode mode) : mode_(mode) {
        for (Index a = 0; a < num_members; ++a) {
            for (Index b = a + 1; b < num_members; ++b) pairs_.push_back(Pair{a, b, {}, {}});
        }
    }

    /// D for `decoders` (one [n_i, d] matrix per member). When `gradients` is not
    /// empty, adds `weight * dD/dW_i` to `*gradients[i]` (same shapes as decoders).
    /// Matchings are recomputed when `refresh` is true or none exists yet.
    /// A null `gradients[i]` means member i's gradient is not wanted: a pair whose two
    /// gradients are both null is skipped (not matched, counted as 0 in the returned
    /// mean; its entry of pair_dissimilarities() is NaN). A distributed ensemble uses
    /// this to evaluate only the pairs that touch the members it holds.
    double evaluate(const std::vector<const Matrix<Scalar>*>& decoders, bool refresh, double weight,
                    const std::vector<Matrix<Scalar>*>& gradients) {
        check_members(decoders, gradients);
        if (pairs_.empty()) return 0.0;
        unit_directions(decoders);
        const std::vector<Matrix<Scalar>>& directions = directions_;
        const std::vector<RowVector<Scalar>>& norms = norms_;
        std::vector<Index> stale;
        for (std::size_t p = 0; p < pairs_.size(); ++p) {
            if (refresh || pairs_[p].a_to_b.a_index.empty()) stale.push_back(static_cast<Index>(p));
        }
        detail::parallel_for(static_cast<Index>(stale.size()), [&](Index i, int) {
            Pair& pair = pairs_[static_cast<std::size_t>(stale[static_cast<std::size_t>(i)])];
            rematch(pair, directions[static_cast<std::size_t>(pair.a)], directions[static_cast<std::size_t>(pair.b)]);
        });
        const double pair_weight = weight / static_cast<double>(pairs_.size());
        double dissimilarity = 0.0;
        pair_dissimilarities_.assign(pairs_.size(), std::numeric_limits<double>::quiet_NaN());
        for (std::size_t p = 0; p < pairs_.size(); ++p) {
            Pair& pair = pairs_[p];
            const std::size_t a = static_cast<std::size_t>(pair.a), b = static_cast<std::size_t>(pair.b);
            Matrix<Scalar>* grad_a = gradients.empty() ? nullptr : gradients[a];
            Matrix<Scalar>* grad_b = gradients.empty() ? nullptr : gradients[b];
            if (!gradients.empty() && grad_a == nullptr && grad_b == nullptr) continue;
            if (refresh || pair.a_to_b.a_index.empty()) rematch(pair, directions[a], directions[b]);
            double similarity = 0.0;
            if (mode_ == MatchingMode::one_to_one) {
                similarity = matched_cosine(pair.a_to_b, directions[a], directions[b], norms[a], norms[b], pair_weight,
                                            grad_a, grad_b);
            } else {
                similarity = 0.5 * matched_cosine(pair.a_to_b, directions[a], directions[b], norms[a], norms[b],
                                                  0.5 * pair_weight, grad_a, grad_b) +
                             0.5 * matched_cosine(pair.b_to_a, directions[b], directions[a], norms[b], norms[a],
                                                  0.5 * pair_weight, grad_b, grad_a);
            }
            pair_dissimilarities_[p] = 1.0 - similarity;
            dissimilarity += 1.0 - similarity;
        }
        return dissimilarity / static_cast<double>(pairs_.size());
    }

    MatchingMode mode() const { return mode_; }
    /// 1 - MMCS of every pair (a < b, in order (0,1), (0,2), ..., (1,2), ...) at the
    /// last evaluate; NaN for a pair it skipped.
    const std::vector<double>& pair_dissimilarities() const { return pair_dissimilarities_; }
    /// The members of pair `p` (same order as pair_dissimilarities()).
    std::pair<Index, Index> pair_members(std::size_t p) const { return {pairs_.at(p).a, pairs_.at(p).b}; }
    std::size_t num_pairs() const { return pairs_.size(); }

    /// The cached matchings (they persist between refreshes, so a resumed run needs
    /// them to continue bit for bit).
    template <class Dict>
    void save_state(Dict& dict, const std::string& prefix) const {
        nlohmann::json pairs = nlohmann::json::array();
        for (const Pair& pair : pairs_) {
            pairs.push_back({pair.a_to_b.a_index, pair.a_to_b.b_index, pair.b_to_a.a_index, pair.b_to_a.b_index});
        }
        dict.set(prefix + "matchings", pairs);
    }

    template <class Dict>
    void load_state(const Dict& dict, const std::string& prefix) {
        const std::string key = prefix + "matchings";
        const auto pairs = dict.template get<std::vector<std::array<std::vector<Index>, 4>>>(key);
        if (pairs.size() != pairs_.size()) {
            throw io_error("checkpoint: value '" + key + "' has " + std::to_string(pairs.size()) + " pairs, expected " +
                           std::to_string(pairs_.size()));
        }
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            pairs_[i].a_to_b = FeatureMatch{pairs[i][0], pairs[i][1]};
            pairs_[i].b_to_a = FeatureMatch{pairs[i][2], pairs[i][3]};
        }
    }

private:
    struct Pair {
        Index a;
        Index b;
        FeatureMatch a_to_b;
        FeatureMatch b_to_a;  ///< max_cosine only
    };

    void check_members(const std::vector<const Matrix<Scalar>*>& decoders,
                       const std::vector<Matrix<Scalar>*>& gradients) const {
        const std::size_t members = pairs_.empty() ? decoders.size() : static_cast<std::size_t>(pairs_.back().b + 1);
        if (decoders.size() != members) {
            throw shape_error("MfrPenalty: got " + std::to_string(decoders.size()) + " decoders for " +
                              std::to_string(members) + " members");
        }
        if (!gradients.empty() && gradients.size() != decoders.size()) {
            throw shape_error("MfrPenalty: got " + std::to_string(gradients.size()) + " gradients for " +
                              std::to_string(decoders.size()) + " decoders");
        }
        for (std::size_t i = 0; i < decoders.size(); ++i) {
            if (decoders[i]->cols() != decoders.front()->cols()) {
                throw shape_error("MfrPenalty: decoder " + std::to_string(i) + " has width " +
                                  std::to_string(decoders[i]->cols()) + " but decoder 0 has " +
                                  std::to_string(decoders.front()->cols()));
            }
            if (!gradients.empty() && gradients[i] != nullptr && (gradients[i]->rows() != decoders[i]->rows() ||
                                       gradients[i]->cols() != decoders[i]->cols())) {
                throw shape_error("MfrPenalty: gradient " + std::to_string(i) + " does not match its decoder's shape");
            }
        }
    }

    /// directions_[i] = decoder i with unit rows, norms_[i] = its row norms (at least 1e-12).
    void unit_directions(const std::vector<const Matrix<Scalar>*>& decoders) {
        directions_.resize(decoders.size());
        norms_.resize(decoders.size());
        detail::parallel_for(static_cast<Index>(decoders.size()), [&](Index member, int) {
            const std::size_t i = static_cast<std::size_t>(member);
            norms_[i] = decoders[i]->rowwise().norm().transpose().array().max(Scalar(1e-12)).matrix();
            directions_[i] = norms_[i].asDiagonal().inverse() * (*decoders[i]);
        });
    }

    /// The pair's matching from the cosines of unit directions u [n_a, d] and v [n_b, d].
    void rematch(Pair& pair, const Matrix<Scalar>& u, const Matrix<Scalar>& v) const {
        Matrix<Scalar> cosines(u.rows(), v.rows());
        cosines.noalias() = u * v.transpose();
        pair.a_to_b = match_features(cosines, mode_);
        if (mode_ == MatchingMode::max_cosine) {
            const Matrix<Scalar> transposed = cosines.transpose();
            pair.b_to_a = match_features(transposed, mode_);
        }
    }

    /// Mean cosine over the matched rows (i, j) of unit directions u and v; adds
    /// -scale / M * (v_j - c u_i) / ||w_i|| to grad_u row i and the mirror to grad_v.
    static double matched_cosine(const FeatureMatch& match, const Matrix<Scalar>& u, const Matrix<Scalar>& v,
                                 const RowVector<Scalar>& norms_u, const RowVector<Scalar>& norms_v, double scale,
                                 Matrix<Scalar>* grad_u, Matrix<Scalar>* grad_v) {
        const std::size_t count = match.a_index.size();
        if (count == 0) return 0.0;
        const Scalar step = static_cast<Scalar>(-scale / static_cast<double>(count));
        double total = 0.0;
        for (std::size_t p = 0; p < count; ++p) {
            const Index i = match.a_index[p];
            const Index j = match.b_index[p];
            const Scalar c = u.row(i).dot(v.row(j));
            total += static_cast<double>(c);
            if (grad_u != nullptr) grad_u->row(i) += (step / norms_u(i)) * (v.row(j) - c * u.row(i));
            if (grad_v != nullptr) grad_v->row(j) += (step / norms_v(j)) * (u.row(i) - c * v.row(j));
        }
        return total / static_cast<double>(count);
    }

    MatchingMode mode_;
    std::vector<Pair> pairs_;
    std::vector<Matrix<Scalar>> directions_;  ///< per member: unit decoder rows
    std::vector<RowVector<Scalar>> norms_;    ///< per member: decoder row norms
    std::vector<double> pair_dissimilarities_;
};

}  // namespace sae
