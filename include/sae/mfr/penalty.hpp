#pragma once
/// \file penalty.hpp
/// `MfrPenalty`: the Mutual Feature Regularization coupling term and its gradient.
///
///   D(W_1..W_m) = mean over pairs (a, b), a < b, of D_ab = 1 - MMCS(a, b)
///
/// where W_i are the members' decoder rows (any norm; they are normalised here) and
/// MMCS(a, b) is the mean cosine over matched rows:
///  - one_to_one: the Hungarian matching of 1 - cos (the authors'), min(n_a, n_b) pairs;
///  - max_cosine: 0.5 MMCS(a->b) + 0.5 MMCS(b->a), each row to its best partner.
/// Matchings are cached per pair and recomputed only when asked (`refresh`). The
/// matching is piecewise constant: the gradient flows through the matched cosines,
///   d cos(u_i, v_j) / d w_i = (v_j - cos * u_i) / ||w_i||,   u_i = w_i / ||w_i||.
///
/// Warm-started refreshes. Between two refreshes the decoders move little, so each
/// pair keeps the dual state of its last one_to_one assignment (AssignmentWarmStart)
/// and the next refresh starts from it: still an exact optimum, at a fraction of the
/// cost (most rows keep their partner without a search). That state is scratch, not
/// model state: save_state does not store it and load_state drops it, so a resumed run
/// starts its next refresh cold. A warm and a cold solve can pick different matchings
/// only when several matchings are optimal (exact ties in the summed cosine); apart
/// from that case a resumed run stays bit-identical to an uninterrupted one.
///
/// Cost. A refresh forms the unit directions and, pair by pair on the threads
/// (parallel.hpp), the cosine matrix (one GEMM, O(n^2 d)) and its matching. A step
/// between refreshes is one memory-bound pass, and the pass is arranged by member, not
/// by pair: for member a and row i, with the terms t = (partner b, partner row j, share
/// s_t) that the matchings attach to that row (one per partner in one_to_one; in
/// max_cosine the a->b term plus every b->a term that chose row i),
///
///   dD/dw_a,i = 1 / (P ||w_a,i||) * ( sum_t s_t u_b,j - (sum_t s_t c_t) u_a,i ),
///   c_t = u_a,i . u_b,j,   s_t = -1 / |match| (one_to_one) or -0.5 / |match a->b or b->a|,
///
/// with P the number of pairs. So each gradient row is written once, and the partner
/// rows are read once per term: their norms come first from one streaming pass over
/// all members (no normalised copy of the decoders between refreshes), and then each
/// partner row gives its cosine and its share of the sum in the same read, up to eight
/// side by side (row_streams.hpp: more cache misses in flight), while the next row's
/// partners are prefetched. The rows of all members are spread over the threads, in
/// clusters: a row of member 0, then its partners (build_visit_order). Once the members
/// agree (their matchings compose), a cluster's partner rows are the cluster's own rows,
/// already in cache: measured at 10 x 3072 x 768, 24.5 ms -> 17 ms a pass. The per-row
/// term lists (an index rebuilt whenever a matching changes) are in a fixed order, and
/// the matched cosines of each pair are kept in fixed slots and summed afterwards in
/// match order, so no result depends on the number of threads.
///
/// Partial evaluation (a caller that owns only some members, e.g. an ensemble spread
/// over processes): gradients[i] == nullptr asks for no gradient of member i. A pair
/// whose two members both have no gradient is skipped: it is not matched (a refresh
/// asked for meanwhile does not reach it), it adds 0 to the returned value, and its
/// pair_dissimilarities() entry is NaN. The returned value stays the sum of the
/// evaluated D_ab divided by the number of ALL pairs, so that the parts add up.

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/types.hpp"
#include "feature_matching.hpp"
#include "row_streams.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace sae {

/// How MfrPenalty::evaluate hands its gradient to the caller's matrices.
enum class GradientOutput {
    add,        ///< adds weight * dD/dW_i to *gradients[i]
    overwrite,  ///< stores weight * dD/dW_i in *gradients[i] (its entries need not be set beforehand)
};

template <class Scalar>
class MfrPenalty {
public:
    MfrPenalty(Index num_members, MatchingMode mode) : mode_(mode), num_members_(num_members) {
        if (num_members < 0) throw config_error("MfrPenalty: num_members = " + std::to_string(num_members) + " must be >= 0");
        for (Index a = 0; a < num_members; ++a) {
            for (Index b = a + 1; b < num_members; ++b) pairs_.push_back(Pair{a, b, {}, {}, {}});
        }
        dissimilarities_.assign(pairs_.size(), std::numeric_limits<double>::quiet_NaN());
    }

    /// D for `decoders` (one [n_i, d] matrix per member). When `gradients` is not
    /// empty (one entry per member, each null or shaped like its decoder), hands
    /// `weight * dD/dW_i` to every non-null `*gradients[i]` as `output` says; empty
    /// `gradients` = the value only. Matchings are recomputed when `refresh` is true or
    /// none exists yet (for the pairs that are not skipped, see the file comment).
    double evaluate(const std::vector<const Matrix<Scalar>*>& decoders, bool refresh, double weight,
                    const std::vector<Matrix<Scalar>*>& gradients, GradientOutput output = GradientOutput::add) {
        check_members(decoders, gradients);
        std::fill(dissimilarities_.begin(), dissimilarities_.end(), std::numeric_limits<double>::quiet_NaN());
        if (pairs_.empty()) return 0.0;
        const bool value_only = gradients.empty();
        const auto wanted = [&](Index member) { return !value_only && gradients[static_cast<std::size_t>(member)] != nullptr; };
        // The member whose pass records a pair's cosines: its first member when that
        // one is evaluated (or only the value is wanted), else its second; -1 = skipped.
        recorder_.assign(pairs_.size(), -1);
        for (std::size_t p = 0; p < pairs_.size(); ++p) {
            const Pair& pair = pairs_[p];
            if (value_only || wanted(pair.a)) {
                recorder_[p] = pair.a;
            } else if (wanted(pair.b)) {
                recorder_[p] = pair.b;
            }
        }
        rematch_stale_pairs(decoders, refresh);
        build_terms(decoders);
        member_passes(decoders, weight / static_cast<double>(pairs_.size()), gradients, output);

        double dissimilarity = 0.0;
        for (std::size_t p = 0; p < pairs_.size(); ++p) {
            if (recorder_[p] < 0) continue;
            const std::size_t first = term_offset_[p];
            const std::size_t forward = pairs_[p].a_to_b.a_index.size();
            double similarity = mean_cosine(first, forward);
            if (mode_ == MatchingMode::max_cosine) {
                similarity = 0.5 * similarity + 0.5 * mean_cosine(first + forward, pairs_[p].b_to_a.a_index.size());
            }
            dissimilarities_[p] = 1.0 - similarity;
            dissimilarity += dissimilarities_[p];
        }
        return dissimilarity / static_cast<double>(pairs_.size());
    }

    MatchingMode mode() const { return mode_; }
    Index num_members() const { return num_members_; }
    std::size_t num_pairs() const { return pairs_.size(); }

    /// The members (a, b), a < b, of pair p; pairs are ordered (0,1), (0,2), ..., (1,2), ...
    std::pair<Index, Index> pair_members(std::size_t p) const {
        if (p >= pairs_.size()) {
            throw shape_error("MfrPenalty::pair_members: pair " + std::to_string(p) + " of " +
                              std::to_string(pairs_.size()) + " pairs");
        }
        return {pairs_[p].a, pairs_[p].b};
    }

    /// D_ab = 1 - MMCS(a, b) of every pair at the last evaluate, in pair order; NaN for
    /// a pair that it skipped (and for all pairs before the first evaluate).
    const std::vector<double>& pair_dissimilarities() const { return dissimilarities_; }

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
            pairs_[i].warm = AssignmentWarmStart{};  // scratch of the run that filled it
        }
        terms_current_ = false;
    }

private:
    struct Pair {
        Index a;
        Index b;
        FeatureMatch a_to_b;
        FeatureMatch b_to_a;  ///< max_cosine only
        AssignmentWarmStart warm;  ///< one_to_one: the last assignment's state (scratch, not saved)
    };

    /// One matched cosine as seen from one of its two rows.
    struct Term {
        Index partner_row;
        std::size_t slot;  ///< where the pair's cosines are kept (term_cosines_)
        double share;      ///< dD_ab / dc: -1 / |match|, or -0.5 / |match| in max_cosine
        int partner;       ///< the other member
        int pair;
    };

    /// One row of one member, as member_passes visits them.
    struct RowVisit {
        Index member;
        Index row;
    };

    /// Per member: the terms of row i are terms[row_start[i] .. row_start[i + 1]).
    struct MemberTerms {
        std::vector<std::size_t> row_start;
        std::vector<Term> terms;
    };

    void check_members(const std::vector<const Matrix<Scalar>*>& decoders,
                       const std::vector<Matrix<Scalar>*>& gradients) const {
        const std::size_t members = static_cast<std::size_t>(num_members_);
        if (decoders.size() != members) {
            throw shape_error("MfrPenalty: got " + std::to_string(decoders.size()) + " decoders for " +
                              std::to_string(members) + " members");
        }
        if (!gradients.empty() && gradients.size() != decoders.size()) {
            throw shape_error("MfrPenalty: got " + std::to_string(gradients.size()) + " gradients for " +
                              std::to_string(decoders.size()) + " decoders");
        }
        for (std::size_t i = 0; i < decoders.size(); ++i) {
            if (decoders[i] == nullptr) throw shape_error("MfrPenalty: decoder " + std::to_string(i) + " is null");
            if (decoders[i]->cols() != decoders.front()->cols()) {
                throw shape_error("MfrPenalty: decoder " + std::to_string(i) + " has width " +
                                  std::to_string(decoders[i]->cols()) + " but decoder 0 has " +
                                  std::to_string(decoders.front()->cols()));
            }
            if (!gradients.empty() && gradients[i] != nullptr &&
                (gradients[i]->rows() != decoders[i]->rows() || gradients[i]->cols() != decoders[i]->cols())) {
                throw shape_error("MfrPenalty: gradient " + std::to_string(i) + " does not match its decoder's shape");
            }
        }
    }

    /// Recomputes the matching of every evaluated pair when `refresh`, and of every
    /// evaluated pair that has none yet: unit directions member by member, then the
    /// cosine matrix and its matching pair by pair.
    void rematch_stale_pairs(const std::vector<const Matrix<Scalar>*>& decoders, bool refresh) {
        std::vector<Index> stale;
        for (std::size_t p = 0; p < pairs_.size(); ++p) {
            if (recorder_[p] < 0 || !(refresh || pairs_[p].a_to_b.a_index.empty())) continue;
            stale.push_back(static_cast<Index>(p));
        }
        if (stale.empty()) return;  // a step between refreshes allocates nothing here
        std::vector<char> involved(decoders.size(), 0);
        for (Index p : stale) {
            involved[static_cast<std::size_t>(pairs_[static_cast<std::size_t>(p)].a)] = 1;
            involved[static_cast<std::size_t>(pairs_[static_cast<std::size_t>(p)].b)] = 1;
        }
        terms_current_ = false;  // first: a failing rematch may leave some pairs changed
        // Finite decoders give finite unit directions (a row whose norm overflows becomes
        // zero) and so finite cosines: checking the n x d decoders here spares the
        // matching its check of every n x n cosine matrix, and names the member.
        for (std::size_t i = 0; i < decoders.size(); ++i) {
            if (involved[i] != 0) detail::assignment_require_finite(*decoders[i], "MfrPenalty: decoder " + std::to_string(i) + " ");
        }
        // Normalised copies exist only during a refresh: the GEMMs want them, the steps
        // in between do not.
        std::vector<Matrix<Scalar>> directions(decoders.size());
        detail::parallel_for(static_cast<Index>(decoders.size()), [&](Index member, int) {
            const std::size_t i = static_cast<std::size_t>(member);
            if (involved[i] == 0) return;
            const RowVector<Scalar> norms = decoders[i]->rowwise().norm().transpose().array().max(Scalar(1e-12)).matrix();
            directions[i] = norms.asDiagonal().inverse() * (*decoders[i]);
        });
        // One cosine matrix per thread for the whole refresh, not one per pair: each is
        // 36 MiB at 3072 x 3072, and a fresh one is page-faulted in and zeroed by the
        // kernel (45 of them made about a tenth of a 10-member refresh).
        std::vector<Matrix<Scalar>> cosines(static_cast<std::size_t>(detail::available_threads()));
        detail::parallel_for(static_cast<Index>(stale.size()), [&](Index i, int slot) {
            Pair& pair = pairs_[static_cast<std::size_t>(stale[static_cast<std::size_t>(i)])];
            rematch(pair, directions[static_cast<std::size_t>(pair.a)], directions[static_cast<std::size_t>(pair.b)],
                    cosines[static_cast<std::size_t>(slot)]);
        });
    }

    /// The pair's matching from the cosines of unit directions u [n_a, d] and v [n_b, d],
    /// formed in `cosines` (scratch).
    void rematch(Pair& pair, const Matrix<Scalar>& u, const Matrix<Scalar>& v, Matrix<Scalar>& cosines) const {
        cosines.resize(u.rows(), v.rows());
        cosines.noalias() = u * v.transpose();
        pair.a_to_b = detail::match_finite_features(cosines, mode_, &pair.warm);
        if (mode_ == MatchingMode::max_cosine) {
            const Matrix<Scalar> transposed = cosines.transpose();
            pair.b_to_a = detail::match_finite_features(transposed, mode_, nullptr);
        } else {
            pair.b_to_a = FeatureMatch{};
        }
    }

    /// Rebuilds the per-member term index after the matchings (or the members' sizes)
    /// changed. Terms are laid out pair by pair, a->b before b->a, in match order, so the
    /// order within a row never depends on the threads.
    void build_terms(const std::vector<const Matrix<Scalar>*>& decoders) {
        std::vector<Index> rows(decoders.size());
        for (std::size_t i = 0; i < decoders.size(); ++i) rows[i] = decoders[i]->rows();
        if (terms_current_ && rows == term_rows_) return;
        terms_current_ = false;
        members_.assign(decoders.size(), MemberTerms{});
        for (std::size_t i = 0; i < decoders.size(); ++i) {
            members_[i].row_start.assign(static_cast<std::size_t>(rows[i]) + 1, 0);
        }
        term_offset_.assign(pairs_.size() + 1, 0);
        // Pass 0 checks the indices and counts the terms of each row; pass 1 places them,
        // next[member][row] being the next free place of that row.
        std::vector<std::vector<std::size_t>> next(decoders.size());
        for (int pass = 0; pass < 2; ++pass) {
            for (std::size_t p = 0; p < pairs_.size(); ++p) {
                const Pair& pair = pairs_[p];
                std::size_t slot = term_offset_[p];
                const auto add = [&](const FeatureMatch& match, Index from, Index to, double share_of_pair) {
                    if (pass == 0) check_match(match, p, from, to, rows);
                    const std::size_t count = match.a_index.size();
                    const double share = count == 0 ? 0.0 : -share_of_pair / static_cast<double>(count);
                    for (std::size_t k = 0; k < count; ++k, ++slot) {
                        const std::size_t i = static_cast<std::size_t>(match.a_index[k]);
                        const std::size_t j = static_cast<std::size_t>(match.b_index[k]);
                        const std::size_t f = static_cast<std::size_t>(from), t = static_cast<std::size_t>(to);
                        if (pass == 0) {
                            ++members_[f].row_start[i + 1];
                            ++members_[t].row_start[j + 1];
                        } else {
                            members_[f].terms[next[f][i]++] = Term{match.b_index[k], slot, share, static_cast<int>(to), static_cast<int>(p)};
                            members_[t].terms[next[t][j]++] = Term{match.a_index[k], slot, share, static_cast<int>(from), static_cast<int>(p)};
                        }
                    }
                };
                if (mode_ == MatchingMode::one_to_one) {
                    add(pair.a_to_b, pair.a, pair.b, 1.0);
                } else {
                    add(pair.a_to_b, pair.a, pair.b, 0.5);
                    add(pair.b_to_a, pair.b, pair.a, 0.5);
                }
                if (pass == 0) term_offset_[p + 1] = slot;
            }
            if (pass == 0) {
                for (std::size_t m = 0; m < members_.size(); ++m) {
                    std::vector<std::size_t>& start = members_[m].row_start;
                    for (std::size_t r = 1; r < start.size(); ++r) start[r] += start[r - 1];
                    members_[m].terms.resize(start.back());
                    next[m].assign(start.begin(), start.end() - 1);
                }
            }
        }
        term_cosines_.assign(term_offset_.back(), Scalar(0));
        build_visit_order();
        term_rows_ = rows;
        terms_current_ = true;
    }

    /// A matching (from a refresh or a checkpoint) must pair existing rows.
    void check_match(const FeatureMatch& match, std::size_t p, Index from, Index to, const std::vector<Index>& rows) const {
        const std::string name = "MfrPenalty: the matching of members " + std::to_string(from) + " -> " + std::to_string(to);
        if (match.a_index.size() != match.b_index.size()) {
            throw shape_error(name + " (pair " + std::to_string(p) + ") has " + std::to_string(match.a_index.size()) +
                              " rows of " + std::to_string(from) + " but " + std::to_string(match.b_index.size()) + " of " +
                              std::to_string(to));
        }
        for (std::size_t k = 0; k < match.a_index.size(); ++k) {
            const Index i = match.a_index[k], j = match.b_index[k];
            if (i < 0 || i >= rows[static_cast<std::size_t>(from)] || j < 0 || j >= rows[static_cast<std::size_t>(to)]) {
                throw shape_error(name + " pairs row " + std::to_string(i) + " with row " + std::to_string(j) +
                                  ", outside decoders of " + std::to_string(rows[static_cast<std::size_t>(from)]) + " and " +
                                  std::to_string(rows[static_cast<std::size_t>(to)]) + " rows");
            }
        }
    }

    /// The matched cosines of every evaluated pair, and the gradient rows of every
    /// member that has a gradient: the rows in visit_order_, in blocks spread over the
    /// threads. Each row's result depends only on that row's terms, so the order changes
    /// the time, not the numbers.
    void member_passes(const std::vector<const Matrix<Scalar>*>& decoders, double pair_weight,
                       const std::vector<Matrix<Scalar>*>& gradients, GradientOutput output) {
        constexpr Index block_visits = 256;
        active_.assign(decoders.size(), 0);
        for (std::size_t x = 0; x < decoders.size(); ++x) {
            const bool has_gradient = !gradients.empty() && gradients[x] != nullptr;
            const bool records = std::find(recorder_.begin(), recorder_.end(), static_cast<Index>(x)) != recorder_.end();
            active_[x] = has_gradient || records;
        }
        const Index width = decoders.front()->cols();
        compute_row_norms(decoders);
        scratch_.resize(static_cast<std::size_t>(detail::available_threads()));
        for (RowVector<Scalar>& row : scratch_) row.resize(width);
        const Index visits = static_cast<Index>(visit_order_.size());
        detail::parallel_for((visits + block_visits - 1) / block_visits, [&](Index task, int slot) {
            RowVector<Scalar>& partner_sum = scratch_[static_cast<std::size_t>(slot)];
            const auto partner_row = [&](const Term& term) {
                return decoders[static_cast<std::size_t>(term.partner)]->row(term.partner_row).data();
            };
            const Scalar* rows[detail::max_row_streams];
            std::size_t row_terms[detail::max_row_streams];
            Scalar dots[detail::max_row_streams], partner_norms[detail::max_row_streams], coefficients[detail::max_row_streams];
            const std::size_t first = static_cast<std::size_t>(task * block_visits);
            const std::size_t last = std::min(first + static_cast<std::size_t>(block_visits), visit_order_.size());
            for (std::size_t visit = first; visit < last; ++visit) {
                const std::size_t member = static_cast<std::size_t>(visit_order_[visit].member);
                if (active_[member] == 0) continue;
                const Index x = visit_order_[visit].member, i = visit_order_[visit].row;
                const Matrix<Scalar>& own = *decoders[member];
                Matrix<Scalar>* gradient = gradients.empty() ? nullptr : gradients[member];
                const MemberTerms& index = members_[member];
                const std::size_t begin = index.row_start[static_cast<std::size_t>(i)];
                const std::size_t end = index.row_start[static_cast<std::size_t>(i) + 1];
                // The next row's partners are read while this row's are summed.
                if (visit + 1 < last) {
                    const RowVisit next = visit_order_[visit + 1];
                    const MemberTerms& next_index = members_[static_cast<std::size_t>(next.member)];
                    const std::size_t next_begin = next_index.row_start[static_cast<std::size_t>(next.row)];
                    const std::size_t next_end = next_index.row_start[static_cast<std::size_t>(next.row) + 1];
                    for (std::size_t t = next_begin; t < next_end; ++t) detail::prefetch_row_start(partner_row(next_index.terms[t]), width);
                }
                if (begin == end) {
                    if (gradient != nullptr && output == GradientOutput::overwrite) gradient->row(i).setZero();
                    continue;
                }
                const auto w = own.row(i);
                const Scalar norm = std::max(w.norm(), Scalar(1e-12));
                partner_sum.setZero();
                Scalar* sum = gradient != nullptr ? partner_sum.data() : nullptr;
                Scalar along = 0;  // sum of share * weight * cosine
                // The row's terms, max_row_streams partner rows at a time (row_streams.hpp).
                for (std::size_t t = begin; t < end;) {
                    int count = 0;
                    for (; t < end && count < detail::max_row_streams; ++t) {
                        const Term& term = index.terms[t];
                        if (gradient == nullptr && recorder_[static_cast<std::size_t>(term.pair)] != x) continue;
                        rows[count] = partner_row(term);
                        partner_norms[count] = row_norms_[static_cast<std::size_t>(term.partner)][static_cast<std::size_t>(term.partner_row)];
                        coefficients[count] = static_cast<Scalar>(pair_weight * term.share) / partner_norms[count];
                        row_terms[count++] = t;
                    }
                    if (count == 0) continue;
                    detail::dots_and_scaled_sum(w.data(), rows, coefficients, count, width, dots, sum);
                    for (int r = 0; r < count; ++r) {
                        const Term& term = index.terms[row_terms[r]];
                        const Scalar cosine = dots[r] / (norm * partner_norms[r]);
                        if (recorder_[static_cast<std::size_t>(term.pair)] == x) term_cosines_[term.slot] = cosine;
                        along += static_cast<Scalar>(pair_weight * term.share) * cosine;
                    }
                }
                if (gradient == nullptr) continue;
                if (output == GradientOutput::overwrite) {
                    gradient->row(i).noalias() = (partner_sum - (along / norm) * w) / norm;
                } else {
                    gradient->row(i).noalias() += (partner_sum - (along / norm) * w) / norm;
                }
            }
        });
    }

    /// The order member_passes visits the rows in: every row of every member once, each
    /// row of member 0 followed by those of its partners not yet visited. Once the
    /// members have learnt the same features (what MFR is for), the matchings agree with
    /// each other: a partner's partners are the rows just visited, so a block of visits
    /// reads its partner rows from cache instead of from all over memory. Rows no
    /// matching reaches come last, member by member.
    void build_visit_order() {
        visit_order_.clear();
        std::vector<std::vector<char>> visited(members_.size());
        for (std::size_t m = 0; m < members_.size(); ++m) visited[m].assign(members_[m].row_start.size() - 1, 0);
        const auto visit = [&](Index member, Index row) {
            char& seen = visited[static_cast<std::size_t>(member)][static_cast<std::size_t>(row)];
            if (seen != 0) return;
            seen = 1;
            visit_order_.push_back(RowVisit{member, row});
        };
        if (!members_.empty()) {
            const MemberTerms& first = members_.front();
            for (std::size_t row = 0; row + 1 < first.row_start.size(); ++row) {
                visit(0, static_cast<Index>(row));
                for (std::size_t t = first.row_start[row]; t < first.row_start[row + 1]; ++t) {
                    visit(first.terms[t].partner, first.terms[t].partner_row);
                }
            }
        }
        for (std::size_t m = 0; m < members_.size(); ++m) {
            for (std::size_t row = 0; row < visited[m].size(); ++row) visit(static_cast<Index>(m), static_cast<Index>(row));
        }
    }

    /// row_norms_[m][j] = max(||row j of member m||, 1e-12), in blocks of rows on the
    /// threads: one streaming read of every decoder, so that the pass knows each
    /// partner's scale before it reads the partner (and reads it once).
    void compute_row_norms(const std::vector<const Matrix<Scalar>*>& decoders) {
        constexpr Index block_rows = 32;
        row_norms_.resize(decoders.size());
        norm_tasks_.clear();
        for (std::size_t x = 0; x < decoders.size(); ++x) {
            row_norms_[x].resize(static_cast<std::size_t>(decoders[x]->rows()));
            for (Index first = 0; first < decoders[x]->rows(); first += block_rows) norm_tasks_.push_back({static_cast<Index>(x), first});
        }
        detail::parallel_for(static_cast<Index>(norm_tasks_.size()), [&](Index task, int) {
            const std::size_t x = static_cast<std::size_t>(norm_tasks_[static_cast<std::size_t>(task)][0]);
            const Matrix<Scalar>& rows = *decoders[x];
            const Index first = norm_tasks_[static_cast<std::size_t>(task)][1], last = std::min(first + block_rows, rows.rows());
            for (Index j = first; j < last; ++j) {
                const Scalar norm = std::sqrt(detail::chunked_square_sum(rows.row(j).data(), rows.cols()));
                row_norms_[x][static_cast<std::size_t>(j)] = std::max(norm, Scalar(1e-12));
            }
        });
    }

    /// Mean of `count` recorded cosines from `first` (0 when there are none).
    double mean_cosine(std::size_t first, std::size_t count) const {
        if (count == 0) return 0.0;
        double total = 0.0;
        for (std::size_t k = first; k < first + count; ++k) total += static_cast<double>(term_cosines_[k]);
        return total / static_cast<double>(count);
    }

    MatchingMode mode_;
    Index num_members_;
    std::vector<Pair> pairs_;
    std::vector<double> dissimilarities_;        ///< see pair_dissimilarities()
    std::vector<Index> recorder_;                ///< per pair, this evaluate: the member recording it, -1 = skipped
    std::vector<MemberTerms> members_;           ///< the term index, valid while terms_current_
    std::vector<std::size_t> term_offset_;       ///< pair p's cosines: term_cosines_[term_offset_[p] ..]
    std::vector<Scalar> term_cosines_;
    std::vector<Index> term_rows_;               ///< the members' row counts the index was built for
    bool terms_current_ = false;
    std::vector<RowVisit> visit_order_;          ///< see build_visit_order, valid while terms_current_
    std::vector<char> active_;                   ///< per member, this evaluate: has a gradient or records a pair
    std::vector<std::array<Index, 2>> norm_tasks_;  ///< (member, first row) of each block of compute_row_norms
    std::vector<std::vector<Scalar>> row_norms_; ///< per member and row, this evaluate: see compute_row_norms
    std::vector<RowVector<Scalar>> scratch_;     ///< per thread: the sum over a row's partners
};

}  // namespace sae
