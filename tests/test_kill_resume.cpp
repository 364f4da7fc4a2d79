// Nothing lost when a run dies (issue 10):
//   - `sae train` (the real binary) is killed with SIGKILL at seeded random moments, in
//     20 trials or more (until 20 kills have hit a run mid-way), half of them killed a
//     second time while resuming. Every kill leaves either
//     no checkpoint yet or a loadable one, and resuming always ends with a final
//     checkpoint bit-identical to an uninterrupted run's (every weight, Adam moment,
//     counter and data position) and the same metrics log, without stray temporaries.
//   - A full disk: a checkpoint written under a file-size limit (RLIMIT_FSIZE, SIGXFSZ
//     ignored, as `ulimit -f` does) fails with io_error naming the file, and the previous
//     checkpoint stays byte-for-byte intact and loadable: through the library in a forked
//     child, and through `sae train --resume`.
#include <sae/core/activations/topk.hpp>
#include <sae/core/trainable_sae.hpp>
#include <sae/core/trainer.hpp>
#include <sae/data/synthetic.hpp>
#include <sae/io/checkpoint.hpp>
#include <sae/io/npy.hpp>

#include <catch2/catch.hpp>

#include "support/random_matrix.hpp"
#include "support/state_equality.hpp"
#include "support/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_kill_resume_cases {

namespace {

using sae::Matrix;
using sae::StateDict;
using sae::test::require_same_state;

/// Temporary files an interrupted atomic write would leave in `directory` or below.
std::vector<std::string> temporaries_in(const std::string& directory) {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
        const std::string name = entry.path().filename().string();
        if (name.find(".tmp.") != std::string::npos) found.push_back(name);
    }
    return found;
}

/// Runs `f` in a forked child whose files may not grow beyond `limit_bytes` (write()
/// then fails with EFBIG instead of killing the process: SIGXFSZ is ignored, as a shell
/// does for `ulimit -f`). Never returns in the child.
template <class Child>
pid_t fork_with_file_size_limit(rlim_t limit_bytes, Child&& child) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const struct rlimit limit {limit_bytes, limit_bytes};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(90);
        std::signal(SIGXFSZ, SIG_IGN);
        child();
        ::_exit(91);
    }
    return pid;
}

int exit_status_of(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#ifdef SAE_CLI_PATH

constexpr std::size_t total_steps = 24;
constexpr std::size_t log_every = 4;
constexpr std::size_t checkpoint_every = 2;  // each checkpoint is fsynced: ~15 ms on a plain disk

/// Starts `sae train --config NAME.json [--resume]` in `dir`, stdout and stderr into
/// NAME.out / NAME.err. The child inherits the caller's limits.
pid_t launch_train(const std::string& dir, const std::string& name, bool resume) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::chdir(dir.c_str()) != 0) ::_exit(80);
        const int out = ::open((name + ".out").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        const int err = ::open((name + ".err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(81);
        const std::string config = name + ".json";
        if (resume) {
            ::execl(SAE_CLI_PATH, "sae", "train", "--config", config.c_str(), "--resume", static_cast<char*>(nullptr));
        } else {
            ::execl(SAE_CLI_PATH, "sae", "train", "--config", config.c_str(), static_cast<char*>(nullptr));
        }
        ::_exit(82);
    }
    return pid;
}

/// A tiny run: 16-wide activations, 32 TopK latents, 24 steps of 16 rows, shuffled
/// across two files, a checkpoint every 2 steps.
void write_run(const std::string& dir, const std::string& name) {
    const nlohmann::json config = {
        {"model", {{"autoencoder", {{"d_in", 16}, {"d_sae", 32}}}, {"activation", {{"architecture", "topk"}, {"k", 3}}}}},
        {"training", {{"learning_rate", {{"base_rate", 0.004}, {"warmup_steps", 5}}}, {"dead_after_tokens", 128},
                      {"loss", {{"aux_coefficient", 0.03}, {"aux_k", 4}}}}},
        {"trainer", {{"total_steps", total_steps}}},
        {"data", {{"train_files", {"a.npy", "b.npy"}}, {"batch_size", 16}, {"shuffle_buffer_rows", 48}, {"epochs", 10},
                  {"seed", 5}}},
        {"output", {{"directory", name}, {"checkpoint_every", checkpoint_every}, {"log_every", log_every}, {"progress", false}}},
        {"seed", 3}};
    sae::test::write_bytes(dir + "/" + name + ".json", config.dump(2));
}

void write_data(const std::string& dir) {
    const Matrix<float> directions = sae::test::gaussian_matrix<float>(6, 16, 99);
    for (const auto& [file, rows, seed] : {std::make_tuple("a.npy", 96, 1), std::make_tuple("b.npy", 64, 2)}) {
        Matrix<float> codes = sae::test::gaussian_matrix<float>(rows, 6, seed).cwiseAbs();
        codes = (codes.array() > 1.0f).select(codes, 0.0f);
        sae::write_npy(dir + "/" + file, Matrix<float>(codes * directions + 0.01f * sae::test::gaussian_matrix<float>(rows, 16, seed + 7)));
    }
}

/// (step, loss) of every line of a metrics log: equal logs mean equal training curves.
std::vector<std::pair<std::size_t, double>> curve_of(const std::string& path) {
    std::vector<std::pair<std::size_t, double>> curve;
    const std::string text = sae::test::read_bytes(path);
    std::size_t begin = 0;
    for (std::size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
        const nlohmann::json line = nlohmann::json::parse(text.substr(begin, end - begin));
        curve.emplace_back(line.at("step").get<std::size_t>(), line.at("loss").get<double>());
    }
    return curve;
}

/// The step a checkpoint file holds; REQUIREs that it loads (a kill never leaves a torn one).
std::size_t checkpoint_step(const std::string& path) {
    sae::Checkpoint<float> checkpoint;
    REQUIRE_NOTHROW(checkpoint = sae::load_checkpoint<float>(path));
    return checkpoint.state.get<std::size_t>("step");
}

/// Whether `child` has ended (without reaping it: exit_status_of still can).
bool has_ended(pid_t child) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child;
}

/// Waits until the checkpoint at `path` holds step `step` or later, or `child` has
/// ended, or 60 s passed. Kill moments are placed by the run's own progress, not by the
/// clock, so that they land mid-run however fast or loaded the machine is. (Every poll
/// also loads the checkpoint the run is replacing: it must never be torn.)
void wait_for_step(const std::string& path, std::size_t step, pid_t child) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!has_ended(child) && std::chrono::steady_clock::now() < deadline) {
        if (std::filesystem::exists(path) && checkpoint_step(path) >= step) return;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

#endif  // SAE_CLI_PATH

}  // namespace

#ifdef SAE_CLI_PATH
TEST_CASE("sae train killed by SIGKILL at random moments resumes to a bit-identical run", "[kill_resume][cli]") {
    const sae::test::TempDir temp("kill_resume");
    const std::string dir = temp.path();
    write_data(dir);

    write_run(dir, "reference");
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(exit_status_of(launch_train(dir, "reference", false)) == 0);
    const auto run_time = std::chrono::steady_clock::now() - started;
    const StateDict<float> reference = sae::load_checkpoint<float>(dir + "/reference/checkpoint.safetensors").state;
    REQUIRE(reference.get<std::size_t>("step") == total_steps);
    const auto reference_curve = curve_of(dir + "/reference/metrics.jsonl");
    REQUIRE(reference_curve.size() == total_steps / log_every);

    // Kill moments from a fixed seed: after a random number of the checkpoint writes this
    // process has left to do (0: during start-up or before its first checkpoint), plus a
    // random delay of up to one step of the reference run, so kills fall
    // before, during and between checkpoint writes. The very first kill comes at once.
    std::mt19937_64 rng(20240917);
    // The mean time of a step, start-up and the end of the run included.
    const long long interval_us =
        std::chrono::duration_cast<std::chrono::microseconds>(run_time).count() / static_cast<long long>(total_steps);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    // At least 20 trials, and more until 20 kills have hit a run mid-way: on a loaded
    // machine a tiny run may finish before its kill lands.
    constexpr int min_trials = 20, min_mid_run_kills = 20, max_trials = 200;
    int trials = 0;
    int kills = 0, before_first_checkpoint = 0, mid_run = 0, after_last_step = 0;
    for (int trial = 0; (trial < min_trials || mid_run < min_mid_run_kills) && trial < max_trials; ++trial) {
        ++trials;
        const std::string name = "trial" + std::to_string(trial);
        const std::string checkpoint = dir + "/" + name + "/checkpoint.safetensors";
        write_run(dir, name);
        const int kills_this_trial = trial % 2 == 0 ? 1 : 2;  // odd trials: also kill the resume
        for (int kill = 0; kill < kills_this_trial; ++kill) {
            const bool resume = std::filesystem::exists(checkpoint);
            const std::size_t start_step = resume ? checkpoint_step(checkpoint) : 0;
            const std::size_t writes_left = (total_steps - start_step) / checkpoint_every;
            const pid_t child = launch_train(dir, name, resume);
            REQUIRE(child > 0);
            const auto writes = static_cast<std::size_t>(uniform(rng) * static_cast<double>(writes_left));  // < writes_left
            const auto delay = static_cast<long long>(uniform(rng) * static_cast<double>(interval_us));
            if (trial > 0 || kill > 0) {
                if (writes > 0) wait_for_step(checkpoint, start_step + writes * checkpoint_every, child);
                std::this_thread::sleep_for(std::chrono::microseconds(delay));
            }
            ::kill(child, SIGKILL);
            const int status = exit_status_of(child);
            REQUIRE((status == -1 || status == 0));  // killed, or finished first
            ++kills;
            INFO("trial " << trial << ", kill " << kill);
            if (!std::filesystem::exists(checkpoint)) {
                ++before_first_checkpoint;
                continue;
            }
            const std::size_t step = checkpoint_step(checkpoint);
            REQUIRE(step <= total_steps);
            if (step < total_steps) ++mid_run;
            else ++after_last_step;
        }
        const bool resume = std::filesystem::exists(checkpoint);
        REQUIRE(exit_status_of(launch_train(dir, name, resume)) == 0);
        INFO("trial " << trial << ": " << sae::test::read_bytes(dir + "/" + name + ".err"));
        require_same_state(sae::load_checkpoint<float>(checkpoint).state, reference);
        CHECK(curve_of(dir + "/" + name + "/metrics.jsonl") == reference_curve);  // no step lost or logged twice
        CHECK(temporaries_in(dir + "/" + name) == std::vector<std::string>{});
    }
    std::printf("kill/resume: %d SIGKILLs in %d trials (%d before the first checkpoint, %d mid-run, %d after the "
                "last step); every run resumed to a bit-identical final state\n",
                kills, trials, before_first_checkpoint, mid_run, after_last_step);
    // Meaningful only if kills really hit runs in progress (placed by the run's progress,
    // about 3 in 4 do on an idle machine).
    CHECK(mid_run >= min_mid_run_kills);
    CHECK(before_first_checkpoint >= 1);
}

TEST_CASE("sae train on a full disk: io_error naming the checkpoint, previous checkpoint intact", "[kill_resume][cli][disk]") {
    const sae::test::TempDir temp("full_disk_cli");
    const std::string dir = temp.path();
    write_data(dir);
    write_run(dir, "run");
    REQUIRE(exit_status_of(launch_train(dir, "run", false)) == 0);
    const std::string checkpoint = dir + "/run/checkpoint.safetensors";
    const std::string before = sae::test::read_bytes(checkpoint);
    REQUIRE(before.size() > 12000);  // the limit below must bite on the checkpoint only

    // Continue the run for 10 more steps with files limited to 8 KiB: config.json and
    // the logs fit, the next checkpoint does not.
    nlohmann::json config = nlohmann::json::parse(sae::test::read_bytes(dir + "/run.json"));
    config["trainer"]["total_steps"] = total_steps + 10;
    sae::test::write_bytes(dir + "/run.json", config.dump(2));
    const pid_t child = fork_with_file_size_limit(8192, [&] {
        if (::chdir(dir.c_str()) != 0) ::_exit(80);
        const int err = ::open("full.err", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (err < 0 || ::dup2(err, 2) < 0) ::_exit(81);
        ::execl(SAE_CLI_PATH, "sae", "train", "--config", "run.json", "--resume", static_cast<char*>(nullptr));
    });
    CHECK(exit_status_of(child) == 1);
    const std::string error = sae::test::read_bytes(dir + "/full.err");
    CHECK_THAT(error, Catch::Contains("sae train: error: run/checkpoint.safetensors: write failed: File too large"));
    CHECK(sae::test::read_bytes(checkpoint) == before);
    CHECK(checkpoint_step(checkpoint) == total_steps);
    CHECK(temporaries_in(dir + "/run").empty());
}
#endif  // SAE_CLI_PATH

TEST_CASE("A checkpoint write under a file-size limit fails with io_error and keeps the previous file", "[kill_resume][disk]") {
    const sae::test::TempDir temp("full_disk");
    const std::string path = temp.file("checkpoint.safetensors");
    sae::IndependentFeaturesConfig data;
    data.input_dim = 16;
    data.num_features = 32;
    sae::SyntheticGenerator<float> generator(data, 5);
    sae::SyntheticBatchSource<float> source(generator, 32);
    sae::TrainableSae<float, sae::TopK> model({16, 64, false, true, true}, {4, true}, {}, 2);
    sae::train(model, source, sae::TrainerConfig{5});
    sae::save_training_checkpoint(path, model, source);
    const std::string before = sae::test::read_bytes(path);
    REQUIRE(before.size() > 16384);

    // The child trains on and tries to checkpoint with files limited to 4 KiB; it sends
    // the message of what it caught back through a pipe.
    int message_pipe[2];
    REQUIRE(::pipe(message_pipe) == 0);
    const pid_t child = fork_with_file_size_limit(4096, [&] {
        ::close(message_pipe[0]);
        int status = 2;
        std::string message = "no exception";
        try {
            sae::train(model, source, sae::TrainerConfig{8});
            sae::save_training_checkpoint(path, model, source);
        } catch (const sae::io_error& e) {
            message = e.what();
            status = 0;
        } catch (const std::exception& e) {
            message = std::string("wrong exception: ") + e.what();
            status = 3;
        }
        if (::write(message_pipe[1], message.data(), message.size()) < 0) status = 4;
        ::_exit(status);
    });
    ::close(message_pipe[1]);
    std::string message;
    char buffer[512];
    for (::ssize_t n; (n = ::read(message_pipe[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<std::size_t>(n));
    ::close(message_pipe[0]);
    INFO(message);
    CHECK(exit_status_of(child) == 0);
    CHECK_THAT(message, Catch::StartsWith(path + ": write failed: ") && Catch::Contains("File too large"));
    CHECK(sae::test::read_bytes(path) == before);
    sae::TrainableSae<float, sae::TopK> restored({16, 64, false, true, true}, {4, true}, {}, 9);
    sae::resume_training(path, restored, source);
    CHECK(restored.step() == 5);
    CHECK(temporaries_in(temp.path()).empty());
}

}  // namespace test_kill_resume_cases
