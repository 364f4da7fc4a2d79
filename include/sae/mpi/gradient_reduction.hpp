#pragma once
/// \file gradient_reduction.hpp
/// The one place where the MPI layer reaches into a TrainableSae's step.
///
/// Every loss term is a mean over the batch rows (loss.hpp: R, S and A are divided by
/// a number proportional to the rows), so with n_r rows on rank r and N = sum n_r
///   grad(union batch) = sum_r (n_r / N) grad_r,
/// which is what `reduce_gradients` forms, through TrainableSae::exchange_gradients:
/// after `compute_gradients(batch)` the SAE hands out its data gradient (W_dec rows in
/// decoder-row space, W_enc columns, b_enc, b_dec, the activation's parameter), each
/// tensor is scaled by n_r / N and all-reduced in place, and the following
/// `apply_gradients()` (projection, clipping, Adam, renormalisation) uses the result.
/// The MFR coupling term is not reduced: it depends only on the weights, which are
/// identical on every rank, so each rank adds it (coupling_gradient()) after this.

#include "../core/trainable_sae.hpp"
#include "communicator.hpp"

#include <string>

namespace sae {

/// Replaces the data gradient of `sae`'s current step (computed on `local_rows` rows)
/// by the row-weighted mean over the ranks of `comm`, identical on every rank. Collective.
template <class Scalar, template <class> class Act>
void reduce_gradients(const Communicator& comm, TrainableSae<Scalar, Act>& sae, Index local_rows, Index total_rows,
                      const std::string& member = "") {
    if (comm.size() == 1) return;
    const Scalar weight = static_cast<Scalar>(static_cast<double>(local_rows) / static_cast<double>(total_rows));
    sae.exchange_gradients([&](const std::string& name, Scalar* data, std::size_t size) {
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(data, static_cast<Index>(size)) *= weight;
        comm.allreduce_sum(data, size, member + "gradient '" + name + "'");
    });
}

}  // namespace sae
