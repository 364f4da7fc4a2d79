#pragma once
// What every benchmark here needs besides the code it times: where its Python peer
// script lives, the timing itself (Google Benchmark, below), the load average to record
// beside the times (the machine may be shared), and one thread count for OpenMP and
// Eigen alike.
#include <sae/cli/arguments.hpp>
#include <sae/core/error.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <Eigen/Core>

// Set by benchmarks/CMakeLists.txt from the version CMake's benchmark package reports.
#ifndef SAE_GOOGLE_BENCHMARK_VERSION
#error "SAE_GOOGLE_BENCHMARK_VERSION is not defined: link the target to sae_google_benchmark (benchmarks/CMakeLists.txt)"
#endif

namespace sae::bench {

/// The folder of the benchmark sources (and of their PyTorch / SciPy scripts).
inline std::string benchmarks_dir() {
    const std::string source = __FILE__;
    const std::size_t slash = source.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : source.substr(0, slash);
}

/// The median of `times` (the mean of the middle two for an even count); robust to the
/// odd slow repetition on a shared machine, unlike the mean.
inline double median(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    const std::size_t n = times.size();
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

/// What times the benchmarks, as their JSON lines record it ("timer").
inline std::string timer() { return "google-benchmark " SAE_GOOGLE_BENCHMARK_VERSION; }

/// Google Benchmark's console table, written to stderr beside the benchmarks' progress
/// lines (stdout carries their own table and JSON line), that also keeps the wall time
/// of every run it reports. The machine description (CPUs, caches, load) is printed
/// before the first measurement of the process only, not before each one.
class RecordingReporter final : public benchmark::ConsoleReporter {
public:
    RecordingReporter() : benchmark::ConsoleReporter(OO_Tabular) {
        SetOutputStream(&std::cerr);
        SetErrorStream(&std::cerr);
    }

    bool ReportContext(const Context& context) override {
        static bool described = false;
        if (!described) {
            described = true;
            return benchmark::ConsoleReporter::ReportContext(context);
        }
        name_field_width_ = context.name_field_width;
        printed_header_ = false;
        prev_counters_.clear();
        return true;
    }

    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
                seconds_[run.run_name.function_name].push_back(run.real_accumulated_time / static_cast<double>(run.iterations));
            }
        }
        benchmark::ConsoleReporter::ReportRuns(runs);
    }

    /// Seconds per iteration of each repetition of the benchmark called `name`.
    std::vector<double> seconds(const std::string& name) const {
        const auto found = seconds_.find(name);
        return found == seconds_.end() ? std::vector<double>() : found->second;
    }

private:
    std::map<std::string, std::vector<double>> seconds_;
};

/// Times `work` with Google Benchmark and returns the median wall-clock seconds of
/// `timed_runs` single runs, after `warmup` untimed runs. Each timed run is one
/// repetition of one iteration, so that the median is over single steps (as the
/// PyTorch peers time theirs) and one slow step on a shared machine does not move it.
/// The warm-up is a benchmark of its own ("NAME warm-up", `warmup` iterations), so that
/// Google Benchmark's statistics of NAME cover the timed runs only. Wall time (not CPU
/// time) is what counts: the work runs on every OpenMP thread. An exception thrown by
/// `work` ends the measurement and is rethrown here.
template <class Work>
double time_with_google_benchmark(const std::string& name, Work&& work, int warmup, int timed_runs) {
    std::exception_ptr failure;
    const auto run = [&](benchmark::State& state) {
        if (failure) {
            state.SkipWithError("an earlier run failed");
            return;
        }
        for (auto _ : state) {
            try {
                work();
            } catch (...) {
                failure = std::current_exception();
                state.SkipWithError("the timed work threw");
                break;
            }
        }
    };
    benchmark::ClearRegisteredBenchmarks();
    if (warmup > 0) benchmark::RegisterBenchmark((name + " warm-up").c_str(), run)->Iterations(warmup)->UseRealTime();
    benchmark::RegisterBenchmark(name.c_str(), run)->Iterations(1)->Repetitions(timed_runs)->UseRealTime();
    RecordingReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::ClearRegisteredBenchmarks();
    if (failure) std::rethrow_exception(failure);
    const std::vector<double> seconds = reporter.seconds(name);
    if (static_cast<int>(seconds.size()) != timed_runs) {
        throw sae::error("Google Benchmark reported " + std::to_string(seconds.size()) + " of " + std::to_string(timed_runs) +
                         " runs of '" + name + "'");
    }
    return median(seconds);
}

/// "1-min 5-min 15-min" from /proc/loadavg, recorded with every result.
inline std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

/// Sets OpenMP's and Eigen's thread counts to `requested` (0: every core) and returns
/// the count in effect (1 without OpenMP).
inline int use_threads(int requested) {
    int threads = requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#else
    threads = 1;
#endif
    Eigen::setNbThreads(threads);
    return threads;
}

/// A benchmark's main(): sae::cli::run_main (exit 2 on a usage or config error, 1 on
/// any other).
template <class Body>
int run(const char* program, Body&& body) {
    return sae::cli::run_main(program, std::forward<Body>(body));
}

}  // namespace sae::bench
