#pragma once
/// \file topk.hpp
/// TopK activation (Gao et al. 2024): per row keep the k largest pre-activations,
/// zero the rest; with `relu` the kept values are also passed through ReLU.
/// The MFR authors' SAE uses TopK without ReLU (`relu = false`).
///
/// Ties at the k-th value are broken towards the lower latent index, so a row holds
/// at most k active latents and the result is deterministic.

#include "../sparse_code_builder.hpp"
#include "common.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

namespace sae {

namespace detail {

/// Writes, for each row of `pre`, its `k` largest entries (sorted by column) into
/// `code`; entries <= 0 are dropped when `relu` is set. O(d_sae) per row.
template <class Scalar>
void select_top_k_per_row(const ConstMatrixRef<Scalar>& pre, Index k, bool relu, SparseCode<Scalar>& code) {
    const Index rows = pre.rows();
    const Index cols = pre.cols();
    std::vector<int> order(static_cast<std::size_t>(cols));
    SparseCodeBuilder<Scalar> builder;
    builder.start(rows, cols, rows * k);
    for (Index r = 0; r < rows; ++r) {
        const Scalar* row = pre.row(r).data();
        std::iota(order.begin(), order.end(), 0);
        const auto larger = [row](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
        std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), larger);
        std::sort(order.begin(), order.begin() + k);
        for (Index i = 0; i < k; ++i) {
            const int col = order[static_cast<std::size_t>(i)];
            if (!relu || row[col] > Scalar(0)) builder.push(col, row[col]);
        }
        builder.end_row();
    }
    builder.finish(code);
}

/// Fail with a config_error unless 1 <= k <= d_sae.
inline void check_k(const char* architecture, Index k, Index d_sae) {
    if (k < 1 || k > d_sae) {
        throw config_error(std::string(architecture) + ": k = " + std::to_string(k) +
                           " must be in [1, d_sae = " + std::to_string(d_sae) + "]");
    }
}

}  // namespace detail

template <class Scalar>
class TopK : public detail::PassThroughGradient<Scalar> {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "topk";
    static constexpr bool has_parameter = false;
    static constexpr bool trains_parameter = false;

    struct Config {
        Index k = 32;      ///< active latents per row
        bool relu = true;  ///< apply ReLU to the kept values (Gao et al.); false = MFR authors
    };

    TopK(const Config& config, Index d_sae) : config_(config) { detail::check_k(architecture, config.k, d_sae); }

    const Config& config() const { return config_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        detail::select_top_k_per_row(pre, config_.k, config_.relu, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

    RowVector<Scalar>& parameter() { return no_parameter_; }
    const RowVector<Scalar>& parameter() const { return no_parameter_; }
    const char* parameter_name() const { return ""; }

private:
    Config config_;
    RowVector<Scalar> no_parameter_;
};

}  // namespace sae
