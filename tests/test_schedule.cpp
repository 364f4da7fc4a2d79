// Tests for schedule.hpp: learning-rate warm-up/decay, coefficient warm-up, MFR's
// cosine ramp and global-norm gradient clipping. Expected values are derived by hand
// in the comments next to each check.
#include <sae/core/schedule.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

// Everything in this file lives in its own namespace: the tests are unity-built
// (tests/CMakeLists.txt), so file-local helpers of different files must not meet.
namespace test_schedule_cases {

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

namespace {

// base 1e-3, warm-up 4 steps, 20 steps in all, the last 8 decaying to 10% of base:
// warm-up steps 0..3, constant 4..11, decay 12..19 (decay_start = 20 - 8 = 12).
sae::LearningRateSchedule example_schedule(sae::DecayShape shape) {
    sae::LearningRateSchedule schedule;
    schedule.base_rate = 1e-3;
    schedule.warmup_steps = 4;
    schedule.decay = shape;
    schedule.decay_steps = 8;
    schedule.total_steps = 20;
    schedule.final_fraction = 0.1;
    schedule.validate();
    return schedule;
}

}  // namespace

TEST_CASE("LearningRateSchedule: warm-up is linear from base/W to base", "[schedule]") {
    const sae::LearningRateSchedule schedule = example_schedule(sae::DecayShape::linear);
    CHECK_THAT(schedule.at(0), WithinRel(1e-3 * 1.0 / 4.0, 1e-12));  // (0+1)/4
    CHECK_THAT(schedule.at(1), WithinRel(1e-3 * 2.0 / 4.0, 1e-12));
    CHECK_THAT(schedule.at(3), WithinRel(1e-3, 1e-12));   // warmup-1: (3+1)/4 = 1
    CHECK_THAT(schedule.at(4), WithinRel(1e-3, 1e-12));   // warmup: plateau
    CHECK_THAT(schedule.at(11), WithinRel(1e-3, 1e-12));  // last step before the decay
}

TEST_CASE("LearningRateSchedule: linear decay over the last decay_steps", "[schedule]") {
    const sae::LearningRateSchedule schedule = example_schedule(sae::DecayShape::linear);
    // factor = 0.1 + 0.9 * (1 - (step - 12) / 8)
    CHECK_THAT(schedule.at(12), WithinRel(1e-3, 1e-12));                       // first decay step: full rate
    CHECK_THAT(schedule.at(16), WithinRel(1e-3 * (0.1 + 0.9 * 0.5), 1e-12));    // mid-decay: 0.55
    CHECK_THAT(schedule.at(19), WithinRel(1e-3 * (0.1 + 0.9 / 8.0), 1e-12));    // last step: 0.2125
    CHECK_THAT(schedule.at(20), WithinRel(1e-3 * 0.1, 1e-12));                  // after training: final
    CHECK_THAT(schedule.at(1000), WithinRel(1e-3 * 0.1, 1e-12));
}

TEST_CASE("LearningRateSchedule: linear decay to zero matches the Hugging Face linear schedule", "[schedule]") {
    // transformers' get_linear_schedule_with_warmup: factor (T - s) / (T - W) after warm-up.
    sae::LearningRateSchedule schedule;
    schedule.base_rate = 0.5;
    schedule.warmup_steps = 10;
    schedule.decay = sae::DecayShape::linear;
    schedule.total_steps = 110;
    schedule.decay_steps = 100;
    schedule.validate();
    for (std::size_t s = 10; s < 110; ++s) {
        CHECK_THAT(schedule.at(s), WithinRel(0.5 * static_cast<double>(110 - s) / 100.0, 1e-12));
    }
}

TEST_CASE("LearningRateSchedule: cosine decay over the last decay_steps", "[schedule]") {
    const sae::LearningRateSchedule schedule = example_schedule(sae::DecayShape::cosine);
    // factor = 0.1 + 0.9 * 0.5 * (1 + cos(pi * (step - 12) / 8))
    CHECK_THAT(schedule.at(12), WithinRel(1e-3, 1e-12));
    // step 14: cos(pi/4) = 0.70710678..., 0.5 * 1.70710678 = 0.85355339
    CHECK_THAT(schedule.at(14), WithinRel(1e-3 * (0.1 + 0.9 * 0.8535533905932737), 1e-12));
    CHECK_THAT(schedule.at(16), WithinRel(1e-3 * (0.1 + 0.9 * 0.5), 1e-12));  // cos(pi/2) = 0
    // step 19: cos(7 pi/8) = -0.92387953..., 0.5 * 0.07612047 = 0.03806023
    CHECK_THAT(schedule.at(19), WithinRel(1e-3 * (0.1 + 0.9 * 0.03806023374435663), 1e-12));
    CHECK_THAT(schedule.at(20), WithinRel(1e-4, 1e-12));
}

TEST_CASE("LearningRateSchedule: constant without warm-up is the base rate", "[schedule]") {
    sae::LearningRateSchedule schedule;
    schedule.base_rate = 3e-4;
    schedule.validate();
    const std::size_t step = GENERATE(0u, 1u, 999999u);
    CHECK(schedule.at(step) == 3e-4);
}

TEST_CASE("LearningRateSchedule: rises during warm-up, never rises after", "[schedule]") {
    const sae::DecayShape shape = GENERATE(sae::DecayShape::constant, sae::DecayShape::linear, sae::DecayShape::cosine);
    sae::LearningRateSchedule schedule;
    schedule.base_rate = 2e-3;
    schedule.warmup_steps = 37;
    schedule.decay = shape;
    schedule.decay_steps = shape == sae::DecayShape::constant ? 0 : 250;
    schedule.total_steps = 1000;
    schedule.final_fraction = 0.05;
    schedule.validate();
    const double lowest = schedule.base_rate * (shape == sae::DecayShape::constant ? 1.0 : 0.05);
    for (std::size_t s = 1; s < 1100; ++s) {
        INFO("step " << s);
        if (s < schedule.warmup_steps) {
            CHECK(schedule.at(s) > schedule.at(s - 1));
        } else {
            CHECK(schedule.at(s) <= schedule.at(s - 1));
        }
        CHECK(schedule.at(s) <= schedule.base_rate);
        if (s >= schedule.warmup_steps) CHECK(schedule.at(s) >= lowest * (1 - 1e-12));
    }
}

TEST_CASE("LearningRateSchedule: validate names the bad field", "[schedule]") {
    sae::LearningRateSchedule schedule = example_schedule(sae::DecayShape::linear);
    SECTION("base_rate") {
        schedule.base_rate = GENERATE(0.0, -1e-3, std::numeric_limits<double>::quiet_NaN());
        CHECK_THROWS_WITH(schedule.validate(), Catch::Matchers::Contains("base_rate"));
    }
    SECTION("final_fraction") {
        schedule.final_fraction = GENERATE(-0.1, 1.5, std::numeric_limits<double>::quiet_NaN());
        CHECK_THROWS_WITH(schedule.validate(), Catch::Matchers::Contains("final_fraction"));
    }
    SECTION("decay without steps") {
        schedule.decay_steps = 0;
        CHECK_THROWS_WITH(schedule.validate(), Catch::Matchers::Contains("decay_steps"));
    }
    SECTION("warm-up and decay overlap or exceed the run") {
        schedule.total_steps = 11;  // 4 + 8 > 11
        CHECK_THROWS_WITH(schedule.validate(), Catch::Matchers::Contains("total_steps"));
        schedule.total_steps = 12;  // 4 + 8 = 12: touching, fine
        CHECK_NOTHROW(schedule.validate());
    }
    SECTION("decay length with constant shape would be ignored") {
        schedule.decay = sae::DecayShape::constant;
        CHECK_THROWS_AS(schedule.validate(), sae::config_error);
    }
}

TEST_CASE("CoefficientWarmup: linear from target/W to target", "[schedule]") {
    sae::CoefficientWarmup warmup{0.5, 10};
    warmup.validate();
    CHECK_THAT(warmup.at(0), WithinRel(0.05, 1e-12));  // 0.5 * 1/10
    CHECK_THAT(warmup.at(4), WithinRel(0.25, 1e-12));  // 0.5 * 5/10
    CHECK_THAT(warmup.at(9), WithinRel(0.5, 1e-12));   // warmup-1: full
    CHECK(warmup.at(10) == 0.5);
    CHECK(warmup.at(123456) == 0.5);
    const sae::CoefficientWarmup none{0.25, 0};
    CHECK(none.at(0) == 0.25);
    for (std::size_t s = 1; s < 20; ++s) CHECK(warmup.at(s) >= warmup.at(s - 1));

    sae::CoefficientWarmup bad{-1.0, 5};
    CHECK_THROWS_WITH(bad.validate(), Catch::Matchers::Contains("target"));
    bad.target = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(bad.validate(), sae::config_error);
}

TEST_CASE("cosine_ramp: MFR penalty weight from 0 to 1 over W steps", "[schedule]") {
    // w(t) = 0.5 (1 + cos(pi (W - t) / W)), W = 100
    CHECK_THAT(sae::cosine_ramp(0, 100), WithinAbs(0.0, 1e-15));                  // cos(pi) = -1
    CHECK_THAT(sae::cosine_ramp(25, 100), WithinRel(0.5 * (1 - std::sqrt(0.5)), 1e-12));  // cos(3pi/4)
    CHECK_THAT(sae::cosine_ramp(50, 100), WithinRel(0.5, 1e-12));                 // cos(pi/2) = 0
    CHECK_THAT(sae::cosine_ramp(75, 100), WithinRel(0.5 * (1 + std::sqrt(0.5)), 1e-12));   // cos(pi/4)
    CHECK(sae::cosine_ramp(99, 100) < 1.0);
    CHECK(sae::cosine_ramp(100, 100) == 1.0);
    CHECK(sae::cosine_ramp(5000, 100) == 1.0);
    CHECK(sae::cosine_ramp(0, 0) == 1.0);  // no ramp
    for (std::size_t t = 1; t <= 120; ++t) CHECK(sae::cosine_ramp(t, 100) > sae::cosine_ramp(t - 1, 100) - 1e-15);
}

TEMPLATE_TEST_CASE("clip_gradient_norm: global norm over all parameters", "[schedule][clip]", float, double) {
    using Scalar = TestType;
    using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
    Array w = Array::Zero(2), gw(2), b = Array::Zero(1), gb(1);
    gw << Scalar(3), Scalar(0);
    gb << Scalar(-4);
    const auto views = [&] {
        return std::vector<sae::ParameterView<Scalar>>{sae::make_parameter_view("W_enc", w, gw),
                                                        sae::make_parameter_view("b_enc", b, gb)};
    };

    SECTION("above the limit: scaled to exactly max_norm") {
        // ||(3, 0, -4)|| = 5; scale 2.5 / 5 = 0.5
        CHECK_THAT(sae::clip_gradient_norm(views(), 2.5), WithinRel(5.0, 1e-7));
        CHECK_THAT(static_cast<double>(gw(0)), WithinRel(1.5, 1e-6));
        CHECK(gw(1) == Scalar(0));
        CHECK_THAT(static_cast<double>(gb(0)), WithinRel(-2.0, 1e-6));
        CHECK_THAT(sae::clip_gradient_norm(views(), 0.0), WithinRel(2.5, 1e-6));
    }
    SECTION("at or below the limit, or no limit: untouched") {
        const double max_norm = GENERATE(5.0, 10.0, 0.0, -1.0);
        CHECK_THAT(sae::clip_gradient_norm(views(), max_norm), WithinRel(5.0, 1e-7));
        CHECK(gw(0) == Scalar(3));
        CHECK(gb(0) == Scalar(-4));
    }
    SECTION("many small float entries: the norm is accumulated precisely") {
        Array big = Array::Constant(1 << 20, Scalar(0.001));
        Array gbig = Array::Constant(1 << 20, Scalar(0.001));
        // sqrt(2^20 * static_cast<Scalar>(0.001)^2) = 1024 * static_cast<Scalar>(0.001). A float
        // running sum of 2^20 terms is off by ~1e-3 relative; a double one by ~1e-11.
        const double expected = 1024.0 * static_cast<double>(Scalar(0.001));
        CHECK_THAT(sae::clip_gradient_norm<Scalar>({sae::make_parameter_view("big", big, gbig)}, 0.0),
                   WithinRel(expected, 1e-9));
    }
    SECTION("NaN: numeric_error naming the parameter") {
        gb(0) = std::numeric_limits<Scalar>::quiet_NaN();
        CHECK_THROWS_AS(sae::clip_gradient_norm(views(), 1.0), sae::numeric_error);
        CHECK_THROWS_WITH(sae::clip_gradient_norm(views(), 1.0), Catch::Matchers::Contains("b_enc"));
    }
}

}  // namespace test_schedule_cases
