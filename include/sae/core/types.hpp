#pragma once
/// \file types.hpp
/// Eigen type aliases shared by every libsae header. Matrices are row-major so that a
/// batch `[batch, d_in]` and every weight matrix has the same memory layout as NumPy
/// and safetensors files (C order): loading and saving never transposes.

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "error.hpp"

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace sae {

using Index = Eigen::Index;

/// Dense row-major matrix: batches `[batch, d]`, `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A row of numbers: biases (`b_enc [d_sae]`, `b_dec [d_in]`), per-latent statistics.
template <class Scalar>
using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

/// Read-only view of any dense matrix expression with matching layout (no copy when
/// the argument is already a row-major matrix or a block of one).
template <class Scalar>
using ConstMatrixRef = Eigen::Ref<const Matrix<Scalar>>;

/// Writable view of a row-major matrix or a block of one.
template <class Scalar>
using MatrixRef = Eigen::Ref<Matrix<Scalar>>;

/// Sparse latent code `[batch, d_sae]`: one row per sample, only the active latents
/// stored. TopK codes hold exactly k entries per row, so decoder products cost
/// O(batch * k * d_in) instead of O(batch * d_sae * d_in).
template <class Scalar>
using SparseCode = Eigen::SparseMatrix<Scalar, Eigen::RowMajor, int>;

namespace detail {
/// Blocks template argument deduction for a parameter, so that `Scalar` is taken
/// from the other arguments and an Eigen expression converts to a Ref.
template <class T>
using non_deduced_t = typename std::common_type<T>::type;
}  // namespace detail

/// A flat view of one parameter tensor and its gradient, as the optimizer sees it.
/// `name` follows SAELens (`W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold`...), and
/// identifies the optimizer state that belongs to the tensor. The gradient is
/// writable so that clipping can scale it in place.
template <class Scalar>
struct ParameterView {
    using Flat = Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>;
    std::string name;
    Flat value;
    Flat gradient;
};

/// Make a ParameterView over a dense parameter and its same-shaped gradient.
/// Throws shape_error when the two differ in size.
template <class ParamT, class GradT>
ParameterView<typename ParamT::Scalar> make_parameter_view(std::string name, ParamT& parameter, GradT& gradient) {
    using Scalar = typename ParamT::Scalar;
    if (parameter.size() != gradient.size()) {
        throw shape_error("parameter '" + name + "' has " + std::to_string(parameter.size()) +
                          " elements but its gradient has " + std::to_string(gradient.size()));
    }
    using Flat = typename ParameterView<Scalar>::Flat;
    return ParameterView<Scalar>{std::move(name), Flat(parameter.data(), parameter.size()),
                                 Flat(gradient.data(), gradient.size())};
}

}  // namespace sae
