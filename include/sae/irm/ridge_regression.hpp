#pragma once
/// \file ridge_regression.hpp
/// Ridge regression with an unpenalised intercept, in closed form: the linear probe of the
/// implicit reward model (scikit-learn's Ridge(alpha), the IRM authors' probe).
///
///   minimise over w, b:  ||y - X w - b||^2 + alpha ||w||^2
///
/// Setting the derivative in b to zero gives b = mean(y) - mean(X) w, so with centred
/// data Xc = X - mean(X), yc = y - mean(y) the weights solve
///   (Xc^T Xc + alpha I) w = Xc^T yc                        (primal, m x m), or, equally,
///   w = Xc^T (Xc Xc^T + alpha I)^-1 yc                     (dual, n x n)
/// (the push-through identity). Both systems are symmetric positive definite for
/// alpha > 0 and are solved with Eigen's LDLT; the smaller one is used, so a probe on
/// thousands of SAE features from a few thousand rows costs O(min(n, m)^2 max(n, m)).
/// Everything is computed in double whatever the input Scalar.
///
/// Abstract:
///   RidgeRegression::fit(X [n, m], y [n], alpha = 1)
///     requires: n >= 1 and y of length n (shape_error); X and y finite (numeric_error
///               naming the entry); alpha finite and > 0 (config_error: alpha = 0 is
///               ordinary least squares, singular whenever features outnumber rows).
///               m = 0 is allowed (the model is the mean of y).
///     ensures:  weights() [m], intercept(); the minimiser above.
///   predict(X [k, m]) -> [k]: X w + b; shape_error when X has a width other than m,
///               numeric_error for NaN/Inf.
///   Example (by hand): X = [1, 2, 3]^T, y = [2, 4, 6], alpha = 1: mean x = 2, mean y = 4,
///   Xc = [-1, 0, 1], yc = [-2, 0, 2], w = (Xc.yc) / (Xc.Xc + 1) = 4 / 3,
///   b = 4 - 2 (4 / 3) = 4 / 3.

#include "input_checks.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <string>

namespace sae::irm {

class RidgeRegression {
public:
    /// The ridge solution of the file abstract.
    template <class Derived>
    static RidgeRegression fit(const Eigen::MatrixBase<Derived>& features, const ConstVectorRef& targets, double alpha = 1.0) {
        detail::require_finite_setting(alpha, "RidgeRegression::fit: alpha");
        if (!(alpha > 0.0)) {
            throw config_error("RidgeRegression::fit: alpha = " + detail::number_text(alpha) + " must be > 0");
        }
        detail::require_not_empty(features.rows(), "RidgeRegression::fit: features (rows)");
        detail::require_same_length(features.rows(), targets.size(), "RidgeRegression::fit: features (rows)", "targets");
        detail::require_finite(features, "RidgeRegression::fit: features");
        detail::require_finite(targets, "RidgeRegression::fit: targets");

        const Index n = features.rows(), m = features.cols();
        Eigen::MatrixXd centred = features.template cast<double>();
        const Eigen::RowVectorXd feature_mean = centred.colwise().mean();
        centred.rowwise() -= feature_mean;
        const double target_mean = targets.mean();
        const Eigen::VectorXd centred_targets = targets.array() - target_mean;

        RidgeRegression model;
        model.alpha_ = alpha;
        if (m == 0) {
            model.weights_.resize(0);
        } else if (m <= n) {
            Eigen::MatrixXd gram(m, m);
            gram.setZero();
            gram.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());
            gram.diagonal().array() += alpha;
            model.weights_ = gram.selfadjointView<Eigen::Lower>().ldlt().solve(centred.transpose() * centred_targets);
        } else {
            Eigen::MatrixXd gram(n, n);
            gram.setZero();
            gram.selfadjointView<Eigen::Lower>().rankUpdate(centred);
            gram.diagonal().array() += alpha;
            const Eigen::VectorXd dual = gram.selfadjointView<Eigen::Lower>().ldlt().solve(centred_targets);
            model.weights_ = centred.transpose() * dual;
        }
        model.intercept_ = target_mean - feature_mean.dot(model.weights_);
        return model;
    }

    /// X w + b for every row of `features`.
    template <class Derived>
    Eigen::VectorXd predict(const Eigen::MatrixBase<Derived>& features) const {
        if (features.cols() != weights_.size()) {
            throw shape_error("RidgeRegression::predict: features have " + std::to_string(features.cols()) +
                              " columns but the probe was fitted on " + std::to_string(weights_.size()));
        }
        detail::require_finite(features, "RidgeRegression::predict: features");
        Eigen::VectorXd out = features.template cast<double>() * weights_;
        out.array() += intercept_;
        return out;
    }

    const Eigen::VectorXd& weights() const { return weights_; }  ///< w [m]
    double intercept() const { return intercept_; }               ///< b
    double alpha() const { return alpha_; }

private:
    RidgeRegression() = default;
    Eigen::VectorXd weights_;
    double intercept_ = 0.0;
    double alpha_ = 1.0;
};

}  // namespace sae::irm
