#pragma once
/// \file safetensors.hpp
/// Reading and writing Hugging Face safetensors files
/// (https://github.com/huggingface/safetensors, the Rust crate is the reference).
///
/// Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
///   {"__metadata__": {"key": "value", ...},
///    "<tensor>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
/// (possibly padded with spaces), then the byte buffer. Offsets are relative to the start
/// of the buffer; the tensors, sorted by offset, cover the buffer exactly (no gap, no
/// overlap, no trailing byte); each holds element_count * dtype_size little-endian bytes
/// in C (row-major) order.
///
///   SafetensorsFile(path)   memory-maps the file and validates the whole header on open.
///     requires: nothing (any bytes);
///     ensures:  either every tensor entry is consistent with the file (so later reads
///               cannot go out of bounds and no size claimed by the header is ever
///               allocated unchecked) or io_error "<path>: ..." naming the field at
///               fault. Supported dtypes: F16, BF16, F32, F64, I32, I64; any other
///               (BOOL, U8, F8_*, ...) is rejected as unsupported.
///   matrix / vector / read_rows   decode tensor values into Scalar (float or double).
///   SafetensorsWriter       collects tensors and metadata and writes a file atomically,
///     byte for byte as the reference serializer does for the same input: compact JSON,
///     "__metadata__" first (keys sorted), tensors ordered by dtype alignment (largest
///     first, the reference's dtype order) then by name, stored contiguously; header
///     padded with spaces to a multiple of 8 bytes, so every tensor starts aligned to
///     its element size.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "dtype.hpp"
#include "file.hpp"
#include "json_depth.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sae {

/// One tensor entry of a safetensors header.
struct TensorInfo {
    DType dtype = DType::f32;
    std::vector<std::size_t> shape;  ///< empty for a scalar (one element)
    std::size_t begin = 0;           ///< byte offset relative to the start of the data buffer
    std::size_t end = 0;             ///< one past the last byte

    /// Product of the shape (1 for a scalar). Validated against the file on open, so it
    /// cannot overflow for an entry of an opened file.
    std::size_t element_count() const {
        std::size_t n = 1;
        for (std::size_t d : shape) n = checked_product(n, d, "tensor element count");
        return n;
    }
    std::size_t byte_count() const { return end - begin; }
};

namespace detail {

/// The largest header the reference accepts (and a guard against absurd size fields).
constexpr std::size_t safetensors_max_header_bytes = 100'000'000;

inline std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

/// nlohmann keeps the last of duplicate keys silently; a callback sees every key, so a
/// set of the keys seen per open object detects them during the parse. It also applies
/// the nesting limit (json_depth.hpp).
class DuplicateKeyDetector {
public:
    explicit DuplicateKeyDetector(std::string path) : path_(std::move(path)) {}
    bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using Event = nlohmann::json::parse_event_t;
        check_json_depth(depth, path_ + ": header");
        if (event == Event::object_start) {
            open_objects_.emplace_back();
        } else if (event == Event::object_end) {
            open_objects_.pop_back();
        } else if (event == Event::key && !open_objects_.back().insert(parsed.get<std::string>()).second) {
            throw io_error(path_ + ": header has the key '" + parsed.get<std::string>() + "' twice");
        }
        return true;
    }

private:
    std::string path_;
    std::vector<std::set<std::string>> open_objects_;
};

inline nlohmann::json parse_safetensors_header(const std::string& path, const char* begin, const char* end) {
    // nlohmann stops at a NUL byte as if the input ended; JSON never contains one.
    if (const void* nul = std::memchr(begin, '\0', static_cast<std::size_t>(end - begin))) {
        throw io_error(path + ": header is not valid JSON: NUL byte at header offset " +
                       std::to_string(static_cast<const char*>(nul) - begin));
    }
    try {
        return nlohmann::json::parse(begin, end, DuplicateKeyDetector(path));
    } catch (const nlohmann::json::exception& e) {  // parse_error: syntax, invalid UTF-8
        throw io_error(path + ": header is not valid JSON: " + e.what());
    }
}

/// A JSON value that is a non-negative integer, as size_t; io_error naming `what` otherwise.
inline std::size_t json_size(const nlohmann::json& value, const std::string& what) {
    if (!value.is_number_unsigned()) throw io_error(what + " must be a non-negative integer, got " + value.dump());
    return value.get<std::size_t>();
}

inline TensorInfo parse_tensor_entry(const std::string& where, const nlohmann::json& entry) {
    if (!entry.is_object()) throw io_error(where + ": entry must be a JSON object, got " + entry.dump());
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
        if (!entry.contains(field)) throw io_error(where + ": field '" + field + "' is missing");
    }
    TensorInfo info;
    const nlohmann::json& dtype = entry["dtype"];
    if (!dtype.is_string()) throw io_error(where + ": field 'dtype' must be a string");
    const std::optional<DType> parsed = dtype_from_safetensors_name(dtype.get<std::string>());
    if (!parsed) {
        throw io_error(where + ": field 'dtype' = " + dtype.dump() +
                       " is not supported (F16, BF16, F32, F64, I32, I64)");
    }
    info.dtype = *parsed;

    const nlohmann::json& shape = entry["shape"];
    if (!shape.is_array()) throw io_error(where + ": field 'shape' must be a list of non-negative integers");
    for (const nlohmann::json& d : shape) {
        info.shape.push_back(json_size(d, where + ": field 'shape' entry"));
        // Every row and column count must fit Eigen's signed Index.
        if (info.shape.back() > static_cast<std::size_t>(std::numeric_limits<Index>::max())) {
            throw io_error(where + ": field 'shape' entry " + std::to_string(info.shape.back()) + " is too large");
        }
    }

    const nlohmann::json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) {
        throw io_error(where + ": field 'data_offsets' must be [begin, end], got " + offsets.dump());
    }
    info.begin = json_size(offsets[0], where + ": field 'data_offsets' begin");
    info.end = json_size(offsets[1], where + ": field 'data_offsets' end");
    if (info.begin > info.end) {
        throw io_error(where + ": field 'data_offsets' = " + offsets.dump() + " has begin > end");
    }
    return info;
}

/// The element count implied by the shape must match the byte range; the product is
/// overflow-checked, so a shape of 10^15 elements fails here without any allocation.
inline void check_tensor_size(const std::string& where, const TensorInfo& info, std::size_t buffer_size) {
    if (info.end > buffer_size) {
        throw io_error(where + ": field 'data_offsets' end = " + std::to_string(info.end) +
                       " is past the data buffer of " + std::to_string(buffer_size) + " bytes");
    }
    std::size_t elements = 1;
    for (std::size_t d : info.shape) elements = checked_product(elements, d, where + ": field 'shape' element count");
    const std::size_t bytes = checked_product(elements, dtype_size(info.dtype), where + ": field 'shape' byte count");
    if (bytes != info.byte_count()) {
        throw io_error(where + ": field 'shape' " + shape_text(info.shape) + " of " +
                       safetensors_dtype_name(info.dtype) + " needs " + std::to_string(bytes) +
                       " bytes but field 'data_offsets' spans " + std::to_string(info.byte_count()));
    }
}

inline std::map<std::string, std::string> parse_safetensors_metadata(const std::string& path,
                                                                    const nlohmann::json& value) {
    std::map<std::string, std::string> metadata;
    if (value.is_null()) return metadata;  // the reference reads null as "no metadata"
    if (!value.is_object()) throw io_error(path + ": field '__metadata__' must be an object of strings");
    for (const auto& [key, item] : value.items()) {
        if (!item.is_string()) {
            throw io_error(path + ": field '__metadata__' value of '" + key + "' must be a string, got " + item.dump());
        }
        metadata.emplace(key, item.get<std::string>());
    }
    return metadata;
}

/// Sorted by offset, the tensors must tile [0, buffer_size) exactly.
inline void check_buffer_coverage(const std::string& path, const std::vector<std::pair<std::string, const TensorInfo*>>& by_offset,
                                  std::size_t buffer_size) {
    std::size_t covered = 0;
    std::string previous = "(start of buffer)";
    for (const auto& [name, info] : by_offset) {
        if (info->begin < covered) {
            throw io_error(path + ": tensor '" + name + "': field 'data_offsets' overlaps tensor '" + previous + "'");
        }
        if (info->begin > covered) {
            throw io_error(path + ": tensor '" + name + "': field 'data_offsets' leaves a gap of " +
                           std::to_string(info->begin - covered) + " bytes after " + previous);
        }
        covered = info->end;
        previous = "tensor '" + name + "'";
    }
    if (covered != buffer_size) {
        throw io_error(path + ": data buffer has " + std::to_string(buffer_size - covered) +
                       " trailing bytes not covered by any tensor's data_offsets");
    }
}

}  // namespace detail

/// Read-only, memory-mapped safetensors file. Cheap to open (only the header is parsed);
/// tensor bytes are paged in when read. Const member functions are thread-safe.
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path) : file_(path) {
        const std::size_t header_bytes = read_header_size();
        const char* json_begin = reinterpret_cast<const char*>(file_.data()) + 8;
        const nlohmann::json header = detail::parse_safetensors_header(path, json_begin, json_begin + header_bytes);
        if (!header.is_object()) throw io_error(path + ": header must be a JSON object");
        data_offset_ = 8 + header_bytes;
        const std::size_t buffer_size = file_.size() - data_offset_;
        for (const auto& [name, entry] : header.items()) {
            if (name == "__metadata__") {
                metadata_ = detail::parse_safetensors_metadata(path, entry);
                continue;
            }
            const std::string where = path + ": tensor '" + name + "'";
            TensorInfo info = detail::parse_tensor_entry(where, entry);
            detail::check_tensor_size(where, info, buffer_size);
            tensors_.emplace(name, std::move(info));
        }
        order_tensors_by_offset();
        std::vector<std::pair<std::string, const TensorInfo*>> by_offset;
        for (const std::string& name : names_) by_offset.emplace_back(name, &tensors_.at(name));
        detail::check_buffer_coverage(path, by_offset, buffer_size);
    }

    const std::string& path() const { return file_.path(); }

    /// Tensor names in file order (by data offset).
    const std::vector<std::string>& names() const { return names_; }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }

    /// io_error naming the file and the missing tensor.
    const TensorInfo& info(const std::string& name) const {
        const auto it = tensors_.find(name);
        if (it == tensors_.end()) throw io_error(path() + ": no tensor named '" + name + "'");
        return it->second;
    }

    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    /// The tensor as a matrix: a rank >= 2 tensor [d0, ..., dn] gives [d0 * ... * d(n-1), dn]
    /// (leading dimensions flattened into rows), rank 1 gives one row, rank 0 a 1x1.
    template <class Scalar>
    Matrix<Scalar> matrix(const std::string& name) const {
        const TensorInfo& tensor = info(name);
        const auto [rows, cols] = matrix_shape(tensor);
        Matrix<Scalar> out(rows, cols);
        if (out.size() > 0) decode_elements(bytes_of(tensor), tensor.dtype, tensor.element_count(), out.data());
        return out;
    }

    /// A tensor with one axis: shape [n], [1, n], [n, 1] or [] (one element).
    /// shape_error naming the tensor and its shape otherwise.
    template <class Scalar>
    RowVector<Scalar> vector(const std::string& name) const {
        const TensorInfo& tensor = info(name);
        const std::vector<std::size_t>& s = tensor.shape;
        const bool one_axis = s.size() <= 1 || (s.size() == 2 && (s[0] == 1 || s[1] == 1));
        if (!one_axis) {
            throw shape_error(path() + ": tensor '" + name + "' has shape " + detail::shape_text(s) +
                              " but a vector (one axis) is needed");
        }
        RowVector<Scalar> out(static_cast<Index>(tensor.element_count()));
        if (out.size() > 0) decode_elements(bytes_of(tensor), tensor.dtype, tensor.element_count(), out.data());
        return out;
    }

    /// Rows [first, first + count) of matrix(name) into `out` ([count, cols]), touching
    /// only those rows' bytes: the streaming read for activation shards.
    template <class Scalar>
    void read_rows(const std::string& name, Index first, Index count, Eigen::Ref<Matrix<Scalar>> out) const {
        const TensorInfo& tensor = info(name);
        const auto [rows, cols] = matrix_shape(tensor);
        check_row_range(name, first, count, rows);
        if (out.rows() != count || out.cols() != cols) {
            throw shape_error(path() + ": read_rows of tensor '" + name + "' needs an output of shape [" +
                              std::to_string(count) + ", " + std::to_string(cols) + "], got [" +
                              std::to_string(out.rows()) + ", " + std::to_string(out.cols()) + "]");
        }
        const std::size_t row_bytes = static_cast<std::size_t>(cols) * dtype_size(tensor.dtype);
        const unsigned char* src = bytes_of(tensor) + static_cast<std::size_t>(first) * row_bytes;
        if (count == 0 || cols == 0) return;
        if (out.outerStride() == cols) {  // contiguous destination: one bulk decode
            decode_elements(src, tensor.dtype, static_cast<std::size_t>(count * cols), out.data());
            return;
        }
        for (Index r = 0; r < count; ++r) {
            decode_elements(src + static_cast<std::size_t>(r) * row_bytes, tensor.dtype, static_cast<std::size_t>(cols),
                            out.row(r).data());
        }
    }

    /// Tells the kernel rows [first, first + count) of a tensor are no longer needed, so
    /// a pass over a file larger than memory keeps a bounded resident set.
    void release(const std::string& name, Index first, Index count) const {
        const TensorInfo& tensor = info(name);
        const auto [rows, cols] = matrix_shape(tensor);
        check_row_range(name, first, count, rows);
        if (count == 0) return;
        const std::size_t row_bytes = static_cast<std::size_t>(cols) * dtype_size(tensor.dtype);
        file_.advise_done(data_offset_ + tensor.begin + static_cast<std::size_t>(first) * row_bytes,
                          static_cast<std::size_t>(count) * row_bytes);
    }

    /// The raw little-endian bytes of a tensor (byte_count() of them, any alignment).
    const unsigned char* raw_bytes(const std::string& name) const { return bytes_of(info(name)); }

private:
    std::size_t read_header_size() const {
        if (file_.size() < 8) {
            throw io_error(path() + ": file has " + std::to_string(file_.size()) +
                           " bytes, fewer than the 8-byte header size field");
        }
        std::uint64_t n = 0;
        std::memcpy(&n, file_.data(), 8);  // little-endian host (checked in dtype.hpp)
        if (n > detail::safetensors_max_header_bytes) {
            throw io_error(path() + ": header size field = " + std::to_string(n) + " exceeds the limit of " +
                           std::to_string(detail::safetensors_max_header_bytes) + " bytes");
        }
        if (n > file_.size() - 8) {
            throw io_error(path() + ": header size field = " + std::to_string(n) + " is past the end of the file (" +
                           std::to_string(file_.size()) + " bytes)");
        }
        return static_cast<std::size_t>(n);
    }

    void order_tensors_by_offset() {
        for (const auto& entry : tensors_) names_.push_back(entry.first);
        std::stable_sort(names_.begin(), names_.end(), [this](const std::string& a, const std::string& b) {
            const TensorInfo& x = tensors_.at(a);
            const TensorInfo& y = tensors_.at(b);
            return std::make_pair(x.begin, x.end) < std::make_pair(y.begin, y.end);
        });
    }

    std::pair<Index, Index> matrix_shape(const TensorInfo& tensor) const {
        if (tensor.shape.empty()) return {1, 1};
        const std::size_t cols = tensor.shape.back();
        const std::size_t rows = cols == 0 ? (tensor.shape.size() == 1 ? 1 : leading_product(tensor))
                                           : tensor.element_count() / cols;
        return {static_cast<Index>(rows), static_cast<Index>(cols)};
    }

    /// Rows of a tensor whose last axis is 0 (so the element count says nothing about them).
    std::size_t leading_product(const TensorInfo& tensor) const {
        std::size_t rows = 1;
        for (std::size_t i = 0; i + 1 < tensor.shape.size(); ++i) {
            rows = checked_product(rows, tensor.shape[i], path() + ": tensor row count");
        }
        if (rows > static_cast<std::size_t>(std::numeric_limits<Index>::max())) {
            throw io_error(path() + ": tensor row count " + std::to_string(rows) + " is too large");
        }
        return rows;
    }

    void check_row_range(const std::string& name, Index first, Index count, Index rows) const {
        if (first < 0 || count < 0 || first > rows || count > rows - first) {
            throw shape_error(path() + ": rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
                              ") of tensor '" + name + "' are out of range (it has " + std::to_string(rows) + " rows)");
        }
    }

    const unsigned char* bytes_of(const TensorInfo& tensor) const { return file_.data() + data_offset_ + tensor.begin; }

    MappedFile file_;
    std::size_t data_offset_ = 0;
    std::map<std::string, TensorInfo> tensors_;
    std::vector<std::string> names_;
    std::map<std::string, std::string> metadata_;
};

/// The bytes before a safetensors data buffer: the 8-byte little-endian size field and
/// `header_json` padded with spaces to a multiple of 8 (so the buffer, and every tensor
/// in it, starts aligned). Shared by SafetensorsWriter and streaming writers.
inline std::string frame_safetensors_header(std::string header_json) {
    header_json.resize((header_json.size() + 7) / 8 * 8, ' ');
    std::string out(8, '\0');
    const std::uint64_t n = header_json.size();
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFFu);
    return out + header_json;
}

/// Builds a safetensors file in memory and writes it atomically.
class SafetensorsWriter {
public:
    /// Adds a tensor from an Eigen matrix or vector, converted to `dtype` (default: the
    /// matrix's own Scalar type). `shape` defaults to [rows, cols]; give {n} for a 1-D
    /// tensor or std::vector<std::size_t>{} for a scalar; its product must equal the number of elements
    /// (shape_error otherwise). Values are stored in row-major order whatever the
    /// storage order of `m`.
    template <class Derived>
    void add(const std::string& name, const Eigen::MatrixBase<Derived>& m,
             DType dtype = dtype_of<typename Derived::Scalar>(), std::optional<std::vector<std::size_t>> shape = {}) {
        using Scalar = typename Derived::Scalar;
        if (!shape) shape = std::vector<std::size_t>{static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())};
        const Matrix<Scalar> row_major = m;  // evaluates expressions, fixes the element order
        const std::size_t n = static_cast<std::size_t>(row_major.size());
        std::string bytes(checked_product(n, dtype_size(dtype), "tensor '" + name + "' byte count"), '\0');
        if (n > 0) encode_elements(row_major.data(), n, dtype, reinterpret_cast<unsigned char*>(bytes.data()));
        add_raw(name, dtype, std::move(*shape), std::move(bytes));
    }

    /// Adds a tensor from its little-endian bytes (for integer state and the like).
    /// shape_error when bytes.size() != element count * dtype_size.
    void add_raw(const std::string& name, DType dtype, std::vector<std::size_t> shape, std::string bytes) {
        (void)json_string(name);  // rejects a name that is not UTF-8 now rather than at write()
        if (name == "__metadata__") throw config_error("safetensors: '__metadata__' cannot name a tensor");
        for (const Entry& e : entries_) {
            if (e.name == name) throw config_error("safetensors: tensor '" + name + "' was added twice");
        }
        std::size_t elements = 1;
        for (std::size_t d : shape) elements = checked_product(elements, d, "tensor '" + name + "' element count");
        if (checked_product(elements, dtype_size(dtype), "tensor '" + name + "' byte count") != bytes.size()) {
            throw shape_error("safetensors: tensor '" + name + "' has shape " + detail::shape_text(shape) + " of " +
                              safetensors_dtype_name(dtype) + " but " + std::to_string(bytes.size()) + " bytes");
        }
        entries_.push_back(Entry{name, dtype, std::move(shape), std::move(bytes)});
    }

    /// config_error when key or value is not valid UTF-8.
    void set_metadata(const std::string& key, const std::string& value) {
        (void)json_string(key);
        (void)json_string(value);
        metadata_[key] = value;
    }

    /// The complete file contents: size field, padded header, data.
    std::string serialize() const {
        const std::vector<const Entry*> order = file_order();
        std::string out = padded_header(order);
        for (const Entry* e : order) out += e->bytes;
        return out;
    }

    /// Writes the file atomically (temporary file + rename): a reader sees the old
    /// file or the complete new one.
    void write(const std::string& path) const {
        const std::vector<const Entry*> order = file_order();
        AtomicFileWriter out(path);
        out.write(padded_header(order));
        for (const Entry* e : order) out.write(e->bytes);  // no concatenated copy of the data
        out.commit();
    }

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<std::size_t> shape;
        std::string bytes;
    };

    /// The reference's dtype order (increasing alignment) restricted to ours.
    static int reference_rank(DType t) {
        switch (t) {
            case DType::f16: return 0;
            case DType::bf16: return 1;
            case DType::i32: return 2;
            case DType::f32: return 3;
            case DType::f64: return 4;
            case DType::i64: return 5;
        }
        return 0;
    }

    /// Largest alignment first, then by name: each tensor starts at a multiple of its
    /// element size, and the output equals the reference's.
    std::vector<const Entry*> file_order() const {
        std::vector<const Entry*> order;
        for (const Entry& e : entries_) order.push_back(&e);
        std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
            const int ra = reference_rank(a->dtype), rb = reference_rank(b->dtype);
            return ra != rb ? ra > rb : a->name < b->name;
        });
        return order;
    }

    static std::string json_string(const std::string& s) {
        try {
            return nlohmann::json(s).dump();
        } catch (const nlohmann::json::exception&) {  // type_error 316: invalid UTF-8
            throw config_error("safetensors: name or metadata '" + s + "' is not valid UTF-8");
        }
    }

    /// Compact JSON in the reference's field order, built by hand because nlohmann's
    /// object type sorts keys.
    std::string header_json(const std::vector<const Entry*>& order) const {
        std::string json = "{";
        if (!metadata_.empty()) {
            json += "\"__metadata__\":{";
            bool first = true;
            for (const auto& [key, value] : metadata_) {
                json += (first ? "" : ",") + json_string(key) + ":" + json_string(value);
                first = false;
            }
            json += "}";
        }
        std::size_t offset = 0;
        for (const Entry* e : order) {
            if (json.size() > 1) json += ",";
            json += json_string(e->name) + ":{\"dtype\":\"" + safetensors_dtype_name(e->dtype) + "\",\"shape\":[";
            for (std::size_t i = 0; i < e->shape.size(); ++i) json += (i ? "," : "") + std::to_string(e->shape[i]);
            json += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e->bytes.size()) + "]}";
            offset += e->bytes.size();
        }
        return json + "}";
    }

    std::string padded_header(const std::vector<const Entry*>& order) const {
        return frame_safetensors_header(header_json(order));
    }

    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace sae
