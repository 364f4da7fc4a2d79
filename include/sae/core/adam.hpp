#pragma once
/// \file adam.hpp
/// Adam (Kingma & Ba 2015) with bias correction, numerically the same update as
/// `torch.optim.Adam` with its default flags (no weight decay, no AMSGrad).
///
/// Abstract:
///   Adam<Scalar> opt(config);          requires config.validate() passes (else config_error)
///   opt.step(parameters, lr);          requires lr finite and >= 0 (config_error), distinct
///                                      parameter names (config_error), finite gradients
///                                      (numeric_error), each name's size unchanged since its
///                                      state was created (shape_error).
///                                      ensures for every parameter p with gradient g, t its
///                                      update count (1 on first use):
///                                        m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
///                                        p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
///                                      and steps_taken() grows by one. On a throw, nothing
///                                      (parameters, moments, counts) has changed.
///   opt.begin_step(shapes, lr)         the same step applied piece by piece, for callers that
///                                      produce a large gradient block by block and never hold
///                                      all of it (TrainableSae): checks lr, names and sizes as
///                                      step() does, creates the states, counts the update of
///                                      every (name, size) in `shapes` and grows steps_taken();
///                                      returns one ParameterStep per entry. Each
///                                      ParameterStep::apply(offset, value, gradient, count)
///                                      performs the update above on elements
///                                      [offset, offset + count) of that parameter; applied once
///                                      to every element it equals step(). The caller checks
///                                      that the gradient is finite. The steps stay valid until
///                                      the next begin_step, step, reset or restore.
///   opt.reset();                       ensures a state equal to a freshly built optimizer.
///   first_moment / second_moment / restore: read and write the state for checkpoints.
///
/// State lives per parameter *name* and is created (zeros, sized to the view) on the
/// name's first use. Each name also keeps its own update count, as torch keeps `step`
/// per tensor, so a parameter that joins later gets a correct first-step bias correction.

#include "error.hpp"
#include "types.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sae {

/// Adam's hyper-parameters; the learning rate is passed to each step so that a
/// schedule can drive it.
struct AdamConfig {
    double beta1 = 0.9;
    double beta2 = 0.999;
    double epsilon = 1e-8;

    /// Throws config_error naming the field unless beta1, beta2 are in [0, 1) and
    /// epsilon > 0 (all finite).
    void validate() const {
        check_beta("beta1", beta1);
        check_beta("beta2", beta2);
        if (!(std::isfinite(epsilon) && epsilon > 0.0)) {
            throw config_error("AdamConfig.epsilon must be finite and > 0, got " + std::to_string(epsilon));
        }
    }

private:
    static void check_beta(const char* field, double beta) {
        // beta == 1 would make the bias correction 1 - beta^t zero (division by zero).
        if (!(beta >= 0.0 && beta < 1.0)) {
            throw config_error(std::string("AdamConfig.") + field + " must be in [0, 1), got " + std::to_string(beta));
        }
    }
};

template <class Scalar>
class Adam {
public:
    using Moments = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

    explicit Adam(AdamConfig config = {}) : config_(config) { config_.validate(); }

    /// The update of one parameter at its count t, applied to any range of its elements.
    class ParameterStep {
    public:
        /// value[i] and the moments at offset + i, i in [0, count), with gradient[i].
        /// Works through pieces that fit in L1, so the three passes of the update read
        /// memory once.
        void apply(Index offset, Scalar* value, const Scalar* gradient, Index count) const {
            constexpr Index piece = 512;
            for (Index first = 0; first < count; first += piece) {
                const Index size = std::min(piece, count - first);
                Eigen::Map<Moments> m(m_ + offset + first, size), v(v_ + offset + first, size), p(value + first, size);
                const Eigen::Map<const Moments> g(gradient + first, size);
                m = b1_ * m + one_minus_b1_ * g;
                v = b2_ * v + one_minus_b2_ * g.square();
                p -= step_size_ * m / (v.sqrt() / correction2_root_ + eps_);
            }
        }

    private:
        friend class Adam;
        Scalar b1_, one_minus_b1_, b2_, one_minus_b2_, step_size_, correction2_root_, eps_;
        Scalar* m_ = nullptr;
        Scalar* v_ = nullptr;
    };

    /// One Adam update of every parameter in `parameters` (see the abstract above).
    void step(const std::vector<ParameterView<Scalar>>& parameters, double learning_rate) {
        check_step_inputs(parameters, learning_rate);
        for (const ParameterView<Scalar>& parameter : parameters) {
            check_parameter(parameter);
        }
        std::vector<std::pair<std::string, Index>> shapes;
        for (const ParameterView<Scalar>& parameter : parameters) shapes.emplace_back(parameter.name, parameter.value.size());
        const std::vector<ParameterStep>& steps = begin_step(shapes, learning_rate);
        for (std::size_t i = 0; i < parameters.size(); ++i) {
            // ParameterView holds Maps by value; writing through a copy writes the caller's memory.
            typename ParameterView<Scalar>::Flat value = parameters[i].value;
            steps[i].apply(0, value.data(), parameters[i].gradient.data(), value.size());
        }
    }

    /// Start one step of the parameters named in `shapes` (name, element count); see the
    /// abstract. Nothing changes when it throws.
    /// The steps are kept in the optimizer (a training step allocates nothing once the
    /// states exist).
    const std::vector<ParameterStep>& begin_step(const std::vector<std::pair<std::string, Index>>& shapes,
                                                 double learning_rate) {
        check_learning_rate(learning_rate);
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            // Pairwise: a handful of names, and no set to allocate.
            for (std::size_t j = 0; j < i; ++j) {
                if (shapes[j].first == shapes[i].first) {
                    throw config_error("Adam::step: parameter name '" + shapes[i].first + "' appears twice");
                }
            }
            check_state_size(shapes[i].first, shapes[i].second);
        }
        steps_.clear();
        for (const auto& [name, size] : shapes) steps_.push_back(count_update(state_for(name, size), learning_rate));
        ++steps_taken_;
        return steps_;
    }

    /// Forget all moments and counts: the next step behaves as a first step.
    void reset() {
        states_.clear();
        steps_taken_ = 0;
    }

    /// Number of step() calls since construction, reset() or restore().
    std::size_t steps_taken() const { return steps_taken_; }

    const AdamConfig& config() const { return config_; }

    /// Names that have optimizer state, in lexicographic order (for checkpoints).
    std::vector<std::string> state_names() const {
        std::vector<std::string> names;
        names.reserve(states_.size());
        for (const auto& entry : states_) names.push_back(entry.first);
        return names;
    }

    /// First moment (m) of parameter `name`; config_error if it has no state.
    const Moments& first_moment(const std::string& name) const { return find_state(name).m; }

    /// Second moment (v) of parameter `name`; config_error if it has no state.
    const Moments& second_moment(const std::string& name) const { return find_state(name).v; }

    /// Install checkpointed state: sets steps_taken() and the moments of `name`, whose
    /// update count becomes `steps_taken`. Throws shape_error when m and v differ in
    /// size, numeric_error when they are not finite or v has a negative entry.
    void restore(std::size_t steps_taken, const std::string& name, Moments m, Moments v) {
        if (m.size() != v.size()) {
            throw shape_error("Adam::restore('" + name + "'): first moment has " + std::to_string(m.size()) +
                              " entries, second moment " + std::to_string(v.size()));
        }
        if (!m.allFinite() || !v.allFinite() || (v < Scalar(0)).any()) {
            throw numeric_error("Adam::restore('" + name + "'): moments must be finite and the second moment >= 0");
        }
        steps_taken_ = steps_taken;
        states_[name] = State{std::move(m), std::move(v), steps_taken};
    }

private:
    struct State {
        Moments m;
        Moments v;
        std::size_t updates = 0;
    };

    // Everything that can throw is checked before the first parameter is touched, so a
    // failed step leaves parameters and state as they were.
    void check_step_inputs(const std::vector<ParameterView<Scalar>>& parameters, double learning_rate) const {
        check_learning_rate(learning_rate);
        std::set<std::string> seen;
        for (const ParameterView<Scalar>& parameter : parameters) {
            if (!seen.insert(parameter.name).second) {
                throw config_error("Adam::step: parameter name '" + parameter.name + "' appears twice");
            }
        }
    }

    static void check_learning_rate(double learning_rate) {
        if (!(std::isfinite(learning_rate) && learning_rate >= 0.0)) {
            throw config_error("Adam::step: learning_rate must be finite and >= 0, got " + std::to_string(learning_rate));
        }
    }

    void check_parameter(const ParameterView<Scalar>& parameter) const {
        if (parameter.value.size() != parameter.gradient.size()) {
            throw shape_error("Adam::step: parameter '" + parameter.name + "' has " +
                              std::to_string(parameter.value.size()) + " elements but its gradient " +
                              std::to_string(parameter.gradient.size()));
        }
        check_state_size(parameter.name, parameter.value.size());
        if (!parameter.gradient.allFinite()) {
            throw numeric_error("Adam::step: gradient of '" + parameter.name + "' contains NaN or Inf");
        }
    }

    void check_state_size(const std::string& name, Index size) const {
        const auto found = states_.find(name);
        if (found != states_.end() && found->second.m.size() != size) {
            throw shape_error("Adam::step: parameter '" + name + "' has " + std::to_string(size) +
                              " elements but its optimizer state has " + std::to_string(found->second.m.size()));
        }
    }

    State& state_for(const std::string& name, Index size) {
        State& state = states_[name];
        if (state.m.size() == 0 && size != 0) {
            state.m = Moments::Zero(size);
            state.v = Moments::Zero(size);
        }
        return state;
    }

    const State& find_state(const std::string& name) const {
        const auto found = states_.find(name);
        if (found == states_.end()) {
            throw config_error("Adam: no optimizer state for parameter '" + name + "'");
        }
        return found->second;
    }

    /// Counts one update of `state` and returns its coefficients at the new count t.
    ParameterStep count_update(State& state, double learning_rate) const {
        ++state.updates;
        const double t = static_cast<double>(state.updates);
        // Bias corrections in double: beta2^t for small t is 1 - O(1e-3), where float
        // rounding would cost most of the correction's digits.
        const double correction1 = 1.0 - std::pow(config_.beta1, t);
        ParameterStep step;
        // One minus beta is rounded once from double, as torch passes it (alpha = 1 - beta).
        step.b1_ = static_cast<Scalar>(config_.beta1);
        step.one_minus_b1_ = static_cast<Scalar>(1.0 - config_.beta1);
        step.b2_ = static_cast<Scalar>(config_.beta2);
        step.one_minus_b2_ = static_cast<Scalar>(1.0 - config_.beta2);
        step.step_size_ = static_cast<Scalar>(learning_rate / correction1);
        step.correction2_root_ = static_cast<Scalar>(std::sqrt(1.0 - std::pow(config_.beta2, t)));
        step.eps_ = static_cast<Scalar>(config_.epsilon);
        step.m_ = state.m.data();
        step.v_ = state.v.data();
        return step;
    }

    AdamConfig config_;
    std::map<std::string, State> states_;
    std::vector<ParameterStep> steps_;  ///< the last begin_step's
    std::size_t steps_taken_ = 0;
};

}  // namespace sae
