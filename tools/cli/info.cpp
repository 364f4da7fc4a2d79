// `sae info FILE...`: what a file holds, from its header only (nothing is loaded).
#include "commands.hpp"

#include <sae/io/checkpoint.hpp>
#include <sae/io/file.hpp>
#include <sae/io/npy.hpp>
#include <sae/io/run_config.hpp>
#include <sae/io/saelens.hpp>
#include <sae/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <string>

namespace sae::cli {
// Named, not anonymous: the CLI is unity-built, and each command has its own `help`.
namespace info_command {

constexpr const char* help = R"(usage: sae info [--json] PATH...

Describes each PATH from its header, without loading the data:
  .npy          format version, dtype, shape, memory order, data offset and size
  .safetensors  every tensor (dtype, shape, bytes) and the metadata; a libsae
                checkpoint also shows its step
  directory     a SAELens or sparsify SAE: architecture, d_in, d_sae, hook, tensors
  .json         a run config: validated, printed with every default filled in

Options:
  --json   print one JSON object per path instead of text
)";

nlohmann::json shape_json(const std::vector<std::size_t>& shape) { return nlohmann::json(shape); }

nlohmann::json describe_npy(const std::string& path) {
    const NpyHeader header = read_npy_header(path);
    return {{"path", path},
            {"format", "npy"},
            {"version", std::to_string(header.major_version) + ".0"},
            {"dtype", npy_descr(header.dtype)},
            {"shape", shape_json(header.shape)},
            {"fortran_order", header.fortran_order},
            {"data_offset", header.data_offset},
            {"data_bytes", header.data_bytes()}};
}

nlohmann::json describe_safetensors(const std::string& path) {
    const SafetensorsFile file(path);
    nlohmann::json tensors = nlohmann::json::array();
    for (const std::string& name : file.names()) {
        const TensorInfo& info = file.info(name);
        tensors.push_back({{"name", name},
                           {"dtype", safetensors_dtype_name(info.dtype)},
                           {"shape", shape_json(info.shape)},
                           {"bytes", info.byte_count()}});
    }
    nlohmann::json out = {{"path", path}, {"format", "safetensors"}, {"tensors", tensors}, {"metadata", file.metadata()}};
    const auto format = file.metadata().find("format");
    if (format != file.metadata().end() && format->second == checkpoint_format) {
        out["format"] = "libsae checkpoint";
        const Checkpoint<double> checkpoint = load_checkpoint<double>(path);
        const nlohmann::json& values = checkpoint.state.values();
        out["step"] = values.contains("step") ? values["step"] : nlohmann::json(nullptr);
        out["metadata"].erase("state");  // thousands of counters: not for a terminal
        out["config"] = checkpoint.config;
        out["metadata"].erase("config");
    }
    return out;
}

nlohmann::json describe_sae_directory(const std::string& path) {
    const SaeFileInfo info = read_sae_info(path);
    const std::string weights = info.format == "sparsify" ? path + "/" + sparsify_weights_filename
                                                          : path + "/" + saelens_weights_filename;
    nlohmann::json out = {{"path", path},         {"format", info.format == "sparsify" ? "sparsify SAE" : "SAELens SAE"},
                          {"architecture", info.architecture}, {"d_in", info.d_in},
                          {"d_sae", info.d_sae},  {"dtype", info.dtype},
                          {"model_name", info.model_name},     {"hook_name", info.hook_name},
                          {"hook_layer", info.hook_layer}};
    out["tensors"] = describe_safetensors(weights)["tensors"];
    return out;
}

nlohmann::json describe(const std::string& path) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) return describe_sae_directory(path);
    if (has_extension(path, ".npy")) return describe_npy(path);
    if (has_extension(path, ".safetensors")) return describe_safetensors(path);
    if (has_extension(path, ".json")) {
        const RunConfig config = load_run_config(path);
        return {{"path", path}, {"format", "run config"}, {"config", to_json(config)}};
    }
    throw io_error(path + ": unknown file type (expected .npy, .safetensors, .json or an SAE directory)");
}

void print_text(const nlohmann::json& d) {
    const std::string format = d["format"];
    std::cout << d["path"].get<std::string>() << ": " << format << "\n";
    if (format == "npy") {
        std::cout << "  version " << d["version"].get<std::string>() << ", dtype " << d["dtype"].get<std::string>()
                  << ", shape " << d["shape"].dump() << ", " << (d["fortran_order"].get<bool>() ? "Fortran" : "C")
                  << " order, data at byte " << d["data_offset"] << " (" << d["data_bytes"] << " bytes)\n";
        return;
    }
    if (format == "run config") {
        std::cout << d["config"].dump(2) << "\n";
        return;
    }
    for (const char* key : {"architecture", "d_in", "d_sae", "dtype", "model_name", "hook_name", "step"}) {
        if (d.contains(key) && !d[key].is_null() && d[key] != "") std::cout << "  " << key << ": " << d[key] << "\n";
    }
    for (const nlohmann::json& t : d["tensors"]) {
        std::cout << "  " << t["name"].get<std::string>() << "  " << t["dtype"].get<std::string>() << "  "
                  << t["shape"].dump() << "  " << t["bytes"] << " bytes\n";
    }
    if (d.contains("metadata")) {
        for (const auto& [key, value] : d["metadata"].items()) {
            std::string text = value.get<std::string>();
            if (text.size() > 100) text = text.substr(0, 97) + "...";
            std::cout << "  metadata " << key << " = " << text << "\n";
        }
    }
}

}  // namespace info_command

int run_info(int argc, char** argv) {
    using namespace info_command;
    const Arguments args(argc, argv, 2, {{"json", false}}, "info");
    if (print_help_if_asked(args, help)) return 0;
    if (args.positional().empty()) throw usage_error("info: give at least one PATH");
    for (const std::string& path : args.positional()) {
        const nlohmann::json description = describe(path);
        if (args.flag("json")) {
            std::cout << description.dump() << "\n";
        } else {
            print_text(description);
        }
    }
    return 0;
}

}  // namespace sae::cli
