#pragma once
/// \file student_t.hpp
/// Student's t distribution: CDF and quantile, for the analytic confidence intervals of
/// the PSE fits. Written out (no Boost) from the regularized incomplete beta function:
///
///   I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) · 1 / (1 + d1 / (1 + d2 / (1 + ...)))
///   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)),
///   d_{2m}   = m (b - m) x / ((a + 2m - 1)(a + 2m)),
/// the continued fraction of DLMF 8.17.22, evaluated with the modified Lentz method, and
/// used directly for x < (a + 1) / (a + b + 2) and through I_x(a, b) = 1 - I_{1-x}(b, a)
/// otherwise (where it converges fast). log B(a, b) comes from std::lgamma.
///
///   student_t_cdf(t, ν)      = 1 - I_{ν/(ν+t²)}(ν/2, 1/2) / 2 for t >= 0, symmetric.
///   student_t_quantile(p, ν) = the t with cdf(t) = p: bracketed by doubling, then
///                              bisection to the last representable digit (about 1e-15
///                              relative), so the result is as accurate as the CDF.
/// Abstract:
///   regularized_incomplete_beta(a, b, x)  a, b > 0, x in [0, 1]   (config_error otherwise)
///   student_t_cdf(t, dof)                 dof > 0, t not NaN
///   student_t_quantile(p, dof)            p in (0, 1), dof > 0
/// Checked in the tests against closed forms (ν = 1: tan(π(p - 1/2)); ν = 2:
/// (2p - 1) sqrt(2 / (1 - (2p - 1)²))) and the t table of NIST/SEMATECH e-Handbook of
/// Statistical Methods, §1.3.6.7.2.

#include "sae/core/error.hpp"

#include <cmath>
#include <limits>
#include <string>

namespace sae {
namespace cartesian {

namespace detail {

/// The continued fraction part of I_x(a, b), modified Lentz.
inline double incomplete_beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300;
    const double epsilon = 1e-16;
    double c = 1.0;
    double d = 1.0 - (a + b) * x / (a + 1.0);
    if (std::abs(d) < tiny) {
        d = tiny;
    }
    d = 1.0 / d;
    double result = d;
    for (int m = 1; m <= 10000; ++m) {
        const double dm = static_cast<double>(m);
        // Even step d_{2m}.
        double numerator = dm * (b - dm) * x / ((a + 2.0 * dm - 1.0) * (a + 2.0 * dm));
        d = 1.0 + numerator * d;
        if (std::abs(d) < tiny) {
            d = tiny;
        }
        c = 1.0 + numerator / c;
        if (std::abs(c) < tiny) {
            c = tiny;
        }
        d = 1.0 / d;
        result *= d * c;
        // Odd step d_{2m+1}.
        numerator = -(a + dm) * (a + b + dm) * x / ((a + 2.0 * dm) * (a + 2.0 * dm + 1.0));
        d = 1.0 + numerator * d;
        if (std::abs(d) < tiny) {
            d = tiny;
        }
        c = 1.0 + numerator / c;
        if (std::abs(c) < tiny) {
            c = tiny;
        }
        d = 1.0 / d;
        const double delta = d * c;
        result *= delta;
        if (std::abs(delta - 1.0) < epsilon) {
            return result;
        }
    }
    throw numeric_error("regularized_incomplete_beta: the continued fraction did not converge for a = " +
                        std::to_string(a) + ", b = " + std::to_string(b) + ", x = " + std::to_string(x));
}

}  // namespace detail

/// I_x(a, b).
inline double regularized_incomplete_beta(double a, double b, double x) {
    if (!(a > 0.0) || !(b > 0.0) || !std::isfinite(a) || !std::isfinite(b)) {
        throw config_error("regularized_incomplete_beta: a = " + std::to_string(a) + " and b = " +
                           std::to_string(b) + " must be positive and finite");
    }
    if (!(x >= 0.0 && x <= 1.0)) {
        throw config_error("regularized_incomplete_beta: x = " + std::to_string(x) + " must be in [0, 1]");
    }
    if (x == 0.0 || x == 1.0) {
        return x;
    }
    const double log_front =
        a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
    if (x < (a + 1.0) / (a + b + 2.0)) {
        return std::exp(log_front) * detail::incomplete_beta_fraction(a, b, x) / a;
    }
    return 1.0 - std::exp(log_front) * detail::incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

/// P(T <= t) for T ~ Student t with `dof` degrees of freedom.
inline double student_t_cdf(double t, double dof) {
    if (!(dof > 0.0)) {
        throw config_error("student_t_cdf: degrees of freedom = " + std::to_string(dof) + " must be positive");
    }
    if (std::isnan(t)) {
        throw numeric_error("student_t_cdf: t is NaN");
    }
    if (std::isinf(t)) {
        return t > 0 ? 1.0 : 0.0;
    }
    const double x = dof / (dof + t * t);
    const double tail = 0.5 * regularized_incomplete_beta(0.5 * dof, 0.5, x);  // P(T > |t|)
    return t >= 0.0 ? 1.0 - tail : tail;
}

/// The t with P(T <= t) = p.
inline double student_t_quantile(double p, double dof) {
    if (!(p > 0.0 && p < 1.0)) {
        throw config_error("student_t_quantile: p = " + std::to_string(p) + " must be in (0, 1)");
    }
    if (!(dof > 0.0) || !std::isfinite(dof)) {
        throw config_error("student_t_quantile: degrees of freedom = " + std::to_string(dof) +
                           " must be positive and finite");
    }
    if (p == 0.5) {
        return 0.0;
    }
    if (p < 0.5) {
        return -student_t_quantile(1.0 - p, dof);
    }
    double low = 0.0;
    double high = 1.0;
    while (student_t_cdf(high, dof) < p) {
        low = high;
        high *= 2.0;
        if (!std::isfinite(high)) {
            throw numeric_error("student_t_quantile: no finite quantile for p = " + std::to_string(p));
        }
    }
    for (int iteration = 0; iteration < 200; ++iteration) {
        const double middle = 0.5 * (low + high);
        if (middle <= low || middle >= high) {
            break;  // the bracket is one ulp wide
        }
        if (student_t_cdf(middle, dof) < p) {
            low = middle;
        } else {
            high = middle;
        }
    }
    return 0.5 * (low + high);
}

}  // namespace cartesian
}  // namespace sae
