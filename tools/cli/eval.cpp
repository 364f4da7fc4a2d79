// `sae eval --sae DIR --data FILE...`: how well a saved SAE reconstructs activations.
#include "commands.hpp"
#include "evaluate_files.hpp"
#include "svg_histogram.hpp"

#include <sae/io/file.hpp>
#include <sae/io/saelens.hpp>

#include <iostream>
#include <string>
#include <variant>

namespace sae::cli {
// Named, not anonymous: the CLI is unity-built, and each command has its own `help`.
namespace eval_command {

constexpr const char* help = R"(usage: sae eval --sae DIR --data FILE [--data FILE...] [options]

Runs the SAE in DIR (SAELens or sparsify layout) over the rows of the activation
files (.npy, or .safetensors with --tensor) in order, and prints as JSON:
  rows, mse, fvu (fraction of variance unexplained), explained_variance, l0 (mean
  active latents per row), dead_fraction (latents that never fired), and the
  histogram of log10 feature firing rates.

Options:
  --sae DIR            the SAE directory (required)
  --data FILE          activation file, repeatable (required)
  --tensor NAME        tensor name inside .safetensors files (default: the only one)
  --batch-size N       rows per forward pass (default 4096)
  --max-rows N         stop after N rows (default: all)
  --bins N             histogram bins (default 50)
  --json FILE          also write the JSON to FILE
  --svg FILE           write the density histogram as an SVG plot
)";

}  // namespace eval_command

int run_eval(int argc, char** argv) {
    using namespace eval_command;
    const Arguments args(argc, argv, 2,
                         {{"sae", true}, {"data", true}, {"tensor", true}, {"batch-size", true}, {"max-rows", true},
                          {"bins", true}, {"json", true}, {"svg", true}},
                         "eval");
    if (print_help_if_asked(args, help)) return 0;
    if (!args.positional().empty()) throw usage_error("eval: unexpected argument '" + args.positional().front() + "'");
    const std::string dir = args.require("sae");
    const std::vector<std::string> files = args.all("data");
    if (files.empty()) throw usage_error("eval: --data is required");
    const Index batch_rows = static_cast<Index>(args.integer("batch-size", 4096, 1));
    const std::int64_t max_rows = args.integer("max-rows", 0, 0);
    const int bins = static_cast<int>(args.integer("bins", 50, 1));

    const AnyAutoencoder<float> sae = load_any_sae<float>(dir);
    const Evaluation evaluation = std::visit(
        [&](const auto& model) { return evaluate_files(model, files, args.get("tensor", ""), batch_rows, max_rows); }, sae);
    nlohmann::json report = evaluation.to_json(bins);
    report["sae"] = dir;
    report["data"] = files;
    const std::string text = report.dump(2) + "\n";
    std::cout << text;
    if (args.flag("json")) write_file_atomically(args.get("json", ""), text);
    if (args.flag("svg")) {
        const nlohmann::json& histogram = report["density_histogram"];
        write_file_atomically(args.get("svg", ""),
                              density_histogram_svg(histogram["log10_edges"], histogram["counts"], histogram["never_fired"],
                                                    "Feature density of " + dir));
    }
    return 0;
}

}  // namespace sae::cli
