#pragma once
// safetensors (io/safetensors.hpp): open, then decode every tensor every way the API offers.
#include "../driver.hpp"
#include "sae/io/safetensors.hpp"

namespace sae::fuzz {

inline void run_safetensors(const Workspace& ws) {
    const SafetensorsFile file(ws.path("input.safetensors"));
    std::size_t covered = 0;
    for (const auto& entry : file.metadata()) covered += entry.first.size() + entry.second.size();
    for (const std::string& name : file.names()) {
        const TensorInfo& info = file.info(name);
        covered += info.byte_count();
        const Matrix<float> m = file.matrix<float>(name);
        require(static_cast<std::size_t>(m.size()) == info.element_count(), "safetensors: element count of " + name);
        attempt([&] { (void)file.vector<double>(name); });  // shape_error unless one axis
        const Index half = m.rows() / 2;
        Matrix<double> rows(m.rows() - half, m.cols());
        file.read_rows<double>(name, half, m.rows() - half, rows);
        file.release(name, 0, m.rows());
        (void)file.raw_bytes(name);
    }
    (void)covered;
}

inline Driver safetensors_driver() { return {"safetensors", {"input.safetensors"}, &run_safetensors}; }

}  // namespace sae::fuzz
