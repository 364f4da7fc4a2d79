#pragma once
/// \file error.hpp
/// The exception hierarchy of libsae. Every failure caused by bad input (a wrong
/// shape, a bad setting, a non-finite number, an unreadable file) is reported with
/// one of these types, and the message names the value, field or file at fault.

#include <stdexcept>
#include <string>

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

}  // namespace sae
