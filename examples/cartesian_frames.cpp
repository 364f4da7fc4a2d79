// The 27-world Cartesian object of Marks (2023, "Higher Dimension Cartesian Objects and
// Aligning 'Tiling Simulators'"): two agents A1, A2 and an environment E with three
// actions each, 3 x 3 x 3 = 27 worlds w1..w27. The post draws the cube without fixing
// which cell gets which label; here the label follows the row-major cell index,
// w(1 + 9·a1 + 3·a2 + e).
//
// Prints each axis's Cartesian frame (view_from), what it can ensure, prevent, control and
// observe, the team frame and the subagent relations, a manageability check under a
// belief, and a Partial Simulation Extrapolation decision on a small synthetic simulator,
// followed by full simulations to show how good the extrapolation was.
//
//   cartesian_frames            (no arguments)
#include "sae/cartesian/cartesian.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace sae::cartesian;

std::string world_name(WorldId w) { return "w" + std::to_string(w + 1); }

std::string set_text(const WorldSet& s) {
    std::string text = "{";
    for (WorldId w : s) {
        text += (text.size() > 1 ? ", " : "") + world_name(w);
    }
    return text + "}";
}

void print_frame(const CartesianObject& object, std::size_t axis) {
    const Frame frame = object.view_from(axis);
    const std::vector<std::size_t> others = object.other_axes(axis);
    std::printf("\n%s's frame: %zu options x %zu environments (joint choices of", object.axes()[axis].name.c_str(),
                frame.agent_count(), frame.environment_count());
    for (std::size_t k : others) {
        std::printf(" %s", object.axes()[k].name.c_str());
    }
    std::printf(")\n");
    for (std::size_t a = 0; a < frame.agent_count(); ++a) {
        std::printf("  %s=%zu |", object.axes()[axis].name.c_str(), a);
        for (std::size_t e = 0; e < frame.environment_count(); ++e) {
            std::printf(" %4s", world_name(frame(a, e)).c_str());
        }
        std::printf("\n");
    }
    std::printf("  can ensure exactly the supersets of:\n");
    for (const WorldSet& g : ensure_generators(frame)) {
        std::printf("    %s\n", set_text(g).c_str());
    }
    const std::vector<WorldInterval> intervals = controllable_intervals(frame);
    std::printf("  can control (ensure and prevent) the sets S with lower <= S <= upper for %zu intervals, e.g.\n",
                intervals.size());
    std::printf("    lower %s\n    upper %s\n", set_text(intervals.front().lower).c_str(),
                set_text(intervals.front().upper).c_str());
    const std::vector<WorldSet> partition = observable_partition(frame);
    std::printf("  can observe: unions of %zu block(s)%s\n", partition.size(),
                partition.size() == 1 ? " (only the empty set and W)" : "");
}

}  // namespace

int main() {
    const CartesianObject object = CartesianObject::enumerated(
        {{"A1", AxisKind::agent, 3}, {"A2", AxisKind::agent, 3}, {"E", AxisKind::environment, 3}});
    std::printf("Cartesian object: axes A1[3] x A2[3] x E[3], %zu worlds, world(a1, a2, e) = w(1 + 9 a1 + 3 a2 + e)\n",
                object.world_count());
    for (std::size_t axis = 0; axis < object.axis_count(); ++axis) {
        print_frame(object, axis);
    }

    // The team A1 ⊗ A2 against E, and how each agent relates to it.
    const Frame a1 = object.view_from(0);
    const Frame a2 = object.view_from(1);
    const Frame team = tensor(a1, a2);
    std::printf("\nTeam A1 (x) A2: %zu options x %zu environments; isomorphic to (A1 x A2, E): %s\n",
                team.agent_count(), team.environment_count(),
                find_isomorphism(team, dual(object.view_from(2))).has_value() ? "yes" : "no");
    std::printf("A1 is a subagent of the team: %s, multiplicative: %s, additive: %s\n",
                is_subagent(a1, team) ? "yes" : "no", is_multiplicative_subagent(a1, team) ? "yes" : "no",
                is_additive_subagent(a1, team) ? "yes" : "no");
    std::printf("A1 committed to action 0 is an additive subagent of A1: %s\n",
                is_additive_subagent(restrict_agents(a1, {0}), a1) ? "yes" : "no");

    // Manageability: S = "A1 and A2 pick the same action". A1 cannot control S, but if it
    // believes A2 plays 0 with probability 0.8 (0.1 each otherwise), E uniform, it can
    // make S likely (0.8) and unlikely (0.9).
    std::vector<WorldId> same;
    for (std::size_t a = 0; a < 3; ++a) {
        for (std::size_t e = 0; e < 3; ++e) {
            same.push_back(object.world({a, a, e}));
        }
    }
    const WorldSet s(same);
    const std::vector<double> belief = product_belief(object, 0, {{0.8, 0.1, 0.1}, {1.0 / 3, 1.0 / 3, 1.0 / 3}});
    std::printf("\nS = A1 and A2 agree = %s\n", set_text(s).c_str());
    std::printf("A1 can control S: %s\n", agent_can_control(object, 0, s) ? "yes" : "no");
    for (double theta : {0.75, 0.85}) {
        const Management m = manage(a1, belief, s, theta);
        std::printf("theta = %.2f: best P(S) = %.3f (A1=%zu), best P(not S) = %.3f (A1=%zu): %s\n", theta,
                    m.ensure_probability, m.ensuring_action, m.prevent_probability, m.preventing_action,
                    m.manageable ? "manageable" : "not manageable");
    }

    // PSE on a synthetic simulator: each token step, A picks uniformly and E picks 1 with
    // probability 0.4; world 3 (A = 1, E = 1) is bad. The risk of a run is its number of
    // bad steps (expected 0.2 per step). Partial simulations of 5..20 steps decide whether
    // a 100-step run may go ahead with at most epsilon bad steps expected.
    const CartesianObject game =
        CartesianObject::enumerated({{"A", AxisKind::agent, 2}, {"E", AxisKind::environment, 2}});
    const TokenSimulation simulation(game, [](std::size_t, const Trajectory&) {
        return std::vector<std::vector<double>>{{0.5, 0.5}, {0.6, 0.4}};
    });
    const auto run = [&simulation](double budget, std::size_t sample) {
        return simulation.sample(static_cast<std::size_t>(budget),
                                 trajectory_seed(1, static_cast<std::uint64_t>(budget) * 1000 + sample));
    };
    const auto bad_steps = [](const Trajectory& trajectory) {
        double count = 0.0;
        for (WorldId w : trajectory.worlds) {
            count += w == 3 ? 1.0 : 0.0;
        }
        return count;
    };
    PseOptions options;
    options.samples_per_budget = 20;
    std::printf("\nPSE: budgets 5, 10, 15, 20 steps (20 runs each), full budget 100 steps, linear model\n");
    for (double epsilon : {30.0, 15.0}) {
        const PseResult result = pse(run, {5, 10, 15, 20}, 100.0, bad_steps, RiskModel::linear, epsilon, options);
        std::printf("epsilon = %.0f: fit r = %.4f + %.4f b, predicted %.2f bad steps, 95%% interval [%.2f, %.2f] -> %s\n",
                    epsilon, result.fit.intercept, result.fit.slope, result.interval.predicted, result.interval.lower,
                    result.interval.upper, result.allow ? "ALLOW" : "REFUSE");
    }
    double total = 0.0;
    const std::size_t full_runs = 200;
    for (const Trajectory& t : simulation.sample_many(100, full_runs, 99)) {
        total += bad_steps(t);
    }
    std::printf("Full 100-step simulations (%zu runs): mean %.2f bad steps (expected 20)\n", full_runs,
                total / static_cast<double>(full_runs));
    const SimulationComplexity complexity = simulation_complexity(object, 0);
    std::printf("\nSimulation-complexity proxy of the 27-world object: %.1f bits (tensor %.1f, header %.1f)\n",
                complexity.total_bits, complexity.world_tensor_bits, complexity.header_bits);
    return 0;
}
