// Linear assignment alone: sae::solve_linear_assignment against SciPy's
// linear_sum_assignment (benchmarks/linear_assignment_scipy.py, run from here) on the
// same matrices, the kind MFR solves: cost = 1 - cos between the rows of two independent
// random dictionaries (Gaussian rows, d = 256 at n = 512, else 768), n x n, float64.
// Random dictionaries are the hard case (at the start of training); trained, similar
// dictionaries are solved much faster by both.
//
// Usage: linear_assignment [--sizes 512,3072,8192] [--reps 3] [--big-reps 1]
//                          [--python /usr/bin/python3] [--scipy-script PATH] [--dir DIR]
//                          [--no-scipy]
// (--big-reps applies to n >= 8192.) libsae's time is the median of --reps solves without
// a warm-up, each timed by Google Benchmark, whose own table goes to stderr. Prints a
// table and one JSON line (the last line; "timer" names the timer).
#include "bench_support.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/io/file.hpp>
#include <sae/io/npy.hpp>
#include <sae/mfr/feature_matching.hpp>
#include <sae/mfr/linear_assignment.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

using sae::bench::benchmarks_dir;
using sae::bench::load_average;
using sae::bench::time_with_google_benchmark;

using sae::Index;

struct Options {
    std::vector<Index> sizes = {512, 3072, 8192};
    int reps = 3, big_reps = 1;
    bool scipy = true;
    std::string python = "/usr/bin/python3";
    std::string scipy_script = benchmarks_dir() + "/linear_assignment_scipy.py";
    std::string dir = "/tmp/sae_linear_assignment_bench";
};

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1,
                                   {{"sizes", true}, {"reps", true}, {"big-reps", true}, {"python", true},
                                    {"scipy-script", true}, {"dir", true}, {"no-scipy", false}},
                                   "linear_assignment");
    if (args.help()) {
        std::cout << "usage: linear_assignment [--sizes N,N,...] [--reps N] [--big-reps N] [--no-scipy]\n"
                     "       [--python PATH] [--scipy-script PATH] [--dir DIR]\n";
        std::exit(0);
    }
    if (!args.positional().empty()) {
        throw sae::cli::usage_error("linear_assignment: unexpected argument '" + args.positional().front() + "'");
    }
    Options o;
    if (args.flag("sizes")) {
        o.sizes.clear();
        for (const double n : args.reals("sizes", {})) {
            if (!(n >= 1.0) || n != std::floor(n)) {
                throw sae::cli::usage_error("linear_assignment: --sizes: every size must be a whole number >= 1");
            }
            o.sizes.push_back(static_cast<Index>(n));
        }
    }
    o.reps = static_cast<int>(args.integer("reps", o.reps, 1));
    o.big_reps = static_cast<int>(args.integer("big-reps", o.big_reps, 1));
    o.python = args.get("python", o.python);
    o.scipy_script = args.get("scipy-script", o.scipy_script);
    o.dir = args.get("dir", o.dir);
    o.scipy = !args.flag("no-scipy");
    return o;
}

/// 1 - cos between the rows of two random [n, d] dictionaries.
sae::Matrix<double> dictionary_cost(Index n, std::uint64_t seed) {
    const Index d = n <= 512 ? 256 : 768;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    sae::Matrix<float> a(n, d), b(n, d);
    for (Index i = 0; i < a.size(); ++i) a.data()[i] = normal(rng);
    for (Index i = 0; i < b.size(); ++i) b.data()[i] = normal(rng);
    return (1.0 - sae::cosine_similarity(a, b).cast<double>().array()).matrix();
}

struct Result {
    Index n = 0;
    int reps = 0;
    double seconds = 0, total_cost = 0, scipy_seconds = 0, scipy_total_cost = 0;
    bool has_scipy = false;
};

}  // namespace

int main(int argc, char** argv) {
    return sae::bench::run("linear_assignment", [&] {
        const Options o = parse(argc, argv);
        std::filesystem::create_directories(o.dir);
        const std::string load_before = load_average();
        std::vector<Result> results;
        std::vector<std::string> files;
        for (const Index n : o.sizes) {
            Result r;
            r.n = n;
            r.reps = n >= 8192 ? o.big_reps : o.reps;
            const sae::Matrix<double> cost = dictionary_cost(n, static_cast<std::uint64_t>(n));
            r.seconds = time_with_google_benchmark(
                "solve_linear_assignment n=" + std::to_string(n),
                [&] { r.total_cost = sae::solve_linear_assignment(cost).total_cost; }, 0, r.reps);
            std::cerr << "n = " << n << ": libsae " << r.seconds << " s\n";
            if (o.scipy) {
                const std::string file = o.dir + "/cost_" + std::to_string(n) + ".npy";
                sae::write_npy(file, cost);
                files.push_back(file);
            }
            results.push_back(r);
        }
        std::string scipy_version;
        if (o.scipy) {
            // One process per repetition count, so that 8192 can run fewer times.
            for (const bool big : {false, true}) {
                std::string list;
                for (std::size_t i = 0; i < results.size(); ++i) {
                    if ((results[i].n >= 8192) == big) list += " " + files[i];
                }
                if (list.empty()) continue;
                const std::string out = o.dir + (big ? "/scipy_big.json" : "/scipy.json");
                std::filesystem::remove(out);
                const std::string command = o.python + " " + o.scipy_script + " --out " + out + " --reps " +
                                            std::to_string(big ? o.big_reps : o.reps) + list;
                std::cerr << "running: " << command << "\n";
                if (std::system(command.c_str()) != 0 || !std::filesystem::exists(out)) {
                    throw sae::io_error("the SciPy side failed (" + command + ")");
                }
                const nlohmann::json j = nlohmann::json::parse(sae::read_whole_file(out));
                scipy_version = j.at("scipy").get<std::string>();
                for (std::size_t i = 0; i < results.size(); ++i) {
                    if (!j.at("files").contains(files[i])) continue;
                    results[i].has_scipy = true;
                    results[i].scipy_seconds = j["files"][files[i]].at("seconds").get<double>();
                    results[i].scipy_total_cost = j["files"][files[i]].at("total_cost").get<double>();
                }
            }
            std::filesystem::remove_all(o.dir);
        }
        const std::string load_after = load_average();

        std::cout << "\nLinear assignment, n x n cost 1 - cos of two random dictionaries; load average before: "
                  << load_before << ", after: " << load_after << "\n\n"
                  << "| n | libsae (s) | SciPy " << scipy_version << " (s) | SciPy / libsae | optimal costs agree |\n"
                  << "|---|---|---|---|---|\n";
        nlohmann::json json{{"benchmark", "linear_assignment"}, {"timer", sae::bench::timer()}, {"scipy", scipy_version},
                            {"load_before", load_before}, {"load_after", load_after}};
        for (const Result& r : results) {
            const double difference = std::abs(r.total_cost - r.scipy_total_cost) / std::max(1.0, std::abs(r.scipy_total_cost));
            std::cout << "| " << r.n << " | " << std::fixed << std::setprecision(4) << r.seconds << " | ";
            if (r.has_scipy) {
                std::cout << r.scipy_seconds << " | " << std::setprecision(2) << r.scipy_seconds / r.seconds << "x | "
                          << (difference < 1e-9 ? "yes" : "NO") << " |\n";
            } else {
                std::cout << "- | - | - |\n";
            }
            nlohmann::json entry{{"n", r.n}, {"reps", r.reps}, {"libsae_seconds", r.seconds}, {"libsae_total_cost", r.total_cost}};
            if (r.has_scipy) {
                entry["scipy_seconds"] = r.scipy_seconds;
                entry["scipy_total_cost"] = r.scipy_total_cost;
                entry["ratio_scipy_over_libsae"] = r.scipy_seconds / r.seconds;
                entry["relative_cost_difference"] = difference;
            }
            json["sizes"].push_back(entry);
        }
        std::cout << json.dump() << "\n";
        return 0;
    });
}
