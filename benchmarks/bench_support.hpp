#pragma once
// What every benchmark here needs besides the code it times: where its Python peer
// script lives, a median of repeated timings, the load average to record beside them
// (the machine may be shared), and one thread count for OpenMP and Eigen alike.
#include <sae/cli/arguments.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <Eigen/Core>

namespace sae::bench {

/// The folder of the benchmark sources (and of their PyTorch / SciPy scripts).
inline std::string benchmarks_dir() {
    const std::string source = __FILE__;
    const std::size_t slash = source.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : source.substr(0, slash);
}

/// Seconds since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The median of `times` (the mean of the middle two for an even count); robust to the
/// odd slow repetition on a shared machine, unlike the mean.
inline double median(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    const std::size_t n = times.size();
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
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

/// A benchmark's main(): returns body()'s status; a usage error (whose message already
/// names the program) exits 2, any other error 1 with `program` before its message.
template <class Body>
int run(const char* program, Body&& body) {
    try {
        return body();
    } catch (const sae::cli::usage_error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 1;
    }
}

}  // namespace sae::bench
