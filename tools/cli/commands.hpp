#pragma once
/// \file commands.hpp
/// The subcommands of the `sae` tool. Each takes the whole argv (argv[1] is its name),
/// prints results on stdout and progress on stderr, and returns the exit status:
/// 0 success, 1 a failure (bad file, bad config value, diverged training), 2 misuse of
/// the command line. Failures are reported by main() as one line on stderr that names
/// the file and what is wrong.

#include <sae/cli/arguments.hpp>

#include <cstdio>
#include <string>

namespace sae::cli {

int run_train(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_convert(int argc, char** argv);
int run_info(int argc, char** argv);

/// True (and the help printed) when --help was given.
inline bool print_help_if_asked(const Arguments& args, const char* help) {
    if (!args.help()) return false;
    std::fputs(help, stdout);
    return true;
}

}  // namespace sae::cli
