// Tests of include/sae/io/safetensors.hpp: hand-derived bytes, the writer's exact
// output, round trips for every dtype, streaming reads, and a malformed-file corpus plus
// a seeded random-mutation loop in which only success or io_error is allowed.

#include <sae/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include "support/random_matrix.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_safetensors_cases {

using namespace sae;

namespace {

using sae::test::TempDir;
using sae::test::write_bytes;

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return s;
}

std::string bytes(std::initializer_list<int> values) {
    std::string s;
    for (int v : values) s.push_back(static_cast<char>(v));
    return s;
}

/// A file: size field of the header as given, header, payload.
std::string safetensors_bytes(const std::string& header, const std::string& payload) {
    return le64(header.size()) + header + payload;
}

/// Opening `path` and reading every tensor must throw io_error whose message names the
/// path and contains every one of `words`.
void require_io_error(const std::string& path, std::initializer_list<const char*> words) {
    try {
        const SafetensorsFile file(path);
        for (const std::string& name : file.names()) (void)file.matrix<float>(name);
        FAIL("no io_error for " << path);
    } catch (const io_error& e) {
        const std::string message = e.what();
        INFO(message);
        CHECK(message.find(path) != std::string::npos);
        for (const char* word : words) CHECK(message.find(word) != std::string::npos);
    }
}

float half_round(float v) { return half_bits_to_float(float_to_half_bits(v)); }
float bfloat16_round(float v) { return bfloat16_bits_to_float(float_to_bfloat16_bits(v)); }

}  // namespace

TEST_CASE("safetensors: a hand-written file reads back", "[safetensors]") {
    TempDir dir("st_hand");
    // Keys out of offset order, leading whitespace and trailing spaces (both allowed).
    const std::string header =
        R"(  {"b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]},)"
        R"("__metadata__":{"format":"pt","note":"h\u00e9"},)"
        R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
        R"("h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
        R"("g":{"dtype":"BF16","shape":[],"data_offsets":[28,30]},)"
        R"("e":{"dtype":"F64","shape":[0,3],"data_offsets":[30,30]}}   )";
    const std::string payload =
        bytes({0x00, 0x00, 0x80, 0x3F,   // 1.0f
               0x00, 0x00, 0x00, 0x40,   // 2.0f
               0x00, 0x00, 0x00, 0xBF,   // -0.5f
               0x00, 0x00, 0x80, 0x3E,   // 0.25f
               0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // int64 -2
               0x00, 0x3E,               // half 1.5 (sign 0, exponent 15, mantissa 0x200)
               0x00, 0x7C,               // half +inf
               0x40, 0xC0});             // bfloat16 -3.0 (0xC040)
    const std::string path = dir.file("hand.safetensors");
    write_bytes(path, safetensors_bytes(header, payload));

    const SafetensorsFile file(path);
    CHECK(file.path() == path);
    CHECK(file.names() == std::vector<std::string>{"a", "b", "h", "g", "e"});  // by offset; e is empty at 30
    CHECK(file.contains("a"));
    CHECK_FALSE(file.contains("z"));
    CHECK(file.metadata().at("format") == "pt");
    CHECK(file.metadata().at("note") == "h\xC3\xA9");
    CHECK(file.info("a").shape == std::vector<std::size_t>{2, 2});
    CHECK(file.info("a").dtype == DType::f32);
    CHECK(file.info("g").element_count() == 1);

    const Matrix<double> a = file.matrix<double>("a");
    REQUIRE(a.rows() == 2);
    REQUIRE(a.cols() == 2);
    CHECK(a(0, 0) == 1.0);
    CHECK(a(0, 1) == 2.0);
    CHECK(a(1, 0) == -0.5);
    CHECK(a(1, 1) == 0.25);
    CHECK(file.vector<float>("b")(0) == -2.0f);
    const RowVector<float> h = file.vector<float>("h");
    CHECK(h(0) == 1.5f);
    CHECK(std::isinf(h(1)));
    CHECK(file.vector<double>("g")(0) == -3.0);
    CHECK(file.matrix<float>("e").size() == 0);
    CHECK(file.matrix<float>("e").rows() == 0);

    CHECK_THROWS_AS(file.vector<float>("a"), shape_error);
    try {
        (void)file.info("missing");
        FAIL("no io_error");
    } catch (const io_error& e) {
        CHECK(std::string(e.what()).find("'missing'") != std::string::npos);
        CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
}

TEST_CASE("safetensors: the writer's bytes are exactly the reference layout", "[safetensors]") {
    TempDir dir("st_exact");
    SafetensorsWriter writer;
    writer.add("b", (Matrix<float>(1, 2) << 1.0f, 2.0f).finished(), DType::f32, std::vector<std::size_t>{2});
    writer.add("a", (Matrix<double>(1, 1) << 0.5).finished(), DType::f64, std::vector<std::size_t>{1});
    writer.set_metadata("format", "pt");

    // F64 sorts before F32 (larger alignment first), metadata first, compact JSON.
    const std::string json =
        R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
    REQUIRE(json.size() == 139);  // 32 + 53 + 54 characters; 139 = 17 * 8 + 3 -> 5 spaces, 144
    const std::string header = json + "     ";
    const std::string expected = bytes({144, 0, 0, 0, 0, 0, 0, 0}) + header +
                                 bytes({0, 0, 0, 0, 0, 0, 0xE0, 0x3F,  // 0.5
                                        0, 0, 0x80, 0x3F,              // 1.0f
                                        0, 0, 0x00, 0x40});            // 2.0f
    CHECK(writer.serialize() == expected);
    const std::string path = dir.file("exact.safetensors");
    writer.write(path);
    CHECK(read_whole_file(path) == expected);

    SafetensorsWriter empty;  // "{}" padded to 8 bytes, no data
    CHECK(empty.serialize() == bytes({8, 0, 0, 0, 0, 0, 0, 0}) + "{}      ");
}

TEST_CASE("safetensors: writer argument errors", "[safetensors]") {
    SafetensorsWriter writer;
    const Matrix<float> m = Matrix<float>::Ones(2, 3);
    writer.add("m", m);
    CHECK_THROWS_AS(writer.add("m", m), config_error);
    CHECK_THROWS_AS(writer.add("__metadata__", m), config_error);
    CHECK_THROWS_AS(writer.add("n", m, DType::f32, std::vector<std::size_t>{5}), shape_error);
    CHECK_THROWS_AS(writer.add_raw("r", DType::i32, {3}, std::string(11, '\0')), shape_error);
    CHECK_THROWS_AS(writer.add("bad\xFFname", m), config_error);  // names must be UTF-8 (on serialize)
}

TEMPLATE_TEST_CASE("safetensors: round trip of every dtype, shapes and metadata", "[safetensors]", float, double) {
    using Scalar = TestType;
    TempDir dir("st_round");
    const std::string path = dir.file("round.safetensors");
    std::mt19937_64 rng(7);
    const Matrix<Scalar> values = test::gaussian_matrix<Scalar>(5, 7, rng, 3.0);
    Matrix<Scalar> integers(3, 4);
    std::uniform_int_distribution<int> small(-1000, 1000);
    for (Index i = 0; i < integers.size(); ++i) integers.data()[i] = static_cast<Scalar>(small(rng));
    integers(0, 0) = static_cast<Scalar>(2147483520.0);  // near the int32 limits (exact in float)
    integers(0, 1) = static_cast<Scalar>(-2147483648.0);

    SafetensorsWriter writer;
    for (DType t : {DType::f16, DType::bf16, DType::f32, DType::f64}) writer.add(safetensors_dtype_name(t), values, t);
    writer.add("I32", integers, DType::i32);
    writer.add("I64", integers, DType::i64, std::vector<std::size_t>{2, 6});
    writer.add("scalar", (Matrix<Scalar>(1, 1) << Scalar(4)).finished(), DType::f32, std::vector<std::size_t>{});
    writer.add("empty", Matrix<Scalar>(0, 3), DType::f16);
    writer.add("cube", values.leftCols(6), DType::f64, std::vector<std::size_t>{5, 2, 3});
    writer.add_raw("raw", DType::i32, {2}, bytes({1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}));
    writer.set_metadata("quote \" and \\ and \n", "value \"q\" \x01 h\xC3\xA9");
    writer.set_metadata("step", "12");
    writer.write(path);

    const SafetensorsFile file(path);
    CHECK(file.metadata().size() == 2);
    CHECK(file.metadata().at("quote \" and \\ and \n") == "value \"q\" \x01 h\xC3\xA9");
    CHECK(file.metadata().at("step") == "12");
    CHECK(file.info("F16").shape == std::vector<std::size_t>{5, 7});
    // The reference's order: I64, F64, F32, I32, BF16, F16, each by name; all aligned.
    CHECK(file.names() == std::vector<std::string>{"I64", "F64", "cube", "F32", "scalar", "I32", "raw", "BF16", "F16", "empty"});
    for (const std::string& name : file.names()) {
        CHECK(file.info(name).begin % dtype_size(file.info(name).dtype) == 0);
    }

    const Matrix<Scalar> f16 = file.matrix<Scalar>("F16");
    const Matrix<Scalar> bf16 = file.matrix<Scalar>("BF16");
    const Matrix<Scalar> f32 = file.matrix<Scalar>("F32");
    const Matrix<Scalar> f64 = file.matrix<Scalar>("F64");
    for (Index i = 0; i < values.size(); ++i) {
        const float as_float = static_cast<float>(values.data()[i]);
        CHECK(f16.data()[i] == static_cast<Scalar>(half_round(as_float)));
        CHECK(bf16.data()[i] == static_cast<Scalar>(bfloat16_round(as_float)));
        CHECK(f32.data()[i] == static_cast<Scalar>(as_float));
        CHECK(f64.data()[i] == values.data()[i]);
    }
    CHECK(file.matrix<Scalar>("I32") == integers);
    const Matrix<Scalar> i64 = file.matrix<Scalar>("I64");
    CHECK(i64.rows() == 2);
    CHECK(Eigen::Map<const Matrix<Scalar>>(i64.data(), 3, 4) == integers);
    CHECK(file.vector<Scalar>("scalar")(0) == Scalar(4));
    CHECK(file.matrix<Scalar>("empty").rows() == 0);
    CHECK(file.matrix<Scalar>("empty").cols() == 3);
    const Matrix<Scalar> cube = file.matrix<Scalar>("cube");  // [5, 2, 3] -> [10, 3]
    REQUIRE(cube.rows() == 10);
    REQUIRE(cube.cols() == 3);
    CHECK(Eigen::Map<const Matrix<Scalar>>(cube.data(), 5, 6) == values.leftCols(6));
    CHECK(file.vector<Scalar>("raw") == (RowVector<Scalar>(2) << Scalar(1), Scalar(-1)).finished());

    SafetensorsWriter bad_int;
    CHECK_THROWS_AS(bad_int.add("x", values, DType::i32), io_error);  // non-integral values
}

TEMPLATE_TEST_CASE("safetensors: read_rows equals slices of matrix()", "[safetensors]", float, double) {
    using Scalar = TestType;
    TempDir dir("st_rows");
    const std::string path = dir.file("rows.safetensors");
    const Matrix<Scalar> values = test::gaussian_matrix<Scalar>(37, 5, 11);
    SafetensorsWriter writer;
    writer.add("x16", values, DType::f16);
    writer.add("x", values);
    writer.add("x3d", values.topRows(36), dtype_of<Scalar>(), std::vector<std::size_t>{4, 9, 5});
    writer.write(path);
    const SafetensorsFile file(path);

    for (const char* name : {"x16", "x", "x3d"}) {
        const Matrix<Scalar> whole = file.matrix<Scalar>(name);
        for (const auto& [first, count] : std::vector<std::pair<Index, Index>>{{0, 1}, {3, 10}, {whole.rows() - 4, 4}, {5, 0}, {0, whole.rows()}}) {
            Matrix<Scalar> out(count, 5);
            file.read_rows<Scalar>(name, first, count, out);
            CHECK(out == whole.middleRows(first, count));
            file.release(name, first, count);
            if (count == 0) continue;  // an empty block of an empty matrix has no storage to offset into
            // A non-contiguous destination: the middle columns of a wider matrix.
            Matrix<Scalar> wide = Matrix<Scalar>::Constant(count, 9, Scalar(-7));
            file.read_rows<Scalar>(name, first, count, wide.middleCols(2, 5));
            CHECK(wide.middleCols(2, 5) == whole.middleRows(first, count));
            CHECK((wide.leftCols(2).array() == Scalar(-7)).all());
            CHECK((wide.rightCols(2).array() == Scalar(-7)).all());
            file.release(name, first, count);
        }
        Matrix<Scalar> out(2, 5);
        CHECK_THROWS_AS(file.read_rows<Scalar>(name, whole.rows() - 1, 2, out), shape_error);
        CHECK_THROWS_AS(file.read_rows<Scalar>(name, -1, 2, out), shape_error);
        Matrix<Scalar> wrong(2, 4);
        CHECK_THROWS_AS(file.read_rows<Scalar>(name, 0, 2, wrong), shape_error);
        CHECK_THROWS_AS(file.release(name, whole.rows(), 1), shape_error);
    }
    CHECK(file.matrix<Scalar>("x3d").rows() == 36);
}

TEST_CASE("safetensors: malformed files throw io_error naming the path and field", "[safetensors]") {
    TempDir dir("st_bad");
    int counter = 0;
    // Writes `contents` to a fresh file and checks the error.
    const auto check = [&](const std::string& contents, std::initializer_list<const char*> words) {
        const std::string path = dir.file("bad" + std::to_string(counter++) + ".safetensors");
        write_bytes(path, contents);
        INFO("case " << counter << ": " << contents.substr(0, 200));
        require_io_error(path, words);
    };
    const auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                          const std::string& offsets) {
        return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    };
    const std::string four(4, '\x01');

    SECTION("size field and header bytes") {
        check("", {"8-byte"});
        check(bytes({1, 0, 0, 0, 0}), {"8-byte"});
        check(le64(100) + "{}", {"header size", "past the end"});
        check(le64(200'000'000) + std::string(16, ' '), {"header size", "limit"});
        check(le64(~std::uint64_t{0}) + "{}", {"header size"});
        check(safetensors_bytes("{", ""), {"JSON"});
        check(safetensors_bytes("{}x", ""), {"JSON"});
        check(safetensors_bytes(std::string("{}\0", 3), ""), {"JSON"});
        check(safetensors_bytes("{\"\xFF\":1}", ""), {"JSON"});  // invalid UTF-8
        check(safetensors_bytes("[]", ""), {"JSON object"});
        check(safetensors_bytes("{\"a\":5}", ""), {"'a'", "object"});
    }
    SECTION("dtype, shape, data_offsets") {
        check(safetensors_bytes("{" + entry("t", "\"U8\"", "[4]", "[0,4]") + "}", four), {"'t'", "dtype"});
        check(safetensors_bytes("{" + entry("t", "\"F17\"", "[1]", "[0,4]") + "}", four), {"'t'", "dtype"});
        check(safetensors_bytes("{" + entry("t", "4", "[1]", "[0,4]") + "}", four), {"'t'", "dtype"});
        check(safetensors_bytes(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", four), {"'t'", "dtype", "missing"});
        check(safetensors_bytes(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", four), {"'t'", "shape", "missing"});
        check(safetensors_bytes(R"({"t":{"dtype":"F32","shape":[1]}})", four), {"'t'", "data_offsets", "missing"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[-1]", "[0,4]") + "}", four), {"'t'", "shape"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1.5]", "[0,4]") + "}", four), {"'t'", "shape"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "\"1\"", "[0,4]") + "}", four), {"'t'", "shape"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1]", "[0]") + "}", four), {"'t'", "data_offsets"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1]", "[0,4,8]") + "}", four), {"'t'", "data_offsets"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1]", "[4,0]") + "}", four), {"'t'", "data_offsets", "begin > end"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1]", "[\"0\",4]") + "}", four), {"'t'", "data_offsets"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1]", "[0,-4]") + "}", four), {"'t'", "data_offsets"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[3]", "[0,4]") + "}", four), {"'t'", "shape", "needs 12 bytes"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[2]", "[0,8]") + "}", four), {"'t'", "data_offsets", "past"});
        // 10^15 elements and an overflowing product: rejected without allocating.
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[1000000000000000]", "[0,4]") + "}", four), {"'t'", "shape"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[4294967296,4294967296,16]", "[0,4]") + "}", four),
              {"'t'", "shape", "overflows"});
        check(safetensors_bytes("{" + entry("t", "\"F32\"", "[18446744073709551615]", "[0,4]") + "}", four), {"'t'", "shape"});
    }
    SECTION("coverage of the buffer") {
        const std::string twelve(12, '\x02');
        check(safetensors_bytes("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," + entry("b", "\"F32\"", "[2]", "[4,12]") + "}",
                                twelve),
              {"overlaps", "'a'"});
        check(safetensors_bytes("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "," + entry("b", "\"F32\"", "[1]", "[8,12]") + "}",
                                twelve),
              {"'b'", "gap"});
        check(safetensors_bytes("{" + entry("a", "\"F32\"", "[1]", "[4,8]") + "}", std::string(8, '\0')), {"'a'", "gap"});
        check(safetensors_bytes("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "}", std::string(5, '\0')), {"trailing"});
        check(safetensors_bytes("{}", "x"), {"trailing"});
    }
    SECTION("metadata and duplicate keys") {
        check(safetensors_bytes(R"({"__metadata__":{"a":1}})", ""), {"__metadata__", "'a'"});
        check(safetensors_bytes(R"({"__metadata__":{"a":null}})", ""), {"__metadata__"});
        check(safetensors_bytes(R"({"__metadata__":["a"]})", ""), {"__metadata__"});
        check(safetensors_bytes("{" + entry("a", "\"F32\"", "[1]", "[0,4]") + "," + entry("a", "\"F32\"", "[1]", "[0,4]") + "}",
                                four),
              {"'a'", "twice"});
        check(safetensors_bytes(R"({"__metadata__":{"k":"1","k":"2"}})", ""), {"'k'", "twice"});
    }
}

TEST_CASE("safetensors: accepted edge cases", "[safetensors]") {
    TempDir dir("st_edge");
    const std::string path = dir.file("edge.safetensors");
    write_bytes(path, safetensors_bytes(R"({"__metadata__":null})", ""));  // null metadata = none
    CHECK(SafetensorsFile(path).metadata().empty());
    write_bytes(path, safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                        R"("b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                                        ""));  // empty tensors may share an offset
    CHECK(SafetensorsFile(path).names().size() == 2);
}

TEST_CASE("safetensors: random mutations give a valid file or io_error", "[safetensors][fuzz]") {
    TempDir dir("st_fuzz");
    SafetensorsWriter writer;
    writer.add("weights", test::gaussian_matrix<float>(3, 4, 1), DType::f32);
    writer.add("half", test::gaussian_matrix<float>(2, 3, 2), DType::f16);
    writer.add("ids", (Matrix<double>(1, 3) << 1, 2, 3).finished(), DType::i64, std::vector<std::size_t>{3});
    writer.set_metadata("format", "pt");
    const std::string original = writer.serialize();
    std::size_t header_end = 8;
    for (int i = 0; i < 8; ++i) header_end += static_cast<std::size_t>(static_cast<unsigned char>(original[static_cast<std::size_t>(i)])) << (8 * i);

    std::mt19937_64 rng(2024);
    const auto pick = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const std::string digits_and_syntax = "0123456789[]{},:\"-.eE ";
    const std::string path = dir.file("fuzz.safetensors");
    int opened = 0, rejected = 0;
    for (int iteration = 0; iteration < 2000; ++iteration) {
        std::string mutated = original;
        const int edits = 1 + static_cast<int>(pick(3));
        for (int e = 0; e < edits; ++e) {
            // Most edits hit the header, where the parser lives.
            const std::size_t limit = pick(4) == 0 ? mutated.size() : std::min(header_end, mutated.size());
            if (limit == 0) break;
            const std::size_t at = pick(limit);
            switch (pick(6)) {
                case 0: mutated[at] = static_cast<char>(pick(256)); break;
                case 1: mutated[at] = digits_and_syntax[pick(digits_and_syntax.size())]; break;
                case 2: mutated.erase(at, 1 + pick(8)); break;
                case 3: mutated.insert(at, 1, digits_and_syntax[pick(digits_and_syntax.size())]); break;
                case 4: mutated.resize(pick(mutated.size() + 1)); break;  // truncate
                default: mutated[pick(std::min<std::size_t>(8, mutated.size()))] = static_cast<char>(pick(256)); break;
            }
        }
        write_bytes(path, mutated);
        try {
            const SafetensorsFile file(path);
            for (const std::string& name : file.names()) {
                const Matrix<double> m = file.matrix<double>(name);
                CHECK(static_cast<std::size_t>(m.size()) == file.info(name).element_count());
            }
            ++opened;
        } catch (const io_error&) {
            ++rejected;
        }  // any other exception fails the test
    }
    CHECK(opened + rejected == 2000);
    CHECK(rejected > 1000);
    CHECK(opened > 0);  // e.g. edits inside tensor data
}

}  // namespace test_safetensors_cases
