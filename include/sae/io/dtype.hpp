#pragma once
/// \file dtype.hpp
/// The element types libsae reads and writes on disk (F16, BF16, F32, F64, I32, I64,
/// always little-endian), their sizes and names in the .npy ("<f4") and safetensors
/// ("F32") vocabularies, and conversion between raw file bytes and a Scalar buffer.
///
///   decode_elements(src, dtype, n, dst)  requires: src holds n * dtype_size(dtype) bytes
///                                        (any alignment); ensures: dst[i] = value i,
///                                        converted to Scalar (half/bfloat16 exactly,
///                                        integers by static_cast).
///   encode_elements(src, n, dtype, dst)  the inverse; F16/BF16 round to nearest even,
///                                        integer targets reject non-integral or
///                                        out-of-range values with io_error.
///
/// Half and bfloat16 are converted bit by bit (no compiler extensions), so the result is
/// the same on every platform; the library only supports little-endian hosts, which is
/// checked at compile time.

#include "../core/error.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace sae {

enum class DType { f16, bf16, f32, f64, i32, i64 };

namespace detail {
/// A little-endian host is assumed by the byte-level readers (files are little-endian).
inline bool host_is_little_endian() {
    const std::uint16_t probe = 1;
    unsigned char first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}
}  // namespace detail

inline std::size_t dtype_size(DType t) {
    switch (t) {
        case DType::f16:
        case DType::bf16: return 2;
        case DType::f32:
        case DType::i32: return 4;
        case DType::f64:
        case DType::i64: return 8;
    }
    return 0;
}

/// Safetensors' name of the type ("F16", "BF16", "F32", "F64", "I32", "I64").
inline const char* safetensors_dtype_name(DType t) {
    switch (t) {
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        case DType::f32: return "F32";
        case DType::f64: return "F64";
        case DType::i32: return "I32";
        case DType::i64: return "I64";
    }
    return "?";
}

inline std::optional<DType> dtype_from_safetensors_name(const std::string& name) {
    for (DType t : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::i32, DType::i64}) {
        if (name == safetensors_dtype_name(t)) return t;
    }
    return std::nullopt;
}

/// NumPy's type string ("<f2", "<f4", "<f8", "<i4", "<i8"); bfloat16 has none, so it
/// cannot be stored in .npy (io_error).
inline std::string npy_descr(DType t) {
    switch (t) {
        case DType::f16: return "<f2";
        case DType::f32: return "<f4";
        case DType::f64: return "<f8";
        case DType::i32: return "<i4";
        case DType::i64: return "<i8";
        case DType::bf16: break;
    }
    throw io_error("bfloat16 has no .npy type string; store it as float32 or use safetensors");
}

/// Accepts NumPy's spellings of the supported little-endian types ('<' or, for the
/// one-byte-order-free case, '|' is not used here). Big-endian ('>') is not supported.
inline std::optional<DType> dtype_from_npy_descr(const std::string& descr) {
    for (DType t : {DType::f16, DType::f32, DType::f64, DType::i32, DType::i64}) {
        if (descr == npy_descr(t)) return t;
    }
    return std::nullopt;
}

/// The on-disk type matching a Scalar (float -> F32, double -> F64).
template <class Scalar>
constexpr DType dtype_of() {
    static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                  "dtype_of: Scalar must be float or double");
    return std::is_same_v<Scalar, float> ? DType::f32 : DType::f64;
}

// ----- half and bfloat16 ------------------------------------------------------------

inline float half_bits_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    const std::uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) {  // Inf / NaN: keep the payload's top bits
        const std::uint32_t bits = sign | 0x7F800000u | (mantissa << 13);
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return sign ? -magnitude : magnitude;
    }
    const std::uint32_t bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

/// Round to nearest, ties to even; overflow gives Inf, NaN stays NaN.
inline std::uint16_t float_to_half_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
    const std::uint32_t abs_bits = bits & 0x7FFFFFFFu;
    if (abs_bits >= 0x7F800000u) {  // Inf or NaN
        return static_cast<std::uint16_t>(sign | 0x7C00u | (abs_bits > 0x7F800000u ? 0x200u : 0u));
    }
    if (abs_bits >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds past 65504
    if (abs_bits < 0x38800000u) {  // below the smallest normal half: subnormal or zero
        // value / 2^-24 rounded to nearest even gives the subnormal mantissa.
        const float magnitude = std::fabs(value);
        const float scaled = std::ldexp(magnitude, 24);
        const float rounded = std::nearbyint(scaled);  // default rounding mode: ties to even
        return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(rounded));
    }
    // Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
    const std::uint32_t rebased = abs_bits - (112u << 23);
    const std::uint32_t lsb = (rebased >> 13) & 1u;
    const std::uint32_t rounded = rebased + 0xFFFu + lsb;
    return static_cast<std::uint16_t>(sign | (rounded >> 13));
}

inline float bfloat16_bits_to_float(std::uint16_t b) {
    const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

/// Round to nearest, ties to even; NaN stays a quiet NaN.
inline std::uint16_t float_to_bfloat16_bits(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
    const std::uint32_t lsb = (bits >> 16) & 1u;
    return static_cast<std::uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

// ----- bulk conversion --------------------------------------------------------------

namespace detail {
template <class T>
T load_unaligned(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}
template <class T>
void store_unaligned(unsigned char* p, T v) {
    std::memcpy(p, &v, sizeof(T));
}

template <class Integer, class Scalar>
Integer checked_integer(Scalar v, std::size_t index) {
    const double d = static_cast<double>(v);
    // 2^63 and 2^31 are exactly representable; the range check is done in double.
    const double upper = std::ldexp(1.0, std::numeric_limits<Integer>::digits);
    if (!(d >= -upper && d < upper) || std::trunc(d) != d) {
        throw io_error("element " + std::to_string(index) + " = " + std::to_string(d) +
                       " cannot be stored as an integer of " + std::to_string(sizeof(Integer) * 8) + " bits");
    }
    return static_cast<Integer>(d);
}
}  // namespace detail

template <class Scalar>
void decode_elements(const unsigned char* src, DType dtype, std::size_t n, Scalar* dst) {
    static_assert(std::is_floating_point_v<Scalar>, "decode_elements: Scalar must be floating point");
    const std::size_t width = dtype_size(dtype);
    if (dtype == dtype_of<Scalar>()) {  // the common case: one memcpy
        std::memcpy(dst, src, n * width);
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char* p = src + i * width;
        switch (dtype) {
            case DType::f16: dst[i] = static_cast<Scalar>(half_bits_to_float(detail::load_unaligned<std::uint16_t>(p))); break;
            case DType::bf16: dst[i] = static_cast<Scalar>(bfloat16_bits_to_float(detail::load_unaligned<std::uint16_t>(p))); break;
            case DType::f32: dst[i] = static_cast<Scalar>(detail::load_unaligned<float>(p)); break;
            case DType::f64: dst[i] = static_cast<Scalar>(detail::load_unaligned<double>(p)); break;
            case DType::i32: dst[i] = static_cast<Scalar>(detail::load_unaligned<std::int32_t>(p)); break;
            case DType::i64: dst[i] = static_cast<Scalar>(detail::load_unaligned<std::int64_t>(p)); break;
        }
    }
}

template <class Scalar>
void encode_elements(const Scalar* src, std::size_t n, DType dtype, unsigned char* dst) {
    static_assert(std::is_floating_point_v<Scalar>, "encode_elements: Scalar must be floating point");
    const std::size_t width = dtype_size(dtype);
    if (dtype == dtype_of<Scalar>()) {
        std::memcpy(dst, src, n * width);
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char* p = dst + i * width;
        switch (dtype) {
            case DType::f16: detail::store_unaligned(p, float_to_half_bits(static_cast<float>(src[i]))); break;
            case DType::bf16: detail::store_unaligned(p, float_to_bfloat16_bits(static_cast<float>(src[i]))); break;
            case DType::f32: detail::store_unaligned(p, static_cast<float>(src[i])); break;
            case DType::f64: detail::store_unaligned(p, static_cast<double>(src[i])); break;
            case DType::i32: detail::store_unaligned(p, detail::checked_integer<std::int32_t>(src[i], i)); break;
            case DType::i64: detail::store_unaligned(p, detail::checked_integer<std::int64_t>(src[i], i)); break;
        }
    }
}

}  // namespace sae
