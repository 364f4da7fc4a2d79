// .npy reading and writing: hand-built files, files written by NumPy
// (tools/reference/make_npy_fixtures.py), files we write read back by NumPy, row streaming,
// and a corpus of malformed files plus seeded random mutations that must all end in
// sae::io_error (never another exception, a crash or an allocation of the claimed size).

#include <sae/io/npy.hpp>

#include "support/random_matrix.hpp"

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_npy_cases {

namespace {

using sae::test::TempDir;
using sae::test::write_bytes;

using sae::DType;
using sae::Index;
using sae::Matrix;

const std::string fixture_dir = std::string(SAE_TEST_FIXTURES_DIR) + "/npy/";
const std::string fixture_script = std::string(SAE_TEST_FIXTURES_DIR) + "/../../tools/reference/make_npy_fixtures.py";

std::string hex_bytes(std::initializer_list<unsigned> bytes) {
    std::string s;
    for (unsigned b : bytes) s += static_cast<char>(b);
    return s;
}

/// A .npy file assembled by hand, independently of sae::npy_header: magic, version,
/// little-endian header length, `dict` padded with spaces so that the data starts at a
/// multiple of `align`, '\n', then `data`.
std::string npy_file(unsigned version, const std::string& dict, const std::string& data, std::size_t align = 64) {
    const std::size_t width = version == 1 ? 2 : 4;
    const std::size_t prefix = 8 + width;
    std::size_t total = prefix + dict.size() + 1;
    total += (align - total % align) % align;
    std::string bytes = "\x93NUMPY";
    bytes += static_cast<char>(version);
    bytes += '\0';
    for (std::size_t k = 0, length = total - prefix; k < width; ++k, length >>= 8) bytes += static_cast<char>(length & 0xFF);
    return bytes + dict + std::string(total - prefix - dict.size() - 1, ' ') + "\n" + data;
}

/// The message of the sae::io_error thrown by f, or a marker when none is thrown (any
/// other exception escapes and fails the test).
template <class F>
std::string io_error_message(F&& f) {
    try {
        f();
    } catch (const sae::io_error& e) {
        return e.what();
    }
    return "<no io_error thrown>";
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// Hand-derived IEEE-754 little-endian encodings of 1, -2, 0.5, 3, 0.25, -1.5.
const std::vector<double> known_values = {1.0, -2.0, 0.5, 3.0, 0.25, -1.5};
const std::string known_f2 = hex_bytes({0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x42, 0x00, 0x34, 0x00, 0xBE});
const std::string known_f4 = hex_bytes({0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x3F,
                                        0x00, 0x00, 0x40, 0x40, 0x00, 0x00, 0x80, 0x3E, 0x00, 0x00, 0xC0, 0xBF});
const std::string known_f8 = hex_bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0, 0, 0, 0, 0, 0, 0x00, 0xC0,
                                        0, 0, 0, 0, 0, 0, 0xE0, 0x3F, 0, 0, 0, 0, 0, 0, 0x08, 0x40,
                                        0, 0, 0, 0, 0, 0, 0xD0, 0x3F, 0, 0, 0, 0, 0, 0, 0xF8, 0xBF});

// The formulas of make_npy_fixtures.py, written again here: value of C-order flat index i.
double fixture_formula(const std::string& name, double i) {
    if (name == "half_i_minus_3") return 0.5 * i - 3;
    if (name == "reciprocal_i_plus_1") return 1.0 / (i + 1);
    if (name == "i_minus_2_over_3") return (i - 2) / 3;
    if (name == "seven_i_minus_20") return 7 * i - 20;
    if (name == "i_minus_1_times_2p33_plus_i") return (i - 1) * 8589934592.0 + i;
    if (name == "i_minus_10") return i - 10;
    if (name == "two_and_a_half") return 2.5;
    FAIL("unknown formula " << name);
    return 0;
}

/// What a dtype holds after storing `x` from Scalar: F16 rounds (to nearest even), F32
/// rounds a double, everything else is exact for the values used here.
template <class Scalar>
Scalar stored_value(Scalar x, DType dtype) {
    if (dtype == DType::f16) return static_cast<Scalar>(sae::half_bits_to_float(sae::float_to_half_bits(static_cast<float>(x))));
    if (dtype == DType::f32) return static_cast<Scalar>(static_cast<float>(x));
    return x;
}

bool is_integer(DType dtype) { return dtype == DType::i32 || dtype == DType::i64; }

/// Values that every dtype can hold: integers (beyond 2^31 for I64) or Gaussian noise.
template <class Scalar>
Matrix<Scalar> sample_values(Index rows, Index cols, DType dtype, std::uint64_t seed) {
    Matrix<Scalar> m = sae::test::gaussian_matrix<Scalar>(rows, cols, seed, 10.0);
    if (is_integer(dtype)) {
        const double scale = dtype == DType::i64 ? std::ldexp(1.0, 35) : 1.0;  // exact in float too
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(std::round(double(m.data()[i])) * scale);
    }
    return m;
}

}  // namespace

TEMPLATE_TEST_CASE("read_npy reads a .npy file built byte by byte", "[npy]", float, double) {
    TempDir dir;
    const std::string dict_f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";  // 59 bytes
    REQUIRE(dict_f4.size() == 59);
    // Old NumPy aligned the data to 16 bytes: 10 + 59 + 10 spaces + '\n' = 80 (not 64k).
    const std::string f4_file = "\x93NUMPY" + hex_bytes({0x01, 0x00, 70, 0x00}) + dict_f4 + std::string(10, ' ') + "\n" + known_f4;
    REQUIRE(f4_file.size() == 80 + 24);
    const std::string f2_file = "\x93NUMPY" + hex_bytes({0x01, 0x00, 70, 0x00}) + "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }" +
                                std::string(10, ' ') + "\n" + known_f2;
    const std::string f8_file = "\x93NUMPY" + hex_bytes({0x01, 0x00, 70, 0x00}) + "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }" +
                                std::string(10, ' ') + "\n" + known_f8;
    const std::vector<std::tuple<std::string, std::string, Index>> files = {
        {"f4.npy", f4_file, 2}, {"f2.npy", f2_file, 2}, {"f8.npy", f8_file, 3}};
    for (const auto& [name, bytes, rows] : files) {
        CAPTURE(name);
        const std::string path = dir.file(name);
        write_bytes(path, bytes);
        const sae::NpyHeader header = sae::read_npy_header(path);
        CHECK(header.data_offset == 80);
        CHECK(header.major_version == 1);
        const Matrix<TestType> m = sae::read_npy<TestType>(path);
        REQUIRE(m.rows() == rows);
        REQUIRE(m.cols() == 6 / rows);
        for (Index i = 0; i < 6; ++i) CHECK(m.data()[i] == static_cast<TestType>(known_values[static_cast<std::size_t>(i)]));
    }
}

TEMPLATE_TEST_CASE("write_npy writes NumPy's header and little-endian data", "[npy]", float, double) {
    TempDir dir;
    Matrix<TestType> m(2, 3);
    for (Index i = 0; i < 6; ++i) m.data()[i] = static_cast<TestType>(known_values[static_cast<std::size_t>(i)]);
    const bool is_float = std::is_same_v<TestType, float>;
    // 10 + 59 + 1 = 70 bytes, padded with 58 spaces so that the data starts at 128.
    const std::string header_len = hex_bytes({118, 0x00});
    const std::string expected_f_default = "\x93NUMPY" + hex_bytes({0x01, 0x00}) + header_len + "{'descr': '" +
                                           (is_float ? "<f4" : "<f8") + "', 'fortran_order': False, 'shape': (2, 3), }" +
                                           std::string(58, ' ') + "\n" + (is_float ? known_f4 : known_f8);
    const std::string path = dir.file("m.npy");
    sae::write_npy(path, m);
    CHECK(sae::read_whole_file(path) == expected_f_default);

    sae::write_npy(path, m, DType::f16);
    const std::string expected_f2 = "\x93NUMPY" + hex_bytes({0x01, 0x00}) + header_len +
                                    "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n" + known_f2;
    CHECK(sae::read_whole_file(path) == expected_f2);

    // A 1-D array: shape (6,), 10 + 57 + 1 = 68 bytes padded with 60 spaces.
    sae::write_npy(path, Eigen::Map<const sae::RowVector<TestType>>(m.data(), 6), DType::f32, /*as_vector=*/true);
    const std::string expected_vector = "\x93NUMPY" + hex_bytes({0x01, 0x00, 118, 0x00}) +
                                        "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }" + std::string(60, ' ') + "\n" + known_f4;
    CHECK(sae::read_whole_file(path) == expected_vector);
    CHECK(sae::read_npy_header(path).data_offset % 64 == 0);
}

TEST_CASE("npy_header pads to 64 bytes and switches to version 2.0 for huge headers", "[npy]") {
    CHECK(sae::npy_header(DType::f64, {}) == npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", ""));
    CHECK(sae::npy_header(DType::i32, {7}) == npy_file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }", ""));
    CHECK(sae::npy_header(DType::i64, {0, 4, 5}, true) == npy_file(1, "{'descr': '<i8', 'fortran_order': True, 'shape': (0, 4, 5), }", ""));
    // 22000 dimensions of 1 need 66000 header bytes: past the 2-byte length of version 1.0.
    const std::string big = sae::npy_header(DType::f32, std::vector<std::size_t>(22000, 1));
    REQUIRE(big.size() > 65535);
    CHECK(big.size() % 64 == 0);
    CHECK(big[6] == 2);
    CHECK(big.back() == '\n');
    const std::size_t length = static_cast<unsigned char>(big[8]) | static_cast<unsigned char>(big[9]) << 8 |
                               static_cast<std::size_t>(static_cast<unsigned char>(big[10])) << 16 |
                               static_cast<std::size_t>(static_cast<unsigned char>(big[11])) << 24;
    CHECK(length + 12 == big.size());
    // We read at most 64 dimensions (NumPy 2's limit), so such a file is refused, cleanly.
    const std::string file = big + std::string(4, '\0');
    const std::string message = io_error_message([&] {
        sae::parse_npy_header(reinterpret_cast<const unsigned char*>(file.data()), file.size(), "big.npy");
    });
    CHECK(contains(message, "big.npy: npy header field 'shape'"));
}

TEMPLATE_TEST_CASE("read_npy reads the files NumPy wrote", "[npy]", float, double) {
    std::ifstream in(fixture_dir + "manifest.json");
    REQUIRE(in.good());
    const nlohmann::json manifest = nlohmann::json::parse(in);
    REQUIRE(manifest.at("files").size() == 12);
    for (const nlohmann::json& entry : manifest.at("files")) {
        const std::string path = fixture_dir + entry.at("file").get<std::string>();
        CAPTURE(path);
        const std::vector<std::size_t> shape = entry.at("shape").get<std::vector<std::size_t>>();
        const sae::NpyHeader header = sae::read_npy_header(path);
        CHECK(sae::npy_descr(header.dtype) == entry.at("descr").get<std::string>());
        CHECK(header.shape == shape);
        CHECK(header.fortran_order == entry.at("fortran_order").get<bool>());
        CHECK(header.major_version == entry.at("version")[0].get<unsigned>());
        CHECK(header.data_offset % 64 == 0);

        // The 2-D view: the last dimension is the columns.
        std::size_t rows = 1;
        for (std::size_t k = 0; k + 1 < shape.size(); ++k) rows *= shape[k];
        const std::size_t cols = shape.empty() ? 1 : shape.back();
        const Matrix<TestType> m = sae::read_npy<TestType>(path);
        REQUIRE(m.rows() == static_cast<Index>(rows));
        REQUIRE(m.cols() == static_cast<Index>(cols));

        const std::vector<double> values = entry.at("values").get<std::vector<double>>();
        REQUIRE(values.size() == rows * cols);
        const std::string formula = entry.at("formula").get<std::string>();
        for (std::size_t i = 0; i < values.size(); ++i) {
            const TestType got = m(static_cast<Index>(i / cols), static_cast<Index>(i % cols));
            CHECK(got == static_cast<TestType>(values[i]));
            const double exact = fixture_formula(formula, static_cast<double>(i));
            if (header.dtype == DType::f16) {
                CHECK_THAT(values[i], Catch::Matchers::WithinAbs(exact, std::ldexp(std::fabs(exact), -11)));
            } else {
                CHECK(got == static_cast<TestType>(exact));
            }
        }
        if (!header.fortran_order) {  // the row reader sees the same rows
            const sae::NpyRowReader reader(path);
            CHECK(reader.read_rows<TestType>(0, reader.rows()) == m);
        }
    }
}

TEMPLATE_TEST_CASE("write_npy then read_npy round-trips every writable dtype", "[npy]", float, double) {
    TempDir dir;
    const DType dtype = GENERATE(DType::f16, DType::f32, DType::f64, DType::i32, DType::i64);
    CAPTURE(sae::npy_descr(dtype));
    const std::string path = dir.file("round_trip.npy");
    const std::vector<std::pair<Index, Index>> shapes = {{5, 7}, {1, 1}, {0, 4}, {3, 0}, {300, 1000}};
    for (const auto& [rows, cols] : shapes) {
        CAPTURE(rows, cols);
        const Matrix<TestType> m = sample_values<TestType>(rows, cols, dtype, 17);
        sae::write_npy(path, m, dtype);
        const sae::NpyHeader header = sae::read_npy_header(path);
        CHECK(header.dtype == dtype);
        CHECK(header.shape == std::vector<std::size_t>{std::size_t(rows), std::size_t(cols)});
        CHECK(header.data_offset % 64 == 0);
        const Matrix<TestType> back = sae::read_npy<TestType>(path);
        REQUIRE(back.rows() == rows);
        REQUIRE(back.cols() == cols);
        const Matrix<TestType> expected = m.unaryExpr([dtype](TestType x) { return stored_value(x, dtype); });
        CHECK(back == expected);
    }

    // Column-major input and a non-contiguous block are written in logical (row) order.
    const Matrix<TestType> big = sample_values<TestType>(6, 9, dtype, 23);
    const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> column_major = big;
    sae::write_npy(path, column_major, dtype);
    const Matrix<TestType> from_column_major = sae::read_npy<TestType>(path);
    sae::write_npy(path, big.block(1, 2, 4, 5), dtype);
    const Matrix<TestType> from_block = sae::read_npy<TestType>(path);
    for (Index r = 0; r < 6; ++r) {
        for (Index c = 0; c < 9; ++c) {
            CHECK(from_column_major(r, c) == stored_value(big(r, c), dtype));
            if (r >= 1 && r < 5 && c >= 2 && c < 7) CHECK(from_block(r - 1, c - 2) == stored_value(big(r, c), dtype));
        }
    }

    // as_vector: a row or a column becomes a 1-D array, read back as one row.
    sae::write_npy(path, big.col(3), dtype, true);
    CHECK(sae::read_npy_header(path).shape == std::vector<std::size_t>{6});
    const Matrix<TestType> column_back = sae::read_npy<TestType>(path);
    REQUIRE(column_back.rows() == 1);
    for (Index r = 0; r < 6; ++r) CHECK(column_back(0, r) == stored_value(big(r, 3), dtype));
}

TEMPLATE_TEST_CASE("write_npy rejects what .npy cannot hold, and leaves no file", "[npy]", float, double) {
    TempDir dir;
    const std::string path = dir.file("rejected.npy");
    Matrix<TestType> m(2, 2);
    m << 1, 2, 3.5, 4;
    std::string message = io_error_message([&] { sae::write_npy(path, m, DType::bf16); });
    CHECK(contains(message, path + ": npy header field 'descr'"));
    message = io_error_message([&] { sae::write_npy(path, m, DType::i32); });
    CHECK(contains(message, path + ": row 1"));
    CHECK_THROWS_AS(sae::write_npy(path, m, DType::f32, /*as_vector=*/true), sae::shape_error);
    CHECK_FALSE(std::filesystem::exists(path));
    CHECK(std::filesystem::is_empty(std::filesystem::path(path).parent_path()));  // no temporaries left
}

TEMPLATE_TEST_CASE("NumPy reads the files write_npy writes", "[npy][python]", float, double) {
    // tools/install-deps installs python3-numpy: a missing interpreter is a failure, not a skip.
    REQUIRE(::access("/usr/bin/python3", X_OK) == 0);
    TempDir dir;
    const std::string source = std::is_same_v<TestType, float> ? "f4" : "f8";
    std::string command = "/usr/bin/python3 '" + fixture_script + "' check";
    // The values make_npy_fixtures.py's check_values expects: (i - 7) / 3, or 7 i - 20.
    const auto values = [](Index rows, Index cols, bool integer) {
        Matrix<TestType> m(rows, cols);
        for (Index i = 0; i < m.size(); ++i) {
            const double x = static_cast<double>(i);
            m.data()[i] = static_cast<TestType>(integer ? 7 * x - 20 : (x - 7) / 3);
        }
        return m;
    };
    for (DType dtype : {DType::f16, DType::f32, DType::f64, DType::i32, DType::i64}) {
        const std::string path = dir.file("from_sae_" + sae::npy_descr(dtype).substr(1) + ".npy");
        sae::write_npy(path, values(3, 4, is_integer(dtype)), dtype);
        command += " '" + path + "' '" + sae::npy_descr(dtype) + "' 3,4 " + source;
    }
    sae::write_npy(dir.file("vector.npy"), values(1, 5, false), DType::f16, /*as_vector=*/true);
    command += " '" + dir.file("vector.npy") + "' '<f2' 5, " + source;
    sae::write_npy(dir.file("empty.npy"), values(0, 4, false), DType::f64);
    command += " '" + dir.file("empty.npy") + "' '<f8' 0,4 " + source;
    const int status = std::system(command.c_str());
    INFO(command);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEMPLATE_TEST_CASE("NpyRowReader streams rows of any dtype", "[npy]", float, double) {
    TempDir dir;
    const DType dtype = GENERATE(DType::f32, DType::f64, DType::f16, DType::i32);
    CAPTURE(sae::npy_descr(dtype));
    const std::string path = dir.file("rows.npy");
    const Matrix<TestType> m = sample_values<TestType>(10, 7, dtype, 5);
    sae::write_npy(path, m, dtype);
    const Matrix<TestType> whole = sae::read_npy<TestType>(path);
    for (Index i = 0; i < m.size(); ++i) REQUIRE(whole.data()[i] == stored_value(m.data()[i], dtype));

    const sae::NpyRowReader reader(path);
    CHECK(reader.rows() == 10);
    CHECK(reader.cols() == 7);
    CHECK(reader.dtype() == dtype);
    CHECK(reader.path() == path);
    const std::vector<std::pair<Index, Index>> valid_ranges = {{0, 10}, {0, 3}, {3, 7}, {9, 1}, {4, 0}, {10, 0}};
    for (const auto& [first, count] : valid_ranges) {
        CAPTURE(first, count);
        Matrix<TestType> out(count, 7);
        reader.read_rows<TestType>(first, count, out);
        CHECK(out == whole.middleRows(first, count));
    }
    // Into a block of a wider matrix (rows not contiguous): the rest is left alone.
    Matrix<TestType> wide = Matrix<TestType>::Constant(4, 10, TestType(-99));
    reader.read_rows<TestType>(2, 4, wide.block(0, 1, 4, 7));
    CHECK(wide.block(0, 1, 4, 7) == whole.middleRows(2, 4));
    CHECK((wide.col(0).array() == TestType(-99)).all());
    CHECK((wide.rightCols(2).array() == TestType(-99)).all());

    // Released rows are reloaded from the file when read again.
    reader.release(0, 10);
    CHECK(reader.read_rows<TestType>(0, 10) == whole);

    const std::vector<std::pair<Index, Index>> bad_ranges = {{-1, 1}, {0, 11}, {10, 1}, {5, -1}, {11, 0}};
    for (const std::pair<Index, Index>& range : bad_ranges) {
        const Index first = range.first, count = range.second;
        CAPTURE(first, count);
        Matrix<TestType> out(std::max<Index>(count, 0), 7);
        CHECK(contains(io_error_message([&] { reader.read_rows<TestType>(first, count, out); }), path));
        CHECK_THROWS_AS(reader.release(first, count), sae::io_error);
    }
    Matrix<TestType> wrong(3, 6);
    CHECK_THROWS_AS(reader.read_rows<TestType>(0, 3, wrong), sae::shape_error);
    Matrix<TestType> too_few(2, 7);
    CHECK_THROWS_AS(reader.read_rows<TestType>(0, 3, too_few), sae::shape_error);
}

TEST_CASE("NpyRowReader refuses Fortran-ordered files", "[npy]") {
    const std::string path = fixture_dir + "f4_fortran_2d.npy";
    const std::string message = io_error_message([&] { sae::NpyRowReader reader(path); });
    CHECK(contains(message, path));
    CHECK(contains(message, "Fortran order is not supported for row streaming; save with np.ascontiguousarray"));
}

TEST_CASE("the header parser accepts every spelling NumPy's literal_eval would", "[npy]") {
    TempDir dir;
    const std::string data = known_f4;
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"double quotes", "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}"},
        {"keys reordered, no trailing comma", "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}"},
        {"tight", "{'descr':'<f4','fortran_order':False,'shape':(2,3)}"},
        {"loose", "{ 'descr' :\t'<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }"},
        {"trailing comma in shape", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,), }"},
        {"3-d", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }"},
    };
    for (const auto& [name, dict] : variants) {
        CAPTURE(name);
        for (unsigned version : {1u, 2u, 3u}) {
            const std::string path = dir.file("variant.npy");
            write_bytes(path, npy_file(version, dict, data, 16));
            const Matrix<float> m = sae::read_npy<float>(path);
            REQUIRE(m.size() == 6);
            for (Index i = 0; i < 6; ++i) CHECK(m.data()[i] == static_cast<float>(known_values[std::size_t(i)]));
        }
    }
    const std::string path = dir.file("shapes.npy");
    write_bytes(path, npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data.substr(0, 4)));
    CHECK(sae::read_npy<double>(path) == Matrix<double>::Constant(1, 1, 1.0));
    write_bytes(path, npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data));
    CHECK(sae::read_npy<double>(path).rows() == 1);
    // Valid UTF-8 in a 3.0 header passes the UTF-8 check and fails on the unknown type.
    write_bytes(path, npy_file(3, "{'descr': '<f4\xC3\xA9', 'fortran_order': False, 'shape': (2, 3), }", data));
    CHECK(contains(io_error_message([&] { sae::read_npy<float>(path); }), "npy header field 'descr'"));
}

namespace {

struct BadFile {
    std::string name;
    std::string bytes;
    std::string field;
    std::vector<std::string> also_in_message;
};

std::vector<BadFile> malformed_corpus() {
    const std::string data = known_f4;  // 24 bytes: shape (2, 3) of <f4
    const auto with_dict = [&](const std::string& dict) { return npy_file(1, dict, data); };
    const auto with_shape = [&](const std::string& shape) {
        return with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }");
    };
    const auto with_descr = [&](const std::string& descr) {
        return with_dict("{'descr': " + descr + ", 'fortran_order': False, 'shape': (2, 3), }");
    };
    const auto with_fortran = [&](const std::string& value) {
        return with_dict("{'descr': '<f4', 'fortran_order': " + value + ", 'shape': (2, 3), }");
    };
    const std::string valid = with_shape("(2, 3)");
    const auto edited = [&](std::size_t at, std::string replacement) {
        std::string bytes = valid;
        return bytes.replace(at, replacement.size(), replacement);
    };
    std::string sixty_five_dims = "(";
    for (int k = 0; k < 65; ++k) sixty_five_dims += "1, ";
    sixty_five_dims += ")";
    std::string v3_valid = npy_file(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data);
    std::string no_newline = valid;
    no_newline[127] = ' ';

    return {
        {"empty file", "", "magic", {"0 bytes"}},
        {"truncated in the magic", valid.substr(0, 4), "magic", {}},
        {"bad magic", edited(1, "X"), "magic", {}},
        {"truncated in the version", valid.substr(0, 7), "version", {}},
        {"version 4.0", edited(6, "\x04"), "version", {"4.0"}},
        {"version 1.1", edited(7, "\x01"), "version", {"1.1"}},
        {"version 0.0", edited(6, std::string(1, '\0')), "version", {}},
        {"truncated in header_len", valid.substr(0, 9), "header_len", {}},
        {"header_len past the end", edited(8, "\xFF\xFF"), "header_len", {"65535"}},
        {"truncated in the header", valid.substr(0, 60), "header_len", {}},
        {"v2 header_len past the end", npy_file(2, "{}", "").replace(8, 4, "\xF0\xFF\xFF\x7F"), "header_len", {}},
        {"header not ended by newline", no_newline, "header", {}},
        {"empty header", "\x93NUMPY" + hex_bytes({1, 0, 0, 0}), "header", {}},
        {"invalid UTF-8 in a 3.0 header", v3_valid.replace(v3_valid.find("} ") + 2, 2, "\xC3\x28"), "header", {"UTF-8"}},
        {"overlong UTF-8 in a 3.0 header", npy_file(3, "{'descr': '<f4\xC0\xAF', 'fortran_order': False, 'shape': (2, 3), }", data), "header", {"UTF-8"}},
        {"surrogate in a 3.0 header", npy_file(3, "{'descr': '<f4\xED\xA0\x80', 'fortran_order': False, 'shape': (2, 3), }", data), "header", {"UTF-8"}},
        {"not a dict", with_dict("['descr', '<f4']"), "header", {}},
        {"unterminated dict", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "), "header", {}},
        {"text after the dict", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x"), "header", {}},
        {"unquoted key", with_dict("{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "header", {}},
        {"escape in a key", with_dict("{'de\\scr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "header", {}},
        {"missing comma", with_dict("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }"), "header", {}},
        {"missing descr", with_dict("{'fortran_order': False, 'shape': (2, 3), }"), "descr", {"missing"}},
        {"missing fortran_order", with_dict("{'descr': '<f4', 'shape': (2, 3), }"), "fortran_order", {"missing"}},
        {"missing shape", with_dict("{'descr': '<f4', 'fortran_order': False, }"), "shape", {"missing"}},
        {"duplicate descr", with_dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "descr", {"duplicate"}},
        {"duplicate shape", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (2, 3), }"), "shape", {"duplicate"}},
        {"unknown key", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'foo': 1, }"), "foo", {"unknown"}},
        {"big-endian", with_descr("'>f4'"), "descr", {">f4"}},
        {"native byte order", with_descr("'=f4'"), "descr", {}},
        {"complex", with_descr("'<c8'"), "descr", {}},
        {"bool", with_descr("'|b1'"), "descr", {}},
        {"object", with_descr("'|O'"), "descr", {}},
        {"structured", with_descr("[('a', '<f4')]"), "descr", {"structured"}},
        {"unterminated descr", with_descr("'<f4"), "descr", {}},
        {"fortran_order 0", with_fortran("0"), "fortran_order", {"True or False"}},
        {"fortran_order string", with_fortran("'False'"), "fortran_order", {}},
        {"fortran_order Falsey", with_fortran("Falsey"), "fortran_order", {}},
        {"fortran_order lower case", with_fortran("false"), "fortran_order", {}},
        {"negative dimension", with_shape("(-2, 3)"), "shape", {"negative"}},
        {"non-integer dimension", with_shape("(2.0, 3)"), "shape", {"not an integer"}},
        {"exponent dimension", with_shape("(2e0, 3)"), "shape", {}},
        {"dimension not a number", with_shape("(two, 3)"), "shape", {}},
        {"overflowing dimension", with_shape("(99999999999999999999999, 3)"), "shape", {}},
        {"dimension past Index", with_shape("(9223372036854775808, 0)"), "shape", {}},
        {"not a tuple", with_shape("(6)"), "shape", {"not a tuple"}},
        {"a list", with_shape("[2, 3]"), "shape", {"tuple"}},
        {"unclosed tuple", with_shape("(2, 3"), "shape", {}},
        {"missing comma in tuple", with_shape("(2 3)"), "shape", {}},
        {"65 dimensions", with_shape(sixty_five_dims), "shape", {"64"}},
        {"element count overflows", with_shape("(4294967296, 4294967296, 4294967296)"), "shape", {"overflow"}},
        {"rows past Index with a zero dimension", with_shape("(9223372036854775807, 2, 0)"), "shape", {"rows"}},
        {"row bytes overflow with zero rows", with_shape("(0, 4611686018427387904)"), "shape", {}},
        {"10^18 elements in a tiny file", with_shape("(1000000000, 1000000000)"), "shape", {"4000000000000000000", " 24 "}},
        {"trailing garbage", valid + "abcd", "shape", {" 24 ", " 28 "}},
        {"truncated data", valid.substr(0, valid.size() - 4), "shape", {" 24 ", " 20 "}},
        {"data for another dtype", with_descr("'<f8'"), "shape", {" 48 ", " 24 "}},
    };
}

}  // namespace

TEST_CASE("malformed .npy files are rejected with io_error naming the file and field", "[npy][malformed]") {
    TempDir dir;
    int index = 0;
    for (const BadFile& bad : malformed_corpus()) {
        CAPTURE(bad.name);
        const std::string path = dir.file("bad_" + std::to_string(index++) + ".npy");
        write_bytes(path, bad.bytes);
        const std::string expected = path + ": npy header field '" + bad.field + "'";
        const std::vector<std::string> messages = {
            io_error_message([&] { sae::read_npy_header(path); }),
            io_error_message([&] { sae::read_npy<float>(path); }),
            io_error_message([&] { sae::read_npy<double>(path); }),
            io_error_message([&] { sae::NpyRowReader reader(path); }),
            // The in-memory parser on an exact-size heap copy: ASan sees any overread.
            io_error_message([&] {
                const std::vector<unsigned char> copy(bad.bytes.begin(), bad.bytes.end());
                sae::parse_npy_header(copy.data(), copy.size(), path);
            }),
        };
        for (const std::string& message : messages) {
            CAPTURE(message);
            CHECK(contains(message, expected));
            for (const std::string& part : bad.also_in_message) CHECK(contains(message, part));
        }
    }
}

TEST_CASE("randomly mutated .npy files either load or throw io_error", "[npy][malformed]") {
    TempDir dir;
    const std::vector<std::string> originals = {
        npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", known_f4),
        npy_file(3, "{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", known_f2),
        sae::read_whole_file(fixture_dir + "f8_fortran_3d.npy"),
    };
    std::mt19937_64 rng(20240601);
    const std::string path = dir.file("mutant.npy");
    int loaded = 0, rejected = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::string bytes = originals[static_cast<std::size_t>(trial) % originals.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !bytes.empty(); ++e) {
            // Most edits hit the first 128 bytes (magic and header), where parsing happens.
            const std::size_t span = rng() % 4 == 0 ? bytes.size() : std::min<std::size_t>(bytes.size(), 128);
            const std::size_t at = rng() % span;
            switch (rng() % 5) {
                case 0: bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8))); break;
                case 1: bytes[at] = static_cast<char>(rng() % 256); break;
                case 2: bytes.resize(at); break;
                case 3: bytes.erase(at, 1); break;
                default: bytes.insert(at, 1, "0123456789(), '\"\n"[rng() % 17]); break;
            }
        }
        CAPTURE(trial);
        write_bytes(path, bytes);
        try {
            const std::vector<unsigned char> copy(bytes.begin(), bytes.end());
            sae::parse_npy_header(copy.data(), copy.size(), path);
            const Matrix<double> m = sae::read_npy<double>(path);
            const sae::NpyRowReader reader(path);
            const Matrix<double> streamed = reader.read_rows<double>(0, reader.rows());
            REQUIRE(streamed.size() == m.size());
            // Bitwise: a mutated payload may hold NaNs, which compare unequal.
            if (m.size() > 0) CHECK(std::memcmp(streamed.data(), m.data(), sizeof(double) * static_cast<std::size_t>(m.size())) == 0);
            ++loaded;
        } catch (const sae::io_error&) {
            ++rejected;
        }
    }
    CHECK(loaded > 0);  // some mutations only touch data or padding
    CHECK(rejected > 1000);
}

}  // namespace test_npy_cases
