#pragma once
/// \file gpt2_loader.hpp
/// GPT-2 weights from the files others write them in.
///
///   load_hf_gpt2_weights<Scalar>(dir)  a Hugging Face GPT-2 directory: `config.json` (see
///       gpt2_config.hpp) + `model.safetensors`, tensors named with or without the
///       `transformer.` prefix (GPT2LMHeadModel / GPT2Model), Conv1D weights [in, out]
///       used as stored. The LM head is tied to wte unless `lm_head.weight` [vocab, n_embd]
///       is present and differs from wte (a stored copy equal to wte is dropped). Any
///       dtype SafetensorsFile reads (F16, BF16, F32, F64, ...) is converted to Scalar.
///       Other tensors (the `attn.bias` / `attn.masked_bias` mask buffers) are ignored.
///       One file only: a sharded `model.safetensors.index.json` checkpoint is not read.
///   load_hf_gpt2<Scalar>(dir)          the model and, when `dir/vocab_map.json` exists, its
///       VocabMap (identity otherwise): a LoadedGpt2<Scalar>.
///   load_mingpt_json_weights<Scalar>(path, hint), load_mingpt_json<Scalar>(path, hint)
///       a minGPT / nanoGPT state dict saved as JSON, one entry per tensor, either
///       {"shape": [...], "dtype": "torch.float32", "data": "<base64 little-endian f32>"}
///       or nested lists of numbers; an optional "config" entry (minGPT's n_layer,
///       n_head, n_embd, vocab_size, block_size, model_type). Linear weights are stored
///       [out, in] and transposed here; `lm_head.weight` [vocab, n_embd] (no bias) is the
///       untied head, its absence (or equality to wte, as nanoGPT saves it) means tied;
///       `attn.bias` causal masks are ignored. The config comes from the hint, then the
///       file's config entry, then the shapes (MinGptConfigHint, gpt2_config.hpp).
///   Errors: io_error "<file>: tensor '<name>' is missing (expected shape [..])" or
///   "... has shape [..], expected [..]" for every tensor; io_error / config_error naming
///   the file and key for a bad config.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../io/file.hpp"
#include "../io/json_depth.hpp"
#include "../io/safetensors.hpp"
#include "gpt2.hpp"
#include "gpt2_config.hpp"
#include "gpt2_weights.hpp"
#include "vocab_map.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sae::models {

namespace detail {

inline std::string shape_list(const std::vector<std::size_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

inline void check_tensor_shape(const std::string& file, const std::string& name, const std::vector<std::size_t>& actual,
                               const std::vector<std::size_t>& expected) {
    if (actual != expected) {
        throw io_error(file + ": tensor '" + name + "' has shape " + shape_list(actual) + ", expected " +
                       shape_list(expected));
    }
}

inline std::vector<std::size_t> dims(std::initializer_list<Index> sizes) {
    std::vector<std::size_t> out;
    for (Index s : sizes) out.push_back(static_cast<std::size_t>(s));
    return out;
}

/// Reads named tensors of a safetensors file with a name prefix, checking exact shapes.
template <class Scalar>
class HfTensorReader {
public:
    HfTensorReader(const SafetensorsFile& file, std::string prefix) : file_(file), prefix_(std::move(prefix)) {}

    Matrix<Scalar> matrix(const std::string& name, Index rows, Index cols, bool prefixed = true) const {
        const std::string full = require(name, dims({rows, cols}), prefixed);
        return file_.matrix<Scalar>(full);
    }
    RowVector<Scalar> vector(const std::string& name, Index n) const {
        const std::string full = require(name, dims({n}), true);
        return file_.vector<Scalar>(full);
    }

private:
    std::string require(const std::string& name, const std::vector<std::size_t>& shape, bool prefixed) const {
        const std::string full = prefixed ? prefix_ + name : name;
        if (!file_.contains(full)) {
            throw io_error(file_.path() + ": tensor '" + full + "' is missing (expected shape " + shape_list(shape) + ")");
        }
        check_tensor_shape(file_.path(), full, file_.info(full).shape, shape);
        return full;
    }

    const SafetensorsFile& file_;
    std::string prefix_;
};

/// Standard base64 (RFC 4648, with '=' padding); io_error naming `where` on a bad character.
inline std::vector<unsigned char> decode_base64(const std::string& text, const std::string& where) {
    const auto value_of = [&](char ch) -> std::uint32_t {
        if (ch >= 'A' && ch <= 'Z') return static_cast<std::uint32_t>(ch - 'A');
        if (ch >= 'a' && ch <= 'z') return static_cast<std::uint32_t>(ch - 'a' + 26);
        if (ch >= '0' && ch <= '9') return static_cast<std::uint32_t>(ch - '0' + 52);
        if (ch == '+') return 62;
        if (ch == '/') return 63;
        throw io_error(where + ": field 'data' is not base64 (character code " +
                       std::to_string(static_cast<int>(static_cast<unsigned char>(ch))) + ")");
    };
    std::size_t end = text.size();
    while (end > 0 && text[end - 1] == '=') --end;
    if (text.size() % 4 != 0 || text.size() - end > 2) throw io_error(where + ": field 'data' has a bad base64 length or padding");
    std::vector<unsigned char> out;
    out.reserve(end / 4 * 3 + 2);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (std::size_t i = 0; i < end; ++i) {
        buffer = (buffer << 6) | value_of(text[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<unsigned char>((buffer >> bits) & 0xFFu));
        }
    }
    return out;
}

/// A tensor of a JSON state dict: its shape and values in C order.
struct JsonTensor {
    std::vector<std::size_t> shape;
    std::vector<double> values;
};

/// Appends the numbers of a nested list whose extents are `shape` (C order).
inline void flatten_nested_list(const nlohmann::json& value, std::size_t depth, const std::vector<std::size_t>& shape,
                                std::vector<double>& out, const std::string& where) {
    if (depth == shape.size()) {
        if (!value.is_number()) throw io_error(where + ": nested lists are not rectangular or hold a non-number");
        out.push_back(value.get<double>());
        return;
    }
    if (!value.is_array() || value.size() != shape[depth]) {
        throw io_error(where + ": nested lists are not rectangular (expected shape " + shape_list(shape) + ")");
    }
    for (const nlohmann::json& item : value) flatten_nested_list(item, depth + 1, shape, out, where);
}

inline JsonTensor decode_json_tensor(const nlohmann::json& value, const std::string& where) {
    JsonTensor tensor;
    if (value.is_array() || value.is_number()) {
        // The first element at each depth gives that depth's extent; every other must agree.
        for (const nlohmann::json* first = &value; first->is_array(); first = &(*first)[0]) {
            tensor.shape.push_back(first->size());
            if (first->empty()) break;
        }
        flatten_nested_list(value, 0, tensor.shape, tensor.values, where);
        return tensor;
    }
    if (!value.is_object()) throw io_error(where + ": must be a list or an object {shape, dtype, data}");
    for (const char* key : {"shape", "dtype", "data"}) {
        if (!value.contains(key)) throw io_error(where + ": field '" + key + "' is missing");
    }
    const nlohmann::json& dtype = value["dtype"];
    if (dtype != "torch.float32" && dtype != "float32") {
        throw io_error(where + ": field 'dtype' = " + dtype.dump() + " is not supported (torch.float32)");
    }
    if (!value["shape"].is_array()) throw io_error(where + ": field 'shape' must be a list of non-negative integers");
    std::size_t count = 1;
    for (const nlohmann::json& d : value["shape"]) {
        if (!d.is_number_unsigned()) throw io_error(where + ": field 'shape' must list non-negative integers");
        tensor.shape.push_back(d.get<std::size_t>());
        count = checked_product(count, tensor.shape.back(), where + " element count");
    }
    if (!value["data"].is_string()) throw io_error(where + ": field 'data' must be a base64 string");
    const std::vector<unsigned char> bytes = decode_base64(value["data"].get<std::string>(), where);
    if (bytes.size() != checked_product(count, 4, where + " byte count")) {
        throw io_error(where + ": field 'data' holds " + std::to_string(bytes.size()) + " bytes but shape " +
                       shape_list(tensor.shape) + " of float32 needs " + std::to_string(count * 4));
    }
    tensor.values.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        float f;
        std::memcpy(&f, bytes.data() + 4 * i, 4);  // little-endian host (checked in io/dtype.hpp)
        tensor.values[i] = f;
    }
    return tensor;
}

/// The tensors of a minGPT JSON state dict, decoded on request.
template <class Scalar>
class MinGptTensors {
public:
    explicit MinGptTensors(std::string path) : path_(std::move(path)) {
        try {
            root_ = nlohmann::json::parse(read_whole_file(path_), sae::detail::JsonDepthLimit(path_));
        } catch (const nlohmann::json::exception& e) {
            throw io_error(path_ + ": not valid JSON: " + e.what());
        }
        if (!root_.is_object()) throw io_error(path_ + ": must be a JSON object of tensors");
    }

    const std::string& path() const { return path_; }
    const nlohmann::json& root() const { return root_; }
    bool contains(const std::string& name) const { return root_.contains(name); }

    JsonTensor tensor(const std::string& name, const std::vector<std::size_t>& expected_for_message) const {
        if (!contains(name)) {
            throw io_error(path_ + ": tensor '" + name + "' is missing (expected shape " +
                           shape_list(expected_for_message) + ")");
        }
        return decode_json_tensor(root_[name], path_ + ": tensor '" + name + "'");
    }

    /// A Linear weight stored [out, in], returned as [in, out].
    Matrix<Scalar> linear_weight(const std::string& name, Index in, Index out) const {
        const JsonTensor t = checked(name, dims({out, in}));
        Matrix<Scalar> stored = Eigen::Map<const Matrix<double>>(t.values.data(), out, in).template cast<Scalar>();
        return stored.transpose();
    }
    /// A matrix used as stored (embeddings, lm_head).
    Matrix<Scalar> matrix(const std::string& name, Index rows, Index cols) const {
        const JsonTensor t = checked(name, dims({rows, cols}));
        return Eigen::Map<const Matrix<double>>(t.values.data(), rows, cols).template cast<Scalar>();
    }
    RowVector<Scalar> vector(const std::string& name, Index n) const {
        const JsonTensor t = checked(name, dims({n}));
        return Eigen::Map<const RowVector<double>>(t.values.data(), n).template cast<Scalar>();
    }
    /// The shape of a 2-D tensor, or nothing when the entry is absent.
    std::optional<std::vector<std::size_t>> shape_of(const std::string& name) const {
        if (!contains(name)) return std::nullopt;
        return decode_json_tensor(root_[name], path_ + ": tensor '" + name + "'").shape;
    }

private:
    JsonTensor checked(const std::string& name, const std::vector<std::size_t>& shape) const {
        JsonTensor t = tensor(name, shape);
        check_tensor_shape(path_, name, t.shape, shape);
        return t;
    }

    std::string path_;
    nlohmann::json root_;
};

/// The config of a minGPT file: hint, else the file's "config" entry (or its model_type
/// preset), else the tensor shapes.
template <class Scalar>
Gpt2Config resolve_mingpt_config(const MinGptTensors<Scalar>& file, const MinGptConfigHint& hint) {
    const std::string& path = file.path();
    MinGptConfigHint from_file;
    if (file.contains("config")) {
        const nlohmann::json& c = file.root()["config"];
        if (!c.is_object()) throw io_error(path + ": entry 'config' must be an object");
        if (c.contains("model_type") && c["model_type"].is_string()) {
            try {
                from_file = mingpt_model_type(c["model_type"].get<std::string>());
            } catch (const config_error&) {  // a name minGPT does not know: use the explicit keys only
            }
        }
        const auto read = [&](const char* key, std::optional<int>& field) {
            if (!c.contains(key) || c[key].is_null()) return;
            if (!c[key].is_number_integer() || c[key].get<long long>() <= 0 || c[key].get<long long>() > (1 << 30)) {
                throw io_error(path + ": config." + key + " must be a positive integer, got " + c[key].dump());
            }
            field = c[key].get<int>();
        };
        read("n_layer", from_file.n_layer);
        read("n_head", from_file.n_head);
        read("n_embd", from_file.n_embd);
        read("vocab_size", from_file.vocab_size);
        read("block_size", from_file.n_ctx);
    }
    const auto pick = [](const std::optional<int>& a, const std::optional<int>& b) { return a ? a : b; };
    std::optional<int> n_layer = pick(hint.n_layer, from_file.n_layer);
    std::optional<int> n_head = pick(hint.n_head, from_file.n_head);
    std::optional<int> n_embd = pick(hint.n_embd, from_file.n_embd);
    std::optional<int> n_ctx = pick(hint.n_ctx, from_file.n_ctx);
    std::optional<int> vocab = pick(hint.vocab_size, from_file.vocab_size);

    const auto two_dims = [&](const std::string& name) {
        const std::optional<std::vector<std::size_t>> shape = file.shape_of(name);
        if (!shape) throw io_error(path + ": tensor '" + name + "' is missing");
        if (shape->size() != 2) {
            throw io_error(path + ": tensor '" + name + "' has shape " + shape_list(*shape) + ", expected 2 dimensions");
        }
        return *shape;
    };
    if (!vocab || !n_embd) {
        const std::vector<std::size_t> wte = two_dims("transformer.wte.weight");
        if (!vocab) vocab = static_cast<int>(wte[0]);
        if (!n_embd) n_embd = static_cast<int>(wte[1]);
    }
    if (!n_ctx) n_ctx = static_cast<int>(two_dims("transformer.wpe.weight")[0]);
    if (!n_layer) {
        int layers = 0;
        while (file.contains("transformer.h." + std::to_string(layers) + ".ln_1.weight")) ++layers;
        n_layer = layers;
    }
    if (!n_head) {
        throw config_error(path + ": n_head is not in the file and cannot be inferred from the tensor shapes; pass it "
                                  "in a MinGptConfigHint (e.g. mingpt_model_type(\"gpt-nano\"))");
    }
    Gpt2Config config;
    config.n_layer = *n_layer;
    config.n_head = *n_head;
    config.n_embd = *n_embd;
    config.n_ctx = *n_ctx;
    config.vocab_size = *vocab;
    config.layer_norm_epsilon = hint.layer_norm_epsilon;
    config.tied_lm_head = !file.contains("lm_head.weight");
    if (*n_layer > 0) {  // the MLP width is whatever the first block's c_fc says
        if (const std::optional<std::vector<std::size_t>> fc = file.shape_of("transformer.h.0.mlp.c_fc.weight")) {
            if (fc->size() == 2 && (*fc)[0] > 0 && (*fc)[0] < (1u << 30)) config.n_inner = static_cast<int>((*fc)[0]);
        }
    }
    config.validate(path);
    return config;
}

/// The embeddings, blocks and final LayerNorm of a GPT-2 from any tensor source. The
/// Hugging Face and minGPT layouts differ only in the names' prefix and in how a linear
/// weight is read (Conv1D [in, out] against Linear [out, in]); `vector(name, size)`,
/// `matrix(name, rows, cols)` and `linear_weight(name, in, out)` check the shapes.
template <class Scalar, class ReadVector, class ReadMatrix, class ReadLinearWeight>
Gpt2Weights<Scalar> assemble_gpt2_weights(const Gpt2Config& config, const std::string& prefix, ReadVector vector,
                                          ReadMatrix matrix, ReadLinearWeight linear_weight) {
    const Index c = config.n_embd, m = config.mlp_width();
    const auto norm = [&](const std::string& name) {
        return LayerNormWeights<Scalar>{vector(name + ".weight", c), vector(name + ".bias", c)};
    };
    const auto linear = [&](const std::string& name, Index in, Index out) {
        return LinearWeights<Scalar>{linear_weight(name + ".weight", in, out), vector(name + ".bias", out)};
    };
    Gpt2Weights<Scalar> w;
    w.config = config;
    w.wte = matrix(prefix + "wte.weight", config.vocab_size, c);
    w.wpe = matrix(prefix + "wpe.weight", config.n_ctx, c);
    for (int l = 0; l < config.n_layer; ++l) {
        const std::string p = prefix + "h." + std::to_string(l) + ".";
        w.blocks.push_back(Gpt2BlockWeights<Scalar>{norm(p + "ln_1"), linear(p + "attn.c_attn", c, 3 * c),
                                                    linear(p + "attn.c_proj", c, c), norm(p + "ln_2"),
                                                    linear(p + "mlp.c_fc", c, m), linear(p + "mlp.c_proj", m, c)});
    }
    w.ln_f = norm(prefix + "ln_f");
    return w;
}

}  // namespace detail

template <class Scalar>
Gpt2Weights<Scalar> load_hf_gpt2_weights(const std::string& directory) {
    const std::string config_path = directory + "/config.json";
    Gpt2Config config = read_hf_gpt2_config(config_path);
    const SafetensorsFile file(directory + "/model.safetensors");
    std::string prefix;
    if (file.contains("transformer.wte.weight")) {
        prefix = "transformer.";
    } else if (!file.contains("wte.weight")) {
        throw io_error(file.path() + ": tensor 'wte.weight' (or 'transformer.wte.weight') is missing (expected shape [" +
                       std::to_string(config.vocab_size) + ", " + std::to_string(config.n_embd) + "])");
    }
    const bool untied = file.contains("lm_head.weight");
    if (!untied && !config.tied_lm_head) {
        throw io_error(file.path() + ": tensor 'lm_head.weight' is missing (expected shape [" +
                       std::to_string(config.vocab_size) + ", " + std::to_string(config.n_embd) +
                       "]; config.json says tie_word_embeddings = false)");
    }
    config.tied_lm_head = !untied;

    const detail::HfTensorReader<Scalar> read(file, prefix);
    const auto matrix = [&](const std::string& name, Index rows, Index cols) { return read.matrix(name, rows, cols); };
    // The reader adds the file's own prefix; Conv1D weights are stored [in, out] already.
    Gpt2Weights<Scalar> w = detail::assemble_gpt2_weights<Scalar>(
        config, "", [&](const std::string& name, Index size) { return read.vector(name, size); }, matrix, matrix);
    const Index c = config.n_embd;
    if (untied) {
        w.lm_head = read.matrix("lm_head.weight", config.vocab_size, c, /*prefixed=*/false);
        if (*w.lm_head == w.wte) {  // a saved copy of the tied head: keep one matrix
            w.lm_head.reset();
            w.config.tied_lm_head = true;
        }
    }
    return w;
}

/// A model loaded from a Hugging Face directory, with its vocabulary map.
template <class Scalar>
struct LoadedGpt2 {
    Gpt2<Scalar> model;
    VocabMap vocab_map;  ///< from vocab_map.json; the identity when the file is absent
};

template <class Scalar>
LoadedGpt2<Scalar> load_hf_gpt2(const std::string& directory) {
    Gpt2<Scalar> model(load_hf_gpt2_weights<Scalar>(directory));
    const std::string map_path = directory + "/vocab_map.json";
    VocabMap map;
    if (std::filesystem::exists(map_path)) {
        map = VocabMap::load(map_path);
        if (map.model_vocab_size() > model.config().vocab_size) {
            throw io_error(map_path + ": model_to_gpt2 lists " + std::to_string(map.model_vocab_size()) +
                           " model ids but the model's vocab_size is " + std::to_string(model.config().vocab_size));
        }
    }
    return LoadedGpt2<Scalar>{std::move(model), std::move(map)};
}

template <class Scalar>
Gpt2Weights<Scalar> load_mingpt_json_weights(const std::string& path, const MinGptConfigHint& hint = MinGptConfigHint()) {
    const detail::MinGptTensors<Scalar> file(path);
    const Gpt2Config config = detail::resolve_mingpt_config(file, hint);
    if (file.contains("lm_head.bias")) {
        throw io_error(path + ": tensor 'lm_head.bias' is present, but GPT-2's LM head has no bias");
    }
    const Index c = config.n_embd;
    // minGPT names carry "transformer."; its Linear weights are [out, in] and get transposed.
    Gpt2Weights<Scalar> w = detail::assemble_gpt2_weights<Scalar>(
        config, "transformer.", [&](const std::string& name, Index size) { return file.vector(name, size); },
        [&](const std::string& name, Index rows, Index cols) { return file.matrix(name, rows, cols); },
        [&](const std::string& name, Index in, Index out) { return file.linear_weight(name, in, out); });
    if (!config.tied_lm_head) {
        w.lm_head = file.matrix("lm_head.weight", config.vocab_size, c);
        if (*w.lm_head == w.wte) {  // nanoGPT saves its tied head twice
            w.lm_head.reset();
            w.config.tied_lm_head = true;
        }
    }
    return w;
}

template <class Scalar>
Gpt2<Scalar> load_mingpt_json(const std::string& path, const MinGptConfigHint& hint = MinGptConfigHint()) {
    return Gpt2<Scalar>(load_mingpt_json_weights<Scalar>(path, hint));
}

}  // namespace sae::models
