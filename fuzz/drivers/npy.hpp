#pragma once
// .npy (io/npy.hpp): the whole-file reader, the header parser on the bytes in memory
// (must agree with it), and the row streamer of C-ordered files.
#include "../driver.hpp"
#include "sae/io/npy.hpp"

namespace sae::fuzz {

inline void run_npy(const Workspace& ws) {
    const std::string path = ws.path("input.npy");
    const Matrix<double> whole = read_npy<double>(path);
    const std::string& bytes = ws.part(0);
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    const NpyHeader header = parse_npy_header(data, bytes.size(), path);
    require(header.rows() == static_cast<std::size_t>(whole.rows()) && header.cols() == static_cast<std::size_t>(whole.cols()),
            "npy: shape of the file and of its bytes");
    const Matrix<float> single = detail::npy::decode_npy_data<float>(header, data + header.data_offset);
    require(single.rows() == whole.rows() && single.cols() == whole.cols(), "npy: shape in float and double");
    if (header.fortran_order && header.shape.size() >= 2) return;  // the row streamer refuses these
    const NpyRowReader reader(path);
    const Index half = reader.rows() / 2;
    const Matrix<double> head = reader.read_rows<double>(0, half);
    const Matrix<float> tail = reader.read_rows<float>(half, reader.rows() - half);
    require(head.rows() + tail.rows() == whole.rows() && tail.cols() == whole.cols(), "npy: rows streamed");
    reader.release(0, reader.rows());
}

inline Driver npy_driver() { return {"npy", {"input.npy"}, &run_npy}; }

}  // namespace sae::fuzz
