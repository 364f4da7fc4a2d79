#pragma once
/// \file pse.hpp
/// Partial Simulation Extrapolation (arXiv 2401.16426; Marks 2023, "Partial Simulation
/// Extrapolation: A Proposal for Building Safer Simulators"): before running an expensive
/// simulation, run cheaper partial versions of it (fewer token steps, fewer agents, a
/// smaller object) at budgets b_1 < ... < b_m, measure a risk at each, fit how the risk
/// grows with the budget (risk_fit.hpp), extrapolate to the full budget, and allow the full
/// simulation only when the upper end of the interval for its risk is below ε.
///
///   pse(simulate, budgets, full_budget, risk, model, epsilon, options)
///     simulate: any callable, simulate(budget, sample) or simulate(budget), returning an
///               outcome of any type (a trajectory, generated text, a number); it is called
///               options.samples_per_budget times per budget, sample = 0, 1, ...
///     risk:     risk(outcome) -> double. For a simulator that already returns the risk,
///               pass identity_risk{}.
///     Each (budget, risk) pair is one observation; the model is fitted to all of them.
///   pse_decide(observations, full_budget, model, epsilon, options)
///     the same decision from measurements already made.
///
/// Decision rule: allow ⇔ interval.upper < epsilon, where the interval is the two-sided
/// options.confidence interval (default 0.95) chosen by options.interval:
///   analytic_mean        t-interval for the mean (log models: median) risk at full_budget
///                        (default; the risk of "a full simulation" as a quantity);
///   analytic_prediction  t-interval for one new measurement (more conservative);
///   bootstrap            residual-bootstrap percentile interval (bootstrap_resamples
///                        resamples, seeded with bootstrap_seed).
///
/// Bad inputs: no budgets, budgets not strictly increasing or not finite, a full budget not
/// above the last budget, ε not finite, samples_per_budget = 0: config_error naming the
/// value; a NaN/inf risk: numeric_error naming budget, sample and value; too few points,
/// log models on non-positive risks: as fit_risk_model.

#include "sae/cartesian/risk_fit.hpp"
#include "sae/core/error.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// Which interval the decision uses.
enum class IntervalMethod { analytic_mean, analytic_prediction, bootstrap };

/// Settings of one PSE decision.
struct PseOptions {
    std::size_t samples_per_budget = 1;  ///< partial simulations run at each budget
    double confidence = 0.95;            ///< two-sided level of the interval
    IntervalMethod interval = IntervalMethod::analytic_mean;
    std::size_t bootstrap_resamples = 2000;
    std::uint64_t bootstrap_seed = 0;
};

/// Everything a PSE decision was based on.
struct PseResult {
    std::vector<RiskObservation> observations;  ///< every measured (budget, risk)
    double full_budget = 0.0;
    RiskFit fit;
    RiskInterval interval;  ///< predicted risk at full_budget and its interval
    double confidence = 0.0;
    IntervalMethod method = IntervalMethod::analytic_mean;
    double epsilon = 0.0;
    bool allow = false;  ///< interval.upper < epsilon
};

/// risk(outcome) = outcome, for simulators that return the risk themselves.
struct identity_risk {
    double operator()(double risk) const { return risk; }
};

/// The decision from measurements already made.
inline PseResult pse_decide(const std::vector<RiskObservation>& observations, double full_budget, RiskModel model,
                            double epsilon, const PseOptions& options = {}) {
    if (!std::isfinite(epsilon)) {
        throw config_error("pse: epsilon = " + std::to_string(epsilon) + " is not finite");
    }
    if (!std::isfinite(full_budget)) {
        throw config_error("pse: full budget = " + std::to_string(full_budget) + " is not finite");
    }
    for (const RiskObservation& o : observations) {
        if (std::isfinite(o.budget) && !(full_budget > o.budget)) {
            throw config_error("pse: full budget " + std::to_string(full_budget) + " is not above the budget " +
                               std::to_string(o.budget) + " of a partial simulation; PSE extrapolates upwards");
        }
    }
    PseResult result;
    result.observations = observations;
    result.full_budget = full_budget;
    result.fit = fit_risk_model(observations, model);
    result.confidence = options.confidence;
    result.method = options.interval;
    result.epsilon = epsilon;
    switch (options.interval) {
        case IntervalMethod::analytic_mean:
            result.interval = analytic_interval(result.fit, full_budget, options.confidence, IntervalKind::mean_response);
            break;
        case IntervalMethod::analytic_prediction:
            result.interval = analytic_interval(result.fit, full_budget, options.confidence, IntervalKind::prediction);
            break;
        case IntervalMethod::bootstrap:
            result.interval = bootstrap_interval(observations, model, full_budget, options.confidence,
                                                 options.bootstrap_resamples, options.bootstrap_seed);
            break;
    }
    result.allow = result.interval.upper < epsilon;
    return result;
}

/// Run the partial simulations, measure, fit, extrapolate and decide.
template <class Simulator, class Risk>
PseResult pse(Simulator&& simulate, const std::vector<double>& budgets, double full_budget, Risk&& risk,
              RiskModel model, double epsilon, const PseOptions& options = {}) {
    if (budgets.empty()) {
        throw config_error("pse: no budgets given");
    }
    if (options.samples_per_budget == 0) {
        throw config_error("pse: samples_per_budget = 0; at least one partial simulation per budget is needed");
    }
    for (std::size_t i = 0; i < budgets.size(); ++i) {
        if (!std::isfinite(budgets[i])) {
            throw config_error("pse: budget " + std::to_string(i) + " = " + std::to_string(budgets[i]) +
                               " is not finite");
        }
        if (i > 0 && !(budgets[i] > budgets[i - 1])) {
            throw config_error("pse: budgets must increase strictly, but budget " + std::to_string(i) + " = " +
                               std::to_string(budgets[i]) + " follows " + std::to_string(budgets[i - 1]));
        }
    }
    if (!(full_budget > budgets.back())) {
        throw config_error("pse: full budget " + std::to_string(full_budget) + " is not above the last budget " +
                           std::to_string(budgets.back()));
    }
    std::vector<RiskObservation> observations;
    observations.reserve(budgets.size() * options.samples_per_budget);
    for (double budget : budgets) {
        for (std::size_t sample = 0; sample < options.samples_per_budget; ++sample) {
            double measured = 0.0;
            if constexpr (std::is_invocable_v<Simulator&, double, std::size_t>) {
                measured = static_cast<double>(risk(simulate(budget, sample)));
            } else {
                measured = static_cast<double>(risk(simulate(budget)));
            }
            if (!std::isfinite(measured)) {
                throw numeric_error("pse: the risk of sample " + std::to_string(sample) + " at budget " +
                                    std::to_string(budget) + " is " + std::to_string(measured));
            }
            observations.push_back(RiskObservation{budget, measured});
        }
    }
    return pse_decide(observations, full_budget, model, epsilon, options);
}

}  // namespace cartesian
}  // namespace sae
