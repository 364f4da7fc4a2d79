#pragma once
/// \file trainable_sae.hpp
/// `TrainableSae`: one SAE together with everything that trains it — Adam, the
/// learning-rate and sparsity-coefficient schedules, gradient clipping, the decoder
/// constraint, dead-latent tracking for AuxK, data-dependent initialisation and the
/// MFR authors' re-initialisation rule. It models the trainer's Model concept
/// (`train_step`, `step`), and exposes the two halves of a step
/// (`compute_gradients`, `apply_gradients`) so that an MFR ensemble can add its
/// coupling gradient in between.
///
/// Thread safety: a TrainableSae is used by one thread at a time (train_step changes
/// it); to encode from several threads at once, share model() (a const Autoencoder,
/// autoencoder.hpp), which is safe to call concurrently.
///
/// A step:
///  1. first step only: estimate the input scale (E||s x|| = sqrt(d_in)) and set
///     b_dec to the geometric median of the batch (untied SAEs with a decoder bias);
///  2. loss and gradients on s * batch (loss.hpp);
///  3. re-initialisation rule (optional): with r_j the firing rate of latent j in the
///     batch and t the target rate (default k / d_sae), if
///     mean_j (|r_j - t| / t)^3 > threshold, the SAE gets fresh weights and a fresh
///     Adam, and step 2 is repeated;
///  4. (caller may add a term to the decoder-row gradient here: coupling_gradient();
///     a data-parallel caller may replace the data gradient: exchange_gradients())
///  5. decoder projection, clipping, Adam with the scheduled rate, decoder
///     renormalisation, dead-latent counters.
///
/// Step 5 is fused per block of latents (loss.hpp, latent_block_gradient): a block's gradient
/// is formed, projected, clipped and applied by Adam, and its decoder rows renormalised,
/// while it is in cache; no gradient of size [d_in, d_sae] is stored (but by a step cut
/// into micro-batches, below), so training needs little more memory than the parameters,
/// Adam's moments and the batch. With gradient clipping the global norm must be known
/// first: the (cheap, sparse) gradient is then formed twice, once for the norm and once
/// for the update.
///
/// Micro-batches: a step also keeps buffers that grow with the batch (x - b_dec and
/// dL/dx_hat, [batch, d_in] each, the sparse codes and their transposes). When the batch
/// has many more rows than the SAE has latents (the MFR paper's 256 -> 512 with batches of
/// 10,000), steps 2-3 run on slices of the batch (TrainingConfig::micro_batch_rows,
/// micro_batch_count) that reuse one slice's buffers: each slice's gradient, with
/// every mean still taken over the whole batch, is added into dense [d_sae, d_in]
/// accumulators, and step 5 reads those instead of the cache (the same path as a
/// data-parallel exchange). The firing counts of the reinit rule and the dead-latent
/// tracker are summed over the slices. The result equals the unsplit step up to rounding.
///
/// Adam updates every row, touched by the batch or not: a row without gradient still
/// moves (its moments decay and m / sqrt(v) stays non-zero), and skipping it would not be
/// Adam (torch's SparseAdam is a different optimiser). At the benchmark shapes nearly every
/// latent fires in a batch anyway.

#include "adam.hpp"
#include "autoencoder.hpp"
#include "geometric_median.hpp"
#include "loss.hpp"
#include "metrics.hpp"
#include "parallel.hpp"
#include "schedule.hpp"
#include "state_dict.hpp"
#include "step_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

/// The MFR authors' rule for restarting an SAE whose firing rates are far from the
/// target: mean_j (|r_j - t| / t)^3 > threshold.
struct ReinitRule {
    bool enabled = false;
    double threshold = 2.5;    ///< authors' default
    double target_rate = 0.0;  ///< t; 0 = k / d_sae (1/16 in the authors' synthetic set-up)

    void validate() const {
        if (!(threshold > 0.0)) throw config_error("reinit.threshold = " + std::to_string(threshold) + " must be > 0");
        if (!(target_rate >= 0.0 && target_rate <= 1.0)) {
            throw config_error("reinit.target_rate = " + std::to_string(target_rate) + " must be in [0, 1]");
        }
    }
};

/// Everything about how one SAE is optimised.
struct TrainingConfig {
    LearningRateSchedule learning_rate{};  ///< base rate 1e-3, warm-up and decay
    AdamConfig adam{};
    CoefficientWarmup sparsity{};          ///< lambda of the L1/L0 penalty, with warm-up
    LossConfig loss{};
    double max_grad_norm = 0.0;            ///< global gradient-norm clip; 0 = off
    std::size_t dead_after_tokens = 10'000'000;  ///< a latent silent this long is dead
    bool init_decoder_bias_to_median = true;     ///< untied SAEs with a decoder bias
    bool normalize_inputs = false;         ///< scale inputs so E||x|| = sqrt(d_in)
    ReinitRule reinit{};
    /// Most rows per forward/backward slice of a step (gradient accumulation over
    /// micro-batches, see the file comment); 0 = automatic (micro_batch_count); a value >=
    /// the batch's rows never splits. Must be 0 with BatchTopK, which selects over the
    /// whole batch.
    Index micro_batch_rows = 0;

    void validate() const {
        learning_rate.validate();
        adam.validate();
        sparsity.validate();
        loss.validate();
        reinit.validate();
        if (!(max_grad_norm >= 0.0)) {
            throw config_error("max_grad_norm = " + std::to_string(max_grad_norm) + " must be >= 0");
        }
        if (dead_after_tokens == 0) throw config_error("dead_after_tokens must be positive");
        if (micro_batch_rows < 0) {
            throw config_error("micro_batch_rows = " + std::to_string(micro_batch_rows) + " must be >= 0 (0 = automatic)");
        }
    }
};

namespace detail {
/// The smallest micro-batch of the automatic rule (micro_batch_count): 4 encoder tasks
/// of stream_block_rows rows. At 256 -> 512, k 32 a step holds about 5 KiB per row of its
/// slice (x - b_dec, dL/dx_hat, the codes and their transposes), so slices of this size
/// keep the peak memory within 1.2x of parameters + Adam + two batches.
inline constexpr Index micro_batch_min_rows = 1024;
}  // namespace detail

/// Number of micro-batches a step on `rows` rows of an SAE with `d_sae` latents is cut
/// into, under TrainingConfig::micro_batch_rows = `micro_batch_rows`; 1 = not split.
/// Micro-batch i holds rows [rows * i / n, rows * (i + 1) / n): sizes differ by one row
/// at most. Explicit (> 0): n = ceil(rows / micro_batch_rows), so no slice exceeds it.
/// Automatic (0): slices of about s = max(1024, d_sae) rows, and only when rows > s + d_sae.
/// Why: the buffers a step holds grow with its rows (x - b_dec and dL/dx_hat, 2 rows d_in
/// values, plus the sparse codes), while a split step accumulates its gradient in
/// 2 d_sae d_in values; slices of s rows save at least 2 (rows - s) d_in values, more
/// than the accumulators cost exactly when rows - s > d_sae. So 256 -> 512 with batches of
/// 10,000 is cut into 10 slices of 1000 rows, while 768 -> 3072 with 500 rows and
/// 768 -> 24,576 with 4096 are not split. The cut depends on neither the threads nor the
/// data, so neither do the results.
inline Index micro_batch_count(Index micro_batch_rows, Index rows, Index d_sae) {
    if (rows <= 1) return 1;
    if (micro_batch_rows > 0) return (rows + micro_batch_rows - 1) / micro_batch_rows;
    const Index slice = std::max(detail::micro_batch_min_rows, d_sae);
    return rows > slice + d_sae ? (rows + slice - 1) / slice : 1;
}

namespace detail {

template <class Config, class = void>
struct has_k : std::false_type {};
template <class Config>
struct has_k<Config, std::void_t<decltype(std::declval<Config>().k)>> : std::true_type {};

/// Activations whose parameter is estimated during training rather than set at
/// construction (BatchTopK's threshold) say whether the estimate exists yet.
template <class Activation, class = void>
struct has_estimated_threshold : std::false_type {};
template <class Activation>
struct has_estimated_threshold<Activation, std::void_t<decltype(std::declval<const Activation&>().threshold_estimated())>>
    : std::true_type {};

/// Activations whose training-time selection couples the rows of a batch declare
/// `selects_over_batch = true` (BatchTopK); their steps are never split into micro-batches.
template <class Activation, class = void>
struct selects_over_batch : std::false_type {};
template <class Activation>
struct selects_over_batch<Activation, std::enable_if_t<Activation::selects_over_batch>> : std::true_type {};

}  // namespace detail

/// Deterministic, well-mixed seed for member `index` of a family seeded by `seed`
/// (SplitMix64), so that neighbouring members do not get correlated streams.
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

template <class Scalar, template <class> class Act>
class TrainableSae {
public:
    using scalar_type = Scalar;
    using Model = Autoencoder<Scalar, Act>;
    using ActivationConfig = typename Model::ActivationConfig;

    TrainableSae(const AutoencoderConfig& model_config, const ActivationConfig& activation_config,
                 const TrainingConfig& training, std::uint64_t seed)
        : training_((training.validate(), training)), seed_(seed), model_(model_config, activation_config, seed),
          adam_(training.adam), firing_(model_config.d_sae, training.dead_after_tokens) {
        if (training_.normalize_inputs && model_config.tied) {
            throw config_error("normalize_inputs: a tied SAE cannot absorb the input scale; use an untied SAE");
        }
        if (training_.reinit.enabled) reinit_target_ = resolve_target_rate();
        if constexpr (detail::selects_over_batch<typename Model::Activation>::value) {
            if (training_.micro_batch_rows > 0) {
                throw config_error("micro_batch_rows = " + std::to_string(training_.micro_batch_rows) + ": the " +
                                   Model::Activation::architecture +
                                   " activation selects over the whole batch, which cannot be cut into micro-batches; "
                                   "set it to 0 (its steps are never split)");
            }
        }
    }

    /// One full optimisation step on `batch` [batch, d_in].
    StepReport train_step(const ConstMatrixRef<Scalar>& batch) {
        const LossBreakdown loss = compute_gradients(batch);
        apply_gradients();
        return report(loss);
    }

    /// Steps 1-3 of the file comment; leaves in cache() (or, for a step split into
    /// micro-batches, in dense accumulators) what apply_gradients needs.
    LossBreakdown compute_gradients(const ConstMatrixRef<Scalar>& batch) {
        detail::check_training_batch<Scalar>(batch, model_.d_in(), "TrainableSae::train_step");
        if (!initialised_) initialise_from(batch);
        reinitialized_ = false;
        dense_active_ = false;
        coupling_active_ = false;  // a coupling term belongs to the step it was made for
        LossBreakdown loss = evaluate(batch);
        if (training_.reinit.enabled) {
            activity_ = firing_rate_deviation(step_fire_counts_, batch.rows());
            if (activity_ > training_.reinit.threshold) {
                restart();
                loss = evaluate(batch);
            }
        }
        samples_in_step_ = batch.rows();
        return loss;
    }

    /// Micro-batches of a step on `rows` rows (micro_batch_count; 1 for BatchTopK, whose
    /// steps are never split).
    Index micro_batches_for(Index rows) const {
        if constexpr (detail::selects_over_batch<typename Model::Activation>::value) {
            return 1;
        } else {
            return micro_batch_count(training_.micro_batch_rows, rows, model_.d_sae());
        }
    }

    /// Step 5 of the file comment. Throws numeric_error, before anything changes, when
    /// the loss of the step is not finite or (with clipping) the gradient is not; a
    /// gradient that overflows only while being applied (a finite loss whose gradient
    /// does not fit the Scalar) also throws numeric_error, with the SAE partly updated.
    void apply_gradients() {
        if (!std::isfinite(last_loss_.total())) {
            throw numeric_error("TrainableSae: the loss of step " + std::to_string(step_ + 1) + " is not finite (" +
                                std::to_string(last_loss_.total()) + "); no update was made");
        }
        const Matrix<Scalar>* coupling = coupling_active_ ? &coupling_ : nullptr;
        coupling_active_ = false;
        const bool dense = dense_active_;
        dense_active_ = false;
        Scalar scale(1);
        if (training_.max_grad_norm > 0.0) {
            grad_norm_ = fused_update(coupling, dense, nullptr, scale);
            if (grad_norm_ > training_.max_grad_norm) scale = static_cast<Scalar>(training_.max_grad_norm / grad_norm_);
        }
        learning_rate_ = training_.learning_rate.at(step_);
        if (parameter_shapes_.empty()) parameter_shapes_ = parameter_shapes();  // fixed by the model's configuration
        const std::vector<typename Adam<Scalar>::ParameterStep>& steps = adam_.begin_step(parameter_shapes_, learning_rate_);
        const double norm = fused_update(coupling, dense, &steps, scale);
        if (!(training_.max_grad_norm > 0.0)) grad_norm_ = norm;
        if (model_.config().tied) model_.refresh_tied_decoder();
        firing_.update_counts(step_fire_counts_, static_cast<std::int64_t>(samples_in_step_));
        ++step_;
        samples_ += static_cast<std::size_t>(samples_in_step_);
    }

    /// A further term of dL/dW_dec [d_sae, d_in] (decoder-row space, before the
    /// projection) that the next apply_gradients adds: zeroed by this call, to be filled
    /// by the caller between compute_gradients and apply_gradients (the MFR penalty).
    Matrix<Scalar>& coupling_gradient() {
        Matrix<Scalar>& coupling = coupling_gradient_to_overwrite();
        coupling.setZero();
        return coupling;
    }

    /// The same matrix without the zeroing: sized [d_sae, d_in], its entries left as they
    /// are, for a caller that writes every one of them (MfrEnsemble, through
    /// MfrPenalty's GradientOutput::overwrite). Saves a pass over the matrix per step.
    Matrix<Scalar>& coupling_gradient_to_overwrite() {
        coupling_.resize(model_.d_sae(), model_.d_in());
        coupling_active_ = true;
        return coupling_;
    }

    /// The data gradient of a step in the form exchange_gradients() hands out: row j of
    /// `decoder` is dL/dW_dec row j (decoder-row space, before the projection), row j of
    /// `encoder` is dL/dW_enc column j; both [d_sae, d_in].
    struct LatentGradients {
        Matrix<Scalar> decoder;
        Matrix<Scalar> encoder;
    };

    /// For data-parallel training (sae/mpi/data_parallel.hpp), between compute_gradients
    /// and apply_gradients: forms this step's data gradient (without coupling_gradient(),
    /// which depends only on the weights) and calls `exchange(name, data, size)` once per
    /// tensor — "W_dec" and "W_enc" (LatentGradients' layout), "b_enc", "b_dec" and the
    /// activation's parameter name, if it trains one — so that it can replace the values
    /// in place, e.g. by their mean over the ranks. The next apply_gradients then uses
    /// them instead of the batch's own. This materialises 2 x [d_sae, d_in] values, which
    /// the fused single-process step never stores: the price of one collective per step
    /// (a step split into micro-batches holds them already and hands out its sums).
    template <class Exchange>
    void exchange_gradients(Exchange&& exchange) {
        if (!dense_active_) collect_latent_gradients(model_, cache_, dense_.decoder, dense_.encoder);
        const auto hand_over = [&](const std::string& name, Scalar* data, Index size) {
            if (size > 0) exchange(name, data, static_cast<std::size_t>(size));
        };
        hand_over("W_dec", dense_.decoder.data(), dense_.decoder.size());
        hand_over("W_enc", dense_.encoder.data(), dense_.encoder.size());
        hand_over("b_enc", cache_.d_b_enc.data(), cache_.d_b_enc.size());
        if (model_.config().decoder_bias) hand_over("b_dec", cache_.d_b_dec.data(), cache_.d_b_dec.size());
        if constexpr (Model::Activation::trains_parameter) {
            hand_over(model_.activation().parameter_name(), parameter_gradient_.data(), parameter_gradient_.size());
        }
        dense_active_ = true;
    }

    /// The gradient of the last exchange_gradients, after the exchange.
    const LatentGradients& exchanged_gradients() const { return dense_; }

    /// The named metrics of the last step.
    StepReport report(const LossBreakdown& loss) const {
        StepReport r;
        r.step = step_;
        r.samples = samples_;
        r.loss = loss.total();
        r.metrics = {{"reconstruction", loss.reconstruction},
                     {"mse", last_mse()},
                     {"sparsity", loss.sparsity},
                     {"aux", loss.auxiliary},
                     {"l0", loss.mean_l0},
                     {"dead_fraction", firing_.dead_fraction()},
                     {"lr", learning_rate_},
                     {"grad_norm", grad_norm_}};
        if (training_.reinit.enabled) {
            r.metrics.emplace_back("activity_deviation", activity_);
            r.metrics.emplace_back("reinits", static_cast<double>(reinit_count_));
        }
        return r;
    }

    std::size_t step() const { return step_; }
    std::size_t samples() const { return samples_; }
    const Model& model() const { return model_; }
    Model& model() { return model_; }
    /// The buffers of the last forward/backward pass. After a step split into micro-batches
    /// they are the last slice's, except d_b_enc and d_b_dec: the whole batch's.
    const ForwardCache<Scalar>& cache() const { return cache_; }
    const FiringTracker& firing() const { return firing_; }
    const TrainingConfig& training_config() const { return training_; }
    Scalar input_scale() const { return input_scale_; }
    bool reinitialized_this_step() const { return reinitialized_; }
    std::size_t reinit_count() const { return reinit_count_; }
    const Adam<Scalar>& optimizer() const { return adam_; }

    /// The trained SAE for raw (unscaled) inputs: the input scale folded into the
    /// weights (SAELens' fold_activation_norm_scaling_factor).
    Model exported_model() const {
        Model copy = model_;
        if (input_scale_ != Scalar(1)) copy.fold_input_scale(input_scale_);
        return copy;
    }

    /// mean_j (|r_j - t| / t)^3 for the firing rates r_j of `code` (rows = samples),
    /// with t the rule's target rate (whether or not the rule is enabled).
    double firing_rate_deviation(const SparseCode<Scalar>& code) const {
        FiringTracker::Counts rows_fired = FiringTracker::Counts::Zero(model_.d_sae());
        FiringTracker::count_active_rows(code, rows_fired);
        return firing_rate_deviation(rows_fired, code.rows());
    }

    /// The same from counts: rows_fired(j) of `rows` rows had latent j active
    /// (FiringTracker::count_active_rows, summed over a batch's micro-batches).
    double firing_rate_deviation(const FiringTracker::Counts& rows_fired, Index rows) const {
        if (rows_fired.size() != model_.d_sae()) {
            throw shape_error("firing_rate_deviation: " + std::to_string(rows_fired.size()) + " counts for " +
                              std::to_string(model_.d_sae()) + " latents");
        }
        const Eigen::ArrayXd rates = rows_fired.cast<double>() / static_cast<double>(std::max<Index>(1, rows));
        const double target = reinit_target_ > 0.0 ? reinit_target_ : resolve_target_rate();
        return ((rates - target).abs() / target).cube().mean();
    }

    /// Writes everything needed to continue training bit for bit: weights, the
    /// activation's parameter, Adam's moments, the firing counters, the input scale,
    /// the median used by restarts, the step and sample counts and the seed.
    void save_state(StateDict<Scalar>& dict, const std::string& prefix = "") const {
        dict.put(prefix + "W_enc", model_.W_enc());
        dict.put(prefix + "b_enc", model_.b_enc());
        if (!model_.config().tied) dict.put(prefix + "W_dec", model_.W_dec());
        dict.put(prefix + "b_dec", model_.b_dec());
        if constexpr (Model::Activation::has_parameter) {
            dict.put(prefix + "activation/" + model_.activation().parameter_name(), model_.activation().parameter());
        }
        if constexpr (detail::has_estimated_threshold<typename Model::Activation>::value) {
            dict.set(prefix + "activation/estimated", model_.activation().threshold_estimated());
        }
        const std::vector<std::string> names = adam_.state_names();
        dict.set(prefix + "adam/names", names);
        dict.set(prefix + "adam/steps_taken", adam_.steps_taken());
        for (const std::string& name : names) {
            dict.put(prefix + "adam/" + name + "/m", adam_.first_moment(name));
            dict.put(prefix + "adam/" + name + "/v", adam_.second_moment(name));
        }
        dict.set_counts(prefix + "firing/tokens_since_fired", firing_.tokens_since_fired());
        dict.set_counts(prefix + "firing/fire_counts", firing_.fire_counts());
        dict.set(prefix + "firing/tokens_seen", firing_.tokens_seen());
        if (median_.size() > 0) dict.put(prefix + "median", median_);
        dict.set(prefix + "seed", seed_);
        dict.set(prefix + "step", step_);
        dict.set(prefix + "samples", samples_);
        dict.set(prefix + "input_scale", static_cast<double>(input_scale_));  // float -> double is exact
        dict.set(prefix + "initialised", initialised_);
        dict.set(prefix + "reinit_count", reinit_count_);
        dict.set(prefix + "report", std::vector<double>{activity_, learning_rate_, grad_norm_, last_squared_error_,
                                                        last_batch_elements_, static_cast<double>(samples_in_step_)});
    }

    /// Restores what save_state wrote. The checkpoint must come from an SAE of the same
    /// shape and activation (io_error naming the first tensor that does not fit).
    void load_state(const StateDict<Scalar>& dict, const std::string& prefix = "") {
        const Index d_in = model_.d_in(), d_sae = model_.d_sae();
        // Checked in file order, so the first mismatching tensor is the one reported.
        const Matrix<Scalar>& W_enc = dict.tensor(prefix + "W_enc", d_in, d_sae);
        const Matrix<Scalar>& b_enc = dict.tensor(prefix + "b_enc", 1, d_sae);
        const Matrix<Scalar>& W_dec = model_.config().tied ? model_.W_dec() : dict.tensor(prefix + "W_dec", d_sae, d_in);
        const Matrix<Scalar>& b_dec = dict.tensor(prefix + "b_dec", 1, d_in);
        model_.set_parameters(W_enc, b_enc, W_dec, b_dec);
        if constexpr (Model::Activation::has_parameter) {
            RowVector<Scalar>& parameter = model_.activation().parameter();
            parameter = dict.tensor(prefix + "activation/" + model_.activation().parameter_name(), 1, parameter.size());
        }
        if constexpr (detail::has_estimated_threshold<typename Model::Activation>::value) {
            if (dict.template get<bool>(prefix + "activation/estimated")) {
                model_.activation().set_threshold(model_.activation().parameter()(0));
            }
        }
        adam_.reset();
        const std::size_t adam_steps = dict.template get<std::size_t>(prefix + "adam/steps_taken");
        for (const std::string& name : dict.template get<std::vector<std::string>>(prefix + "adam/names")) {
            const std::string key = prefix + "adam/" + name;
            const Index size = parameter_size(name);
            adam_.restore(adam_steps, name, dict.tensor(key + "/m", size, 1).array(), dict.tensor(key + "/v", size, 1).array());
        }
        firing_.set_tokens_since_fired(dict.get_counts(prefix + "firing/tokens_since_fired", d_sae));
        firing_.set_density_counts(dict.get_counts(prefix + "firing/fire_counts", d_sae),
                                   dict.template get<std::int64_t>(prefix + "firing/tokens_seen"));
        median_ = dict.has_tensor(prefix + "median") ? RowVector<Scalar>(dict.tensor(prefix + "median", 1, d_in))
                                                     : RowVector<Scalar>();
        seed_ = dict.template get<std::uint64_t>(prefix + "seed");
        step_ = dict.template get<std::size_t>(prefix + "step");
        samples_ = dict.template get<std::size_t>(prefix + "samples");
        input_scale_ = static_cast<Scalar>(dict.template get<double>(prefix + "input_scale"));
        initialised_ = dict.template get<bool>(prefix + "initialised");
        reinit_count_ = dict.template get<std::size_t>(prefix + "reinit_count");
        const std::vector<double> report = dict.template get<std::vector<double>>(prefix + "report");
        if (report.size() != 6) throw io_error("checkpoint: value '" + prefix + "report' must have 6 entries");
        activity_ = report[0];
        learning_rate_ = report[1];
        grad_norm_ = report[2];
        last_squared_error_ = report[3];
        last_batch_elements_ = report[4];
        samples_in_step_ = static_cast<Index>(report[5]);
    }

private:
    /// Number of entries of the trainable parameter `name` (for Adam's moments).
    Index parameter_size(const std::string& name) const {
        if (name == "W_enc" || name == "W_dec") return model_.d_in() * model_.d_sae();
        if (name == "b_enc") return model_.d_sae();
        if (name == "b_dec") return model_.d_in();
        if constexpr (Model::Activation::trains_parameter) {
            if (name == model_.activation().parameter_name()) return model_.activation().parameter().size();
        }
        throw io_error("checkpoint: optimizer state for unknown parameter '" + name + "'");
    }

    double resolve_target_rate() const {
        if (training_.reinit.target_rate > 0.0) return training_.reinit.target_rate;
        if constexpr (detail::has_k<ActivationConfig>::value) {
            return static_cast<double>(model_.activation().config().k) / static_cast<double>(model_.d_sae());
        } else {
            throw config_error(std::string("reinit.target_rate must be set for the ") + Model::Activation::architecture +
                               " activation, which has no k");
        }
    }

    void initialise_from(const ConstMatrixRef<Scalar>& batch) {
        if (training_.normalize_inputs) {
            const double mean_norm = static_cast<double>(batch.rowwise().norm().mean());
            if (!(mean_norm > 0.0)) throw numeric_error("normalize_inputs: the first batch has zero norm");
            input_scale_ = static_cast<Scalar>(std::sqrt(static_cast<double>(model_.d_in())) / mean_norm);
        }
        if (uses_median_init()) {
            // The median of s x is s times the median of x: no scaled copy of the batch.
            median_ = geometric_median(batch);
            if (input_scale_ != Scalar(1)) median_ *= input_scale_;
        }
        initialised_ = true;
        apply_median();
    }

    bool uses_median_init() const {
        return training_.init_decoder_bias_to_median && model_.config().decoder_bias && !model_.config().tied;
    }

    void apply_median() {
        if (uses_median_init()) model_.mutable_b_dec() = median_;
    }

    /// The batch (already checked by compute_gradients) times the input scale; a scaled
    /// batch is checked again, since a large scale can overflow a finite entry.
    ConstMatrixRef<Scalar> scaled(const ConstMatrixRef<Scalar>& batch) {
        if (input_scale_ == Scalar(1)) return batch;
        scaled_batch_ = batch * input_scale_;
        detail::require_finite_rows(scaled_batch_, 0, "TrainableSae::train_step (the batch times the input scale)");
        return scaled_batch_;
    }

    /// Loss and gradient of the raw `batch` at this step's lambda and dead latents, in one
    /// pass (gradient left in cache_) or in micro-batches (summed into dense_); and
    /// step_fire_counts_, the rows each latent fired in.
    LossBreakdown evaluate(const ConstMatrixRef<Scalar>& batch) {
        firing_.dead_mask(dead_latents_);
        const Eigen::Array<bool, Eigen::Dynamic, 1>& dead = dead_latents_;
        const double lambda = training_.sparsity.at(step_);
        const Index rows = batch.rows(), slices = micro_batches_for(rows);
        parameter_gradient_.setZero(model_.activation().parameter().size());
        step_fire_counts_.setZero(model_.d_sae());
        if (slices == 1) {
            last_loss_ = detail::forward_backward_of_checked_batch(model_, scaled(batch), training_.loss, lambda, &dead,
                                                                   cache_, parameter_gradient_, rows);
            FiringTracker::count_active_rows(cache_.code, step_fire_counts_);
        } else {
            last_loss_ = LossBreakdown{};
            for (Index i = 0; i < slices; ++i) {
                const Index first = rows * i / slices, last = rows * (i + 1) / slices;
                const ConstMatrixRef<Scalar> slice = batch.middleRows(first, last - first);
                const LossBreakdown part = detail::forward_backward_of_checked_batch(
                    model_, scaled(slice), training_.loss, lambda, &dead, cache_, parameter_gradient_, rows);
                last_loss_.reconstruction += part.reconstruction;
                last_loss_.sparsity += part.sparsity;
                last_loss_.auxiliary += part.auxiliary;
                last_loss_.mean_l0 += part.mean_l0;
                add_slice_gradient(i == 0);
                FiringTracker::count_active_rows(cache_.code, step_fire_counts_);
            }
            // The bias gradients are small: the cache carries the batch's, as unsplit.
            cache_.d_b_enc.swap(d_b_enc_sum_);
            cache_.d_b_dec.swap(d_b_dec_sum_);
            dense_active_ = true;
        }
        last_batch_elements_ = static_cast<double>(batch.size());
        last_squared_error_ = last_loss_.reconstruction *
                              detail::reconstruction_denominator(training_.loss.normalization, rows, batch.cols());
        return last_loss_;
    }

    /// Adds the gradient of the slice in cache_ to the step's sums: the latent rows into
    /// dense_ (overwritten by the first slice), block by block in parallel, and the biases.
    /// Every entry is summed in slice order, whatever the threads.
    void add_slice_gradient(bool first_slice) {
        if (first_slice) {
            collect_latent_gradients(model_, cache_, dense_.decoder, dense_.encoder);
            d_b_enc_sum_ = cache_.d_b_enc;
            d_b_dec_sum_ = cache_.d_b_dec;
            return;
        }
        const Index d_in = model_.d_in(), d_sae = model_.d_sae();
        constexpr Index block_latents = detail::latent_block_size;
        const int threads = detail::available_threads();
        if (update_scratch_.size() < static_cast<std::size_t>(threads)) update_scratch_.resize(static_cast<std::size_t>(threads));
        detail::parallel_for((d_sae + block_latents - 1) / block_latents, [&](Index block, int slot) {
            const Index first = block * block_latents;
            const Index count = std::min(block_latents, d_sae - first);
            UpdateScratch& buffers = update_scratch_[static_cast<std::size_t>(slot)];
            buffers.decoder.resize(block_latents, d_in);
            buffers.encoder.resize(block_latents, d_in);
            latent_block_gradient(model_, cache_, block, nullptr, buffers.decoder.data(), buffers.encoder.data());
            dense_.decoder.middleRows(first, count) += buffers.decoder.topRows(count);
            dense_.encoder.middleRows(first, count) += buffers.encoder.topRows(count);
        });
        d_b_enc_sum_ += cache_.d_b_enc;
        d_b_dec_sum_ += cache_.d_b_dec;
    }

    /// Fresh weights (a new seed derived from the restart count) and a fresh Adam.
    void restart() {
        ++reinit_count_;
        model_.reinitialize(derive_seed(seed_, reinit_count_));
        apply_median();
        adam_.reset();
        reinitialized_ = true;
    }

    double last_mse() const { return last_batch_elements_ > 0 ? last_squared_error_ / last_batch_elements_ : 0.0; }

    /// The trainable tensors in Adam's order: the latent-indexed ones first (updated by
    /// fused_update's blocks), then the small ones.
    std::vector<std::pair<std::string, Index>> parameter_shapes() const {
        std::vector<std::pair<std::string, Index>> shapes{{"W_enc", model_.d_in() * model_.d_sae()}, {"b_enc", model_.d_sae()}};
        if (!model_.config().tied) shapes.emplace_back("W_dec", model_.d_sae() * model_.d_in());
        if (model_.config().decoder_bias) shapes.emplace_back("b_dec", model_.d_in());
        if constexpr (Model::Activation::trains_parameter) {
            shapes.emplace_back(model_.activation().parameter_name(), model_.activation().parameter().size());
        }
        return shapes;
    }

    /// Per-thread buffers of fused_update.
    struct UpdateScratch {
        Matrix<Scalar> decoder;       ///< [latent_block_size, d_in]: dL/dW_dec rows
        Matrix<Scalar> encoder;       ///< [latent_block_size, d_in]: dL/dW_enc columns, as rows
        Matrix<Scalar> encoder_rows;  ///< [d_in, latent_block_size]: the same, transposed
        RowVector<Scalar> bias;       ///< [latent_block_size]: dL/db_enc
    };

    /// Forms every latent's projected gradient, times `scale`, block by block; with
    /// `steps` (from adam_.begin_step(parameter_shapes())) also applies it and
    /// renormalises the decoder rows. Returns the global gradient norm (before `scale`).
    /// Without `steps` a non-finite gradient throws at once (nothing has changed); with
    /// them, after every finite block has been applied.
    /// With `dense`, the data gradient comes from dense_ (a micro-batched step's sums or
    /// exchange_gradients' result) instead of the cache.
    double fused_update(const Matrix<Scalar>* coupling, bool dense,
                        const std::vector<typename Adam<Scalar>::ParameterStep>* steps, Scalar scale) {
        const Index d_in = model_.d_in(), d_sae = model_.d_sae();
        const bool tied = model_.config().tied;
        constexpr Index block_latents = detail::latent_block_size;
        const Index blocks = (d_sae + block_latents - 1) / block_latents;
        const int threads = detail::available_threads();
        if (update_scratch_.size() < static_cast<std::size_t>(threads)) update_scratch_.resize(static_cast<std::size_t>(threads));
        block_squares_.assign(static_cast<std::size_t>(blocks), 0.0);
        block_fault_.assign(static_cast<std::size_t>(blocks), 0);
        Matrix<Scalar>& W_enc = model_.mutable_W_enc();
        RowVector<Scalar>& b_enc = model_.mutable_b_enc();
        Matrix<Scalar>* W_dec = tied ? nullptr : &model_.mutable_W_dec();
        const bool normalize = !tied && model_.config().unit_norm_decoder;

        detail::parallel_for(blocks, [&](Index block, int slot) {
            const Index first = block * block_latents;
            const Index count = std::min(block_latents, d_sae - first);
            UpdateScratch& buffers = update_scratch_[static_cast<std::size_t>(slot)];
            buffers.decoder.resize(block_latents, d_in);
            buffers.encoder.resize(block_latents, d_in);
            if (dense) {
                buffers.decoder.topRows(count) = dense_.decoder.middleRows(first, count);
                buffers.encoder.topRows(count) = dense_.encoder.middleRows(first, count);
                if (coupling != nullptr) buffers.decoder.topRows(count) += coupling->middleRows(first, count);
            } else {
                latent_block_gradient(model_, cache_, block, coupling, buffers.decoder.data(), buffers.encoder.data());
            }
            for (Index i = 0; i < count; ++i) {
                project_latent_gradient(model_, first + i, buffers.decoder.row(i).data(), buffers.encoder.row(i).data());
            }
            auto decoder = buffers.decoder.topRows(count);
            auto encoder = buffers.encoder.topRows(count);
            const auto bias = cache_.d_b_enc.segment(first, count);
            // Sums of squares in double: a float sum over millions of entries loses digits.
            const double parts[] = {encoder.template cast<double>().squaredNorm(), bias.template cast<double>().squaredNorm(),
                                    tied ? 0.0 : decoder.template cast<double>().squaredNorm()};
            block_squares_[static_cast<std::size_t>(block)] = parts[0] + parts[1] + parts[2];
            for (int part = 2; part >= 0; --part) {
                if (!std::isfinite(parts[part])) block_fault_[static_cast<std::size_t>(block)] = static_cast<char>(part + 1);
            }
            if (block_fault_[static_cast<std::size_t>(block)] != 0) return;
            if (steps == nullptr) return;
            if (scale != Scalar(1)) {
                decoder *= scale;
                encoder *= scale;
            }
            buffers.bias = scale * bias;
            (*steps)[1].apply(first, b_enc.data() + first, buffers.bias.data(), count);
            if (W_dec != nullptr) {
                (*steps)[2].apply(first * d_in, W_dec->row(first).data(), decoder.data(), count * d_in);
                if (normalize) {
                    for (Index j = first; j < first + count; ++j) W_dec->row(j).normalize();
                }
            }
            buffers.encoder_rows.resize(d_in, block_latents);
            buffers.encoder_rows.leftCols(count) = encoder.transpose();
            for (Index i = 0; i < d_in; ++i) {
                (*steps)[0].apply(i * d_sae + first, W_enc.row(i).data() + first, buffers.encoder_rows.row(i).data(), count);
            }
        });

        // The small tensors, after every block (b_dec's gradient used the old W_enc).
        double squares = static_cast<double>(cache_.d_b_dec.squaredNorm()) + static_cast<double>(parameter_gradient_.squaredNorm());
        for (double block_squares : block_squares_) squares += block_squares;
        const double norm = std::sqrt(squares);
        if (!std::isfinite(norm)) {
            static const char* const names[] = {"W_enc", "b_enc", "W_dec"};
            std::string name;
            for (Index block = blocks - 1; block >= 0; --block) {
                const char fault = block_fault_[static_cast<std::size_t>(block)];
                if (fault != 0) name = names[fault - 1];
            }
            if (name.empty() && !cache_.d_b_dec.allFinite()) name = "b_dec";
            if (name.empty() && !parameter_gradient_.allFinite()) name = model_.activation().parameter_name();
            const std::string what = name.empty() ? "the global gradient norm overflows" : "gradient of '" + name + "' contains NaN or Inf";
            throw numeric_error("TrainableSae: " + what + " at step " + std::to_string(step_ + 1) +
                                (steps == nullptr ? "; no update was made" : "; the latents with finite gradients were updated"));
        }
        if (steps != nullptr) {
            std::size_t next = tied ? 2 : 3;
            if (model_.config().decoder_bias) {
                const RowVector<Scalar> gradient = scale * cache_.d_b_dec;
                (*steps)[next++].apply(0, model_.mutable_b_dec().data(), gradient.data(), d_in);
            }
            if constexpr (Model::Activation::trains_parameter) {
                const RowVector<Scalar> gradient = scale * parameter_gradient_;
                RowVector<Scalar>& parameter = model_.activation().parameter();
                (*steps)[next].apply(0, parameter.data(), gradient.data(), parameter.size());
            }
        }
        return norm;
    }

    TrainingConfig training_;
    std::uint64_t seed_;
    Model model_;
    Adam<Scalar> adam_;
    FiringTracker firing_;
    ForwardCache<Scalar> cache_;
    RowVector<Scalar> parameter_gradient_;  ///< dL/d(activation parameter), if it trains one
    LossBreakdown last_loss_;
    Matrix<Scalar> coupling_;               ///< see coupling_gradient()
    bool coupling_active_ = false;
    LatentGradients dense_;                 ///< the step's data gradient, dense: micro-batch sums or exchange_gradients()
    bool dense_active_ = false;             ///< apply_gradients reads dense_ rather than cache_
    RowVector<Scalar> d_b_enc_sum_;         ///< micro-batch sums of dL/db_enc
    RowVector<Scalar> d_b_dec_sum_;         ///< micro-batch sums of dL/db_dec
    FiringTracker::Counts step_fire_counts_;  ///< per latent: rows of this step's batch it fired in
    Eigen::Array<bool, Eigen::Dynamic, 1> dead_latents_;  ///< this step's dead latents (kept: a step allocates nothing)
    std::vector<std::pair<std::string, Index>> parameter_shapes_;  ///< parameter_shapes(), made once
    std::vector<UpdateScratch> update_scratch_;
    std::vector<double> block_squares_;
    std::vector<char> block_fault_;  ///< per latent block: 0, or 1 + the index of the first non-finite part
    Matrix<Scalar> scaled_batch_;
    RowVector<Scalar> median_;
    Scalar input_scale_ = Scalar(1);
    bool initialised_ = false;
    bool reinitialized_ = false;
    double reinit_target_ = 0.0;
    double activity_ = 0.0;
    double learning_rate_ = 0.0;
    double grad_norm_ = 0.0;
    double last_squared_error_ = 0.0;
    double last_batch_elements_ = 0.0;
    Index samples_in_step_ = 0;
    std::size_t reinit_count_ = 0;
    std::size_t step_ = 0;
    std::size_t samples_ = 0;
};

}  // namespace sae
