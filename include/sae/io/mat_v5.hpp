#pragma once
/// \file mat_v5.hpp
/// A bounded reader of uncompressed MATLAB level-5 MAT-files (what `save -v6` writes, and
/// what EEGLAB writes for a .set whose data live in a separate .fdt file). Enough to read
/// the numbers, strings, structs and cells of such a file; nothing is evaluated.
///
/// Layout (MathWorks, "MAT-File Format", level 5): a 128-byte header (text, subsystem
/// offset, version 0x0100, endian indicator "IM" for little-endian), then data elements,
/// each an 8-byte tag (type, byte count) — or a 4-byte "small element" tag when the data
/// fit in 4 bytes — followed by the data padded to 8 bytes. A variable is a miMATRIX
/// element: array flags (class), dimensions, name, then the class's parts: the real part
/// of a numeric array (stored in any integer or floating type), the UTF-8/16 code units
/// of a char array, the field names and then one miMATRIX per field per element of a
/// struct array (column-major), one miMATRIX per element of a cell array.
///
///   read_mat_v5(path)   -> std::vector<MatVariable> (top-level variables, file order).
///   MatValue            kind (numeric, logical, text, structure, cell, unsupported),
///                       dims, numbers (column-major, as double), text, field names and
///                       elements; field(name, i) and has_field(name) for structs.
/// Errors: io_error "<path>: MAT element at byte N: <what>" for a bad header, a
/// big-endian file, a compressed element (zlib; resave with -v6), an element that runs
/// past its parent, dimensions whose product overflows, nesting deeper than 64 levels.
/// Sparse arrays, objects and function handles are read as `unsupported` (skipped).

#include "../core/error.hpp"
#include "file.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sae {

struct MatValue {
    enum class Kind { numeric, logical, text, structure, cell, unsupported };
    Kind kind = Kind::numeric;
    std::vector<std::size_t> dims;        ///< MATLAB dimensions (at least 2)
    std::vector<double> numbers;          ///< numeric/logical, column-major
    std::string text;                     ///< char arrays: rows joined by '\n' (ASCII; others as '?')
    std::vector<std::string> field_names; ///< structs
    std::vector<MatValue> elements;       ///< struct: numel * fields (element-major), cell: numel

    std::size_t numel() const {
        std::size_t n = 1;
        for (std::size_t d : dims) n *= d;
        return n;
    }
    bool has_field(const std::string& name) const {
        for (const std::string& f : field_names) {
            if (f == name) return true;
        }
        return false;
    }
    /// Field `name` of struct element `index`; io_error when absent.
    const MatValue& field(const std::string& name, std::size_t index = 0) const {
        if (kind != Kind::structure) throw io_error("MAT value is not a struct (looking for field '" + name + "')");
        for (std::size_t f = 0; f < field_names.size(); ++f) {
            if (field_names[f] != name) continue;
            if (index >= numel()) {
                throw io_error("MAT struct field '" + name + "': element " + std::to_string(index) + " of " +
                               std::to_string(numel()));
            }
            return elements[index * field_names.size() + f];
        }
        throw io_error("MAT struct has no field '" + name + "'");
    }
    /// The single number of a 1x1 numeric value; io_error otherwise.
    double scalar(const std::string& what) const {
        if ((kind != Kind::numeric && kind != Kind::logical) || numbers.size() != 1) {
            throw io_error("MAT value '" + what + "' is not a numeric scalar");
        }
        return numbers.front();
    }
};

struct MatVariable {
    std::string name;
    MatValue value;
};

namespace detail::mat {

enum : std::uint32_t {
    miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6, miSINGLE = 7,
    miDOUBLE = 9, miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15, miUTF8 = 16,
    miUTF16 = 17, miUTF32 = 18
};
enum : std::uint32_t { mxCELL = 1, mxSTRUCT = 2, mxOBJECT = 3, mxCHAR = 4, mxSPARSE = 5, mxDOUBLE = 6, mxUINT64 = 15 };
inline constexpr int max_depth = 64;

struct Element {
    std::uint32_t type = 0;
    std::size_t data = 0;   ///< offset of the data
    std::size_t bytes = 0;  ///< data bytes
    std::size_t next = 0;   ///< offset of the following element (after padding)
};

class Reader {
public:
    Reader(const unsigned char* data, const std::string& path) : d_(data), path_(path) {}

    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw io_error(path_ + ": MAT element at byte " + std::to_string(at) + ": " + what);
    }

    std::uint32_t u32(std::size_t at) const {
        std::uint32_t v;
        std::memcpy(&v, d_ + at, 4);  // little-endian file on a little-endian host (checked by the caller)
        return v;
    }

    /// The element starting at `at`, which must end by `limit`.
    Element element(std::size_t at, std::size_t limit) const {
        if (at + 8 > limit) fail(at, "tag runs past the end of its parent");
        const std::uint32_t first = u32(at);
        Element e;
        if ((first >> 16) != 0) {  // small data element: type and size in 4 bytes, data in the next 4
            e.type = first & 0xFFFF;
            e.bytes = first >> 16;
            if (e.bytes > 4) fail(at, "small element claims " + std::to_string(e.bytes) + " bytes");
            e.data = at + 4;
            e.next = at + 8;
            return e;
        }
        e.type = first;
        e.bytes = u32(at + 4);
        e.data = at + 8;
        if (e.bytes > limit - e.data) fail(at, "claims " + std::to_string(e.bytes) + " bytes, past the end of its parent");
        const std::size_t padded = e.type == miCOMPRESSED ? e.bytes : (e.bytes + 7) / 8 * 8;
        e.next = std::min(limit, e.data + padded);
        return e;
    }

    static std::size_t type_size(std::uint32_t type) {
        switch (type) {
            case miINT8: case miUINT8: case miUTF8: return 1;
            case miINT16: case miUINT16: case miUTF16: return 2;
            case miINT32: case miUINT32: case miSINGLE: case miUTF32: return 4;
            case miDOUBLE: case miINT64: case miUINT64: return 8;
            default: return 0;
        }
    }

    double number(std::uint32_t type, std::size_t at) const {
        switch (type) {
            case miINT8: return static_cast<std::int8_t>(d_[at]);
            case miUINT8: case miUTF8: return d_[at];
            case miINT16: { std::int16_t v; std::memcpy(&v, d_ + at, 2); return v; }
            case miUINT16: case miUTF16: { std::uint16_t v; std::memcpy(&v, d_ + at, 2); return v; }
            case miINT32: { std::int32_t v; std::memcpy(&v, d_ + at, 4); return v; }
            case miUINT32: case miUTF32: return u32(at);
            case miSINGLE: { float v; std::memcpy(&v, d_ + at, 4); return v; }
            case miDOUBLE: { double v; std::memcpy(&v, d_ + at, 8); return v; }
            case miINT64: { std::int64_t v; std::memcpy(&v, d_ + at, 8); return static_cast<double>(v); }
            case miUINT64: { std::uint64_t v; std::memcpy(&v, d_ + at, 8); return static_cast<double>(v); }
            default: return 0;
        }
    }

    /// The values of a numeric data element, checked to be exactly `count` of them.
    std::vector<double> numbers(const Element& e, std::size_t count, std::size_t at) const {
        const std::size_t width = type_size(e.type);
        if (width == 0) fail(at, "data element of type " + std::to_string(e.type) + " is not numeric");
        if (e.bytes % width != 0 || e.bytes / width != count) {
            fail(at, "holds " + std::to_string(e.bytes / width) + " values, the dimensions say " + std::to_string(count));
        }
        std::vector<double> out(count);
        for (std::size_t i = 0; i < count; ++i) out[i] = number(e.type, e.data + i * width);
        return out;
    }

    /// A miMATRIX element's contents; `name` receives the array name.
    MatValue matrix(const Element& e, std::string& name, int depth) const {
        if (depth > max_depth) fail(e.data, "nesting deeper than " + std::to_string(max_depth) + " levels");
        MatValue v;
        const std::size_t end = e.data + e.bytes;
        if (e.bytes == 0) {  // an empty array ([] in a struct field)
            v.dims = {0, 0};
            return v;
        }
        const Element flags = element(e.data, end);
        if (flags.type != miUINT32 || flags.bytes != 8) fail(e.data, "array flags must be 2 x miUINT32");
        const std::uint32_t flag_word = u32(flags.data);
        const std::uint32_t cls = flag_word & 0xFF;
        const bool complex = (flag_word & 0x0800) != 0;
        const bool logical = (flag_word & 0x0200) != 0;
        const Element dims = element(flags.next, end);
        if (dims.type != miINT32 || dims.bytes % 4 != 0 || dims.bytes < 8) fail(flags.next, "dimensions must be >= 2 x miINT32");
        std::size_t count = 1;
        for (std::size_t k = 0; k < dims.bytes / 4; ++k) {
            std::int32_t dim;
            std::memcpy(&dim, d_ + dims.data + 4 * k, 4);
            if (dim < 0) fail(dims.data, "negative dimension");
            v.dims.push_back(static_cast<std::size_t>(dim));
            count = checked_product(count, static_cast<std::size_t>(dim), path_ + ": MAT array size");
        }
        const Element name_element = element(dims.next, end);
        if (name_element.type != miINT8) fail(dims.next, "array name must be miINT8");
        name.assign(reinterpret_cast<const char*>(d_ + name_element.data), name_element.bytes);
        std::size_t at = name_element.next;

        if (cls == mxCHAR) {
            v.kind = MatValue::Kind::text;
            const Element chars = count == 0 && at >= end ? Element{miUINT16, at, 0, at} : element(at, end);
            const std::vector<double> units = numbers(chars, chars.bytes / std::max<std::size_t>(1, type_size(chars.type)), at);
            if (units.size() != count && chars.type != miUTF8) fail(at, "char array holds the wrong number of characters");
            const std::size_t rows = v.dims[0] == 0 ? 1 : v.dims[0];
            const std::size_t cols = units.size() / rows;
            // Without characters the text is empty: an [n, 0] array must not become n - 1
            // line breaks (n up to 2^31 - 1 costs seconds and gigabytes).
            for (std::size_t r = 0; r < rows && cols > 0; ++r) {
                if (r > 0) v.text += '\n';
                for (std::size_t c = 0; c < cols; ++c) {
                    const double u = units[c * rows + r];  // column-major
                    v.text += u < 128 ? static_cast<char>(u) : '?';
                }
            }
        } else if (cls >= mxDOUBLE && cls <= mxUINT64) {
            v.kind = logical ? MatValue::Kind::logical : MatValue::Kind::numeric;
            if (count > 0) {
                const Element real = element(at, end);
                v.numbers = numbers(real, count, at);
                if (complex) element(real.next, end);  // imaginary part: checked, dropped
            }
        } else if (cls == mxSTRUCT) {
            v.kind = MatValue::Kind::structure;
            const Element length = element(at, end);
            if (length.type != miINT32 || length.bytes != 4) fail(at, "struct field-name length must be one miINT32");
            std::int32_t width;
            std::memcpy(&width, d_ + length.data, 4);
            if (width <= 0) fail(at, "struct field-name length must be > 0");
            const Element names = element(length.next, end);
            if (names.type != miINT8 || names.bytes % static_cast<std::size_t>(width) != 0) fail(length.next, "bad struct field names");
            for (std::size_t f = 0; f < names.bytes / static_cast<std::size_t>(width); ++f) {
                const char* p = reinterpret_cast<const char*>(d_ + names.data + f * static_cast<std::size_t>(width));
                v.field_names.emplace_back(p, strnlen(p, static_cast<std::size_t>(width)));
            }
            at = names.next;
            const std::size_t total = checked_product(count, v.field_names.size(), path_ + ": MAT struct size");
            v.elements = children(at, end, total, depth);
        } else if (cls == mxCELL) {
            v.kind = MatValue::Kind::cell;
            v.elements = children(at, end, count, depth);
        } else {
            v.kind = MatValue::Kind::unsupported;  // sparse, object, function handle...
        }
        return v;
    }

    std::vector<MatValue> children(std::size_t at, std::size_t end, std::size_t count, int depth) const {
        if (count > (end - std::min(end, at)) / 8) fail(at, "claims " + std::to_string(count) + " sub-arrays, more than fit");
        std::vector<MatValue> out;
        out.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            const Element child = element(at, end);
            if (child.type != miMATRIX) fail(at, "struct/cell member is not a miMATRIX element");
            std::string ignored;
            out.push_back(matrix(child, ignored, depth + 1));
            at = child.next;
        }
        return out;
    }

private:
    const unsigned char* d_;  // every access is bounds-checked against its element's parent
    const std::string& path_;
};

}  // namespace detail::mat

inline std::vector<MatVariable> read_mat_v5(const std::string& path) {
    const MappedFile file(path);
    const unsigned char* d = file.data();
    const std::size_t size = file.size();
    if (size < 128) throw io_error(path + ": truncated: " + std::to_string(size) + " bytes, a MAT-file header needs 128");
    if (std::memcmp(d, "MATLAB 7.3", 10) == 0) {
        throw io_error(path + ": a MATLAB 7.3 (HDF5) file; only level-5 MAT-files are read (resave with -v6)");
    }
    if (std::memcmp(d, "MATLAB 5.0", 10) != 0) throw io_error(path + ": header text does not start with 'MATLAB 5.0'");
    if (d[126] != 'I' || d[127] != 'M') {
        throw io_error(path + ": endian indicator is not 'IM' (big-endian MAT-files are not supported)");
    }
    detail::mat::Reader reader(d, path);
    std::vector<MatVariable> variables;
    std::size_t at = 128;
    while (at + 8 <= size) {
        const detail::mat::Element e = reader.element(at, size);
        if (e.type == detail::mat::miCOMPRESSED) {
            reader.fail(at, "compressed (zlib) element; only uncompressed files are read (resave with -v6)");
        }
        if (e.type != detail::mat::miMATRIX) reader.fail(at, "top-level element of type " + std::to_string(e.type) + " is not miMATRIX");
        MatVariable variable;
        variable.value = reader.matrix(e, variable.name, 0);
        variables.push_back(std::move(variable));
        at = e.next;
    }
    return variables;
}

}  // namespace sae
