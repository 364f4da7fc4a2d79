// Tests for sae::Adam: hand-derived steps, convergence on a quadratic, reset, per-name
// state, checkpoint restore, input validation, and agreement with torch.optim.Adam
// (fixture written by tools/reference/adam_reference.py).
#include <sae/core/adam.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <type_traits>
#include <string>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_adam_cases {

namespace {

template <class Scalar>
using Vector = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

template <class Scalar>
Vector<Scalar> vector_of(std::initializer_list<double> values) {
    Vector<Scalar> result(static_cast<Eigen::Index>(values.size()));
    Eigen::Index i = 0;
    for (double value : values) result(i++) = static_cast<Scalar>(value);
    return result;
}

template <class Scalar>
std::vector<sae::ParameterView<Scalar>> views(const std::string& name, Vector<Scalar>& value, Vector<Scalar>& gradient) {
    return {sae::make_parameter_view(name, value, gradient)};
}

// Tolerance that reflects the Scalar's precision: float carries ~7 digits.
template <class Scalar>
double tolerance() {
    return std::is_same<Scalar, float>::value ? 2e-6 : 1e-13;
}

}  // namespace

TEMPLATE_TEST_CASE("Adam: one step matches a hand derivation", "[adam]", float, double) {
    using Scalar = TestType;
    Vector<Scalar> p = vector_of<Scalar>({1.0, -2.0, 3.0});
    Vector<Scalar> g = vector_of<Scalar>({0.5, -2.0, 0.0});
    sae::Adam<Scalar> adam;  // beta1 0.9, beta2 0.999, eps 1e-8
    adam.step(views("w", p, g), 0.1);

    // t = 1: m = 0.1 g, v = 0.001 g^2; bias correction divides them by 0.1 and 0.001, so
    // m_hat = g, sqrt(v_hat) = |g| and p -= 0.1 * g / (|g| + 1e-8).
    CHECK_THAT(static_cast<double>(p(0)), Catch::Matchers::WithinRel(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(p(1)), Catch::Matchers::WithinRel(-2.0 + 0.1 * 2.0 / (2.0 + 1e-8), tolerance<Scalar>()));
    CHECK(p(2) == Scalar(3));  // zero gradient: m = 0, so no move
    CHECK_THAT(static_cast<double>(adam.first_moment("w")(1)), Catch::Matchers::WithinRel(-0.2, tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(adam.second_moment("w")(1)), Catch::Matchers::WithinRel(0.004, tolerance<Scalar>()));
    CHECK(adam.steps_taken() == 1);
}

TEMPLATE_TEST_CASE("Adam: three steps match a hand derivation", "[adam]", float, double) {
    using Scalar = TestType;
    sae::AdamConfig config;
    config.beta1 = 0.5;
    config.beta2 = 0.5;
    config.epsilon = 0.1;
    sae::Adam<Scalar> adam(config);
    Vector<Scalar> p = vector_of<Scalar>({1.0});
    Vector<Scalar> g(1);
    const double lr = 0.1;

    // t = 1, g = 1:  m = 0.5,   v = 0.5;   corrections 1 - 0.5 = 0.5   -> m_hat 1,   v_hat 1
    g << Scalar(1);
    adam.step(views("w", p, g), lr);
    double expected = 1.0 - lr * 1.0 / (1.0 + 0.1);
    CHECK_THAT(static_cast<double>(p(0)), Catch::Matchers::WithinRel(expected, tolerance<Scalar>()));

    // t = 2, g = 2:  m = 0.25 + 1 = 1.25,  v = 0.25 + 2 = 2.25;  corrections 1 - 0.25 = 0.75
    //                -> m_hat = 5/3, v_hat = 3
    g << Scalar(2);
    adam.step(views("w", p, g), lr);
    expected -= lr * (5.0 / 3.0) / (std::sqrt(3.0) + 0.1);
    CHECK_THAT(static_cast<double>(p(0)), Catch::Matchers::WithinRel(expected, tolerance<Scalar>()));

    // t = 3, g = -1: m = 0.625 - 0.5 = 0.125,  v = 1.125 + 0.5 = 1.625;  corrections 0.875
    //                -> m_hat = 1/7, v_hat = 13/7
    g << Scalar(-1);
    adam.step(views("w", p, g), lr);
    expected -= lr * (1.0 / 7.0) / (std::sqrt(13.0 / 7.0) + 0.1);
    CHECK_THAT(static_cast<double>(p(0)), Catch::Matchers::WithinRel(expected, tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(adam.first_moment("w")(0)), Catch::Matchers::WithinRel(0.125, tolerance<Scalar>()));
    CHECK_THAT(static_cast<double>(adam.second_moment("w")(0)), Catch::Matchers::WithinRel(1.625, tolerance<Scalar>()));
    CHECK(adam.steps_taken() == 3);
}

TEMPLATE_TEST_CASE("Adam: minimises an ill-conditioned quadratic", "[adam]", float, double) {
    using Scalar = TestType;
    // f(p) = 0.5 sum_i a_i (p_i - c_i)^2, gradient a (p - c); curvatures spread over 4 decades.
    const Vector<Scalar> a = vector_of<Scalar>({100.0, 1.0, 0.01, 5.0});
    const Vector<Scalar> c = vector_of<Scalar>({1.0, -3.0, 0.5, 2.0});
    Vector<Scalar> p = Vector<Scalar>::Zero(4);
    Vector<Scalar> g(4);
    sae::Adam<Scalar> adam;
    const std::size_t steps = 3000;
    for (std::size_t t = 0; t < steps; ++t) {
        g = a * (p - c);
        // Linear decay to zero: a constant rate would leave Adam hovering around the minimum.
        adam.step(views("p", p, g), 0.1 * (1.0 - static_cast<double>(t) / steps));
    }
    for (Eigen::Index i = 0; i < p.size(); ++i) {
        CHECK_THAT(static_cast<double>(p(i)), Catch::Matchers::WithinAbs(static_cast<double>(c(i)), 1e-3));
    }
}

TEMPLATE_TEST_CASE("Adam: reset makes the next step a first step", "[adam]", float, double) {
    using Scalar = TestType;
    Vector<Scalar> p = vector_of<Scalar>({0.3, -0.7});
    Vector<Scalar> g = vector_of<Scalar>({1.0, 2.0});
    sae::Adam<Scalar> used;
    for (int i = 0; i < 4; ++i) used.step(views("w", p, g), 0.01);
    used.reset();
    CHECK(used.steps_taken() == 0);
    CHECK(used.state_names().empty());
    CHECK_THROWS_AS(used.first_moment("w"), sae::config_error);

    Vector<Scalar> p_used = vector_of<Scalar>({0.3, -0.7});
    Vector<Scalar> p_fresh = p_used;
    Vector<Scalar> g2 = vector_of<Scalar>({-0.25, 4.0});
    Vector<Scalar> g2_copy = g2;
    sae::Adam<Scalar> fresh;
    used.step(views("w", p_used, g2), 0.01);
    fresh.step(views("w", p_fresh, g2_copy), 0.01);
    CHECK((p_used == p_fresh).all());
    CHECK((used.first_moment("w") == fresh.first_moment("w")).all());
    CHECK((used.second_moment("w") == fresh.second_moment("w")).all());
}

TEMPLATE_TEST_CASE("Adam: state is created and sized per parameter name", "[adam]", float, double) {
    using Scalar = TestType;
    Vector<Scalar> w = Vector<Scalar>::Constant(5, Scalar(1));
    Vector<Scalar> gw = Vector<Scalar>::Constant(5, Scalar(0.5));
    Vector<Scalar> b = Vector<Scalar>::Constant(3, Scalar(1));
    Vector<Scalar> gb = Vector<Scalar>::Constant(3, Scalar(-0.5));
    sae::Adam<Scalar> adam;
    adam.step({sae::make_parameter_view("W_enc", w, gw)}, 0.01);
    adam.step({sae::make_parameter_view("W_enc", w, gw)}, 0.01);
    CHECK(adam.state_names() == std::vector<std::string>{"W_enc"});
    CHECK_THROWS_AS(adam.first_moment("b_enc"), sae::config_error);

    // b_enc joins at the third step: its own count starts at 1, so the first-step
    // property holds for it (a move of lr * |g| / (|g| + eps), about lr).
    adam.step({sae::make_parameter_view("W_enc", w, gw), sae::make_parameter_view("b_enc", b, gb)}, 0.01);
    CHECK(adam.steps_taken() == 3);
    CHECK(adam.state_names() == std::vector<std::string>{"W_enc", "b_enc"});
    CHECK(adam.first_moment("W_enc").size() == 5);
    CHECK(adam.second_moment("b_enc").size() == 3);
    CHECK_THAT(static_cast<double>(b(0)), Catch::Matchers::WithinRel(1.0 + 0.01 * 0.5 / (0.5 + 1e-8), tolerance<Scalar>()));

    // The same name with another size is a mistake in the caller's parameter list.
    Vector<Scalar> bigger = Vector<Scalar>::Ones(4);
    Vector<Scalar> g_bigger = Vector<Scalar>::Ones(4);
    const Vector<Scalar> w_before = w;
    CHECK_THROWS_AS(adam.step({sae::make_parameter_view("W_enc", w, gw), sae::make_parameter_view("b_enc", bigger, g_bigger)}, 0.01),
                    sae::shape_error);
    CHECK((w == w_before).all());  // nothing was updated by the failed step
    CHECK(adam.steps_taken() == 3);
}

TEMPLATE_TEST_CASE("Adam: restore resumes exactly where a run left off", "[adam]", float, double) {
    using Scalar = TestType;
    const std::vector<Vector<Scalar>> gradients = {vector_of<Scalar>({0.1, -0.3}), vector_of<Scalar>({0.4, 0.2}),
                                                   vector_of<Scalar>({-0.2, 0.1}), vector_of<Scalar>({0.05, -0.6})};
    Vector<Scalar> p_straight = vector_of<Scalar>({1.0, 2.0});
    Vector<Scalar> g(2);
    sae::Adam<Scalar> straight;
    for (const Vector<Scalar>& gradient : gradients) {
        g = gradient;
        straight.step(views("w", p_straight, g), 0.05);
    }

    Vector<Scalar> p_resumed = vector_of<Scalar>({1.0, 2.0});
    sae::Adam<Scalar> first_half;
    for (std::size_t i = 0; i < 2; ++i) {
        g = gradients[i];
        first_half.step(views("w", p_resumed, g), 0.05);
    }
    sae::Adam<Scalar> second_half;
    second_half.restore(first_half.steps_taken(), "w", first_half.first_moment("w"), first_half.second_moment("w"));
    for (std::size_t i = 2; i < gradients.size(); ++i) {
        g = gradients[i];
        second_half.step(views("w", p_resumed, g), 0.05);
    }
    CHECK((p_resumed == p_straight).all());
    CHECK(second_half.steps_taken() == 4);

    CHECK_THROWS_AS(second_half.restore(1, "w", Vector<Scalar>::Zero(2), Vector<Scalar>::Zero(3)), sae::shape_error);
    CHECK_THROWS_AS(second_half.restore(1, "w", Vector<Scalar>::Zero(2), Vector<Scalar>::Constant(2, Scalar(-1))),
                    sae::numeric_error);
}

TEMPLATE_TEST_CASE("Adam: rejects bad settings and bad gradients", "[adam]", float, double) {
    using Scalar = TestType;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    SECTION("config") {
        sae::AdamConfig config;
        config.beta1 = GENERATE(1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN());
        CHECK_THROWS_AS(sae::Adam<Scalar>(config), sae::config_error);
        CHECK_THROWS_WITH(config.validate(), Catch::Matchers::Contains("beta1"));
    }
    SECTION("beta2 and epsilon are named") {
        sae::AdamConfig config;
        config.beta2 = 1.0;
        CHECK_THROWS_WITH(config.validate(), Catch::Matchers::Contains("beta2"));
        config.beta2 = 0.999;
        config.epsilon = GENERATE(0.0, -1e-8, std::numeric_limits<double>::infinity());
        CHECK_THROWS_WITH(config.validate(), Catch::Matchers::Contains("epsilon"));
    }
    SECTION("step inputs") {
        Vector<Scalar> p = vector_of<Scalar>({1.0, 2.0});
        Vector<Scalar> g = vector_of<Scalar>({0.5, 0.5});
        sae::Adam<Scalar> adam;
        CHECK_THROWS_AS(adam.step(views("w", p, g), -1e-3), sae::config_error);
        CHECK_THROWS_AS(adam.step(views("w", p, g), nan), sae::config_error);
        CHECK_THROWS_AS(adam.step({sae::make_parameter_view("w", p, g), sae::make_parameter_view("w", p, g)}, 1e-3),
                        sae::config_error);
        // begin_step compares every pair of names, not only neighbours.
        CHECK_THROWS_WITH(adam.begin_step({{"a", 2}, {"b", 2}, {"a", 2}}, 1e-3),
                          Catch::Matchers::Contains("'a' appears twice"));
        g(1) = static_cast<Scalar>(nan);
        CHECK_THROWS_WITH(adam.step(views("w", p, g), 1e-3), Catch::Matchers::Contains("'w'"));
        CHECK_THROWS_AS(adam.step(views("w", p, g), 1e-3), sae::numeric_error);
        CHECK(adam.steps_taken() == 0);
        CHECK(adam.state_names().empty());
        CHECK((p == vector_of<Scalar>({1.0, 2.0})).all());
    }
}

TEMPLATE_TEST_CASE("Adam: agrees with torch.optim.Adam over 5 steps", "[adam][reference]", float, double) {
    using Scalar = TestType;
    const std::string path = std::string(SAE_TEST_FIXTURES_DIR) + "/adam_reference.json";
    std::ifstream file(path);
    REQUIRE(file.good());
    const nlohmann::json fixture = nlohmann::json::parse(file);
    const std::vector<double> initial = fixture.at("initial").get<std::vector<double>>();
    const auto gradients = fixture.at("gradients").get<std::vector<std::vector<double>>>();
    const char* precision = std::is_same<Scalar, float>::value ? "float32" : "float64";
    // float: torch and Eigen may order the float operations differently (1-2 ulp per step).
    const double abs_tol = std::is_same<Scalar, float>::value ? 2e-6 : 1e-14;

    REQUIRE(fixture.at("cases").size() == 2);
    for (const nlohmann::json& reference : fixture.at("cases")) {
        INFO("case " << reference.at("name").get<std::string>() << ", " << precision);
        sae::AdamConfig config;
        config.beta1 = reference.at("beta1").get<double>();
        config.beta2 = reference.at("beta2").get<double>();
        config.epsilon = reference.at("epsilon").get<double>();
        const double lr = reference.at("lr").get<double>();
        const nlohmann::json& expected = reference.at(precision);

        sae::Adam<Scalar> adam(config);
        Vector<Scalar> p = Eigen::Map<const Eigen::ArrayXd>(initial.data(), static_cast<Eigen::Index>(initial.size()))
                               .cast<Scalar>();
        Vector<Scalar> g(p.size());
        for (std::size_t step = 0; step < gradients.size(); ++step) {
            INFO("step " << step + 1);
            g = Eigen::Map<const Eigen::ArrayXd>(gradients[step].data(), g.size()).cast<Scalar>();
            adam.step(views("param", p, g), lr);
            const std::vector<double> want = expected.at("parameters").at(step).get<std::vector<double>>();
            for (Eigen::Index i = 0; i < p.size(); ++i) {
                CHECK_THAT(static_cast<double>(p(i)), Catch::Matchers::WithinAbs(want[static_cast<std::size_t>(i)], abs_tol));
            }
        }
        const std::vector<double> m = expected.at("first_moment").get<std::vector<double>>();
        const std::vector<double> v = expected.at("second_moment").get<std::vector<double>>();
        for (Eigen::Index i = 0; i < p.size(); ++i) {
            const std::size_t k = static_cast<std::size_t>(i);
            CHECK_THAT(static_cast<double>(adam.first_moment("param")(i)), Catch::Matchers::WithinAbs(m[k], abs_tol));
            CHECK_THAT(static_cast<double>(adam.second_moment("param")(i)), Catch::Matchers::WithinAbs(v[k], abs_tol));
        }
    }
}

}  // namespace test_adam_cases
