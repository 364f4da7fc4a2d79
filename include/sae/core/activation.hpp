#pragma once
/// \file activation.hpp
/// The Activation concept: how an SAE turns pre-activations into a sparse code.
///
/// An Activation policy is a class template `Act<Scalar>` providing:
///
///   struct Config;                                  settings with defaults
///   static constexpr const char* architecture;      SAELens name ("topk", "jumprelu"...)
///   static constexpr bool has_parameter;            true when it owns a per-latent vector
///   static constexpr bool trains_parameter;         true when that vector is learned by
///                                                   gradient (JumpReLU), false when it is
///                                                   estimated from data (BatchTopK)
///   Act(const Config&, Index d_sae);                validates Config (throws config_error)
///   const Config& config() const;
///   void select_inference(pre, code) const;         code = act(pre), deterministic
///   void select_training(pre, code);                may update running statistics
///   double sparsity_loss(pre, code, decoder_norms, coefficient) const;
///       the batch-mean sparsity penalty (0 for TopK-style policies)
///   void backward(pre, code, grad_code, grad_at, coefficient, decoder_norms,
///                 d_pre, d_decoder_norms, d_parameter) const;
///       requires: grad_code holds dL/df on exactly the pattern of code, and
///                 grad_at(row, latent) returns dL/df at any position;
///       ensures:  d_pre = dL/dpre (sparse; only positions with a non-zero
///                 derivative), d_decoder_norms += dL/d||W_dec,j|| of the sparsity
///                 penalty, d_parameter += dL/d(parameter) when has_parameter.
///   RowVector<Scalar>& parameter();                 (learned or estimated; may be empty)
///   const char* parameter_name() const;             SAELens tensor name, e.g. "threshold"
///
/// `pre` is `[batch, d_sae]`; the code is a SparseCode `[batch, d_sae]` whose rows
/// hold only the active latents, so every later product touches only those.

#include "types.hpp"

#include <type_traits>
#include <utility>

namespace sae {

/// Whether a latent code is being produced for a training step (BatchTopK selects
/// over the batch and updates its threshold) or for inference.
enum class Phase { training, inference };

namespace detail {

template <class Act, class = void>
struct is_activation : std::false_type {};

template <class Act>
struct is_activation<
    Act, std::void_t<typename Act::Config, decltype(Act::architecture), decltype(Act::has_parameter), decltype(Act::trains_parameter),
                     decltype(std::declval<const Act&>().select_inference(
                         std::declval<const ConstMatrixRef<typename Act::scalar_type>&>(),
                         std::declval<SparseCode<typename Act::scalar_type>&>())),
                     decltype(std::declval<Act&>().select_training(
                         std::declval<const ConstMatrixRef<typename Act::scalar_type>&>(),
                         std::declval<SparseCode<typename Act::scalar_type>&>())),
                     decltype(std::declval<Act&>().parameter())>> : std::true_type {};

}  // namespace detail

/// True when `Act` models the Activation concept documented above.
template <class Act>
inline constexpr bool is_activation_v = detail::is_activation<Act>::value;

}  // namespace sae
