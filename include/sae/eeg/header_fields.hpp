#pragma once
/// \file header_fields.hpp
/// Strict parsing of the fixed-width ASCII fields of EEG file headers (EDF, BDF) and of
/// numbers in text files (.locs). A field is a number only when, after trimming spaces,
/// it is an optional sign, digits with at most one decimal point and an optional
/// exponent; anything else — letters, a second number, NUL bytes, non-ASCII junk — is
/// an io_error whose message names the file, the field and the offending text (with
/// non-printable bytes shown as \xNN, so the message itself stays printable).
///
///   trim_field(text)                            spaces (and NUL padding) removed at both ends
///   (sae::printable_bytes, core/error.hpp, quotes the offending bytes)
///   parse_integer_field(text, path, field)      -> std::int64_t
///   parse_real_field(text, path, field)         -> finite double
/// Numbers are parsed with std::from_chars, so the result does not depend on the locale.

#include "../core/error.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

namespace sae::eeg {

inline std::string_view trim_field(std::string_view text) {
    const auto blank = [](char c) { return c == ' ' || c == '\0'; };
    while (!text.empty() && blank(text.front())) text.remove_prefix(1);
    while (!text.empty() && blank(text.back())) text.remove_suffix(1);
    return text;
}

namespace detail {

[[noreturn]] inline void bad_number(std::string_view text, const std::string& path, const std::string& field,
                                    const char* what) {
    throw io_error(path + ": field '" + field + "' = \"" + printable_bytes(text) + "\" is not " + what);
}

/// Whether `text` (already trimmed) matches [+-]?digits[.digits][(e|E)[+-]?digits] with
/// at least one mantissa digit; integers additionally have no point and no exponent.
inline bool is_decimal_number(std::string_view text, bool integer) {
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        return i - start;
    };
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    std::size_t mantissa = digits();
    if (!integer && i < text.size() && text[i] == '.') {
        ++i;
        mantissa += digits();
    }
    if (mantissa == 0) return false;
    if (!integer && i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
        if (digits() == 0) return false;
    }
    return i == text.size();
}

/// from_chars accepts '-' but not '+'.
inline std::string_view without_plus(std::string_view text) {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    return text;
}

}  // namespace detail

inline std::int64_t parse_integer_field(std::string_view raw, const std::string& path, const std::string& field) {
    const std::string_view text = trim_field(raw);
    if (!detail::is_decimal_number(text, true)) detail::bad_number(raw, path, field, "an integer");
    const std::string_view digits = detail::without_plus(text);
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc() || end != digits.data() + digits.size()) {
        detail::bad_number(raw, path, field, "an integer in range");
    }
    return value;
}

inline double parse_real_field(std::string_view raw, const std::string& path, const std::string& field) {
    const std::string_view text = trim_field(raw);
    if (!detail::is_decimal_number(text, false)) detail::bad_number(raw, path, field, "a number");
    const std::string_view digits = detail::without_plus(text);
    double value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) {
        detail::bad_number(raw, path, field, "a finite number");
    }
    return value;
}

}  // namespace sae::eeg
