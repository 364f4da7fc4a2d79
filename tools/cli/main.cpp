// `sae`: train, evaluate, convert and inspect sparse autoencoders from the shell.
// Exit status: 0 success, 1 failure (the message names the file and the problem),
// 2 wrong usage.
#include "commands.hpp"

#include <sae/core/error.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace {

constexpr const char* usage = R"(usage: sae <command> [options]

Commands:
  train    train an SAE (or an MFR ensemble) from a JSON run config
  eval     measure a saved SAE on activation files (MSE, FVU, L0, dead latents, density)
  convert  sparsify -> SAELens directory; .npy <-> .safetensors
  info     describe a .npy, .safetensors, checkpoint, SAE directory or run config

Run `sae <command> --help` for the options of a command.
)";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(usage, stderr);
        return 2;
    }
    const std::string command = argv[1];
    try {
        if (command == "train") return sae::cli::run_train(argc, argv);
        if (command == "eval") return sae::cli::run_eval(argc, argv);
        if (command == "convert") return sae::cli::run_convert(argc, argv);
        if (command == "info") return sae::cli::run_info(argc, argv);
        if (command == "-h" || command == "--help" || command == "help") {
            std::fputs(usage, stdout);
            return 0;
        }
        std::fprintf(stderr, "sae: unknown command '%s'\n%s", command.c_str(), usage);
        return 2;
    } catch (const sae::cli::usage_error& e) {
        std::fprintf(stderr, "sae %s\n(see sae %s --help)\n", e.what(), command.c_str());
        return 2;
    } catch (const sae::error& e) {
        std::fprintf(stderr, "sae %s: error: %s\n", command.c_str(), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sae %s: error: %s\n", command.c_str(), e.what());
        return 1;
    }
}
