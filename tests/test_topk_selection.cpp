// The streaming TopK selection (RunningTopK, topk.hpp) against its definition: per row,
// the k largest values, ties broken towards the lower column, values <= 0 dropped with
// ReLU, NaN and -inf never kept, the kept entries in column order. The reference below
// sorts each row in full. The data are built to hit every branch of the fast path: many
// exact ties (values drawn from a few levels), -0 beside +0, NaN, +-inf, rows offered in
// chunks of every size (and value by value), and long rows, where the sampled starting
// threshold and its reuse from the previous row come into play.
//
// The same file is also compiled with -mavx512f as its own test (topk_selection_avx512,
// tests/CMakeLists.txt) on machines that have AVX-512, so that both the portable loops and
// the AVX-512 compress/count kernels are checked.
#include <sae/core/activations/topk.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace test_topk_selection_cases {

namespace {

using sae::Index;

/// (column, value) pairs a row should keep, by the definition.
template <class Scalar>
std::vector<std::pair<Index, Scalar>> expected_row(const std::vector<Scalar>& row, Index k, bool relu) {
    std::vector<Index> order;
    for (Index c = 0; c < static_cast<Index>(row.size()); ++c) {
        const Scalar v = row[static_cast<std::size_t>(c)];
        if (std::isnan(v) || v == -std::numeric_limits<Scalar>::infinity() || (relu && !(v > Scalar(0)))) continue;
        order.push_back(c);
    }
    // Larger first; equal values (+0 == -0) by column.
    std::stable_sort(order.begin(), order.end(),
                     [&](Index a, Index b) { return row[static_cast<std::size_t>(a)] > row[static_cast<std::size_t>(b)]; });
    order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(k)));
    std::sort(order.begin(), order.end());
    std::vector<std::pair<Index, Scalar>> kept;
    for (Index c : order) kept.emplace_back(c, row[static_cast<std::size_t>(c)]);
    return kept;
}

template <class Scalar>
std::vector<std::pair<Index, Scalar>> code_row(const sae::SparseCode<Scalar>& code, Index r) {
    std::vector<std::pair<Index, Scalar>> kept;
    for (typename sae::SparseCode<Scalar>::InnerIterator it(code, r); it; ++it) kept.emplace_back(it.col(), it.value());
    return kept;
}

/// A row of `cols` values: a common scale per call (rows of a batch look alike), a few
/// levels so that ties are frequent, and now and then a special value.
template <class Scalar>
std::vector<Scalar> random_row(Index cols, int levels, std::mt19937_64& rng) {
    std::uniform_int_distribution<int> level(-levels, levels);
    std::uniform_int_distribution<int> special(0, 199);
    std::vector<Scalar> row(static_cast<std::size_t>(cols));
    for (Scalar& v : row) {
        v = static_cast<Scalar>(level(rng)) / static_cast<Scalar>(levels);
        switch (special(rng)) {
            case 0: v = std::numeric_limits<Scalar>::quiet_NaN(); break;
            case 1: v = -std::numeric_limits<Scalar>::infinity(); break;
            case 2: v = std::numeric_limits<Scalar>::infinity(); break;
            case 3: v = Scalar(-0.0); break;
            default: break;
        }
    }
    return row;
}

template <class Scalar>
void check_running_selection(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    sae::detail::RunningTopK<Scalar> top;
    for (int trial = 0; trial < 60; ++trial) {
        const Index cols = std::uniform_int_distribution<Index>(1, trial % 3 == 0 ? 4000 : 700)(rng);
        const Index k = std::uniform_int_distribution<Index>(1, std::min<Index>(cols, trial % 2 ? 8 : 70))(rng);
        const bool relu = trial % 2 == 0;
        const int levels = trial % 5 == 0 ? 3 : 1000;  // 7 distinct values, or almost none equal
        const Index rows = 9;
        std::vector<std::vector<Scalar>> data;
        for (Index r = 0; r < rows; ++r) data.push_back(random_row<Scalar>(cols, levels, rng));
        // Chunks of one random width (as the encoder streams them), or single values.
        const Index chunk = trial % 7 == 0 ? 1 : std::uniform_int_distribution<Index>(1, cols)(rng);
        top.start(rows, k, relu);
        for (Index c0 = 0; c0 < cols; c0 += chunk) {
            const Index width = std::min(chunk, cols - c0);
            for (Index r = 0; r < rows; ++r) {
                const Scalar* values = data[static_cast<std::size_t>(r)].data() + c0;
                if (width == 1) {
                    top.offer(r, c0, values[0]);
                } else {
                    top.offer_row(r, values, width, c0);
                }
                // settle_row may come at any time: after a row's last value (as
                // TopK::select_chunk calls it) or, in some trials, after any chunk.
                if (c0 + width == cols ? trial % 2 == 1 : trial % 4 == 1) top.settle_row(r);
            }
        }
        sae::SparseCodeBuilder<Scalar> out;
        out.start(rows, cols);
        for (Index r = 0; r < rows; ++r) top.emit_row(r, out);
        sae::SparseCode<Scalar> code;
        out.finish(code);
        // The same rows written in place (as encode_streamed writes TopK codes), by two
        // writers in reverse row order, then closed up: the same code.
        sae::SparseCode<Scalar> in_place;
        sae::open_bounded_rows(in_place, rows, cols, k);
        sae::BoundedRowsWriter<Scalar> lower(in_place, 0, 4, k), upper(in_place, 4, rows - 4, k);
        for (Index r = 4; r < rows; ++r) top.emit_row(r, upper);
        for (Index r = 0; r < 4; ++r) top.emit_row(r, lower);
        sae::close_bounded_rows(in_place, k);
        CHECK(in_place.nonZeros() == code.nonZeros());
        CHECK(in_place.isCompressed());
        for (Index r = 0; r < rows; ++r) CHECK(code_row(in_place, r) == code_row(code, r));
        for (Index r = 0; r < rows; ++r) {
            INFO("trial " << trial << ": cols " << cols << ", k " << k << ", relu " << relu << ", chunk " << chunk << ", row " << r);
            const auto expected = expected_row(data[static_cast<std::size_t>(r)], k, relu);
            const auto got = code_row(code, r);
            REQUIRE(got.size() == expected.size());
            for (std::size_t e = 0; e < got.size(); ++e) {
                CHECK(got[e].first == expected[e].first);
                CHECK(got[e].second == expected[e].second);
            }
        }
    }
}

}  // namespace

TEST_CASE("RunningTopK keeps each row's k largest, lower columns first on ties", "[topk][selection]") {
    check_running_selection<float>(1);
    check_running_selection<double>(2);
}

TEST_CASE("Rows written in place with a bound are closed up into a compressed code", "[topk][selection]") {
    // Bound 3, four rows: {1: 0.5, 4: -2}, {}, {0: 1, 2: 2, 5: 3}, {3: 7}, written by two
    // writers (rows 2-3 first). Expected, compressed by hand: outer 0 2 2 5 6.
    sae::SparseCode<float> code = sae::Matrix<float>::Ones(2, 2).sparseView();  // storage to reuse
    sae::open_bounded_rows(code, 4, 6, 3);
    const int cols_0[] = {1, 4}, cols_2[] = {0, 2, 5}, cols_3[] = {3};
    const float values_0[] = {0.5f, -2.0f}, values_2[] = {1.0f, 2.0f, 3.0f}, values_3[] = {7.0f};
    sae::BoundedRowsWriter<float> first(code, 0, 2, 3), second(code, 2, 2, 3);
    CHECK(second.rows() == 2);
    second.append(cols_2, values_2, 2);
    second.append(cols_2 + 2, values_2 + 2, 1);  // a row may come in pieces
    second.end_row();
    second.append(cols_3, values_3, 1);
    second.end_row();
    first.append(cols_0, values_0, 2);
    first.end_row();
    first.end_row();
    sae::close_bounded_rows(code, 3);
    REQUIRE(code.isCompressed());
    REQUIRE(code.nonZeros() == 6);
    CHECK(std::vector<int>(code.outerIndexPtr(), code.outerIndexPtr() + 5) == std::vector<int>{0, 2, 2, 5, 6});
    CHECK(std::vector<int>(code.innerIndexPtr(), code.innerIndexPtr() + 6) == std::vector<int>{1, 4, 0, 2, 5, 3});
    CHECK(std::vector<float>(code.valuePtr(), code.valuePtr() + 6) == std::vector<float>{0.5f, -2.0f, 1.0f, 2.0f, 3.0f, 7.0f});
    CHECK(code.coeff(2, 5) == 3.0f);

    // More entries than the bound would run into the next row's: refused.
    sae::open_bounded_rows(code, 2, 6, 2);
    sae::BoundedRowsWriter<float> writer(code, 0, 2, 2);
    CHECK_THROWS_WITH(writer.append(cols_2, values_2, 3), Catch::Contains("row 0") && Catch::Contains("bound of 2"));
    writer.append(cols_2, values_2, 1);
    CHECK_THROWS_AS(writer.append(cols_2 + 1, values_2 + 1, 2), sae::error);
    // A code too large for int indices is refused before anything is allocated.
    CHECK_THROWS_AS(sae::open_bounded_rows(code, Index(1) << 30, 6, 4), sae::shape_error);
}

/// The hand example above, through RowBlockCode: rows 0-1 in block 0 and rows 2-3 in
/// block 1, filled block 1 first; returns the code.
template <bool Bounded>
sae::SparseCode<float> four_rows_in_two_blocks() {
    const int cols_0[] = {1, 4}, cols_2[] = {0, 2, 5}, cols_3[] = {3};
    const float values_0[] = {0.5f, -2.0f}, values_2[] = {1.0f, 2.0f, 3.0f}, values_3[] = {7.0f};
    sae::SparseCode<float> code = sae::Matrix<float>::Ones(2, 2).sparseView();
    sae::RowBlockCode<float, Bounded> assembly;
    assembly.open(code, 4, 6, 2, 3);
    assembly.fill(1, 2, 2, [&](auto& out) {
        CHECK(out.rows() == 2);
        out.append(cols_2, values_2, 3);
        out.end_row();
        out.append(cols_3, values_3, 1);
        out.end_row();
    });
    assembly.fill(0, 0, 2, [&](auto& out) {
        out.append(cols_0, values_0, 2);
        out.end_row();
        out.end_row();
    });
    assembly.close();
    return code;
}

TEMPLATE_TEST_CASE_SIG("RowBlockCode assembles blocks filled in any order, in place or joined", "[topk][selection]",
                       ((bool Bounded), Bounded), true, false) {
    const sae::SparseCode<float> code = four_rows_in_two_blocks<Bounded>();
    REQUIRE(code.isCompressed());
    REQUIRE(code.rows() == 4);
    REQUIRE(code.cols() == 6);
    REQUIRE(code.nonZeros() == 6);
    CHECK(std::vector<int>(code.outerIndexPtr(), code.outerIndexPtr() + 5) == std::vector<int>{0, 2, 2, 5, 6});
    CHECK(std::vector<int>(code.innerIndexPtr(), code.innerIndexPtr() + 6) == std::vector<int>{1, 4, 0, 2, 5, 3});
    CHECK(std::vector<float>(code.valuePtr(), code.valuePtr() + 6) == std::vector<float>{0.5f, -2.0f, 1.0f, 2.0f, 3.0f, 7.0f});

    // No rows, no blocks: an empty code of the given width.
    sae::SparseCode<float> empty = code;
    sae::RowBlockCode<float, Bounded> assembly;
    assembly.open(empty, 0, 6, 0, 3);
    assembly.close();
    CHECK(empty.rows() == 0);
    CHECK(empty.cols() == 6);
    CHECK(empty.nonZeros() == 0);
}

TEST_CASE("RowBlockCode without a bound takes rows of any length", "[topk][selection]") {
    const int cols[] = {0, 1, 2, 3, 4};
    const float values[] = {1, 2, 3, 4, 5};
    sae::SparseCode<float> code;
    sae::RowBlockCode<float, false> assembly;
    assembly.open(code, 3, 5, 3, 0);
    for (Index block : {2, 0, 1}) {
        assembly.fill(block, block, 1, [&](auto& out) {
            out.append(cols, values, 2 * block + 1);  // rows of 1, 3 and 5 entries
            out.end_row();
        });
    }
    assembly.close();
    REQUIRE(code.nonZeros() == 9);
    CHECK(std::vector<int>(code.outerIndexPtr(), code.outerIndexPtr() + 4) == std::vector<int>{0, 1, 4, 9});
    CHECK(code.coeff(2, 4) == 5.0f);
    CHECK(code.coeff(1, 3) == 0.0f);
}

TEST_CASE("Long similar rows: the sampled starting threshold never drops a winner", "[topk][selection]") {
    // Rows of 3000 values with k = 32 start from a sampled threshold, and later rows try
    // the previous row's first; rows alternate between two scales so that the reused
    // threshold is sometimes too high (fewer than k above it) and must be rejected.
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const Index rows = 40, cols = 3000, k = 32;
    sae::Matrix<float> pre(rows, cols);
    for (Index r = 0; r < rows; ++r) {
        const float scale = r % 3 == 0 ? 0.25f : 4.0f;
        for (Index c = 0; c < cols; ++c) pre(r, c) = scale * normal(rng) + (r % 5 == 0 ? 3.0f : 0.0f);
    }
    for (bool relu : {true, false}) {
        sae::SparseCode<float> code;
        sae::detail::select_top_k_per_row<float>(pre, k, relu, code);
        for (Index r = 0; r < rows; ++r) {
            std::vector<float> row(pre.row(r).data(), pre.row(r).data() + cols);  // row-major
            INFO("relu " << relu << ", row " << r);
            CHECK(code_row(code, r) == expected_row(row, k, relu));
        }
    }
}

}  // namespace test_topk_selection_cases
