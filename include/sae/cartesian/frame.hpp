#pragma once
/// \file frame.hpp
/// A Cartesian frame C = (A, E, ·) over a finite world set W (Garrabrant 2020, the
/// "Cartesian Frames" sequence; formal version Garrabrant, Herrmann & Lopez-Wild,
/// arXiv 2109.10996): a set A of ways the agent can be, a set E of ways the environment
/// can be, and an evaluation · : A × E → W. Finite frames are matrices: row a, column e,
/// entry a·e.
///
/// Here A = {0, ..., |A| - 1}, E = {0, ..., |E| - 1} and W = {0, ..., |W| - 1}; the
/// entries are stored row-major. Either set may be empty (the units 0, ⊤ and null of
/// frame_units.hpp have empty agents or environments).
///
/// Abstract:
///   Frame(world_count, agents, environments, row_major_worlds)
///     requires: row_major_worlds.size() == agents * environments (shape_error), every
///               entry < world_count (config_error naming agent, environment and world).
///   Frame::from_rows(world_count, rows)      rows of equal length (shape_error names the
///                                            first ragged row); no rows = the null frame.
///   Frame::from_function(world_count, agents, environments, eval)   eval(a, e) -> WorldId.
///   operator()(a, e)  unchecked; at(a, e) checks (config_error).
///   row(a), column(e), row_image(a), image()   image = {a·e}.
///   dual(C)              C* = (E, A, ⋆) with e ⋆ a = a · e: the transposed matrix.
///   restrict_agents(C, B)        Commit_B(C) of the sequence ("Committing, Assuming,
///                                Externalizing, and Internalizing"): rows B, in B's order.
///   restrict_environments(C, F)  Assume_F(C): columns F, in F's order.
///   require_same_world_count(C, D, operation)   config_error when |W| differ.

#include "sae/cartesian/world_set.hpp"
#include "sae/core/error.hpp"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// A finite Cartesian frame: an |A| × |E| matrix of worlds.
class Frame {
public:
    /// The null frame ({}, {}, ·) over no worlds.
    Frame() = default;

    Frame(std::size_t world_count, std::size_t agent_count, std::size_t environment_count,
          std::vector<WorldId> row_major_worlds)
        : world_count_(world_count),
          agent_count_(agent_count),
          environment_count_(environment_count),
          worlds_(std::move(row_major_worlds)) {
        if (worlds_.size() != agent_count_ * environment_count_) {
            throw shape_error("Frame: " + std::to_string(worlds_.size()) + " worlds given for " +
                              std::to_string(agent_count_) + " agents x " + std::to_string(environment_count_) +
                              " environments");
        }
        for (std::size_t a = 0; a < agent_count_; ++a) {
            for (std::size_t e = 0; e < environment_count_; ++e) {
                const WorldId w = worlds_[a * environment_count_ + e];
                if (w >= world_count_) {
                    throw config_error("Frame: world " + std::to_string(w) + " at (agent " + std::to_string(a) +
                                       ", environment " + std::to_string(e) + ") is out of range (" +
                                       std::to_string(world_count_) + " worlds)");
                }
            }
        }
    }

    /// A frame from its rows; every row must have the same length.
    static Frame from_rows(std::size_t world_count, const std::vector<std::vector<WorldId>>& rows) {
        const std::size_t environments = rows.empty() ? 0 : rows.front().size();
        std::vector<WorldId> flat;
        flat.reserve(rows.size() * environments);
        for (std::size_t a = 0; a < rows.size(); ++a) {
            if (rows[a].size() != environments) {
                throw shape_error("Frame::from_rows: row " + std::to_string(a) + " has " +
                                  std::to_string(rows[a].size()) + " entries, row 0 has " +
                                  std::to_string(environments) + " (ragged rows)");
            }
            flat.insert(flat.end(), rows[a].begin(), rows[a].end());
        }
        return Frame(world_count, rows.size(), environments, std::move(flat));
    }

    /// A frame whose entry (a, e) is eval(a, e).
    template <class Eval>
    static Frame from_function(std::size_t world_count, std::size_t agent_count, std::size_t environment_count,
                               Eval&& eval) {
        std::vector<WorldId> flat;
        flat.reserve(agent_count * environment_count);
        for (std::size_t a = 0; a < agent_count; ++a) {
            for (std::size_t e = 0; e < environment_count; ++e) {
                flat.push_back(static_cast<WorldId>(eval(a, e)));
            }
        }
        return Frame(world_count, agent_count, environment_count, std::move(flat));
    }

    std::size_t world_count() const { return world_count_; }
    std::size_t agent_count() const { return agent_count_; }
    std::size_t environment_count() const { return environment_count_; }

    /// a · e, without a bounds check (the hot loops of the searches use it).
    WorldId operator()(std::size_t agent, std::size_t environment) const {
        return worlds_[agent * environment_count_ + environment];
    }

    /// a · e, with config_error for an index out of range.
    WorldId at(std::size_t agent, std::size_t environment) const {
        if (agent >= agent_count_ || environment >= environment_count_) {
            throw config_error("Frame::at: (agent " + std::to_string(agent) + ", environment " +
                               std::to_string(environment) + ") is out of range for a " +
                               std::to_string(agent_count_) + " x " + std::to_string(environment_count_) + " frame");
        }
        return (*this)(agent, environment);
    }

    /// The entries in row-major order.
    const std::vector<WorldId>& worlds() const { return worlds_; }

    std::vector<WorldId> row(std::size_t agent) const {
        require_agent(agent, "Frame::row");
        return std::vector<WorldId>(worlds_.begin() + static_cast<std::ptrdiff_t>(agent * environment_count_),
                                    worlds_.begin() + static_cast<std::ptrdiff_t>((agent + 1) * environment_count_));
    }

    std::vector<WorldId> column(std::size_t environment) const {
        require_environment(environment, "Frame::column");
        std::vector<WorldId> out(agent_count_);
        for (std::size_t a = 0; a < agent_count_; ++a) {
            out[a] = (*this)(a, environment);
        }
        return out;
    }

    /// {a · e : e ∈ E}: the worlds agent option a leaves possible.
    WorldSet row_image(std::size_t agent) const { return WorldSet(row(agent)); }

    /// Image(C) = {a · e : a ∈ A, e ∈ E}.
    WorldSet image() const { return WorldSet(worlds_); }

    void require_agent(std::size_t agent, const std::string& what) const {
        if (agent >= agent_count_) {
            throw config_error(what + ": agent " + std::to_string(agent) + " is out of range (" +
                               std::to_string(agent_count_) + " agents)");
        }
    }

    void require_environment(std::size_t environment, const std::string& what) const {
        if (environment >= environment_count_) {
            throw config_error(what + ": environment " + std::to_string(environment) + " is out of range (" +
                               std::to_string(environment_count_) + " environments)");
        }
    }

    friend bool operator==(const Frame& c, const Frame& d) {
        return c.world_count_ == d.world_count_ && c.agent_count_ == d.agent_count_ &&
               c.environment_count_ == d.environment_count_ && c.worlds_ == d.worlds_;
    }
    friend bool operator!=(const Frame& c, const Frame& d) { return !(c == d); }

private:
    std::size_t world_count_ = 0;
    std::size_t agent_count_ = 0;
    std::size_t environment_count_ = 0;
    std::vector<WorldId> worlds_;
};

/// Throws config_error when two frames are over world sets of different sizes; every
/// binary operation of the sequence is defined for frames over the same W.
inline void require_same_world_count(const Frame& c, const Frame& d, const std::string& operation) {
    if (c.world_count() != d.world_count()) {
        throw config_error(operation + ": the frames are over " + std::to_string(c.world_count()) + " and " +
                           std::to_string(d.world_count()) + " worlds; both must be over the same world set");
    }
}

/// C* = (E, A, ⋆) with e ⋆ a = a · e.
inline Frame dual(const Frame& c) {
    return Frame::from_function(c.world_count(), c.environment_count(), c.agent_count(),
                                [&c](std::size_t e, std::size_t a) { return c(a, e); });
}

/// Commit_B(C) = (B, E, ·|B): the agent has committed to an option in B. The rows are
/// taken in the order given; an index may repeat (a frame with a duplicate row).
inline Frame restrict_agents(const Frame& c, const std::vector<std::size_t>& agents) {
    for (std::size_t agent : agents) {
        c.require_agent(agent, "restrict_agents");
    }
    return Frame::from_function(c.world_count(), agents.size(), c.environment_count(),
                                [&](std::size_t i, std::size_t e) { return c(agents[i], e); });
}

/// Assume_F(C) = (A, F, ·|F): the environment is assumed to be in F.
inline Frame restrict_environments(const Frame& c, const std::vector<std::size_t>& environments) {
    for (std::size_t environment : environments) {
        c.require_environment(environment, "restrict_environments");
    }
    return Frame::from_function(c.world_count(), c.agent_count(), environments.size(),
                                [&](std::size_t a, std::size_t j) { return c(a, environments[j]); });
}

}  // namespace cartesian
}  // namespace sae
