#pragma once
/// \file example_data.hpp
/// Where the examples find the data shipped in `examples/data`: beside this header, at the
/// path the build saw, so an example built from the source tree runs from any working
/// directory. Every data path is also an option of the example that uses it.

#include <string>

/// `examples/data/<relative>` (relative may be empty for the folder itself).
inline std::string example_data_path(const std::string& relative) {
    const std::string header = __FILE__;  // .../examples/example_data.hpp
    const std::size_t slash = header.find_last_of('/');
    const std::string examples = slash == std::string::npos ? std::string(".") : header.substr(0, slash);
    return relative.empty() ? examples + "/data" : examples + "/data/" + relative;
}
