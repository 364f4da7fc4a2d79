#pragma once
/// \file relu_l1.hpp
/// ReLU activation with an L1 penalty weighted by decoder row norms (Anthropic's
/// "April update", SAELens' "standard" architecture):
///   f = max(pre, 0),  penalty = lambda * mean_rows sum_j f_j ||W_dec,j||.
/// Weighting by the norm removes the incentive to shrink f by growing W_dec.

#include "common.hpp"

#include <utility>
#include <vector>

namespace sae {

template <class Scalar>
class ReluL1 {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "standard";
    static constexpr bool has_parameter = false;
    static constexpr bool trains_parameter = false;
    /// Each row's selection depends on that row only (loss.hpp streams the rows).
    static constexpr bool selects_rows_independently = true;
    static constexpr bool uses_decoder_norms = true;

    struct Config {};

    ReluL1(const Config& config, Index) : config_(config) {}

    const Config& config() const { return config_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        detail::select_above(pre, [](Index) { return Scalar(0); }, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

    /// Streaming selection of a block of rows: the positive entries, column chunk by chunk.
    class RowSelection {
    public:
        void start(Index rows) {
            rows_.resize(static_cast<std::size_t>(rows));
            for (auto& row : rows_) row.clear();
        }
        void add(Index row, Index col, Scalar value) { rows_[static_cast<std::size_t>(row)].emplace_back(static_cast<int>(col), value); }
        void emit(SparseCodeBuilder<Scalar>& out) const {
            for (const auto& row : rows_) {
                for (const auto& [col, value] : row) out.push(col, value);
                out.end_row();
            }
        }

    private:
        std::vector<std::vector<std::pair<int, Scalar>>> rows_;
    };
    void start_rows(RowSelection& selection, Index rows) const { selection.start(rows); }
    void select_chunk(RowSelection& selection, const ConstMatrixRef<Scalar>& chunk, Index first_col) const {
        for (Index r = 0; r < chunk.rows(); ++r) {
            for (Index c = 0; c < chunk.cols(); ++c) {
                if (chunk(r, c) > Scalar(0)) selection.add(r, first_col + c, chunk(r, c));
            }
        }
    }
    void finish_rows(RowSelection& selection, SparseCodeBuilder<Scalar>& out) const { selection.emit(out); }

    /// `pre` is only used for its row count (loss.hpp passes no columns).
    double sparsity_loss(const ConstMatrixRef<Scalar>& pre, const SparseCode<Scalar>& code,
                         const RowVector<Scalar>& decoder_norms, double coefficient) const {
        if (pre.rows() == 0) return 0.0;
        const RowVector<Scalar> column_sums = RowVector<Scalar>::Ones(code.rows()) * code;
        return coefficient * static_cast<double>(column_sums.dot(decoder_norms)) / static_cast<double>(pre.rows());
    }

    /// dL/dpre_j = dL/df_j + lambda ||W_dec,j|| / rows on active latents;
    /// dL/d||W_dec,j|| = lambda * sum_rows f_j / rows.
    template <class GradAt>
    void backward(const ConstMatrixRef<Scalar>& pre, const SparseCode<Scalar>& code,
                  const SparseCode<Scalar>& grad_code, GradAt&&, double coefficient,
                  const RowVector<Scalar>& decoder_norms, SparseCode<Scalar>& d_pre,
                  RowVector<Scalar>& d_decoder_norms, RowVector<Scalar>&) const {
        d_pre = grad_code;
        if (pre.rows() == 0 || coefficient == 0.0) return;
        const Scalar weight = static_cast<Scalar>(coefficient / static_cast<double>(pre.rows()));
        for (Index r = 0; r < d_pre.outerSize(); ++r) {
            for (typename SparseCode<Scalar>::InnerIterator it(d_pre, r); it; ++it) {
                it.valueRef() += weight * decoder_norms(it.col());
            }
        }
        d_decoder_norms += weight * (RowVector<Scalar>::Ones(code.rows()) * code);
    }

    RowVector<Scalar>& parameter() { return no_parameter_; }
    const RowVector<Scalar>& parameter() const { return no_parameter_; }
    const char* parameter_name() const { return ""; }

private:
    Config config_;
    RowVector<Scalar> no_parameter_;
};

}  // namespace sae
