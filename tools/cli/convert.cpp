// `sae convert SRC DST`: sparsify or SAELens SAE -> SAELens directory, and activation
// arrays between .npy and .safetensors, streamed in row blocks (a 10 GB file never
// sits in memory).
#include "commands.hpp"

#include <sae/io/file.hpp>
#include <sae/io/npy.hpp>
#include <sae/io/saelens.hpp>
#include <sae/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sae::cli {
// Named, not anonymous: the CLI is unity-built, and each command has its own `help`.
namespace convert_command {

constexpr const char* help = R"(usage: sae convert [options] SRC DST

  SRC a directory (sparsify: cfg.json + sae.safetensors, or SAELens)
      -> DST a SAELens directory (cfg.json + sae_weights.safetensors) that SAELens'
         SAE.load_from_disk opens; hook and model names are kept.
  SRC.npy -> DST.safetensors   one tensor (named by --tensor, default "activations")
  SRC.safetensors -> DST.npy   the tensor named by --tensor (default: the only one)

Options:
  --tensor NAME   tensor name in the .safetensors side
  --dtype TYPE    element type of DST: F16, BF16, F32, F64 (safetensors names; BF16
                  is not available in .npy). Default: the type of SRC.
Arrays are converted in blocks of rows, so memory stays small for any file size.
)";

constexpr Index block_rows = 16384;

std::optional<DType> requested_dtype(const Arguments& args) {
    const std::string name = args.get("dtype", "");
    if (name.empty()) return std::nullopt;
    const std::optional<DType> dtype = dtype_from_safetensors_name(name);
    if (!dtype) throw usage_error("convert: --dtype " + name + " is not one of F16, BF16, F32, F64, I32, I64");
    return dtype;
}

/// Rows of the source array, read block by block as double (exact for every supported
/// type except I64 beyond 2^53).
struct ArraySource {
    std::vector<std::size_t> shape;
    DType dtype = DType::f32;
    Index rows = 0, cols = 0;
    std::unique_ptr<NpyRowReader> npy;
    std::unique_ptr<SafetensorsFile> safetensors;
    std::string tensor;

    void read(Index first, Index count, Matrix<double>& out) const {
        out.resize(count, cols);
        if (npy) {
            npy->read_rows<double>(first, count, out);
            npy->release(first, count);
        } else {
            safetensors->read_rows<double>(tensor, first, count, out);
            safetensors->release(tensor, first, count);
        }
    }
};

ArraySource open_npy(const std::string& path) {
    ArraySource source;
    const NpyHeader header = read_npy_header(path);
    source.npy = std::make_unique<NpyRowReader>(path);
    source.shape = header.shape;
    source.dtype = header.dtype;
    source.rows = source.npy->rows();
    source.cols = source.npy->cols();
    return source;
}

ArraySource open_safetensors(const std::string& path, std::string tensor) {
    ArraySource source;
    source.safetensors = std::make_unique<SafetensorsFile>(path);
    if (tensor.empty()) {
        if (source.safetensors->names().size() != 1) {
            throw io_error(path + ": holds " + std::to_string(source.safetensors->names().size()) +
                           " tensors; choose one with --tensor");
        }
        tensor = source.safetensors->names().front();
    }
    const TensorInfo& info = source.safetensors->info(tensor);
    source.tensor = tensor;
    source.shape = info.shape;
    source.dtype = info.dtype;
    source.cols = info.shape.empty() ? 1 : static_cast<Index>(info.shape.back());
    source.rows = source.cols == 0 ? 0 : static_cast<Index>(info.element_count()) / source.cols;
    return source;
}

/// Streams the source's rows, encoded as `dtype`, after `header` into `path`.
void stream_array(const ArraySource& source, DType dtype, const std::string& header, const std::string& path) {
    AtomicFileWriter out(path);
    out.write(header);
    Matrix<double> block;
    std::string bytes;
    for (Index first = 0; first < source.rows; first += block_rows) {
        const Index count = std::min(block_rows, source.rows - first);
        source.read(first, count, block);
        bytes.resize(static_cast<std::size_t>(block.size()) * dtype_size(dtype));
        encode_elements(block.data(), static_cast<std::size_t>(block.size()), dtype,
                        reinterpret_cast<unsigned char*>(bytes.data()));
        out.write(bytes);
    }
    out.commit();
}

/// A safetensors header for one tensor of `bytes` bytes.
std::string safetensors_header_for(const std::string& tensor, DType dtype, const std::vector<std::size_t>& shape,
                                   std::size_t bytes, const std::string& source_path) {
    const nlohmann::json header = {{"__metadata__", {{"converted_from", source_path}}},
                                   {tensor, {{"dtype", safetensors_dtype_name(dtype)}, {"shape", shape}, {"data_offsets", {0, bytes}}}}};
    return frame_safetensors_header(header.dump());
}

void convert_array(const std::string& from, const std::string& to, const Arguments& args) {
    const std::optional<DType> dtype_option = requested_dtype(args);
    if (has_extension(from, ".npy") && has_extension(to, ".safetensors")) {
        const ArraySource source = open_npy(from);
        if (source.npy == nullptr) throw io_error(from + ": cannot open");
        const DType dtype = dtype_option.value_or(source.dtype);
        const std::size_t bytes = checked_product(static_cast<std::size_t>(source.rows) * static_cast<std::size_t>(source.cols),
                                                  dtype_size(dtype), to + ": data size");
        stream_array(source, dtype, safetensors_header_for(args.get("tensor", "activations"), dtype, source.shape, bytes, from), to);
    } else if (has_extension(from, ".safetensors") && has_extension(to, ".npy")) {
        const ArraySource source = open_safetensors(from, args.get("tensor", ""));
        const DType dtype = dtype_option.value_or(source.dtype);
        stream_array(source, dtype, npy_header(dtype, source.shape), to);  // npy_header rejects BF16
    } else {
        throw usage_error("convert: cannot convert '" + from + "' to '" + to +
                          "' (arrays: .npy <-> .safetensors; SAEs: directory -> directory)");
    }
    std::cerr << "sae convert: wrote " << to << "\n";
}

void convert_sae(const std::string& from, const std::string& to, const Arguments& args) {
    SaeFileInfo info = read_sae_info(from);
    const std::string dtype_name = args.get("dtype", info.dtype == "float64" ? "F64" : info.dtype == "float16" ? "F16"
                                                                       : info.dtype == "bfloat16"           ? "BF16"
                                                                                                             : "F32");
    const std::optional<DType> dtype = dtype_from_safetensors_name(dtype_name);
    if (!dtype) throw usage_error("convert: --dtype " + dtype_name + " is not a safetensors type name");
    AnyAutoencoder<double> sae = load_any_sae<double>(from);  // double: no rounding on the way through
    std::visit([&](const auto& model) { save_saelens(to, model, info, *dtype); }, sae);
    std::cerr << "sae convert: wrote SAELens directory " << to << " (" << info.format << " " << info.architecture
              << ", d_in " << info.d_in << ", d_sae " << info.d_sae << ")\n";
}

}  // namespace convert_command

int run_convert(int argc, char** argv) {
    using namespace convert_command;
    const Arguments args(argc, argv, 2, {{"tensor", true}, {"dtype", true}}, "convert");
    if (print_help_if_asked(args, help)) return 0;
    if (args.positional().size() != 2) throw usage_error("convert: give exactly SRC and DST");
    const std::string& from = args.positional()[0];
    const std::string& to = args.positional()[1];
    std::error_code error;
    if (std::filesystem::is_directory(from, error)) {
        convert_sae(from, to, args);
    } else {
        convert_array(from, to, args);
    }
    return 0;
}

}  // namespace sae::cli
