#pragma once
/// \file risk_fit.hpp
/// Least-squares models of how a risk measure r grows with the simulation budget b, and
/// confidence intervals for the risk they predict at a larger budget — the statistics of
/// Partial Simulation Extrapolation (pse.hpp).
///
/// Models, each fitted by ordinary least squares of y on x (y = α + β x) after a transform:
///   linear       r = α + β b              x = b,      y = r
///   power_law    r = a · b^β              x = log b,  y = log r   (α = log a; b > 0, r > 0)
///   exponential  r = a · e^(β b)          x = b,      y = log r   (α = log a; r > 0)
/// The log models are fitted in log space, i.e. they assume multiplicative noise; their
/// prediction exp(α + β x*) and interval endpoints are for the median risk (exp is
/// monotone, so the endpoints map exactly).
///
/// Closed form (n points, x̄, ȳ the means, Sxx = Σ(x - x̄)², Sxy = Σ(x - x̄)(y - ȳ)):
///   β = Sxy / Sxx, α = ȳ - β x̄, s² = Σ(y - α - β x)² / (n - 2).
/// Analytic interval at x* (level c, two-sided, t = student_t_quantile((1 + c) / 2, n - 2)):
///   mean response  ŷ* ± t · s · sqrt(1/n + (x* - x̄)² / Sxx)
///   prediction     ŷ* ± t · s · sqrt(1 + 1/n + (x* - x̄)² / Sxx)   (a new single measurement)
/// Bootstrap interval (residual bootstrap, the design kept fixed): y*_i = ŷ_i + e_j with
///   e_j drawn uniformly (uniform_index on std::mt19937_64(seed)) from the residuals
///   rescaled by sqrt(n / (n - 2)); refit; predict at x*; the interval is the
///   ((1 - c)/2, (1 + c)/2) quantiles (linear interpolation between order statistics) of
///   the predictions. A percentile interval for the mean response.
///
/// Abstract:
///   RiskFit fit_risk_model(observations, model)
///     requires: at least 3 observations and 2 distinct budgets (config_error: too few
///     points for a fit with an interval), finite budgets and risks (numeric_error naming
///     the observation), b > 0 for power_law (config_error), r > 0 for the log models
///     (numeric_error naming the value).
///   RiskFit::predict(b)          the fitted risk at b.
///   RiskInterval analytic_interval(fit, b, confidence, kind)
///   RiskInterval bootstrap_interval(observations, model, b, confidence, resamples, seed)
///   confidence in (0, 1) (config_error); resamples >= 10.

#include "sae/cartesian/random_sampling.hpp"
#include "sae/cartesian/student_t.hpp"
#include "sae/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sae {
namespace cartesian {

/// How risk grows with budget.
enum class RiskModel { linear, power_law, exponential };

inline const char* to_string(RiskModel model) {
    switch (model) {
        case RiskModel::linear:
            return "linear";
        case RiskModel::power_law:
            return "power law";
        case RiskModel::exponential:
            return "exponential";
    }
    return "unknown";
}

/// One measurement: the risk of one partial simulation at one budget.
struct RiskObservation {
    double budget = 0.0;
    double risk = 0.0;
};

/// A fitted model y = α + β x in the model's transformed coordinates.
struct RiskFit {
    RiskModel model = RiskModel::linear;
    double intercept = 0.0;  ///< α (log a for the log models)
    double slope = 0.0;      ///< β (the exponent for power_law, the rate for exponential)
    double residual_standard_error = 0.0;  ///< s, in the transformed y
    std::size_t point_count = 0;
    std::size_t degrees_of_freedom = 0;  ///< n - 2
    double mean_x = 0.0;
    double sum_squares_x = 0.0;  ///< Sxx
    double r_squared = 0.0;      ///< 1 - SSE / SST in the transformed y (1 when SST = 0)

    /// The model's x for a budget.
    double transformed_x(double budget) const { return model == RiskModel::power_law ? std::log(budget) : budget; }

    /// Back from the transformed y to a risk.
    double risk_from_y(double y) const { return model == RiskModel::linear ? y : std::exp(y); }

    /// a: α for linear, e^α for the log models.
    double scale() const { return risk_from_y(intercept); }

    /// The fitted risk at a budget.
    double predict(double budget) const { return risk_from_y(intercept + slope * transformed_x(budget)); }
};

/// A prediction and its interval, in risk units.
struct RiskInterval {
    double predicted = 0.0;
    double lower = 0.0;
    double upper = 0.0;
};

/// Which analytic interval.
enum class IntervalKind {
    mean_response,  ///< for the expected (median, for log models) risk at the budget
    prediction      ///< for one new measurement at the budget
};

namespace detail {

inline void require_confidence(double confidence, const std::string& what) {
    if (!(confidence > 0.0 && confidence < 1.0)) {
        throw config_error(what + ": confidence = " + std::to_string(confidence) + " must be in (0, 1)");
    }
}

/// Checks the observations and maps them to the model's (x, y).
inline void transform_observations(const std::vector<RiskObservation>& observations, RiskModel model,
                                   std::vector<double>& x, std::vector<double>& y) {
    if (observations.size() < 3) {
        throw config_error("fit_risk_model: " + std::to_string(observations.size()) +
                           " observations are too few points for a fit with an interval (need at least 3)");
    }
    x.resize(observations.size());
    y.resize(observations.size());
    for (std::size_t i = 0; i < observations.size(); ++i) {
        const double b = observations[i].budget;
        const double r = observations[i].risk;
        if (!std::isfinite(b) || !std::isfinite(r)) {
            throw numeric_error("fit_risk_model: observation " + std::to_string(i) + " (budget " +
                                std::to_string(b) + ", risk " + std::to_string(r) + ") is not finite");
        }
        if (model == RiskModel::power_law && !(b > 0.0)) {
            throw config_error("fit_risk_model: budget " + std::to_string(b) + " of observation " +
                               std::to_string(i) + " is not positive; a power law is fitted on log b");
        }
        if (model != RiskModel::linear && !(r > 0.0)) {
            throw numeric_error("fit_risk_model: risk " + std::to_string(r) + " at budget " + std::to_string(b) +
                                " (observation " + std::to_string(i) + ") is not positive; the " +
                                to_string(model) + " model is fitted on log r");
        }
        x[i] = model == RiskModel::power_law ? std::log(b) : b;
        y[i] = model == RiskModel::linear ? r : std::log(r);
    }
}

/// OLS of y on x; x must not be constant.
inline RiskFit least_squares(RiskModel model, const std::vector<double>& x, const std::vector<double>& y) {
    const double n = static_cast<double>(x.size());
    double mean_x = 0.0;
    double mean_y = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        mean_x += x[i];
        mean_y += y[i];
    }
    mean_x /= n;
    mean_y /= n;
    double sxx = 0.0;
    double sxy = 0.0;
    double syy = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        sxx += (x[i] - mean_x) * (x[i] - mean_x);
        sxy += (x[i] - mean_x) * (y[i] - mean_y);
        syy += (y[i] - mean_y) * (y[i] - mean_y);
    }
    if (!(sxx > 0.0)) {
        throw config_error("fit_risk_model: all observations share one budget; at least 2 distinct budgets are needed");
    }
    RiskFit fit;
    fit.model = model;
    fit.slope = sxy / sxx;
    fit.intercept = mean_y - fit.slope * mean_x;
    double sse = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double residual = y[i] - fit.intercept - fit.slope * x[i];
        sse += residual * residual;
    }
    fit.point_count = x.size();
    fit.degrees_of_freedom = x.size() - 2;
    fit.residual_standard_error = std::sqrt(sse / static_cast<double>(fit.degrees_of_freedom));
    fit.mean_x = mean_x;
    fit.sum_squares_x = sxx;
    fit.r_squared = syy > 0.0 ? 1.0 - sse / syy : 1.0;
    return fit;
}

}  // namespace detail

/// Least-squares fit of one model (see the file comment).
inline RiskFit fit_risk_model(const std::vector<RiskObservation>& observations, RiskModel model) {
    std::vector<double> x;
    std::vector<double> y;
    detail::transform_observations(observations, model, x, y);
    return detail::least_squares(model, x, y);
}

/// The analytic t-interval at `budget`.
inline RiskInterval analytic_interval(const RiskFit& fit, double budget, double confidence,
                                      IntervalKind kind = IntervalKind::mean_response) {
    detail::require_confidence(confidence, "analytic_interval");
    if (!std::isfinite(budget) || (fit.model == RiskModel::power_law && !(budget > 0.0))) {
        throw config_error("analytic_interval: budget " + std::to_string(budget) + " is not valid for a " +
                           to_string(fit.model) + " fit");
    }
    if (fit.degrees_of_freedom == 0 || !(fit.sum_squares_x > 0.0)) {
        throw config_error("analytic_interval: the fit has no degrees of freedom left for an interval");
    }
    const double x = fit.transformed_x(budget);
    const double y = fit.intercept + fit.slope * x;
    const double leverage =
        1.0 / static_cast<double>(fit.point_count) + (x - fit.mean_x) * (x - fit.mean_x) / fit.sum_squares_x;
    const double spread = kind == IntervalKind::prediction ? 1.0 + leverage : leverage;
    const double t = student_t_quantile(0.5 * (1.0 + confidence), static_cast<double>(fit.degrees_of_freedom));
    const double half_width = t * fit.residual_standard_error * std::sqrt(spread);
    return RiskInterval{fit.risk_from_y(y), fit.risk_from_y(y - half_width), fit.risk_from_y(y + half_width)};
}

/// The residual-bootstrap percentile interval at `budget`.
inline RiskInterval bootstrap_interval(const std::vector<RiskObservation>& observations, RiskModel model,
                                       double budget, double confidence, std::size_t resamples,
                                       std::uint64_t seed) {
    detail::require_confidence(confidence, "bootstrap_interval");
    if (resamples < 10) {
        throw config_error("bootstrap_interval: resamples = " + std::to_string(resamples) + " (need at least 10)");
    }
    std::vector<double> x;
    std::vector<double> y;
    detail::transform_observations(observations, model, x, y);
    const RiskFit fit = detail::least_squares(model, x, y);
    if (!std::isfinite(budget) || (model == RiskModel::power_law && !(budget > 0.0))) {
        throw config_error("bootstrap_interval: budget " + std::to_string(budget) + " is not valid for a " +
                           to_string(model) + " fit");
    }
    const std::size_t n = x.size();
    const double inflation = std::sqrt(static_cast<double>(n) / static_cast<double>(n - 2));
    std::vector<double> fitted(n);
    std::vector<double> residuals(n);
    for (std::size_t i = 0; i < n; ++i) {
        fitted[i] = fit.intercept + fit.slope * x[i];
        residuals[i] = (y[i] - fitted[i]) * inflation;
    }
    const double target_x = fit.transformed_x(budget);
    std::mt19937_64 rng(seed);
    std::vector<double> predictions(resamples);
    std::vector<double> y_star(n);
    for (std::size_t r = 0; r < resamples; ++r) {
        for (std::size_t i = 0; i < n; ++i) {
            y_star[i] = fitted[i] + residuals[uniform_index(rng, n)];
        }
        const RiskFit refit = detail::least_squares(model, x, y_star);
        predictions[r] = refit.intercept + refit.slope * target_x;
    }
    std::sort(predictions.begin(), predictions.end());
    const auto quantile = [&](double q) {
        const double h = q * static_cast<double>(resamples - 1);
        const std::size_t below = static_cast<std::size_t>(std::floor(h));
        const std::size_t above = std::min(below + 1, resamples - 1);
        return predictions[below] + (h - static_cast<double>(below)) * (predictions[above] - predictions[below]);
    };
    return RiskInterval{fit.risk_from_y(fit.intercept + fit.slope * target_x),
                        fit.risk_from_y(quantile(0.5 * (1.0 - confidence))),
                        fit.risk_from_y(quantile(0.5 * (1.0 + confidence)))};
}

}  // namespace cartesian
}  // namespace sae
