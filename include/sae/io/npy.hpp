#pragma once
/// \file npy.hpp
/// NumPy .npy files (format versions 1.0, 2.0 and 3.0) of the little-endian types
/// '<f2', '<f4', '<f8', '<i4', '<i8', seen as 2-D matrices.
///
/// File layout (numpy.lib.format): "\x93NUMPY", major and minor version bytes, the
/// header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then the header,
/// a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
/// padded with spaces and ended by '\n' (latin-1 in 1.0/2.0, UTF-8 in 3.0), then the
/// elements, C order unless fortran_order is True.
///
///   parse_npy_header(bytes, size, path)  requires: bytes holds the first `size` bytes of
///                     the file (the whole file). ensures: the header describes exactly
///                     size - data_offset data bytes; otherwise io_error
///                     "<path>: npy header field '<field>': <what is wrong>". The header is
///                     read by a strict hand-written parser (never eval); every claimed size
///                     is checked against the file before anything is allocated.
///   read_npy_header(path)   the same for a file (memory-mapped, only the header is touched).
///   read_npy<Scalar>(path)  the array as a rows() x cols() row-major matrix: the last
///                     dimension is the columns, the others are flattened into rows (a 1-D
///                     array is one row, a 0-d array is 1 x 1). Fortran-ordered data is
///                     reordered, so element (i0, ..., ik) lands at the same place either way.
///   write_npy(path, m, dtype, as_vector)  writes m as a C-order (rows, cols) array, or as a
///                     1-D array when as_vector (m must have one row or one column; else
///                     shape_error), converting to `dtype` (F16 rounds to nearest even;
///                     integer dtypes reject non-integral values; bf16 has no .npy type:
///                     io_error). Version 1.0 unless the header needs more than 65535
///                     bytes; data starts at a multiple of 64. Atomic (temp file + rename).
///   npy_header(dtype, shape, fortran_order)  the bytes that precede the data in such a file.
///   NpyRowReader      memory-mapped row access to a C-order file of any size: read_rows
///                     converts a range of rows into a caller's matrix, release() lets the
///                     kernel drop the pages of rows already consumed.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "dtype.hpp"
#include "file.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sae {

/// What a .npy header says, validated against the file it came from.
struct NpyHeader {
    DType dtype = DType::f32;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
    std::size_t data_offset = 0;    ///< bytes before the first element
    std::size_t element_count = 1;  ///< product of shape (1 for a 0-d array)
    unsigned major_version = 1;     ///< 1, 2 or 3

    /// Product of all dimensions but the last (1 for 0-d and 1-d arrays).
    std::size_t rows() const {
        std::size_t product = 1;
        for (std::size_t k = 0; k + 1 < shape.size(); ++k) product *= shape[k];
        return product;
    }
    /// The last dimension (1 for a 0-d array).
    std::size_t cols() const { return shape.empty() ? 1 : shape.back(); }
    std::size_t data_bytes() const { return element_count * dtype_size(dtype); }
};

namespace detail::npy {

inline constexpr unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
inline constexpr std::size_t alignment = 64;  // NumPy >= 1.14 aligns the data to 64 bytes
inline constexpr std::size_t max_dimensions = 64;  // NumPy 2's NPY_MAXDIMS; bounds the shape vector
inline constexpr std::size_t max_index = static_cast<std::size_t>(std::numeric_limits<Index>::max());

[[noreturn]] inline void fail(const std::string& path, const std::string& field, const std::string& what) {
    throw io_error(path + ": npy header field '" + field + "': " + what);
}

/// Python's repr of a shape tuple: "()", "(3,)", "(2, 3)".
inline std::string shape_text(const std::vector<std::size_t>& shape) {
    std::string text = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) text += (k ? ", " : "") + std::to_string(shape[k]);
    return text + (shape.size() == 1 ? ",)" : ")");
}

/// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
inline bool is_valid_utf8(const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const unsigned char lead = p[i];
        std::size_t length = 1;
        std::uint32_t code = lead, smallest = 0;
        if (lead >= 0x80) {
            if ((lead & 0xE0u) == 0xC0u) { length = 2; code = lead & 0x1Fu; smallest = 0x80; }
            else if ((lead & 0xF0u) == 0xE0u) { length = 3; code = lead & 0x0Fu; smallest = 0x800; }
            else if ((lead & 0xF8u) == 0xF0u) { length = 4; code = lead & 0x07u; smallest = 0x10000; }
            else return false;
            if (n - i < length) return false;
            for (std::size_t k = 1; k < length; ++k) {
                if ((p[i + k] & 0xC0u) != 0x80u) return false;
                code = (code << 6) | (p[i + k] & 0x3Fu);
            }
            if (code < smallest || code > 0x10FFFFu || (code >= 0xD800u && code <= 0xDFFFu)) return false;
        }
        i += length;
    }
    return true;
}

/// Recursive-descent parser of the one dict NumPy writes: the keys 'descr' (a type
/// string), 'fortran_order' (True/False) and 'shape' (a tuple of integers), each exactly
/// once, in any order, single or double quotes, optional trailing comma, whitespace
/// between tokens. Anything else is an io_error naming the field.
class HeaderDictParser {
public:
    HeaderDictParser(const std::string& path, const char* text, std::size_t size)
        : path_(path), text_(text), size_(size) {}

    /// Fills dtype, fortran_order and shape of `header`.
    void parse(NpyHeader& header) {
        skip_space();
        expect('{', "'{' opening the header dict");
        bool seen_descr = false, seen_fortran = false, seen_shape = false;
        skip_space();
        while (!at('}')) {
            const std::string key = parse_key();
            skip_space();
            expect(':', "':' after key '" + key + "'");
            skip_space();
            if (key == "descr") {
                mark_seen(seen_descr, key);
                header.dtype = parse_descr();
            } else if (key == "fortran_order") {
                mark_seen(seen_fortran, key);
                header.fortran_order = parse_bool(key);
            } else if (key == "shape") {
                mark_seen(seen_shape, key);
                header.shape = parse_shape();
            } else {
                fail(path_, key, "unknown key (a .npy header has exactly 'descr', 'fortran_order' and 'shape')");
            }
            skip_space();
            if (!at('}')) {
                expect(',', "',' or '}' after the value of '" + key + "'");
                skip_space();
            }
        }
        ++pos_;  // the '}'
        skip_space();
        if (pos_ != size_) syntax_error("only spaces and '\\n' may follow the closing '}'");
        if (!seen_descr) fail(path_, "descr", "missing");
        if (!seen_fortran) fail(path_, "fortran_order", "missing");
        if (!seen_shape) fail(path_, "shape", "missing");
    }

private:
    bool at(char c) const { return pos_ < size_ && text_[pos_] == c; }
    bool at_quote() const { return at('\'') || at('"'); }
    void skip_space() {
        while (pos_ < size_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
    }
    [[noreturn]] void syntax_error(const std::string& what) const {
        fail(path_, "header", what + " (at byte " + std::to_string(pos_) + " of the header)");
    }
    void expect(char c, const std::string& what) {
        if (!at(c)) syntax_error("expected " + what);
        ++pos_;
    }
    void mark_seen(bool& seen, const std::string& key) const {
        if (seen) fail(path_, key, "duplicate key");
        seen = true;
    }

    /// Up to 24 bytes of the value at the cursor, non-printable bytes shown as '?'.
    std::string excerpt() const {
        std::string shown;
        for (std::size_t i = pos_; i < size_ && shown.size() < 24 && text_[i] != ',' && text_[i] != '}'; ++i) {
            const unsigned char c = static_cast<unsigned char>(text_[i]);
            shown += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
        }
        return shown;
    }

    /// A quoted string without escapes (no valid key or descr needs one).
    std::string parse_string(const std::string& field) {
        const char quote = text_[pos_++];
        const std::size_t start = pos_;
        while (pos_ < size_ && text_[pos_] != quote) {
            if (text_[pos_] == '\\' || text_[pos_] == '\n') fail(path_, field, "unsupported character in a quoted string");
            ++pos_;
        }
        if (pos_ == size_) fail(path_, field, "unterminated string");
        return std::string(text_ + start, text_ + pos_++);
    }

    std::string parse_key() {
        if (!at_quote()) syntax_error("expected a quoted key or '}'");
        return parse_string("header");
    }

    DType parse_descr() {
        if (!at_quote()) {
            fail(path_, "descr", "must be a type string such as '<f4', got '" + excerpt() +
                                     "' (structured and object dtypes are not supported)");
        }
        const std::string descr = parse_string("descr");
        if (const std::optional<DType> dtype = dtype_from_npy_descr(descr)) return *dtype;
        std::string shown;
        for (char c : descr.substr(0, 24)) shown += (c >= 0x20 && c < 0x7F) ? c : '?';
        fail(path_, "descr", "'" + shown + "' is not supported (supported: '<f2', '<f4', '<f8', '<i4', '<i8'; "
                                          "big-endian data must be converted with astype('<f4') first)");
    }

    bool parse_bool(const std::string& field) {
        for (const char* word : {"True", "False"}) {
            const std::size_t length = std::strlen(word);
            const bool followed_by_letter = pos_ + length < size_ && std::isalnum(static_cast<unsigned char>(text_[pos_ + length]));
            if (size_ - pos_ >= length && std::memcmp(text_ + pos_, word, length) == 0 && !followed_by_letter) {
                pos_ += length;
                return length == 4;
            }
        }
        fail(path_, field, "must be True or False, got '" + excerpt() + "'");
    }

    std::vector<std::size_t> parse_shape() {
        if (!at('(')) fail(path_, "shape", "must be a tuple such as (3, 4), got '" + excerpt() + "'");
        ++pos_;
        std::vector<std::size_t> shape;
        skip_space();
        while (!at(')')) {
            if (shape.size() == max_dimensions) fail(path_, "shape", "more than " + std::to_string(max_dimensions) + " dimensions");
            shape.push_back(parse_dimension(shape.size()));
            skip_space();
            if (at(',')) {
                ++pos_;
                skip_space();
            } else if (at(')')) {
                // Python: "(3)" is the integer 3, not a tuple.
                if (shape.size() == 1) fail(path_, "shape", "(" + std::to_string(shape[0]) + ") is not a tuple; a 1-d shape is written (n,)");
            } else {
                fail(path_, "shape", "expected ',' or ')' after dimension " + std::to_string(shape.size() - 1) + ", got '" + excerpt() + "'");
            }
        }
        ++pos_;  // the ')'
        return shape;
    }

    /// A non-negative decimal integer that fits an Index (Eigen's signed size type).
    std::size_t parse_dimension(std::size_t k) {
        const std::string which = "dimension " + std::to_string(k);
        if (at('-')) fail(path_, "shape", which + " is negative ('" + excerpt() + "')");
        if (pos_ == size_ || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
            fail(path_, "shape", which + " is not a non-negative integer ('" + excerpt() + "')");
        }
        std::size_t value = 0;
        for (; pos_ < size_ && std::isdigit(static_cast<unsigned char>(text_[pos_])); ++pos_) {
            const std::size_t digit = static_cast<std::size_t>(text_[pos_] - '0');
            if (value > (max_index - digit) / 10) fail(path_, "shape", which + " is larger than " + std::to_string(max_index));
            value = value * 10 + digit;
        }
        if (pos_ < size_ && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' || text_[pos_] == '_')) {
            fail(path_, "shape", which + " is not an integer (followed by '" + excerpt() + "')");
        }
        return value;
    }

    const std::string& path_;
    const char* text_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

/// Element count, and the sizes derived from the shape, checked for overflow; then the
/// data size against the bytes the file really has after the header.
inline void check_sizes(const std::string& path, NpyHeader& header, std::size_t available) {
    const std::string what = path + ": npy header field 'shape': " + shape_text(header.shape);
    header.element_count = 1;
    for (std::size_t d : header.shape) header.element_count = checked_product(header.element_count, d, what + " element count");
    // A zero dimension makes the product 0, so rows and row bytes are checked separately:
    // they index the file (NpyRowReader) and size Eigen matrices.
    std::size_t rows = 1;
    for (std::size_t k = 0; k + 1 < header.shape.size(); ++k) rows = checked_product(rows, header.shape[k], what + " row count");
    if (rows > max_index) fail(path, "shape", shape_text(header.shape) + " has more rows than an Index can hold");
    checked_product(header.cols(), dtype_size(header.dtype), what + " row size in bytes");
    const std::size_t needed = checked_product(header.element_count, dtype_size(header.dtype), what + " data size");
    if (needed != available) {
        fail(path, "shape", shape_text(header.shape) + " of '" + npy_descr(header.dtype) + "' needs " + std::to_string(needed) +
                                " data bytes but the file has " + std::to_string(available) + " after the header");
    }
}

/// Header length field: version 1.0 uses 2 bytes, 2.0 and 3.0 use 4 (little-endian).
inline std::size_t read_length_field(const unsigned char* p, std::size_t width) {
    std::size_t value = 0;
    for (std::size_t k = width; k-- > 0;) value = (value << 8) | p[k];
    return value;
}

}  // namespace detail::npy

inline NpyHeader parse_npy_header(const unsigned char* bytes, std::size_t size, const std::string& path) {
    using detail::npy::fail;
    constexpr std::size_t magic_size = sizeof(detail::npy::magic);
    if (size < magic_size) fail(path, "magic", "file of " + std::to_string(size) + " bytes is too short to be a .npy file");
    if (std::memcmp(bytes, detail::npy::magic, magic_size) != 0) fail(path, "magic", "not a .npy file (it does not start with \"\\x93NUMPY\")");
    if (size < magic_size + 2) fail(path, "version", "file ends inside the version bytes");
    NpyHeader header;
    header.major_version = bytes[magic_size];
    const unsigned minor = bytes[magic_size + 1];
    if (header.major_version < 1 || header.major_version > 3 || minor != 0) {
        fail(path, "version", std::to_string(header.major_version) + "." + std::to_string(minor) + " is not supported (1.0, 2.0, 3.0)");
    }
    const std::size_t width = header.major_version == 1 ? 2 : 4;
    const std::size_t prefix = magic_size + 2 + width;
    if (size < prefix) fail(path, "header_len", "file ends inside the header length");
    const std::size_t header_length = detail::npy::read_length_field(bytes + magic_size + 2, width);
    if (header_length > size - prefix) {
        fail(path, "header_len", "header of " + std::to_string(header_length) + " bytes extends past the end of the file (" +
                                     std::to_string(size) + " bytes)");
    }
    const unsigned char* text = bytes + prefix;
    if (header_length == 0 || text[header_length - 1] != '\n') fail(path, "header", "not terminated by '\\n'");
    if (header.major_version == 3 && !detail::npy::is_valid_utf8(text, header_length)) fail(path, "header", "invalid UTF-8 in a version 3.0 header");
    detail::npy::HeaderDictParser(path, reinterpret_cast<const char*>(text), header_length).parse(header);
    header.data_offset = prefix + header_length;
    detail::npy::check_sizes(path, header, size - header.data_offset);
    return header;
}

inline NpyHeader read_npy_header(const std::string& path) {
    const MappedFile file(path);
    return parse_npy_header(file.data(), file.size(), path);
}

namespace detail::npy {

/// Row permutation taking the leading dimensions of a Fortran-ordered array from
/// Fortran-flat order (first index fastest) to C-flat order (last index fastest).
inline Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, Index> fortran_to_c_rows(const std::vector<std::size_t>& shape) {
    const std::vector<std::size_t> leading(shape.begin(), shape.end() - 1);
    std::vector<std::size_t> c_stride(leading.size(), 1);
    for (std::size_t k = leading.size() - 1; k-- > 0;) c_stride[k] = c_stride[k + 1] * leading[k + 1];
    std::size_t rows = 1;
    for (std::size_t d : leading) rows *= d;
    Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, Index> permutation(static_cast<Index>(rows));
    std::vector<std::size_t> index(leading.size(), 0);  // multi-index, counted in Fortran order
    std::size_t c_row = 0;
    for (std::size_t fortran_row = 0; fortran_row < rows; ++fortran_row) {
        permutation.indices()(static_cast<Index>(fortran_row)) = static_cast<Index>(c_row);
        for (std::size_t k = 0; k < leading.size(); ++k) {  // odometer step, first index fastest
            c_row += c_stride[k];
            if (++index[k] < leading[k]) break;
            c_row -= leading[k] * c_stride[k];
            index[k] = 0;
        }
    }
    return permutation;
}

/// The array as rows() x cols(), from its data bytes.
template <class Scalar>
Matrix<Scalar> decode_npy_data(const NpyHeader& header, const unsigned char* data) {
    const Index rows = static_cast<Index>(header.rows()), cols = static_cast<Index>(header.cols());
    if (header.element_count == 0) return Matrix<Scalar>(rows, cols);
    if (!header.fortran_order || header.shape.size() < 2) {
        Matrix<Scalar> out(rows, cols);
        decode_elements(data, header.dtype, header.element_count, out.data());
        return out;
    }
    // Fortran data of shape (d0, ..., dk) is C data of shape (dk, ..., d0): read it as
    // dk rows, one per column of the result, then transpose and reorder the rows.
    Matrix<Scalar> by_column(cols, rows);
    decode_elements(data, header.dtype, header.element_count, by_column.data());
    if (header.shape.size() == 2) return by_column.transpose();
    Matrix<Scalar> out(rows, cols);
    out.noalias() = fortran_to_c_rows(header.shape) * by_column.transpose();
    return out;
}

}  // namespace detail::npy

template <class Scalar>
Matrix<Scalar> read_npy(const std::string& path) {
    const MappedFile file(path);
    const NpyHeader header = parse_npy_header(file.data(), file.size(), path);
    return detail::npy::decode_npy_data<Scalar>(header, file.data() + header.data_offset);
}

namespace detail::npy {

/// Magic, version, length field and `dict` padded with spaces and '\n' to a multiple
/// of 64 bytes; the empty string when the length does not fit the version's field.
inline std::string wrap_header(unsigned version, const std::string& dict) {
    const std::size_t width = version == 1 ? 2 : 4;
    const std::size_t prefix = sizeof(magic) + 2 + width;
    const std::size_t unpadded = prefix + dict.size() + 1;  // + '\n'
    const std::size_t total = (unpadded + alignment - 1) / alignment * alignment;
    std::size_t length = total - prefix;
    if (length >> (8 * width) != 0) return {};
    std::string bytes(reinterpret_cast<const char*>(magic), sizeof(magic));
    bytes += static_cast<char>(version);
    bytes += '\0';
    for (std::size_t k = 0; k < width; ++k, length >>= 8) bytes += static_cast<char>(length & 0xFFu);
    return bytes + dict + std::string(total - unpadded, ' ') + '\n';
}

}  // namespace detail::npy

/// The bytes that precede the data of a .npy file of this type and shape, as NumPy
/// writes them (keys sorted, Python reprs); version 1.0 unless the header needs more
/// than 65535 bytes (then 2.0).
inline std::string npy_header(DType dtype, const std::vector<std::size_t>& shape, bool fortran_order = false) {
    const std::string dict = "{'descr': '" + npy_descr(dtype) + "', 'fortran_order': " + (fortran_order ? "True" : "False") +
                             ", 'shape': " + detail::npy::shape_text(shape) + ", }";
    std::string bytes = detail::npy::wrap_header(1, dict);
    return bytes.empty() ? detail::npy::wrap_header(2, dict) : bytes;
}

template <class Derived>
void write_npy(const std::string& path, const Eigen::MatrixBase<Derived>& m, DType dtype = dtype_of<typename Derived::Scalar>(),
               bool as_vector = false) {
    using Scalar = typename Derived::Scalar;
    if (dtype == DType::bf16) {
        detail::npy::fail(path, "descr", "bfloat16 has no .npy type string; write float32 or use safetensors");
    }
    if (as_vector && m.rows() != 1 && m.cols() != 1) {
        throw shape_error(path + ": write_npy as_vector needs one row or one column, got " + std::to_string(m.rows()) + " x " +
                          std::to_string(m.cols()));
    }
    const std::vector<std::size_t> shape =
        as_vector ? std::vector<std::size_t>{static_cast<std::size_t>(m.size())}
                  : std::vector<std::size_t>{static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols())};
    // Binds without a copy to row-major matrices and their row blocks; anything else
    // (column-major, expressions) is evaluated once into row-major order.
    const Eigen::Ref<const Matrix<Scalar>> rows_view(m.derived());
    AtomicFileWriter writer(path);
    writer.write(npy_header(dtype, shape));
    // Encode in chunks of about 1 MiB so that memory stays bounded for large matrices.
    const std::size_t row_bytes = static_cast<std::size_t>(rows_view.cols()) * dtype_size(dtype);
    const Index rows_per_chunk = static_cast<Index>(std::max<std::size_t>(1, (std::size_t{1} << 20) / std::max<std::size_t>(1, row_bytes)));
    std::vector<unsigned char> chunk;
    for (Index first = 0; first < rows_view.rows(); first += rows_per_chunk) {
        const Index count = std::min(rows_per_chunk, rows_view.rows() - first);
        chunk.resize(static_cast<std::size_t>(count) * row_bytes);
        for (Index r = 0; r < count && row_bytes > 0; ++r) {
            try {
                encode_elements(rows_view.row(first + r).data(), static_cast<std::size_t>(rows_view.cols()), dtype,
                                chunk.data() + static_cast<std::size_t>(r) * row_bytes);
            } catch (const io_error& e) {
                throw io_error(path + ": row " + std::to_string(first + r) + ": " + e.what());
            }
        }
        writer.write(chunk.data(), chunk.size());
    }
    writer.commit();
}

/// Row-wise access to a C-order .npy file through a memory map: nothing is read until
/// read_rows asks for it, and release() hands consumed pages back, so streaming through
/// a file larger than memory keeps the resident set bounded.
class NpyRowReader {
public:
    /// Throws io_error for a malformed file or a Fortran-ordered one (its rows are not
    /// contiguous on disk).
    explicit NpyRowReader(const std::string& path)
        : file_(path), header_(parse_npy_header(file_.data(), file_.size(), path)),
          row_bytes_(header_.cols() * dtype_size(header_.dtype)) {
        if (header_.fortran_order && header_.shape.size() >= 2) {
            detail::npy::fail(path, "fortran_order",
                              "Fortran order is not supported for row streaming; save with np.ascontiguousarray");
        }
    }

    Index rows() const { return static_cast<Index>(header_.rows()); }
    Index cols() const { return static_cast<Index>(header_.cols()); }
    DType dtype() const { return header_.dtype; }
    const std::string& path() const { return file_.path(); }
    const NpyHeader& header() const { return header_; }

    /// Rows [first, first + count) converted into `out` (count x cols()): io_error when
    /// the range is not inside the file, shape_error when `out` has the wrong shape.
    template <class Scalar>
    void read_rows(Index first, Index count, Eigen::Ref<Matrix<Scalar>> out) const {
        check_range(first, count);
        if (out.rows() != count || out.cols() != cols()) {
            throw shape_error(path() + ": read_rows into a " + std::to_string(out.rows()) + " x " + std::to_string(out.cols()) +
                              " matrix, expected " + std::to_string(count) + " x " + std::to_string(cols()));
        }
        if (count == 0 || row_bytes_ == 0) return;
        const unsigned char* data = file_.data() + header_.data_offset + static_cast<std::size_t>(first) * row_bytes_;
        if (out.outerStride() == cols()) {  // contiguous rows: one conversion
            decode_elements(data, header_.dtype, static_cast<std::size_t>(count * cols()), out.data());
            return;
        }
        for (Index r = 0; r < count; ++r) {
            decode_elements(data + static_cast<std::size_t>(r) * row_bytes_, header_.dtype, static_cast<std::size_t>(cols()),
                            out.row(r).data());
        }
    }

    /// The same into a new matrix.
    template <class Scalar>
    Matrix<Scalar> read_rows(Index first, Index count) const {
        check_range(first, count);
        Matrix<Scalar> out(count, cols());
        read_rows<Scalar>(first, count, out);
        return out;
    }

    /// Tells the kernel that rows [first, first + count) are no longer needed. Pages are
    /// dropped, not lost: reading those rows again reloads them from the file.
    void release(Index first, Index count) const {
        check_range(first, count);
        file_.advise_done(header_.data_offset + static_cast<std::size_t>(first) * row_bytes_, static_cast<std::size_t>(count) * row_bytes_);
    }

private:
    void check_range(Index first, Index count) const {
        if (first < 0 || count < 0 || first > rows() || count > rows() - first) {
            throw io_error(path() + ": cannot read " + std::to_string(count) + " rows starting at row " + std::to_string(first) +
                           ": the file has " + std::to_string(rows()) + " rows");
        }
    }

    MappedFile file_;
    NpyHeader header_;
    std::size_t row_bytes_;
};

}  // namespace sae
