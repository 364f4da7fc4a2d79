#pragma once
/// \file utility_table.hpp
/// The recovered token-utility table: one row per distinct token, its utility under the
/// explicit reward (the lexicon) and the mean of the utilities the probe predicted for
/// its occurrences (already on the reward's scale, utility_scale.hpp).
///
/// Abstract:
///   token_utility_table(tokens, true_utility, predicted_utility)
///     requires: three inputs of one length (shape_error), not empty (shape_error), finite
///               utilities (numeric_error), and one true utility per token: a token given
///               two different true utilities is a config_error naming it.
///     ensures:  one TokenUtility per distinct token: its true utility, the mean predicted
///               utility over its occurrences and their count; ordered by true utility,
///               highest first, then by token (so the order does not depend on the
///               order of the occurrences).
///   true_utilities(table), predicted_utilities(table)   the two columns, for the
///               statistics of rank_correlation.hpp.

#include "input_checks.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace sae::irm {

/// One token of the recovered table.
struct TokenUtility {
    std::string token;
    double true_utility = 0.0;       ///< the explicit reward's value of the token
    double predicted_utility = 0.0;  ///< mean over its occurrences of the mapped probe output
    std::size_t occurrences = 0;
};

/// Groups occurrences by token: see the file abstract.
inline std::vector<TokenUtility> token_utility_table(const std::vector<std::string>& tokens, const ConstVectorRef& true_utility,
                                                     const ConstVectorRef& predicted_utility) {
    const Index n = static_cast<Index>(tokens.size());
    detail::require_same_length(n, true_utility.size(), "token_utility_table: tokens", "true_utility");
    detail::require_same_length(n, predicted_utility.size(), "token_utility_table: tokens", "predicted_utility");
    detail::require_not_empty(n, "token_utility_table: tokens");
    detail::require_finite(true_utility, "token_utility_table: true_utility");
    detail::require_finite(predicted_utility, "token_utility_table: predicted_utility");

    std::vector<TokenUtility> table;
    std::unordered_map<std::string, std::size_t> row_of;
    for (Index i = 0; i < n; ++i) {
        const std::string& token = tokens[static_cast<std::size_t>(i)];
        const auto [slot, inserted] = row_of.emplace(token, table.size());
        if (inserted) {
            table.push_back(TokenUtility{token, true_utility(i), 0.0, 0});
        } else if (table[slot->second].true_utility != true_utility(i)) {
            throw config_error("token_utility_table: token '" + token + "' has true utility " +
                               detail::number_text(table[slot->second].true_utility) + " and, at occurrence " +
                               std::to_string(i) + ", " + detail::number_text(true_utility(i)));
        }
        TokenUtility& row = table[slot->second];
        row.predicted_utility += predicted_utility(i);
        ++row.occurrences;
    }
    for (TokenUtility& row : table) row.predicted_utility /= static_cast<double>(row.occurrences);
    std::sort(table.begin(), table.end(), [](const TokenUtility& a, const TokenUtility& b) {
        return a.true_utility > b.true_utility || (a.true_utility == b.true_utility && a.token < b.token);
    });
    return table;
}

/// The true-utility column of a table.
inline Eigen::VectorXd true_utilities(const std::vector<TokenUtility>& table) {
    Eigen::VectorXd column(static_cast<Index>(table.size()));
    for (std::size_t i = 0; i < table.size(); ++i) column(static_cast<Index>(i)) = table[i].true_utility;
    return column;
}

/// The predicted-utility column of a table.
inline Eigen::VectorXd predicted_utilities(const std::vector<TokenUtility>& table) {
    Eigen::VectorXd column(static_cast<Index>(table.size()));
    for (std::size_t i = 0; i < table.size(); ++i) column(static_cast<Index>(i)) = table[i].predicted_utility;
    return column;
}

}  // namespace sae::irm
