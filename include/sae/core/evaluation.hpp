#pragma once
/// \file evaluation.hpp
/// `Evaluation`: the quality of a trained SAE over a data set too large for memory,
/// accumulated batch by batch in double precision:
///   mse           sum ||x - x_hat||^2 / (rows * d_in)
///   fvu           sum ||x - x_hat||^2 / sum ||x - mean(x)||^2   (mean over the whole set)
///   l0            mean number of active latents per row
///   dead_fraction fraction of latents that never fired on the set
///   density       histogram of log10(firing rate) (metrics.hpp)
/// `evaluate_batch(sae, batch, evaluation)` runs the SAE's inference forward pass on a
/// batch and adds it. Requires finite batches of width d_in (numeric_error names the row
/// and column of a NaN/Inf; shape_error a wrong width).

#include "metrics.hpp"
#include "types.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace sae {

class Evaluation {
public:
    Evaluation(Index d_in, Index d_sae)
        : sum_x_(Eigen::ArrayXd::Zero(d_in)), fire_counts_(Eigen::ArrayXd::Zero(d_sae)) {}

    /// Adds one batch: inputs x, reconstructions x_hat and the sparse code.
    template <class DX, class DY, class Scalar>
    void add(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& x_hat, const SparseCode<Scalar>& code) {
        if (x.cols() != sum_x_.size() || x_hat.rows() != x.rows() || x_hat.cols() != x.cols() ||
            code.rows() != x.rows() || code.cols() != fire_counts_.size()) {
            throw shape_error("Evaluation::add: batch [" + std::to_string(x.rows()) + ", " + std::to_string(x.cols()) +
                              "] does not fit an SAE with d_in = " + std::to_string(sum_x_.size()) +
                              " and d_sae = " + std::to_string(fire_counts_.size()));
        }
        squared_error_ += (x - x_hat).template cast<double>().squaredNorm();
        sum_x_ += x.template cast<double>().colwise().sum().transpose().array();
        sum_x_squared_ += x.template cast<double>().squaredNorm();
        detail::for_each_active_latent(code, [this](Index latent, Scalar) {
            fire_counts_(latent) += 1.0;
            ++active_;
        });
        rows_ += x.rows();
    }

    std::int64_t rows() const { return rows_; }
    double mse() const { return rows_ == 0 ? 0.0 : squared_error_ / (static_cast<double>(rows_) * static_cast<double>(sum_x_.size())); }
    /// Throws numeric_error when the data has no variance (FVU undefined).
    double fvu() const {
        const double n = static_cast<double>(rows_);
        const double total_variance = sum_x_squared_ - sum_x_.square().sum() / std::max(n, 1.0);
        if (!(total_variance > 0.0)) throw numeric_error("Evaluation::fvu: the data has no variance (all rows equal)");
        return squared_error_ / total_variance;
    }
    double l0() const { return rows_ == 0 ? 0.0 : static_cast<double>(active_) / static_cast<double>(rows_); }
    Eigen::ArrayXd firing_rate() const {
        return rows_ == 0 ? Eigen::ArrayXd::Zero(fire_counts_.size()) : Eigen::ArrayXd(fire_counts_ / static_cast<double>(rows_));
    }
    double dead_fraction() const {
        return fire_counts_.size() == 0 ? 0.0
                                        : static_cast<double>((fire_counts_ == 0.0).count()) / static_cast<double>(fire_counts_.size());
    }

    /// All metrics and the density histogram as JSON.
    nlohmann::json to_json(int bins = 50, double log10_min = -8.0) const {
        const DensityHistogram histogram = feature_density_histogram(firing_rate(), bins, log10_min);
        const double fraction_unexplained = fvu();
        return {{"rows", rows_},
                {"mse", mse()},
                {"fvu", fraction_unexplained},
                {"explained_variance", 1.0 - fraction_unexplained},
                {"l0", l0()},
                {"dead_fraction", dead_fraction()},
                {"density_histogram",
                 {{"log10_edges", histogram.edges}, {"counts", histogram.counts}, {"never_fired", histogram.never_fired}}}};
    }

private:
    double squared_error_ = 0.0;
    double sum_x_squared_ = 0.0;
    Eigen::ArrayXd sum_x_;
    Eigen::ArrayXd fire_counts_;
    std::int64_t active_ = 0;
    std::int64_t rows_ = 0;
};

/// Inference forward pass of `sae` on `batch`, added to `evaluation`.
template <class Model, class Derived>
void evaluate_batch(const Model& sae, const Eigen::MatrixBase<Derived>& batch, Evaluation& evaluation) {
    // One vectorised pass in the common case; the element scan only names the culprit.
    if (!batch.allFinite()) {
        for (Index r = 0; r < batch.rows(); ++r) {
            for (Index c = 0; c < batch.cols(); ++c) {
                if (!std::isfinite(static_cast<double>(batch(r, c)))) {
                    throw numeric_error("evaluation batch: value at row " + std::to_string(r) + ", column " +
                                        std::to_string(c) + " is not finite");
                }
            }
        }
    }
    SparseCode<typename Model::scalar_type> code;
    sae.encode_sparse(batch, code);
    const Matrix<typename Model::scalar_type> x_hat = sae.decode(code);
    evaluation.add(batch, x_hat, code);
}

}  // namespace sae
