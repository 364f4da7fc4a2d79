#pragma once
/// \file metrics.hpp
/// Quality and health metrics of a sparse autoencoder: reconstruction error (MSE, FVU),
/// sparsity (L0), dead-latent bookkeeping over a token window and the feature-density
/// histogram. All sums are accumulated in double, whatever the Scalar.
///
/// Abstract:
///   mean_squared_error(x, x_hat)     requires equal, non-empty shapes (shape_error).
///                                    ensures mean over all elements of (x - x_hat)^2.
///   fraction_of_variance_unexplained requires equal shapes with >= 2 rows (shape_error) and
///                                    x not constant over rows (numeric_error).
///                                    ensures sum ||x - x_hat||^2 / sum ||x - mean_rows(x)||^2.
///   mean_l0(code)                    requires code.rows() > 0 (shape_error).
///                                    ensures mean count of stored entries != 0 per row.
///   FiringTracker                    per latent: tokens since it last fired (dead when
///                                    > dead_after_tokens, as sparsify and SAELens compare),
///                                    and fire counts / tokens since reset_density();
///                                    updated from a code, or from per-latent counts of
///                                    active rows (a batch seen in micro-batches).
///   feature_density_histogram        histogram of log10(firing rate) on [log10_min, 0];
///                                    rates of exactly 0 are counted in never_fired.

#include "error.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <Eigen/SparseCore>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace sae {

namespace detail {
inline std::string metrics_shape_string(Index rows, Index cols) {
    return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

template <class DX, class DY>
void metrics_require_same_shape(const char* where, const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& x_hat) {
    static_assert(std::is_same<typename DX::Scalar, typename DY::Scalar>::value,
                  "x and x_hat must have the same Scalar type");
    if (x.rows() != x_hat.rows() || x.cols() != x_hat.cols()) {
        throw shape_error(std::string(where) + ": x is " + metrics_shape_string(x.rows(), x.cols()) + " but x_hat is " +
                          metrics_shape_string(x_hat.rows(), x_hat.cols()));
    }
}

template <class DX, class DY>
double metrics_squared_error_sum(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& x_hat) {
    return (x.template cast<double>() - x_hat.template cast<double>()).squaredNorm();
}

/// Calls visit(col, value) for every stored entry of `code` whose value is non-zero
/// (works in compressed and uncompressed mode).
template <class Scalar, class Visitor>
void for_each_active_latent(const SparseCode<Scalar>& code, Visitor&& visit) {
    for (Index row = 0; row < code.outerSize(); ++row) {
        for (typename SparseCode<Scalar>::InnerIterator it(code, row); it; ++it) {
            if (it.value() != Scalar(0)) visit(it.col(), it.value());
        }
    }
}
}  // namespace detail

/// Mean over all elements of (x - x_hat)^2.
template <class DX, class DY>
double mean_squared_error(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& x_hat) {
    detail::metrics_require_same_shape("mean_squared_error", x, x_hat);
    if (x.size() == 0) throw shape_error("mean_squared_error: x is empty " + detail::metrics_shape_string(x.rows(), x.cols()));
    return detail::metrics_squared_error_sum(x, x_hat) / static_cast<double>(x.size());
}

/// Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean_rows(x)||^2,
/// the variance pooled over the whole batch (not averaged per sample).
template <class DX, class DY>
double fraction_of_variance_unexplained(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DY>& x_hat) {
    detail::metrics_require_same_shape("fraction_of_variance_unexplained", x, x_hat);
    if (x.rows() < 2 || x.cols() == 0) {
        throw shape_error("fraction_of_variance_unexplained: x needs >= 2 rows and >= 1 column, got " +
                          detail::metrics_shape_string(x.rows(), x.cols()));
    }
    const Eigen::RowVectorXd mean = x.template cast<double>().colwise().mean();
    const double total = (x.template cast<double>().rowwise() - mean).squaredNorm();
    if (!(total > 0.0)) {
        throw numeric_error("fraction_of_variance_unexplained: x has zero (or non-finite) variance: " +
                            std::to_string(total));
    }
    return detail::metrics_squared_error_sum(x, x_hat) / total;
}

/// Mean number of active (stored and non-zero) latents per row.
template <class Scalar>
double mean_l0(const SparseCode<Scalar>& code) {
    if (code.rows() == 0) throw shape_error("mean_l0: the code has no rows");
    std::int64_t active = 0;
    detail::for_each_active_latent(code, [&active](Index, Scalar) { ++active; });
    return static_cast<double>(active) / static_cast<double>(code.rows());
}

/// Dead-latent bookkeeping over a window of tokens (sparsify's num_tokens_since_fired)
/// plus fire counts for the feature density since the last reset_density().
class FiringTracker {
public:
    using Counts = Eigen::Array<std::int64_t, Eigen::Dynamic, 1>;

    explicit FiringTracker(Index num_latents = 0, std::size_t dead_after_tokens = 10'000'000)
        : dead_after_tokens_(dead_after_tokens) {
        if (num_latents < 0) {
            throw config_error("FiringTracker: num_latents must be >= 0, got " + std::to_string(num_latents));
        }
        tokens_since_fired_ = Counts::Zero(num_latents);
        fire_counts_ = Counts::Zero(num_latents);
    }

    /// Rows of `code` are tokens. A latent active in any row restarts its count at 0;
    /// every other latent ages by code.rows() tokens. Throws shape_error when
    /// code.cols() != num_latents().
    template <class Scalar>
    void update(const SparseCode<Scalar>& code) {
        if (code.cols() != num_latents()) {
            throw shape_error("FiringTracker::update: code has " + std::to_string(code.cols()) +
                              " latents, the tracker " + std::to_string(num_latents()));
        }
        Counts rows_fired = Counts::Zero(num_latents());
        count_active_rows(code, rows_fired);
        update_counts(rows_fired, static_cast<std::int64_t>(code.rows()));
    }

    /// The same update from counts alone, for a batch seen in parts (micro-batches):
    /// `rows_fired(j)` = the number of the `tokens` rows in which latent j was active.
    /// Throws shape_error on a size mismatch and config_error on a count outside [0, tokens].
    void update_counts(const Counts& rows_fired, std::int64_t tokens) {
        require_counts("update_counts", rows_fired);
        if (tokens < 0 || (rows_fired > tokens).any()) {
            throw config_error("FiringTracker::update_counts: tokens " + std::to_string(tokens) +
                               " is negative or below a count");
        }
        fire_counts_ += rows_fired;
        // In place, element by element: a training step calls this, and allocates nothing.
        tokens_since_fired_ = (rows_fired > 0).select(std::int64_t(0), tokens_since_fired_ + tokens);
        tokens_seen_ += tokens;
    }

    /// Adds to `rows_fired(j)` the number of rows of `code` in which latent j is active
    /// (stored and non-zero): what update_counts takes. `rows_fired` must have code.cols()
    /// entries (shape_error).
    template <class Scalar>
    static void count_active_rows(const SparseCode<Scalar>& code, Counts& rows_fired) {
        if (rows_fired.size() != code.cols()) {
            throw shape_error("FiringTracker::count_active_rows: code has " + std::to_string(code.cols()) +
                              " latents, the counts " + std::to_string(rows_fired.size()));
        }
        detail::for_each_active_latent(code, [&rows_fired](Index latent, Scalar) { ++rows_fired(latent); });
    }

    Index num_latents() const { return tokens_since_fired_.size(); }
    std::size_t dead_after_tokens() const { return dead_after_tokens_; }

    /// Latents that have not fired for more than dead_after_tokens() tokens.
    Eigen::Array<bool, Eigen::Dynamic, 1> dead_mask() const {
        Eigen::Array<bool, Eigen::Dynamic, 1> mask;
        dead_mask(mask);
        return mask;
    }

    /// The same into `mask`, which is resized only when its size differs (so a caller
    /// that keeps it, a training step, allocates nothing).
    void dead_mask(Eigen::Array<bool, Eigen::Dynamic, 1>& mask) const {
        mask = tokens_since_fired_ > static_cast<std::int64_t>(dead_after_tokens_);
    }

    /// Fraction of latents that are dead (0 for a tracker without latents).
    double dead_fraction() const {
        if (num_latents() == 0) return 0.0;
        const Index dead = (tokens_since_fired_ > static_cast<std::int64_t>(dead_after_tokens_)).count();
        return static_cast<double>(dead) / static_cast<double>(num_latents());
    }

    const Counts& tokens_since_fired() const { return tokens_since_fired_; }
    const Counts& fire_counts() const { return fire_counts_; }
    std::int64_t tokens_seen() const { return tokens_seen_; }

    /// Fire count / tokens seen since the last reset_density() (zeros before any token).
    Eigen::ArrayXd firing_rate() const {
        if (tokens_seen_ == 0) return Eigen::ArrayXd::Zero(num_latents());
        return fire_counts_.cast<double>() / static_cast<double>(tokens_seen_);
    }

    /// Start a new density window; the dead-latent counts are kept.
    void reset_density() {
        fire_counts_.setZero();
        tokens_seen_ = 0;
    }

    /// Forget everything, as a freshly built tracker of the same size.
    void reset() {
        reset_density();
        tokens_since_fired_.setZero();
    }

    /// Restore checkpointed counts. Throws shape_error on a size mismatch and
    /// config_error on a negative count.
    void set_tokens_since_fired(const Counts& tokens_since_fired) {
        require_counts("set_tokens_since_fired", tokens_since_fired);
        tokens_since_fired_ = tokens_since_fired;
    }

    /// Restore a checkpointed density window (same checks as set_tokens_since_fired).
    void set_density_counts(const Counts& fire_counts, std::int64_t tokens_seen) {
        require_counts("set_density_counts", fire_counts);
        if (tokens_seen < 0 || (fire_counts > tokens_seen).any()) {
            throw config_error("FiringTracker::set_density_counts: tokens_seen " + std::to_string(tokens_seen) +
                               " is negative or below a fire count");
        }
        fire_counts_ = fire_counts;
        tokens_seen_ = tokens_seen;
    }

private:
    void require_counts(const char* where, const Counts& counts) const {
        if (counts.size() != num_latents()) {
            throw shape_error(std::string("FiringTracker::") + where + ": got " + std::to_string(counts.size()) +
                              " counts for " + std::to_string(num_latents()) + " latents");
        }
        if ((counts < 0).any()) throw config_error(std::string("FiringTracker::") + where + ": negative count");
    }

    std::size_t dead_after_tokens_;
    Counts tokens_since_fired_;
    Counts fire_counts_;
    std::int64_t tokens_seen_ = 0;
};

/// Histogram of log10(firing rate): `edges` has bins + 1 values evenly spaced from
/// log10_min to 0, `counts[i]` counts rates in [edges[i], edges[i+1]) (the last bin
/// also holds rate 1, the first also rates below 10^log10_min), and `never_fired`
/// counts rates of exactly 0.
struct DensityHistogram {
    std::vector<double> edges;
    std::vector<std::int64_t> counts;
    std::int64_t never_fired = 0;
};

/// Throws config_error for bins < 1 or a log10_min that is not finite and < 0, and
/// numeric_error for a rate outside [0, 1] (NaN included), naming its index.
inline DensityHistogram feature_density_histogram(const Eigen::ArrayXd& firing_rate, int bins = 50,
                                                  double log10_min = -8.0) {
    if (bins < 1) throw config_error("feature_density_histogram: bins must be >= 1, got " + std::to_string(bins));
    if (!(std::isfinite(log10_min) && log10_min < 0.0)) {
        throw config_error("feature_density_histogram: log10_min must be finite and < 0, got " +
                           std::to_string(log10_min));
    }
    DensityHistogram histogram;
    const Eigen::ArrayXd edges = Eigen::ArrayXd::LinSpaced(bins + 1, log10_min, 0.0);
    histogram.edges.assign(edges.data(), edges.data() + edges.size());
    histogram.counts.assign(static_cast<std::size_t>(bins), 0);
    const double bin_width = -log10_min / bins;
    for (Index i = 0; i < firing_rate.size(); ++i) {
        const double rate = firing_rate(i);
        if (!(rate >= 0.0 && rate <= 1.0)) {
            throw numeric_error("feature_density_histogram: firing_rate[" + std::to_string(i) + "] = " +
                                std::to_string(rate) + " is outside [0, 1]");
        }
        if (rate == 0.0) {
            ++histogram.never_fired;
            continue;
        }
        const double position = std::floor((std::log10(rate) - log10_min) / bin_width);
        const double clamped = std::clamp(position, 0.0, static_cast<double>(bins - 1));
        ++histogram.counts[static_cast<std::size_t>(clamped)];
    }
    return histogram;
}

}  // namespace sae
