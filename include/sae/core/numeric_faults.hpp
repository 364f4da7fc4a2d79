#pragma once
/// \file numeric_faults.hpp
/// Numeric faults of a training run, how the trainer (trainer.hpp) finds them, and what
/// it does about them. A fault is never trained through silently: every one is reported
/// with the step and the tensor at fault, then handled by a policy.
///
/// Faults (FaultKind), each found at the step where it happens:
///   input         a NaN/Inf in the input batch (when TrainerConfig::check_finite);
///                 tensor "batch", detail "nan at row 3, column 1". Checked before the
///                 step, so a skipped batch never touches the model.
///   loss          the step's loss is NaN/Inf, or exceeds loss_spike_factor times the
///                 median loss of the last loss_median_window accepted steps (checked
///                 once that many steps are known); tensor "loss".
///   state         after the step a parameter or an optimizer moment holds NaN/Inf
///                 (tensor = its checkpoint key, e.g. "W_dec" or "member1/adam/W_enc/v",
///                 detail = the first bad entry and every other non-finite tensor), or
///                 train_step itself raised numeric_error, e.g. for non-finite gradients
///                 (tensor = the first name its message quotes, else "gradients"; a
///                 model may throw numeric_fault_error to give the kind and tensor).
///   dead_latents  an SAE had no latent fire on any row for dead_latents_window
///                 consecutive steps; tensor "latents" or "member<i>/latents".
///
/// Policies (FaultPolicy):
///   stop        callbacks' on_numeric_fault is called, then numeric_fault_error (a
///               numeric_error) is thrown. No callback sees the faulty step and
///               on_train_end is not called, so no checkpoint of the faulty state is
///               written: the last checkpoint on disk is the last good state.
///   skip_batch  the batch is dropped and counted (TrainSummary::skipped_batches).
///               For input faults it is never trained on; for loss and state faults the
///               step is undone by restoring the model from a copy of its state taken
///               before the step (the model needs save_state/load_state; the copy costs
///               one pass over parameters and optimizer moments per step and as much
///               memory again, so it is only taken when a policy needs it). After
///               max_consecutive_skips skipped batches in a row the data or the run is
///               broken and training stops as with `stop`.
///   report      dead_latents only: on_numeric_fault is called once per
///               dead_latents_window silent steps and training goes on (the weights
///               are finite; AuxK or a restart rule may revive the latents).
/// Defaults (what a long unattended run wants): input skip_batch, loss stop, state stop,
/// dead_latents stop; max_consecutive_skips 10; loss_spike_factor 100 over a window of
/// 100 steps; dead_latents_window 1000 steps; state checked after every step.
///
/// What the checks need from the model (all optional; a check without its data is off):
///   state         `for_each_state_tensor(visit)` calling visit(name, eigen_dense_object)
///                 for every tensor; or `members()` (an ensemble, each member checked
///                 under "member<i>/"); or `model()` with W_enc/b_enc/W_dec/b_dec and
///                 `optimizer()` with state_names/first_moment/second_moment (TrainableSae).
///   dead_latents  `members()`, or `firing()` (a FiringTracker), or an "l0" metric in the
///                 StepReport.
/// The running median, the consecutive-skip count and the dead-latent counters live in
/// the trainer, not in checkpoints: after a resume they start empty.
///
/// Cost per step: the batch check and the state scan are one vectorised pass each, over
/// the batch and over parameters + Adam moments, at memory speed (measured with a TopK
/// SAE, d_in 768, batch 4096, 2 cores: the scan is 1.8% of a step at d_sae 4096 and 1.7%
/// at 16384; state_check_every = 10 makes it 0.2%, and checkpoints are still refused
/// when non-finite). A skip_batch policy for loss or state faults adds the state copy
/// (4-5% there) and doubles the memory of the state.

#include "error.hpp"
#include "step_report.hpp"
#include "types.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sae {

/// What the trainer does when it finds a numeric fault (see the file comment).
enum class FaultPolicy { stop, skip_batch, report };

/// What went wrong (see the file comment).
enum class FaultKind { input, loss, state, dead_latents };

inline const char* fault_policy_name(FaultPolicy policy) {
    switch (policy) {
        case FaultPolicy::stop: return "stop";
        case FaultPolicy::skip_batch: return "skip_batch";
        case FaultPolicy::report: return "report";
    }
    return "?";
}

inline const char* fault_kind_name(FaultKind kind) {
    switch (kind) {
        case FaultKind::input: return "input";
        case FaultKind::loss: return "loss";
        case FaultKind::state: return "state";
        case FaultKind::dead_latents: return "dead_latents";
    }
    return "?";
}

/// Detection settings and the policy for each kind of fault. The JSON keys (trainer.faults
/// in a run config) are the member names.
struct NumericFaultConfig {
    FaultPolicy input = FaultPolicy::skip_batch;   ///< NaN/Inf in a batch: stop | skip_batch
    FaultPolicy loss = FaultPolicy::stop;          ///< non-finite or exploding loss: stop | skip_batch
    FaultPolicy state = FaultPolicy::stop;         ///< non-finite parameters/moments/gradients: stop | skip_batch
    FaultPolicy dead_latents = FaultPolicy::stop;  ///< every latent silent: stop | report
    std::size_t max_consecutive_skips = 10;        ///< skipped batches in a row before stopping
    double loss_spike_factor = 100.0;              ///< loss > factor * running median is a fault; 0 = off
    std::size_t loss_median_window = 100;          ///< accepted steps in the running median
    std::size_t dead_latents_window = 1000;        ///< silent steps before all latents count as dead; 0 = off
    std::size_t state_check_every = 1;             ///< steps between state scans; 0 = off

    /// Throws config_error naming the field for a policy the kind does not allow or a
    /// value out of range.
    void validate() const {
        check_policy("input", input, FaultPolicy::report, "a batch holding NaN/Inf is never trained on");
        check_policy("loss", loss, FaultPolicy::report, "training on after a diverged loss would hide it");
        check_policy("state", state, FaultPolicy::report, "non-finite parameters cannot be trained on");
        check_policy("dead_latents", dead_latents, FaultPolicy::skip_batch,
                     "the latents died over many steps; dropping one batch cannot revive them");
        if (max_consecutive_skips < 1) throw config_error("max_consecutive_skips must be >= 1 (got 0)");
        if (!std::isfinite(loss_spike_factor) || (loss_spike_factor != 0.0 && !(loss_spike_factor > 1.0))) {
            std::ostringstream value;
            value << loss_spike_factor;
            throw config_error("loss_spike_factor must be 0 (off) or a finite number > 1 (got " + value.str() + ")");
        }
        if (loss_spike_factor > 0.0 && loss_median_window < 1) {
            throw config_error("loss_median_window must be >= 1 when loss_spike_factor is set (got 0)");
        }
    }

    /// Whether some policy needs the model's state copied before every step.
    bool needs_rollback() const { return loss == FaultPolicy::skip_batch || state == FaultPolicy::skip_batch; }

private:
    static void check_policy(const char* field, FaultPolicy policy, FaultPolicy forbidden, const char* why) {
        if (policy == forbidden) {
            throw config_error(std::string(field) + " = \"" + fault_policy_name(policy) + "\" is not allowed: " + why);
        }
    }
};

/// One fault as the trainer found it.
struct NumericFault {
    FaultKind kind = FaultKind::input;
    std::size_t step = 0;      ///< the step being taken (1-based; a skipped batch does not advance it)
    std::string tensor;        ///< "batch", "loss", "gradients", "W_dec", "member1/adam/W_enc/v", "latents"
    std::string detail;        ///< e.g. "nan at row 3, column 1"
    FaultPolicy action = FaultPolicy::stop;  ///< what the trainer did about it

    /// One line naming the step, the tensor and the policy, e.g.
    ///   "non-finite input at step 4 in tensor 'batch': nan at row 2, column 1 [policy input = skip_batch]"
    ///   "loss diverged at step 9 (loss = nan) [policy loss = stop]"
    ///   "non-finite model state at step 7 in tensor 'adam/W_dec/v': inf at [3, 1] (1 non-finite entry) [...]"
    ///   "all latents dead at step 50 in 'member0/latents': no latent fired on any row for 50 steps [...]"
    std::string message() const {
        const std::string at = " at step " + std::to_string(step);
        const std::string policy = " [policy " + std::string(fault_kind_name(kind)) + " = " + fault_policy_name(action) + "]";
        switch (kind) {
            case FaultKind::input: return "non-finite input" + at + " in tensor '" + tensor + "': " + detail + policy;
            case FaultKind::loss: return "loss diverged" + at + " (" + detail + ")" + policy;
            case FaultKind::state: return "non-finite model state" + at + " in tensor '" + tensor + "': " + detail + policy;
            case FaultKind::dead_latents: return "all latents dead" + at + " in '" + tensor + "': " + detail + policy;
        }
        return "numeric fault" + at + policy;
    }
};

/// Thrown by sae::train when a fault's policy stops training (directly, or after
/// max_consecutive_skips skipped batches). `fault()` is the fault that stopped it.
class numeric_fault_error : public numeric_error {
public:
    numeric_fault_error(NumericFault fault, const std::string& message) : numeric_error(message), fault_(std::move(fault)) {}
    const NumericFault& fault() const { return fault_; }

private:
    NumericFault fault_;
};

namespace detail {

/// "nan", "inf", "-inf" or the value with six significant digits.
inline std::string format_number(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    std::ostringstream text;
    text.precision(6);
    text << value;
    return text.str();
}

/// Whether every entry is finite: sum(0 * x) is 0 exactly then, and NaN as soon as one
/// entry is NaN or Inf. A plain vectorised reduction, about ten times faster than
/// Eigen's allFinite(), which matters because the trainer checks every batch and the
/// whole model state after every step.
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& tensor) {
    using Scalar = typename Derived::Scalar;
    return (tensor.derived().array() * Scalar(0)).sum() == Scalar(0);
}

/// "nan at [3, 7] (12 non-finite entries)" for the first non-finite entry of a dense
/// tensor (row-major order), or nullopt when every entry is finite. One vectorised
/// pass in the common, finite case.
template <class Derived>
std::optional<std::string> describe_nonfinite(const Eigen::DenseBase<Derived>& tensor) {
    if (all_finite(tensor)) return std::nullopt;
    std::optional<std::string> first;
    std::size_t count = 0;
    for (Index row = 0; row < tensor.rows(); ++row) {
        for (Index col = 0; col < tensor.cols(); ++col) {
            const double value = static_cast<double>(tensor.derived().coeff(row, col));
            if (std::isfinite(value)) continue;
            if (!first) {
                first = format_number(value) + " at [" + std::to_string(row) + ", " + std::to_string(col) + "]";
            }
            ++count;
        }
    }
    return *first + " (" + std::to_string(count) + " non-finite " + (count == 1 ? "entry" : "entries") + ")";
}

/// The input fault of `batch` (first non-finite entry, row-major), if any.
template <class Scalar>
std::optional<NumericFault> find_input_fault(const Matrix<Scalar>& batch, std::size_t step) {
    if (all_finite(batch)) return std::nullopt;
    for (Index row = 0; row < batch.rows(); ++row) {
        if (all_finite(batch.row(row))) continue;
        for (Index col = 0; col < batch.cols(); ++col) {
            const double value = static_cast<double>(batch(row, col));
            if (!std::isfinite(value)) {
                return NumericFault{FaultKind::input, step, "batch",
                                    format_number(value) + " at row " + std::to_string(row) + ", column " + std::to_string(col),
                                    FaultPolicy::stop};
            }
        }
    }
    return std::nullopt;
}

// ---- what the model exposes ------------------------------------------------------

/// Calls nothing; used only to detect `for_each_state_tensor`.
struct StateTensorProbe {
    template <class Tensor>
    void operator()(const std::string&, const Tensor&) const {}
};

template <class M, class = void>
struct has_state_tensor_visitor : std::false_type {};
template <class M>
struct has_state_tensor_visitor<M, std::void_t<decltype(std::declval<const M&>().for_each_state_tensor(StateTensorProbe{}))>>
    : std::true_type {};

template <class M, class = void>
struct has_members : std::false_type {};
template <class M>
struct has_members<M, std::void_t<decltype(std::declval<const M&>().members().size()),
                                  decltype(*std::declval<const M&>().members().begin())>> : std::true_type {};

template <class M, class = void>
struct has_sae_and_optimizer : std::false_type {};
template <class M>
struct has_sae_and_optimizer<
    M, std::void_t<decltype(std::declval<const M&>().model().W_enc()), decltype(std::declval<const M&>().model().b_enc()),
                   decltype(std::declval<const M&>().model().W_dec()), decltype(std::declval<const M&>().model().b_dec()),
                   decltype(std::declval<const M&>().optimizer().state_names()),
                   decltype(std::declval<const M&>().optimizer().first_moment(std::string())),
                   decltype(std::declval<const M&>().optimizer().second_moment(std::string()))>> : std::true_type {};

template <class M, class = void>
struct has_activation_parameter : std::false_type {};
template <class M>
struct has_activation_parameter<M, std::void_t<decltype(std::declval<const M&>().model().activation().parameter()),
                                               decltype(std::declval<const M&>().model().activation().parameter_name())>>
    : std::true_type {};

template <class M, class = void>
struct has_firing_tracker : std::false_type {};
template <class M>
struct has_firing_tracker<M, std::void_t<decltype(std::declval<const M&>().firing().tokens_since_fired())>>
    : std::true_type {};

/// Calls visit(name, tensor) for every tensor of the model's state, named as in its
/// checkpoint (see the file comment). Returns false when the model exposes none.
template <class Model, class Visit>
bool visit_state_tensors(const Model& model, Visit& visit, const std::string& prefix = "") {
    if constexpr (has_state_tensor_visitor<Model>::value) {
        model.for_each_state_tensor([&](const std::string& name, const auto& tensor) { visit(prefix + name, tensor); });
        return true;
    } else if constexpr (has_members<Model>::value) {
        bool any = false;
        std::size_t i = 0;
        for (const auto& member : model.members()) {
            any = visit_state_tensors(member, visit, prefix + "member" + std::to_string(i++) + "/") || any;
        }
        return any;
    } else if constexpr (has_sae_and_optimizer<Model>::value) {
        const auto& sae = model.model();
        visit(prefix + "W_enc", sae.W_enc());
        visit(prefix + "b_enc", sae.b_enc());
        visit(prefix + "W_dec", sae.W_dec());
        visit(prefix + "b_dec", sae.b_dec());
        if constexpr (has_activation_parameter<Model>::value) {
            if (sae.activation().parameter().size() > 0) {
                visit(prefix + "activation/" + sae.activation().parameter_name(), sae.activation().parameter());
            }
        }
        const auto& optimizer = model.optimizer();
        for (const std::string& name : optimizer.state_names()) {
            visit(prefix + "adam/" + name + "/m", optimizer.first_moment(name));
            visit(prefix + "adam/" + name + "/v", optimizer.second_moment(name));
        }
        return true;
    } else {
        return false;
    }
}

/// The first tensor of the model's state holding NaN/Inf (checkpoint order), as a state
/// fault whose detail also lists every other non-finite tensor: one overflow spreads
/// (a second moment at Inf turns the parameter NaN in the same step), and the list
/// shows where it went.
template <class Model>
std::optional<NumericFault> find_state_fault(const Model& model, std::size_t step) {
    std::optional<NumericFault> fault;
    std::string others;
    auto visit = [&](const std::string& name, const auto& tensor) {
        if (fault) {
            if (!all_finite(tensor)) others += (others.empty() ? "" : ", ") + name;
        } else if (std::optional<std::string> bad = describe_nonfinite(tensor)) {
            fault = NumericFault{FaultKind::state, step, name, *bad, FaultPolicy::stop};
        }
    };
    visit_state_tensors(model, visit);
    if (fault && !others.empty()) fault->detail += "; also non-finite: " + others;
    return fault;
}

/// Whether the model exposes anything for find_state_fault to check.
template <class Model>
constexpr bool can_inspect_state() {
    return has_state_tensor_visitor<Model>::value || has_members<Model>::value || has_sae_and_optimizer<Model>::value;
}

/// For every SAE of the model, whether any latent fired in the last step; appended to
/// `fired` with the SAE's name. Returns false when the model exposes no firing data.
template <class Model>
bool latents_fired(const Model& model, const StepReport& report, std::vector<std::pair<std::string, bool>>& fired,
                   const std::string& prefix = "") {
    if constexpr (has_members<Model>::value) {
        std::size_t i = 0;
        bool any = false;
        for (const auto& member : model.members()) {
            any = latents_fired(member, report, fired, prefix + "member" + std::to_string(i++) + "/") || any;
        }
        return any;
    } else if constexpr (has_firing_tracker<Model>::value) {
        // A latent that fired in the last batch has restarted its count at zero.
        const auto& since = model.firing().tokens_since_fired();
        fired.emplace_back(prefix + "latents", since.size() > 0 && since.minCoeff() == 0);
        return true;
    } else {
        const double not_reported = -1.0;
        const double l0 = report.metric("l0", not_reported);
        if (l0 == not_reported) return false;
        fired.emplace_back(prefix + "latents", l0 > 0.0);
        return true;
    }
}

/// Median of the losses of the last `window` accepted steps.
class RunningMedian {
public:
    explicit RunningMedian(std::size_t window) : window_(window) {}

    void push(double value) {
        if (window_ == 0) return;
        values_.push_back(value);
        if (values_.size() > window_) values_.pop_front();
    }
    bool full() const { return window_ > 0 && values_.size() == window_; }

    double median() const {
        scratch_.assign(values_.begin(), values_.end());
        const std::size_t middle = scratch_.size() / 2;
        std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(middle), scratch_.end());
        const double upper = scratch_[middle];
        if (scratch_.size() % 2 == 1) return upper;
        const double lower = *std::max_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(middle));
        return 0.5 * (lower + upper);
    }

private:
    std::size_t window_;
    std::deque<double> values_;
    mutable std::vector<double> scratch_;
};

/// The trainer's fault bookkeeping across steps: the running loss median, the
/// consecutive-skip count and, per SAE, the steps since any latent fired.
class FaultMonitor {
public:
    explicit FaultMonitor(const NumericFaultConfig& config) : config_(config), losses_(config.loss_spike_factor > 0.0 ? config.loss_median_window : 0) {}

    /// A non-finite loss, or one above loss_spike_factor times the running median.
    std::optional<NumericFault> check_loss(double loss, std::size_t step) const {
        if (!std::isfinite(loss)) {
            return NumericFault{FaultKind::loss, step, "loss", "loss = " + format_number(loss), FaultPolicy::stop};
        }
        if (!losses_.full()) return std::nullopt;
        const double median = losses_.median();
        if (median > 0.0 && loss > config_.loss_spike_factor * median) {
            return NumericFault{FaultKind::loss, step, "loss",
                                "loss = " + format_number(loss) + " > " + format_number(config_.loss_spike_factor) +
                                    " x the running median " + format_number(median) + " of the last " +
                                    std::to_string(config_.loss_median_window) + " steps",
                                FaultPolicy::stop};
        }
        return std::nullopt;
    }

    /// The state fault after step `step`, when a scan is due.
    template <class Model>
    std::optional<NumericFault> check_state(const Model& model, std::size_t step) const {
        if (config_.state_check_every == 0 || step % config_.state_check_every != 0) return std::nullopt;
        return find_state_fault(model, step);
    }

    /// Counts silent steps per SAE; a fault when one reaches dead_latents_window
    /// (the count then restarts: a dead SAE is reported once per window, not every step).
    template <class Model>
    std::optional<NumericFault> check_dead_latents(const Model& model, const StepReport& report, std::size_t step) {
        if (config_.dead_latents_window == 0) return std::nullopt;
        fired_.clear();
        if (!latents_fired(model, report, fired_)) return std::nullopt;
        silent_steps_.resize(fired_.size(), 0);
        std::optional<NumericFault> fault;
        for (std::size_t i = 0; i < fired_.size(); ++i) {
            silent_steps_[i] = fired_[i].second ? 0 : silent_steps_[i] + 1;
            if (!fault && silent_steps_[i] >= config_.dead_latents_window) {
                fault = NumericFault{FaultKind::dead_latents, step, fired_[i].first,
                                     "no latent fired on any row for " + std::to_string(silent_steps_[i]) + " steps",
                                     FaultPolicy::stop};
                silent_steps_[i] = 0;
            }
        }
        return fault;
    }

    /// A step that was kept: its loss joins the median, the skip run ends.
    void accept(double loss) {
        losses_.push(loss);
        consecutive_skips_ = 0;
    }

    /// A skipped batch; true when max_consecutive_skips is reached.
    bool skip() { return ++consecutive_skips_ >= config_.max_consecutive_skips; }
    std::size_t consecutive_skips() const { return consecutive_skips_; }

private:
    NumericFaultConfig config_;
    RunningMedian losses_;
    std::vector<std::pair<std::string, bool>> fired_;
    std::vector<std::size_t> silent_steps_;
    std::size_t consecutive_skips_ = 0;
};

}  // namespace detail

}  // namespace sae
