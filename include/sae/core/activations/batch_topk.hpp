#pragma once
/// \file batch_topk.hpp
/// BatchTopK activation (Bussmann et al. 2024). Training: keep the k * batch largest
/// pre-activations of the whole batch (then ReLU), so rows share a sparsity budget.
/// Inference: one threshold theta, `f = pre * (pre > theta)`, where theta is an
/// exponential moving average of the smallest value kept in each training batch
/// (as dictionary_learning does). Before any training batch has been seen there is no
/// threshold yet, and inference falls back to the batch selection.

#include "../sparse_code_builder.hpp"
#include "common.hpp"
#include "topk.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace sae {

template <class Scalar>
class BatchTopK : public detail::PassThroughGradient<Scalar> {
public:
    using scalar_type = Scalar;
    static constexpr const char* architecture = "batchtopk";
    static constexpr bool has_parameter = true;
    static constexpr bool trains_parameter = false;
    /// Training keeps the k * rows largest values of the whole batch: a row's selection
    /// depends on the other rows, so a step is never cut into micro-batches
    /// (TrainableSae, TrainingConfig::micro_batch_rows).
    static constexpr bool selects_over_batch = true;

    struct Config {
        Index k = 32;                   ///< mean active latents per row
        double threshold_momentum = 0.999;  ///< EMA factor of the inference threshold
    };

    BatchTopK(const Config& config, Index d_sae) : config_(config), threshold_(RowVector<Scalar>::Zero(1)) {
        detail::check_k(architecture, config.k, d_sae);
        if (!(config.threshold_momentum >= 0.0 && config.threshold_momentum < 1.0)) {
            throw config_error("batchtopk: threshold_momentum = " + std::to_string(config.threshold_momentum) +
                               " must be in [0, 1)");
        }
    }

    const Config& config() const { return config_; }

    /// True once a training batch has set the inference threshold.
    bool threshold_estimated() const { return estimated_; }

    void select_inference(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        if (!estimated_) {
            select_batch(pre, code);
            return;
        }
        const Scalar theta = std::max(threshold_(0), Scalar(0));
        detail::select_above(pre, [theta](Index) { return theta; }, code);
    }

    void select_training(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) {
        const Scalar smallest_kept = select_batch(pre, code);
        if (code.nonZeros() == 0) return;
        if (!estimated_) {
            threshold_(0) = smallest_kept;
            estimated_ = true;
        } else {
            const Scalar beta = static_cast<Scalar>(config_.threshold_momentum);
            threshold_(0) = beta * threshold_(0) + (Scalar(1) - beta) * smallest_kept;
        }
    }

    /// The inference threshold, a vector of one element (SAELens stores it per latent;
    /// a saver broadcasts it).
    RowVector<Scalar>& parameter() { return threshold_; }
    const RowVector<Scalar>& parameter() const { return threshold_; }
    const char* parameter_name() const { return "threshold"; }

    /// Restore an estimated threshold (e.g. from a checkpoint).
    void set_threshold(Scalar theta) {
        threshold_(0) = theta;
        estimated_ = true;
    }

private:
    /// Keep the k * rows largest positive entries of the whole batch; returns the
    /// smallest kept value (0 when nothing is kept).
    Scalar select_batch(const ConstMatrixRef<Scalar>& pre, SparseCode<Scalar>& code) const {
        const Index total = pre.rows() * pre.cols();
        const Index budget = std::min(total, config_.k * pre.rows());
        std::vector<Index> order(static_cast<std::size_t>(total));
        for (Index i = 0; i < total; ++i) order[static_cast<std::size_t>(i)] = i;
        const auto value = [&pre](Index flat) { return pre(flat / pre.cols(), flat % pre.cols()); };
        const auto larger = [&value](Index a, Index b) {
            const Scalar va = value(a), vb = value(b);
            return va > vb || (va == vb && a < b);
        };
        if (budget < total) std::nth_element(order.begin(), order.begin() + budget, order.end(), larger);
        order.resize(static_cast<std::size_t>(budget));
        std::sort(order.begin(), order.end());  // flat row-major order = rows, then columns

        SparseCodeBuilder<Scalar> builder;
        builder.start(pre.rows(), pre.cols(), budget);
        Scalar smallest = std::numeric_limits<Scalar>::max();
        std::size_t next = 0;
        for (Index r = 0; r < pre.rows(); ++r) {
            for (; next < order.size() && order[next] / pre.cols() == r; ++next) {
                const Scalar v = value(order[next]);
                if (v > Scalar(0)) {
                    builder.push(order[next] % pre.cols(), v);
                    smallest = std::min(smallest, v);
                }
            }
            builder.end_row();
        }
        builder.finish(code);
        return code.nonZeros() > 0 ? smallest : Scalar(0);
    }

    Config config_;
    RowVector<Scalar> threshold_;
    bool estimated_ = false;
};

}  // namespace sae
