#pragma once
/// \file error.hpp
/// The exception hierarchy of libsae. Every failure caused by bad input (a wrong
/// shape, a bad setting, a non-finite number, an unreadable file) is reported with
/// one of these types, and the message names the value, field or file at fault.

#include <stdexcept>
#include <string>
#include <string_view>

namespace sae {

/// Base of every libsae exception; catch this to catch them all.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A matrix or vector has the wrong number of rows or columns.
class shape_error : public error {
public:
    using error::error;
};

/// A configuration value is out of range or inconsistent with another one.
class config_error : public error {
public:
    using error::error;
};

/// A NaN/Inf appeared in input data, parameters or a loss.
class numeric_error : public error {
public:
    using error::error;
};

/// A file could not be read or written, or its contents are malformed.
class io_error : public error {
public:
    using error::error;
};

/// `text` with every byte outside printable ASCII written as \xNN, so that a message
/// quoting bytes from a file (possibly binary junk or invalid UTF-8) is itself clean text.
inline std::string printable_bytes(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7F) {
            out += c;
        } else {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0xF];
        }
    }
    return out;
}

}  // namespace sae
