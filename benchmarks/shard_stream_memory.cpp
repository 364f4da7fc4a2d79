// Peak resident memory of ShardSource streaming one epoch over 1 GB and over 4 GB of
// .npy shards (float32, d_in = 512), side by side in one run. The claim checked: peak
// RSS depends on the shuffle buffer, not on the total data size (ratio ~1, not ~4).
//
// Each measurement streams in a forked child, so its getrusage peak covers only the
// streaming (the parent's shard writing is not counted). The epoch's rate (GB/s) is one
// run timed by Google Benchmark in the child (its own table goes to stderr).
//
// Usage: shard_stream_memory [--dir DIR] [--sizes-gb 1,4] [--buffer-rows 65536] [--keep]
// Prints a table and one JSON line ("timer" names the timer).
#include "bench_support.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/data/shard_source.hpp>
#include <sae/io/npy.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr sae::Index d_in = 512;
constexpr sae::Index shard_rows = 65'536;  // 128 MiB per shard

struct Options {
    std::string dir = "/tmp/sae_shard_bench";
    std::vector<double> sizes_gb = {1.0, 4.0};
    sae::Index buffer_rows = 65'536;
    bool keep = false;
};

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1, {{"dir", true}, {"sizes-gb", true}, {"buffer-rows", true}, {"keep", false}},
                                   "shard_stream_memory");
    if (args.help()) {
        std::cout << "usage: shard_stream_memory [--dir DIR] [--sizes-gb 1,4] [--buffer-rows 65536] [--keep]\n";
        std::exit(0);
    }
    if (!args.positional().empty()) {
        throw sae::cli::usage_error("shard_stream_memory: unexpected argument '" + args.positional().front() + "'");
    }
    Options o;
    o.dir = args.get("dir", o.dir);
    o.sizes_gb = args.reals("sizes-gb", o.sizes_gb);
    for (double gigabytes : o.sizes_gb) {
        if (!(gigabytes > 0.0)) throw sae::cli::usage_error("shard_stream_memory: --sizes-gb values must be > 0");
    }
    o.buffer_rows = args.integer("buffer-rows", o.buffer_rows, 1);
    o.keep = args.flag("keep");
    return o;
}

/// Writes shards totalling `gigabytes` into dir; returns their paths.
std::vector<std::string> make_shards(const std::string& dir, double gigabytes) {
    const double bytes_per_shard = static_cast<double>(shard_rows * d_in * 4);
    const int count = std::max(1, static_cast<int>(gigabytes * 1e9 / bytes_per_shard + 0.5));
    std::vector<std::string> files;
    sae::Matrix<float> rows(shard_rows, d_in);
    for (int s = 0; s < count; ++s) {
        rows.setConstant(static_cast<float>(s));
        rows.col(0).setLinSpaced(0.0f, 1.0f);
        files.push_back(dir + "/shard_" + std::to_string(s) + ".npy");
        sae::write_npy(files.back(), rows);
    }
    return files;
}

long peak_rss_kib_of_child_stream(const std::vector<std::string>& files, sae::Index buffer_rows, double& seconds) {
    int pipe_fd[2];
    if (::pipe(pipe_fd) != 0) throw sae::io_error("pipe failed");
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(pipe_fd[0]);
        sae::ShardSourceConfig config;
        config.files = files;
        config.batch_size = 4096;
        config.shuffle_buffer_rows = buffer_rows;
        config.epochs = 1;
        sae::ShardSource<float> source(config);
        sae::Matrix<float> batch;
        double checksum = 0.0;
        const double elapsed = sae::bench::time_with_google_benchmark(
            "stream one epoch",
            [&] {
                for (std::size_t b = 0; b < source.batches_available(); ++b) {
                    source.next_batch(batch);
                    checksum += static_cast<double>(batch(0, 1));
                }
            },
            0, 1);
        rusage usage{};
        ::getrusage(RUSAGE_SELF, &usage);
        const std::string report = std::to_string(usage.ru_maxrss) + " " + std::to_string(elapsed) + " " +
                                   std::to_string(checksum);
        if (::write(pipe_fd[1], report.data(), report.size()) < 0) ::_exit(2);
        ::_exit(0);
    }
    ::close(pipe_fd[1]);
    char text[256] = {};
    const ssize_t n = ::read(pipe_fd[0], text, sizeof(text) - 1);
    ::close(pipe_fd[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) throw sae::io_error("streaming child failed");
    long rss = 0;
    double checksum = 0.0;
    std::istringstream(text) >> rss >> seconds >> checksum;
    return rss;
}

}  // namespace

int main(int argc, char** argv) {
    return sae::bench::run("shard_stream_memory", [&] {
        const Options options = parse(argc, argv);
        std::vector<long> peaks;
        std::vector<double> rates;
        for (double gb : options.sizes_gb) {
            const std::string dir = options.dir + "/" + std::to_string(gb) + "gb";
            if (std::system(("mkdir -p '" + dir + "'").c_str()) != 0) throw sae::io_error(dir + ": cannot create");
            std::cerr << "writing " << gb << " GB of shards to " << dir << "...\n";
            const std::vector<std::string> files = make_shards(dir, gb);
            double seconds = 0.0;
            peaks.push_back(peak_rss_kib_of_child_stream(files, options.buffer_rows, seconds));
            rates.push_back(gb / seconds);
            if (!options.keep) std::system(("rm -rf '" + dir + "'").c_str());
        }
        std::printf("%-10s %-14s %-10s\n", "data (GB)", "peak RSS (MiB)", "GB/s");
        for (std::size_t i = 0; i < peaks.size(); ++i) {
            std::printf("%-10.1f %-14.1f %-10.2f\n", options.sizes_gb[i], static_cast<double>(peaks[i]) / 1024.0, rates[i]);
        }
        const double ratio = static_cast<double>(peaks.back()) / static_cast<double>(peaks.front());
        std::printf("peak RSS ratio (largest / smallest data) = %.3f; buffer = %ld rows x %ld = %.1f MiB\n", ratio,
                    static_cast<long>(options.buffer_rows), static_cast<long>(d_in),
                    static_cast<double>(options.buffer_rows * d_in * 4) / (1024.0 * 1024.0));
        std::printf("{\"benchmark\": \"shard_stream_memory\", \"timer\": \"%s\", \"sizes_gb\": [", sae::bench::timer().c_str());
        for (std::size_t i = 0; i < peaks.size(); ++i) std::printf("%s%.1f", i ? ", " : "", options.sizes_gb[i]);
        std::printf("], \"peak_rss_mib\": [");
        for (std::size_t i = 0; i < peaks.size(); ++i) std::printf("%s%.1f", i ? ", " : "", static_cast<double>(peaks[i]) / 1024.0);
        std::printf("], \"ratio\": %.3f}\n", ratio);
        return 0;
    });
}
