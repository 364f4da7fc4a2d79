#pragma once
/// \file callbacks.hpp
/// Ready-made callbacks for sae::train (see trainer.hpp for the Callback concept):
///   ProgressBar       a redrawn one-line bar on a terminal, plain lines otherwise
///   JsonLinesLogger   one JSON object per logged step, appended and flushed
///   FaultLogger       one JSON object per numeric fault (numeric_faults.hpp), and a line
///                     on a stream
///   EarlyStopping     stop when a metric has stopped improving
///   CheckpointEvery   call a save function every N steps and at the end
///   StopAfterSeconds  a wall-clock budget
///   StopOnInterrupt   Ctrl-C / SIGTERM finish the current step and stop cleanly (so the
///                     end-of-run checkpoint is written) instead of killing the process
///   MetricsHistory    keeps every StepReport in memory
/// Each one throws config_error from its constructor on a bad setting. Pass them as
/// lvalues to read their state after training, or as temporaries when it is not needed.
/// "Logged steps" are those with step % every == 0, the last step (total_steps), and
/// the step a run stopped at early.

#include "error.hpp"
#include "step_report.hpp"
#include "trainer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace sae {

namespace detail {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point start) {
    return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

inline void require_positive_every(std::size_t every, const char* who) {
    if (every == 0) throw config_error(std::string(who) + ": every must be > 0 (got 0)");
}

/// True when `out` is std::cout / std::cerr / std::clog and that descriptor is a terminal.
inline bool stream_is_terminal(const std::ostream& out) {
    int fd = -1;
    if (&out == &std::cout) fd = 1;
    if (&out == &std::cerr || &out == &std::clog) fd = 2;
    if (fd < 0) return false;
#if defined(_WIN32)
    return _isatty(fd) != 0;
#else
    return isatty(fd) != 0;
#endif
}

/// 4 significant digits: enough to watch a loss move, short enough for one line.
inline std::string short_number(double value) {
    if (!std::isfinite(value)) return format_number(value);
    std::ostringstream text;
    text.precision(4);
    text << value;
    return text.str();
}

/// 3100000 -> "3.1M": rates span many orders of magnitude.
inline std::string si_number(double value) {
    const char* suffixes[] = {"", "k", "M", "G", "T"};
    std::size_t index = 0;
    while (std::abs(value) >= 1000.0 && index + 1 < sizeof(suffixes) / sizeof(suffixes[0])) {
        value /= 1000.0;
        ++index;
    }
    std::ostringstream text;
    text.precision(value < 10.0 ? 2 : 3);
    text << value << suffixes[index];
    return text.str();
}

/// Seconds as "m:ss" or "h:mm:ss"; "?" when unknown.
inline std::string clock_time(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto total = static_cast<unsigned long long>(seconds + 0.5);
    const unsigned long long hours = total / 3600, minutes = (total / 60) % 60, secs = total % 60;
    char text[48];
    if (hours > 0) {
        std::snprintf(text, sizeof(text), "%llu:%02llu:%02llu", hours, minutes, secs);
    } else {
        std::snprintf(text, sizeof(text), "%llu:%02llu", minutes, secs);
    }
    return text;
}

/// Whether `step` is one the every-N callbacks act on (see the file comment).
inline bool is_logged_step(std::size_t step, std::size_t every, std::size_t total_steps) {
    return step % every == 0 || step == total_steps;
}

}  // namespace detail

// =====================================================================================

/// Progress display. On a terminal: one line redrawn with '\r' (at most ~10 times a
/// second, plus the final step), e.g.
///   [#####...............] 1234/5000 25% | 310 steps/s, 3.1M samples/s | ETA 0:12 | loss 0.0123 mse 0.01
/// Elsewhere (a file, a pipe, a std::ostringstream): the same fields as plain lines on
/// the logged steps. Rates are means over this run (steady clock); ETA = remaining
/// steps / mean step rate.
class ProgressBar {
public:
    /// `force_tty` = true draws the redrawn bar whatever `out` is; false detects it.
    explicit ProgressBar(std::ostream& out = std::cerr, std::size_t every = 1, bool force_tty = false)
        : out_(&out), every_(every), tty_(force_tty || detail::stream_is_terminal(out)) {
        detail::require_positive_every(every, "ProgressBar");
    }

    void on_train_begin(const TrainContext& context) {
        context_ = context;
        start_ = last_draw_ = detail::SteadyClock::now();
        first_report_ = true;
        last_written_step_ = 0;
    }

    void on_step_end(const StepReport& report) {
        if (first_report_) remember_starting_samples(report);
        if (tty_) {
            const bool last = report.step >= context_.total_steps;
            const bool due = detail::seconds_since(last_draw_) >= redraw_interval_s;
            if (report.step % every_ == 0 && (due || last)) draw(report);
        } else if (detail::is_logged_step(report.step, every_, context_.total_steps)) {
            write_line(report);
        }
    }

    void on_train_end(const TrainSummary& summary) {
        if (summary.steps > 0 && last_written_step_ != summary.last.step) {
            if (tty_) {
                draw(summary.last);
            } else {
                write_line(summary.last);
            }
        }
        if (tty_ && summary.steps > 0) *out_ << '\n' << std::flush;  // keep the final bar visible
    }

private:
    static constexpr double redraw_interval_s = 0.1;  // a terminal cannot show more anyway
    static constexpr std::size_t bar_width = 20;

    // Samples consumed before this run, assuming the first step's batch has the mean
    // size so far (exact when starting from 0 or with a constant batch size).
    void remember_starting_samples(const StepReport& report) {
        first_report_ = false;
        const std::size_t first_batch = report.step > 0 ? report.samples / report.step : report.samples;
        samples_before_ = report.samples >= first_batch ? report.samples - first_batch : 0;
    }

    std::string line(const StepReport& report) const {
        const double elapsed = detail::seconds_since(start_);
        const std::size_t steps_done = report.step > context_.start_step ? report.step - context_.start_step : 0;
        const std::size_t samples_done = report.samples > samples_before_ ? report.samples - samples_before_ : 0;
        const double step_rate = elapsed > 0 ? static_cast<double>(steps_done) / elapsed : 0.0;
        const double sample_rate = elapsed > 0 ? static_cast<double>(samples_done) / elapsed : 0.0;
        const std::size_t remaining = context_.total_steps > report.step ? context_.total_steps - report.step : 0;
        const double eta = remaining == 0 ? 0.0
                           : step_rate > 0 ? static_cast<double>(remaining) / step_rate
                                           : std::numeric_limits<double>::quiet_NaN();

        std::ostringstream text;
        text << bar(report.step) << ' ' << report.step << '/' << context_.total_steps << ' ' << percent(report.step)
             << "% | " << detail::si_number(step_rate) << " steps/s, " << detail::si_number(sample_rate)
             << " samples/s | ETA " << detail::clock_time(eta) << " | loss " << detail::short_number(report.loss);
        for (const auto& [name, value] : report.metrics) text << ' ' << name << ' ' << detail::short_number(value);
        return text.str();
    }

    std::size_t percent(std::size_t step) const {
        return context_.total_steps == 0 ? 100 : std::min<std::size_t>(100, step * 100 / context_.total_steps);
    }

    std::string bar(std::size_t step) const {
        const std::size_t filled = percent(step) * bar_width / 100;
        return '[' + std::string(filled, '#') + std::string(bar_width - filled, '.') + ']';
    }

    void write_line(const StepReport& report) {
        *out_ << line(report) << '\n' << std::flush;
        last_written_step_ = report.step;
    }

    // Pads with spaces so that a shorter line fully covers the previous one.
    void draw(const StepReport& report) {
        std::string text = line(report);
        const std::size_t length = text.size();
        if (length < last_length_) text.append(last_length_ - length, ' ');
        *out_ << '\r' << text << std::flush;
        last_length_ = length;
        last_written_step_ = report.step;
        last_draw_ = detail::SteadyClock::now();
    }

    std::ostream* out_;
    std::size_t every_;
    bool tty_;
    TrainContext context_{};
    detail::SteadyClock::time_point start_ = detail::SteadyClock::now();
    detail::SteadyClock::time_point last_draw_ = start_;
    bool first_report_ = true;
    std::size_t samples_before_ = 0;
    std::size_t last_written_step_ = 0;
    std::size_t last_length_ = 0;
};

// =====================================================================================

/// Appends one JSON object per logged step to `path`:
///   {"step":12,"samples":384,"loss":0.5,"elapsed_s":0.01,"mse":0.4,...}
/// (metrics follow in the report's order; NaN/Inf are written as null). The file is
/// opened in append mode so a resumed run continues it, and every line is flushed so
/// a killed run loses at most the line being written. `elapsed_s` counts from this
/// run's on_train_begin (or construction, when used outside train()).
class JsonLinesLogger {
public:
    explicit JsonLinesLogger(const std::string& path, std::size_t every = 1)
        : path_(path), every_(every), file_(path, std::ios::out | std::ios::app) {
        detail::require_positive_every(every, "JsonLinesLogger");
        if (!file_) throw io_error("JsonLinesLogger: cannot open '" + path_ + "' for appending");
    }

    void on_train_begin(const TrainContext& context) {
        total_steps_ = context.total_steps;
        start_ = detail::SteadyClock::now();
    }

    void on_step_end(const StepReport& report) {
        if (detail::is_logged_step(report.step, every_, total_steps_)) write(report);
    }

    /// Logs the step an early-stopped run ended at, unless it was already logged.
    void on_train_end(const TrainSummary& summary) {
        if (summary.steps > 0 && last_logged_step_ != summary.last.step) write(summary.last);
    }

    const std::string& path() const { return path_; }

private:
    static nlohmann::ordered_json finite_or_null(double value) {
        return std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
    }

    void write(const StepReport& report) {
        nlohmann::ordered_json record;
        record["step"] = report.step;
        record["samples"] = report.samples;
        record["loss"] = finite_or_null(report.loss);
        record["elapsed_s"] = detail::seconds_since(start_);
        for (const auto& [name, value] : report.metrics) record[name] = finite_or_null(value);
        // replace: a metric name with invalid UTF-8 must not abort a training run.
        file_ << record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
        file_.flush();
        if (!file_) throw io_error("JsonLinesLogger: cannot write to '" + path_ + "'");
        last_logged_step_ = report.step;
    }

    std::string path_;
    std::size_t every_;
    std::ofstream file_;
    std::size_t total_steps_ = 0;  // 0: unknown, log only every-N steps
    std::size_t last_logged_step_ = 0;
    detail::SteadyClock::time_point start_ = detail::SteadyClock::now();
};

// =====================================================================================

/// Records every numeric fault the trainer reports (numeric_faults.hpp): appends
///   {"step":12,"kind":"input","tensor":"batch","detail":"nan at row 3, column 1",
///    "action":"skip_batch","message":"non-finite input at step 12 ..."}
/// to `path` (created at the first fault, so a clean run leaves no file; appended to on
/// resume; flushed per line), and writes the message as one line to `echo` when given.
class FaultLogger {
public:
    explicit FaultLogger(std::string path, std::ostream* echo = nullptr) : path_(std::move(path)), echo_(echo) {
        if (path_.empty()) throw config_error("FaultLogger: the path is empty");
    }

    void on_numeric_fault(const NumericFault& fault) {
        if (echo_ != nullptr) *echo_ << fault.message() << '\n' << std::flush;
        if (!file_.is_open()) {
            file_.open(path_, std::ios::out | std::ios::app);
            if (!file_) throw io_error("FaultLogger: cannot open '" + path_ + "' for appending");
        }
        nlohmann::ordered_json record;
        record["step"] = fault.step;
        record["kind"] = fault_kind_name(fault.kind);
        record["tensor"] = fault.tensor;
        record["detail"] = fault.detail;
        record["action"] = fault_policy_name(fault.action);
        record["message"] = fault.message();
        file_ << record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
        file_.flush();
        if (!file_) throw io_error("FaultLogger: cannot write to '" + path_ + "'");
        ++count_;
    }

    /// Faults recorded by this logger.
    std::size_t count() const { return count_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::ostream* echo_;
    std::ofstream file_;
    std::size_t count_ = 0;
};

// =====================================================================================

/// Stops when `metric` (lower is better; "loss" means StepReport::loss) has not
/// improved on its best value by more than `min_delta` for `patience` consecutive
/// steps. The first step always sets the best value. A step whose report lacks the
/// metric throws config_error (a misspelt name would otherwise never stop anything).
class EarlyStopping {
public:
    explicit EarlyStopping(std::string metric = "loss", std::size_t patience = 100, double min_delta = 0.0)
        : metric_(std::move(metric)), patience_(patience), min_delta_(min_delta) {
        if (patience_ == 0) throw config_error("EarlyStopping: patience must be > 0 (got 0)");
        if (!(min_delta_ >= 0.0) || !std::isfinite(min_delta_)) {
            throw config_error("EarlyStopping: min_delta must be finite and >= 0 (got " +
                               detail::format_number(min_delta_) + ")");
        }
    }

    bool on_step_end(const StepReport& report) {
        const double value = metric_value(report);
        if (value < best_ - min_delta_) {  // false for NaN: NaN never improves
            best_ = value;
            best_step_ = report.step;
            stale_steps_ = 0;
        } else {
            ++stale_steps_;
        }
        if (stale_steps_ >= patience_) stopped_at_ = report.step;
        return stale_steps_ >= patience_;
    }

    std::string stop_reason() const {
        return "early stopping at step " + std::to_string(stopped_at_) + ": " + metric_ + " did not improve by more than " +
               detail::format_number(min_delta_) + " for " + std::to_string(patience_) + " steps (best " +
               detail::format_number(best_) + " at step " + std::to_string(best_step_) + ")";
    }

    double best() const { return best_; }
    std::size_t best_step() const { return best_step_; }

private:
    double metric_value(const StepReport& report) const {
        if (metric_ == "loss") return report.loss;
        for (const auto& [name, value] : report.metrics) {
            if (name == metric_) return value;
        }
        std::string known = "loss";
        for (const auto& entry : report.metrics) known += ", " + entry.first;
        throw config_error("EarlyStopping: metric '" + metric_ + "' is not reported at step " +
                           std::to_string(report.step) + " (reported: " + known + ")");
    }

    std::string metric_;
    std::size_t patience_;
    double min_delta_;
    double best_ = std::numeric_limits<double>::infinity();
    std::size_t best_step_ = 0;
    std::size_t stale_steps_ = 0;
    std::size_t stopped_at_ = 0;
};

// =====================================================================================

/// Calls `save(step)` after every step that is a multiple of `every`, and (when
/// `at_end`) once when training ends, unless that last step was just saved or no
/// step was taken.
class CheckpointEvery {
public:
    CheckpointEvery(std::size_t every, std::function<void(std::size_t step)> save, bool at_end = true)
        : every_(every), save_(std::move(save)), at_end_(at_end) {
        detail::require_positive_every(every, "CheckpointEvery");
        if (!save_) throw config_error("CheckpointEvery: the save function is empty");
    }

    void on_step_end(const StepReport& report) {
        if (report.step % every_ == 0) save(report.step);
    }

    void on_train_end(const TrainSummary& summary) {
        if (at_end_ && summary.steps > 0 && summary.last.step != last_saved_step_) save(summary.last.step);
    }

private:
    void save(std::size_t step) {
        save_(step);
        last_saved_step_ = step;
    }

    std::size_t every_;
    std::function<void(std::size_t)> save_;
    bool at_end_;
    std::size_t last_saved_step_ = 0;
};

// =====================================================================================

/// Stops training once `seconds` of wall time (steady clock, from on_train_begin)
/// have passed. The step in progress is always completed.
class StopAfterSeconds {
public:
    explicit StopAfterSeconds(double seconds) : budget_s_(seconds) {
        if (!(seconds > 0.0) || !std::isfinite(seconds)) {
            throw config_error("StopAfterSeconds: seconds must be finite and > 0 (got " +
                               detail::format_number(seconds) + ")");
        }
    }

    void on_train_begin(const TrainContext& /*context*/) { start_ = detail::SteadyClock::now(); }

    bool on_step_end(const StepReport& report) {
        elapsed_s_ = detail::seconds_since(start_);
        stopped_at_ = report.step;
        return elapsed_s_ >= budget_s_;
    }

    std::string stop_reason() const {
        return "time budget of " + detail::format_number(budget_s_) + " s used up at step " +
               std::to_string(stopped_at_) + " (" + detail::format_number(elapsed_s_) + " s)";
    }

private:
    double budget_s_;
    detail::SteadyClock::time_point start_ = detail::SteadyClock::now();
    double elapsed_s_ = 0.0;
    std::size_t stopped_at_ = 0;
};

/// Turns SIGINT and SIGTERM into a request to stop after the current step, for as long
/// as it lives (the previous handlers are restored by the destructor). A second signal
/// while stopping is handled the same way; SIGKILL cannot be caught, which is what
/// atomic checkpoints are for. One instance at a time (the flag is process-wide).
class StopOnInterrupt {
public:
    StopOnInterrupt() {
        flag() = 0;
        previous_int_ = std::signal(SIGINT, &StopOnInterrupt::handle);
        previous_term_ = std::signal(SIGTERM, &StopOnInterrupt::handle);
    }
    StopOnInterrupt(const StopOnInterrupt&) = delete;
    StopOnInterrupt& operator=(const StopOnInterrupt&) = delete;
    ~StopOnInterrupt() {
        std::signal(SIGINT, previous_int_ == SIG_ERR ? SIG_DFL : previous_int_);
        std::signal(SIGTERM, previous_term_ == SIG_ERR ? SIG_DFL : previous_term_);
    }

    bool on_step_end(const StepReport& report) {
        if (flag() == 0) return false;
        stopped_at_ = report.step;
        return true;
    }

    bool interrupted() const { return flag() != 0; }

    std::string stop_reason() const {
        return std::string(flag() == SIGTERM ? "SIGTERM" : "SIGINT") + " received; stopped after step " +
               std::to_string(stopped_at_);
    }

private:
    static volatile std::sig_atomic_t& flag() {
        static volatile std::sig_atomic_t received = 0;
        return received;
    }
    static void handle(int signal_number) { flag() = signal_number; }

    using Handler = void (*)(int);
    Handler previous_int_ = SIG_DFL;
    Handler previous_term_ = SIG_DFL;
    std::size_t stopped_at_ = 0;
};

// =====================================================================================

/// Records every StepReport (across runs, when reused), for examples and tests that
/// plot or compare training curves.
class MetricsHistory {
public:
    void on_step_end(const StepReport& report) { reports_.push_back(report); }

    const std::vector<StepReport>& reports() const { return reports_; }
    std::size_t size() const { return reports_.size(); }

    /// The values of `name` at every recorded step ("loss" gives StepReport::loss);
    /// NaN where a step did not report it.
    std::vector<double> series(const std::string& name) const {
        std::vector<double> values;
        values.reserve(reports_.size());
        for (const StepReport& report : reports_) {
            values.push_back(name == "loss" ? report.loss
                                            : report.metric(name, std::numeric_limits<double>::quiet_NaN()));
        }
        return values;
    }

private:
    std::vector<StepReport> reports_;
};

}  // namespace sae
