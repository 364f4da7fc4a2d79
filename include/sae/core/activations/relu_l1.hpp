#pragma once
/// \file relu_l1.hpp
/// ReLU activation with an L1 penalty weighted by decoder row norms (Anthropic's
/// "April update", SAELens' "standard" architecture):
///   f = max(pre, 0),  penalty = lambda * mean_rows sum_j f_j ||W_dec,j||.
/// Weighting by the norm removes the incentive to shrink f by growing W_dec.

#include "common.hpp"

namespace sae {

template <class Scalar>
class ReluL1 {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "standard";
    static constexpr bool has_parameter = false;
    static constexpr bool trains_parameter = false;

    struct Config {};

    ReluL1(const Config& config, Index) : config_(config) {}

    const Config& config() const { return config_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        detail::select_above(pre, [](Index) { return Scalar(0); }, code);
    }
    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) { select_inference(pre, code); }

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
