#pragma once
/// \file trainer.hpp
/// The one training loop of libsae, shared by a single SAE and an MFR ensemble:
/// `train(model, source, config, callbacks...)`. Callbacks are a forwarding pack and
/// every hook is optional (ensmallen style); missing requirements are reported by
/// `static_assert` with a readable message instead of a template backtrace.
///
/// ---------------------------------------------------------------------------------
/// CONCEPT Model   (abstract)
///     typename Model::scalar_type
///         - float or double: the Scalar of the batches the model trains on.
///     StepReport train_step(const ConstMatrixRef<scalar_type>& batch);
///         requires: batch is [batch_size, d_in] and every value is finite
///                   (the trainer checks this when TrainerConfig::check_finite).
///         ensures:  takes exactly one optimisation step; afterwards step() has grown
///                   by one; returns the report of that step (`report.step` is the new
///                   step(), `report.samples` the cumulative sample count). May throw
///                   numeric_fault_error carrying the fault's kind and tensor (e.g.
///                   {FaultKind::loss, step, "loss", ...}); any other numeric_error is
///                   taken as a state fault (tensor: the first name it quotes, else
///                   "gradients"). The model may be partly updated when it throws.
///     std::size_t step() const;
///         ensures:  the number of steps taken so far. A model restored from a
///                   checkpoint returns the step it was saved at, so `train` resumes
///                   where the earlier run stopped.
///     optional: save_state(StateDict<scalar_type>&) const / load_state(const StateDict&)
///                   needed only by the skip_batch policy for loss and state faults,
///                   which undoes the faulty step;
///               for_each_state_tensor / members() / model()+optimizer() and
///               members() / firing() for the state and dead-latent checks
///               (numeric_faults.hpp). TrainableSae and MfrEnsemble provide them all.
///     optional: std::optional<NumericFault> agree_on_fault(const std::optional<NumericFault>&)
///                   a model spread over processes returns the fault that all of
///                   them handle at this point of the step (or none), given the one
///                   found here; called after the batch check and after each step
///                   (sae/mpi/step_agreement.hpp).
///
/// CONCEPT BatchSource   (abstract)
///     void next_batch(Matrix<scalar_type>& out);
///         ensures:  resizes `out` and fills it with the next batch (at least one row).
///
/// CONCEPT Callback   (abstract; every hook optional, at least one required)
///     void on_train_begin(const TrainContext& context);
///         called once before the first step of this call to `train`.
///     void on_step_end(const StepReport& report);   or
///     bool on_step_end(const StepReport& report);
///         called after every step kept, in argument order, on every callback; `true`
///         asks the loop to stop after this step (all callbacks still see the step).
///     std::string stop_reason() const;
///         optional; why the callback asked to stop (copied into TrainSummary).
///     void on_numeric_fault(const NumericFault& fault);
///         called for every numeric fault, before its policy is applied (so also
///         just before a stop throws); `fault.action` is the policy applied.
///     void on_train_end(const TrainSummary& summary);
///         called once when the loop ends normally or was stopped by a callback (not
///         when it throws, so an end-of-run checkpoint never saves faulty state).
/// ---------------------------------------------------------------------------------
///
/// train() requires: config.validate() passes (else config_error), and a model with
///                   save_state/load_state when a skip_batch policy must undo steps.
///         ensures:  model.step() == config.total_steps unless a callback stopped it;
///                   every numeric fault (numeric_faults.hpp: NaN/Inf in a batch, a
///                   non-finite or exploding loss, non-finite parameters, optimizer
///                   moments or gradients, an SAE whose latents all died) is reported
///                   with its step and tensor and handled by config.faults: skipped
///                   (TrainSummary::skipped_batches, ::faults), reported, or training
///                   stops with numeric_fault_error, e.g. "loss diverged at step N
///                   (loss = nan) [policy loss = stop]".

#include "error.hpp"
#include "numeric_faults.hpp"
#include "state_dict.hpp"
#include "step_report.hpp"
#include "types.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

/// Settings of the training loop.
struct TrainerConfig {
    std::size_t total_steps = 1000;  ///< train until model.step() reaches this
    bool check_finite = true;        ///< check every batch for NaN/Inf before training on it
    NumericFaultConfig faults{};     ///< how numeric faults are found and handled

    /// Throws config_error when a setting is out of range.
    void validate() const {
        if (total_steps == 0) throw config_error("TrainerConfig.total_steps must be > 0 (got 0)");
        try {
            faults.validate();
        } catch (const config_error& e) {
            throw config_error(std::string("TrainerConfig.faults.") + e.what());
        }
    }
};

/// What the callbacks learn when training begins.
struct TrainContext {
    std::size_t start_step = 0;   ///< model.step() before the first step of this run
    std::size_t total_steps = 0;  ///< TrainerConfig::total_steps
};

/// What one call to `train` did.
struct TrainSummary {
    std::size_t steps = 0;       ///< steps taken in this call (not counting earlier runs)
    std::size_t samples = 0;     ///< rows of all batches trained on in this call
    double seconds = 0;          ///< wall time of the loop (steady clock)
    bool stopped_early = false;  ///< a callback stopped the loop before total_steps
    std::string stop_reason;     ///< why, when stopped_early
    StepReport last;             ///< the report of the last step taken (default if none)
    std::size_t skipped_batches = 0;  ///< batches dropped by a skip_batch policy
    std::vector<NumericFault> faults;  ///< every numeric fault found, in order
};

namespace detail {

template <class...>
using void_t = void;

// ---- Model / BatchSource traits ----

template <class Model, class = void>
struct has_scalar_type : std::false_type {};
template <class Model>
struct has_scalar_type<Model, void_t<typename Model::scalar_type>> : std::true_type {};

template <class Model, class Scalar, class = void>
struct has_train_step : std::false_type {};
template <class Model, class Scalar>
struct has_train_step<Model, Scalar,
                      void_t<decltype(std::declval<Model&>().train_step(std::declval<const ConstMatrixRef<Scalar>&>()))>>
    : std::is_convertible<decltype(std::declval<Model&>().train_step(std::declval<const ConstMatrixRef<Scalar>&>())),
                          StepReport> {};

template <class Model, class = void>
struct has_step_counter : std::false_type {};
template <class Model>
struct has_step_counter<Model, void_t<decltype(std::declval<const Model&>().step())>>
    : std::is_convertible<decltype(std::declval<const Model&>().step()), std::size_t> {};

template <class Source, class Scalar, class = void>
struct has_next_batch : std::false_type {};
template <class Source, class Scalar>
struct has_next_batch<Source, Scalar, void_t<decltype(std::declval<Source&>().next_batch(std::declval<Matrix<Scalar>&>()))>>
    : std::true_type {};

// ---- Callback hook traits (C is the callback type as the loop sees it, maybe const) ----

template <class C, class = void>
struct has_on_train_begin : std::false_type {};
template <class C>
struct has_on_train_begin<C, void_t<decltype(std::declval<C&>().on_train_begin(std::declval<const TrainContext&>()))>>
    : std::true_type {};

template <class C, class = void>
struct has_on_step_end : std::false_type {};
template <class C>
struct has_on_step_end<C, void_t<decltype(std::declval<C&>().on_step_end(std::declval<const StepReport&>()))>>
    : std::true_type {};

template <class C, class = void>
struct has_on_train_end : std::false_type {};
template <class C>
struct has_on_train_end<C, void_t<decltype(std::declval<C&>().on_train_end(std::declval<const TrainSummary&>()))>>
    : std::true_type {};

template <class C, class = void>
struct has_on_numeric_fault : std::false_type {};
template <class C>
struct has_on_numeric_fault<C, void_t<decltype(std::declval<C&>().on_numeric_fault(std::declval<const NumericFault&>()))>>
    : std::true_type {};

template <class Model, class Scalar, class = void>
struct has_save_load_state : std::false_type {};
template <class Model, class Scalar>
struct has_save_load_state<Model, Scalar,
                           void_t<decltype(std::declval<const Model&>().save_state(std::declval<StateDict<Scalar>&>())),
                                  decltype(std::declval<Model&>().load_state(std::declval<const StateDict<Scalar>&>()))>>
    : std::true_type {};

template <class C, class = void>
struct has_stop_reason : std::false_type {};
template <class C>
struct has_stop_reason<C, void_t<decltype(std::declval<const C&>().stop_reason())>>
    : std::is_convertible<decltype(std::declval<const C&>().stop_reason()), std::string> {};

template <class C>
constexpr bool on_step_end_returns_void() {
    return std::is_void_v<decltype(std::declval<C&>().on_step_end(std::declval<const StepReport&>()))>;
}

template <class C>
constexpr bool on_step_end_return_ok() {
    if constexpr (has_on_step_end<C>::value) {
        using R = decltype(std::declval<C&>().on_step_end(std::declval<const StepReport&>()));
        return std::is_void_v<R> || std::is_same_v<std::decay_t<R>, bool>;
    } else {
        return true;
    }
}

/// Checks one callback type; the static_asserts are the readable compile errors.
template <class Callback>
constexpr bool check_callback() {
    using C = std::remove_reference_t<Callback>;
    constexpr bool any_hook = has_on_train_begin<C>::value || has_on_step_end<C>::value ||
                              has_on_train_end<C>::value || has_on_numeric_fault<C>::value;
    static_assert(any_hook,
                  "sae::train: a callback has none of the hooks on_train_begin(const TrainContext&), "
                  "on_step_end(const StepReport&), on_numeric_fault(const NumericFault&), "
                  "on_train_end(const TrainSummary&) "
                  "(a callback passed as const can only use const member functions)");
    static_assert(on_step_end_return_ok<C>(),
                  "sae::train: a callback's on_step_end(const StepReport&) must return void or bool "
                  "(true = stop training)");
    return any_hook && on_step_end_return_ok<C>();
}

/// Checks the Model and BatchSource concepts (see the top of this file).
template <class Model, class BatchSource>
constexpr bool check_model_and_source() {
    static_assert(has_scalar_type<Model>::value,
                  "sae::train: Model must define `using scalar_type = float;` (or double)");
    if constexpr (has_scalar_type<Model>::value) {
        using Scalar = typename Model::scalar_type;
        constexpr bool trains = has_train_step<Model, Scalar>::value;
        constexpr bool counts = has_step_counter<Model>::value;
        constexpr bool feeds = has_next_batch<BatchSource, Scalar>::value;
        static_assert(trains,
                      "sae::train: Model must provide "
                      "`StepReport train_step(const ConstMatrixRef<scalar_type>& batch)`");
        static_assert(counts, "sae::train: Model must provide `std::size_t step() const` (steps taken so far)");
        static_assert(feeds,
                      "sae::train: BatchSource must provide `void next_batch(Matrix<Model::scalar_type>& out)`");
        return trains && counts && feeds;
    } else {
        return false;
    }
}

// ---- Hook dispatch ----

template <class Callback>
void call_train_begin(Callback& callback, const TrainContext& context) {
    if constexpr (has_on_train_begin<Callback>::value) callback.on_train_begin(context);
}

template <class Callback>
void call_train_end(Callback& callback, const TrainSummary& summary) {
    if constexpr (has_on_train_end<Callback>::value) callback.on_train_end(summary);
}

/// Runs one callback's on_step_end; when it asks to stop and no earlier callback
/// did, records its reason (the first callback to ask wins).
template <class Callback>
void call_step_end(Callback& callback, const StepReport& report, bool& stop, std::string& reason) {
    if constexpr (has_on_step_end<Callback>::value) {
        if constexpr (on_step_end_returns_void<Callback>()) {
            callback.on_step_end(report);
        } else {
            const bool wants_stop = callback.on_step_end(report);
            if (wants_stop && !stop) {
                stop = true;
                if constexpr (has_stop_reason<Callback>::value) {
                    reason = callback.stop_reason();
                } else {
                    reason = "stopped by a callback at step " + std::to_string(report.step);
                }
            }
        }
    }
}

/// A distributed model decides with its other processes which fault all of them handle
/// (sae/mpi/step_agreement.hpp); a local model handles its own.
template <class Model, class = void>
struct has_agree_on_fault : std::false_type {};
template <class Model>
struct has_agree_on_fault<Model, void_t<decltype(std::declval<Model&>().agree_on_fault(std::declval<const std::optional<NumericFault>&>()))>>
    : std::true_type {};

template <class Model>
std::optional<NumericFault> agreed_fault(Model& model, std::optional<NumericFault> fault) {
    if constexpr (has_agree_on_fault<Model>::value) {
        return model.agree_on_fault(fault);
    } else {
        return fault;
    }
}

template <class Callback>
void call_numeric_fault(Callback& callback, const NumericFault& fault) {
    if constexpr (has_on_numeric_fault<Callback>::value) callback.on_numeric_fault(fault);
}

// ---- Numeric faults ----

inline FaultPolicy policy_for(FaultKind kind, const NumericFaultConfig& faults) {
    switch (kind) {
        case FaultKind::input: return faults.input;
        case FaultKind::loss: return faults.loss;
        case FaultKind::state: return faults.state;
        case FaultKind::dead_latents: return faults.dead_latents;
    }
    return FaultPolicy::stop;
}

/// A numeric_error raised by train_step (Adam refuses non-finite gradients) as a state
/// fault; the tensor is the first name the message quotes, if any.
inline NumericFault fault_from_exception(const numeric_error& e, std::size_t step) {
    const std::string message = e.what();
    std::string tensor = "gradients";
    const std::size_t open = message.find('\'');
    const std::size_t close = open == std::string::npos ? open : message.find('\'', open + 1);
    if (close != std::string::npos && close > open + 1) tensor = message.substr(open + 1, close - open - 1);
    return NumericFault{FaultKind::state, step, tensor, "train_step raised: " + message, FaultPolicy::stop};
}

/// The trainer's config_error for a skip_batch policy the model cannot honour.
template <class Model, class Scalar>
void require_rollback_support(const NumericFaultConfig& faults) {
    if constexpr (!has_save_load_state<Model, Scalar>::value) {
        if (faults.needs_rollback()) {
            const char* field = faults.loss == FaultPolicy::skip_batch ? "loss" : "state";
            throw config_error(std::string("TrainerConfig.faults.") + field +
                               " = \"skip_batch\" undoes the faulty step, which needs a model with "
                               "save_state(StateDict&) and load_state(const StateDict&); use \"stop\"");
        }
    }
}

/// The loop itself, instantiated only once the concepts are known to hold (so a
/// concept violation shows the static_assert above, not errors from in here).
template <class Model, class BatchSource, class... Callbacks>
TrainSummary run_training(Model& model, BatchSource& source, const TrainerConfig& config, Callbacks&... callbacks) {
    using Scalar = typename Model::scalar_type;
    using Clock = std::chrono::steady_clock;
    const NumericFaultConfig& faults = config.faults;
    require_rollback_support<Model, Scalar>(faults);

    [[maybe_unused]] const TrainContext context{static_cast<std::size_t>(model.step()), config.total_steps};
    (call_train_begin(callbacks, context), ...);

    TrainSummary summary;
    FaultMonitor monitor(faults);
    StateDict<Scalar> before_step;  // filled only when a policy may undo a step
    Matrix<Scalar> batch;

    // Reports `fault` to everyone, then applies its policy: throws for stop (and for
    // the skip that makes too many in a row); returns true when the batch is dropped.
    const auto handle = [&](NumericFault fault) -> bool {
        fault.action = policy_for(fault.kind, faults);
        summary.faults.push_back(fault);
        (call_numeric_fault(callbacks, fault), ...);
        if (fault.action == FaultPolicy::stop) {
            throw numeric_fault_error(fault, fault.message() + "; training stopped before this step was kept");
        }
        if (fault.action == FaultPolicy::report) return false;
        if constexpr (has_save_load_state<Model, Scalar>::value) {
            if (fault.kind != FaultKind::input) model.load_state(before_step);
        }
        ++summary.skipped_batches;
        if (monitor.skip()) {
            throw numeric_fault_error(fault, "stopped after " + std::to_string(monitor.consecutive_skips()) +
                                                 " consecutive skipped batches (TrainerConfig.faults."
                                                 "max_consecutive_skips); the last: " + fault.message());
        }
        return true;
    };

    const Clock::time_point start = Clock::now();
    while (model.step() < config.total_steps) {
        const std::size_t before = model.step();
        const std::size_t step = before + 1;  // 1-based, as StepReport::step
        source.next_batch(batch);
        if (batch.rows() == 0) {
            throw shape_error("the batch source returned an empty batch for step " + std::to_string(step));
        }
        if (config.check_finite) {
            if (std::optional<NumericFault> fault = detail::agreed_fault(model, find_input_fault(batch, step))) {
                if (handle(std::move(*fault))) continue;
            }
        }
        if constexpr (has_save_load_state<Model, Scalar>::value) {
            if (faults.needs_rollback()) model.save_state(before_step);
        }

        StepReport report;
        std::optional<NumericFault> fault;
        try {
            report = model.train_step(batch);
        } catch (const numeric_fault_error& e) {
            fault = e.fault();  // the model classified it itself
            fault->step = step;
        } catch (const numeric_error& e) {
            fault = fault_from_exception(e, step);
        }
        if (!fault) {
            // A model that forgets to count would loop forever; fail loudly instead.
            if (model.step() <= before) {
                throw error("model.step() did not advance during train_step at step " + std::to_string(step) +
                            " (still " + std::to_string(model.step()) + ")");
            }
            // The state first: when it is broken, a strange loss is only its symptom.
            fault = monitor.check_state(model, step);
            if (!fault) fault = monitor.check_loss(report.loss, step);
            if (!fault) fault = monitor.check_dead_latents(model, report, step);
        }
        fault = detail::agreed_fault(model, std::move(fault));
        if (fault && handle(std::move(*fault))) continue;

        monitor.accept(report.loss);
        ++summary.steps;
        summary.samples += static_cast<std::size_t>(batch.rows());
        summary.last = std::move(report);

        bool stop = false;
        std::string reason;
        (call_step_end(callbacks, summary.last, stop, reason), ...);
        if (stop) {
            // Asking to stop at the very last step is not an early stop.
            summary.stopped_early = model.step() < config.total_steps;
            if (summary.stopped_early) summary.stop_reason = std::move(reason);
            break;
        }
    }
    summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();

    (call_train_end(callbacks, summary), ...);
    return summary;
}

}  // namespace detail

/// Trains `model` on batches from `source` until `model.step()` reaches
/// `config.total_steps` or a callback asks to stop. See the concepts at the top of
/// this file. Callbacks are taken by forwarding reference and used in place, so an
/// lvalue callback (e.g. a MetricsHistory) holds its state after the call.
template <class Model, class BatchSource, class... Callbacks>
TrainSummary train(Model& model, BatchSource& source, const TrainerConfig& config, Callbacks&&... callbacks) {
    constexpr bool concepts_hold = detail::check_model_and_source<Model, BatchSource>();
    constexpr bool callbacks_ok = (true && ... && detail::check_callback<Callbacks>());
    if constexpr (concepts_hold && callbacks_ok) {
        config.validate();
        return detail::run_training(model, source, config, callbacks...);
    } else {
        return TrainSummary{};  // unreachable: a static_assert above has already failed
    }
}

}  // namespace sae
