#pragma once
/// \file input_checks.hpp
/// The argument checks every IRM statistic shares, so that each one fails the same way on
/// the same bad input: an empty input or two inputs of different lengths is a
/// shape_error, a NaN or infinity is a numeric_error naming the entry, a bad setting is a
/// config_error naming the value. `where` is the caller's name and argument
/// ("kendall_tau_b: x"), so a message points at the argument at fault.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

#include <charconv>
#include <cmath>
#include <string>

namespace sae::irm {

/// A read-only view of a column of doubles: an Eigen::VectorXd, a block of one, or an
/// Eigen::Map over a std::vector<double>.
using ConstVectorRef = Eigen::Ref<const Eigen::VectorXd>;

namespace detail {

/// The shortest text that reads back as `value` ("1.9", "1e-07", "nan", "inf"):
/// std::to_string's six fixed decimals would hide small values and differences.
inline std::string number_text(double value) {
    char buffer[64];
    const std::to_chars_result written = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, written.ptr);
}

/// shape_error when `values` is empty.
inline void require_not_empty(Index size, const std::string& where) {
    if (size == 0) throw shape_error(where + " is empty");
}

/// shape_error when the two lengths differ.
inline void require_same_length(Index a, Index b, const std::string& where_a, const std::string& where_b) {
    if (a != b) {
        throw shape_error(where_a + " has " + std::to_string(a) + " entries but " + where_b + " has " + std::to_string(b));
    }
}

/// numeric_error naming the first entry of `m` that is NaN or infinite.
template <class Derived>
void require_finite(const Eigen::MatrixBase<Derived>& m, const std::string& where) {
    if (m.allFinite()) return;
    for (Index r = 0; r < m.rows(); ++r) {
        for (Index c = 0; c < m.cols(); ++c) {
            const double value = static_cast<double>(m(r, c));
            if (!std::isfinite(value)) {
                const std::string at = m.cols() == 1 ? "[" + std::to_string(r) + "]"
                                                     : "(" + std::to_string(r) + ", " + std::to_string(c) + ")";
                throw numeric_error(where + at + " = " + number_text(value) + " is not finite");
            }
        }
    }
}

/// config_error unless `value` is finite.
inline void require_finite_setting(double value, const std::string& name) {
    if (!std::isfinite(value)) throw config_error(name + " = " + number_text(value) + " is not finite");
}

}  // namespace detail

}  // namespace sae::irm
