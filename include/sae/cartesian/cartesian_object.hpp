#pragma once
/// \file cartesian_object.hpp
/// The n-dimensional Cartesian object of Marks (2023, "Higher Dimension Cartesian
/// Objects and Aligning 'Tiling Simulators'"; arXiv 2401.16426): a tensor of worlds over
/// named axes, one per agent (simulacrum), optionally one for the environment and
/// optionally one for token positions. A choice of one index per axis picks a world.
///
/// view_from(i) is agent i's Cartesian frame: its own axis against the product of all
/// the other axes, so every frame operation (ensure, control, observe, subagents, ⊗ ...)
/// applies per agent. Quantifying "for every environment" in that frame quantifies over
/// the joint choices of all other agents, the environment and the token position.
///
/// Layout: cells are row-major over the axes in the order given (the last axis varies
/// fastest). Column k of view_from(i) is the row-major index of the other axes' choices,
/// in their original order (environment_coordinates(i, k) decodes it).
///
/// Abstract:
///   CartesianObject(axes, world_count, row_major_worlds)
///     requires: at least one axis, every axis size >= 1, distinct names, at most one
///               environment and one token axis (config_error); row_major_worlds.size() ==
///               product of sizes (shape_error: a ragged or wrong-sized tensor); every world
///               < world_count (config_error naming the cell).
///   CartesianObject::from_function(axes, world_count, eval)   eval(coordinates) -> WorldId.
///   CartesianObject::enumerated(axes)     world id = cell index, world_count = cells
///                                         (e.g. the 27-world 3 x 3 x 3 object).
///   world(coordinates), cell_index(coordinates), coordinates(cell).
///   axis_index(name), axes_of_kind(kind), token_axis().
///   view_from(axis) -> Frame; other_axes(axis); environment_coordinates(axis, column).
///   restrict_axis(axis, kept)   the sub-object with only the listed indices of one axis
///                               (in the order listed; no repeats), e.g. token selection.
///   select(axis, index)         fix one axis to one index and drop it (needs >= 2 axes).
///   An axis index out of range: config_error naming it.

#include "sae/cartesian/frame.hpp"
#include "sae/cartesian/world_set.hpp"
#include "sae/core/error.hpp"

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sae {
namespace cartesian {

/// What an axis of a Cartesian object stands for.
enum class AxisKind {
    agent,        ///< a simulacrum: its indices are its actions
    environment,  ///< the environment's actions
    token         ///< token positions of a simulation
};

inline const char* to_string(AxisKind kind) {
    switch (kind) {
        case AxisKind::agent:
            return "agent";
        case AxisKind::environment:
            return "environment";
        case AxisKind::token:
            return "token";
    }
    return "unknown";
}

/// One axis: a name, what it is, and how many indices (actions, positions) it has.
struct Axis {
    std::string name;
    AxisKind kind = AxisKind::agent;
    std::size_t size = 0;
};

/// A tensor of world ids over named axes.
class CartesianObject {
public:
    CartesianObject(std::vector<Axis> axes, std::size_t world_count, std::vector<WorldId> row_major_worlds)
        : axes_(std::move(axes)), world_count_(world_count), worlds_(std::move(row_major_worlds)) {
        validate_axes();
        if (worlds_.size() != cell_count_) {
            throw shape_error("CartesianObject: " + std::to_string(worlds_.size()) +
                              " worlds given for a tensor of " + std::to_string(cell_count_) + " cells (" +
                              shape_text() + "): ragged or wrong-sized tensor");
        }
        for (std::size_t cell = 0; cell < cell_count_; ++cell) {
            if (worlds_[cell] >= world_count_) {
                throw config_error("CartesianObject: world " + std::to_string(worlds_[cell]) + " at " +
                                   coordinates_text(coordinates(cell)) + " is out of range (" +
                                   std::to_string(world_count_) + " worlds)");
            }
        }
    }

    /// The object whose world at `coordinates` is eval(coordinates).
    template <class Eval>
    static CartesianObject from_function(std::vector<Axis> axes, std::size_t world_count, Eval&& eval) {
        CartesianObject shape(std::move(axes));
        std::vector<WorldId> worlds(shape.cell_count_);
        for (std::size_t cell = 0; cell < shape.cell_count_; ++cell) {
            worlds[cell] = static_cast<WorldId>(eval(shape.coordinates(cell)));
        }
        return CartesianObject(std::move(shape.axes_), world_count, std::move(worlds));
    }

    /// Every cell its own world: world id = row-major cell index.
    static CartesianObject enumerated(std::vector<Axis> axes) {
        CartesianObject shape(std::move(axes));
        std::vector<WorldId> worlds(shape.cell_count_);
        for (std::size_t cell = 0; cell < shape.cell_count_; ++cell) {
            worlds[cell] = cell;
        }
        const std::size_t cells = shape.cell_count_;
        return CartesianObject(std::move(shape.axes_), cells, std::move(worlds));
    }

    std::size_t axis_count() const { return axes_.size(); }
    const std::vector<Axis>& axes() const { return axes_; }
    const Axis& axis(std::size_t index) const {
        require_axis(index, "CartesianObject::axis");
        return axes_[index];
    }
    std::size_t world_count() const { return world_count_; }
    std::size_t cell_count() const { return cell_count_; }
    /// The world of every cell, row-major.
    const std::vector<WorldId>& worlds() const { return worlds_; }

    /// The index of the axis called `name` (config_error when there is none).
    std::size_t axis_index(const std::string& name) const {
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            if (axes_[i].name == name) {
                return i;
            }
        }
        throw config_error("CartesianObject: no axis is called '" + name + "'");
    }

    /// The indices of the axes of one kind, in order.
    std::vector<std::size_t> axes_of_kind(AxisKind kind) const {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            if (axes_[i].kind == kind) {
                out.push_back(i);
            }
        }
        return out;
    }

    std::optional<std::size_t> token_axis() const {
        const std::vector<std::size_t> tokens = axes_of_kind(AxisKind::token);
        if (tokens.empty()) {
            return std::nullopt;
        }
        return tokens.front();
    }

    /// Row-major cell index of a full set of coordinates.
    std::size_t cell_index(const std::vector<std::size_t>& coordinates) const {
        if (coordinates.size() != axes_.size()) {
            throw shape_error("CartesianObject: " + std::to_string(coordinates.size()) + " coordinates given for " +
                              std::to_string(axes_.size()) + " axes");
        }
        std::size_t cell = 0;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            if (coordinates[i] >= axes_[i].size) {
                throw config_error("CartesianObject: index " + std::to_string(coordinates[i]) + " on axis '" +
                                   axes_[i].name + "' is out of range (size " + std::to_string(axes_[i].size) + ")");
            }
            cell = cell * axes_[i].size + coordinates[i];
        }
        return cell;
    }

    /// The coordinates of a cell.
    std::vector<std::size_t> coordinates(std::size_t cell) const {
        if (cell >= cell_count_) {
            throw config_error("CartesianObject: cell " + std::to_string(cell) + " is out of range (" +
                               std::to_string(cell_count_) + " cells)");
        }
        std::vector<std::size_t> out(axes_.size());
        for (std::size_t i = axes_.size(); i > 0; --i) {
            out[i - 1] = cell % axes_[i - 1].size;
            cell /= axes_[i - 1].size;
        }
        return out;
    }

    WorldId world(const std::vector<std::size_t>& coordinates) const { return worlds_[cell_index(coordinates)]; }

    /// All axes but `axis`, in order: the axes that make up the environment of view_from.
    std::vector<std::size_t> other_axes(std::size_t axis) const {
        require_axis(axis, "CartesianObject::other_axes");
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            if (i != axis) {
                out.push_back(i);
            }
        }
        return out;
    }

    /// The choices of the other axes (in other_axes order) that column `column` of
    /// view_from(axis) stands for.
    std::vector<std::size_t> environment_coordinates(std::size_t axis, std::size_t column) const {
        const std::vector<std::size_t> others = other_axes(axis);
        const std::size_t columns = cell_count_ / axes_[axis].size;
        if (column >= columns) {
            throw config_error("CartesianObject::environment_coordinates: column " + std::to_string(column) +
                               " is out of range (" + std::to_string(columns) + " columns)");
        }
        std::vector<std::size_t> out(others.size());
        for (std::size_t k = others.size(); k > 0; --k) {
            const std::size_t size = axes_[others[k - 1]].size;
            out[k - 1] = column % size;
            column /= size;
        }
        return out;
    }

    /// Agent `axis`'s frame: rows = its indices, columns = joint choices of the others.
    Frame view_from(std::size_t axis) const {
        require_axis(axis, "CartesianObject::view_from");
        const std::size_t rows = axes_[axis].size;
        const std::size_t columns = cell_count_ / rows;
        std::vector<std::size_t> full(axes_.size());
        return Frame::from_function(world_count_, rows, columns, [&](std::size_t row, std::size_t column) {
            const std::vector<std::size_t> others = environment_coordinates(axis, column);
            for (std::size_t i = 0, k = 0; i < axes_.size(); ++i) {
                full[i] = i == axis ? row : others[k++];
            }
            return worlds_[cell_index(full)];
        });
    }

    /// The sub-object keeping only the listed indices of one axis, in the listed order.
    CartesianObject restrict_axis(std::size_t axis, const std::vector<std::size_t>& kept) const {
        require_axis(axis, "CartesianObject::restrict_axis");
        if (kept.empty()) {
            throw config_error("CartesianObject::restrict_axis: no index of axis '" + axes_[axis].name +
                               "' is kept");
        }
        std::vector<bool> seen(axes_[axis].size, false);
        for (std::size_t index : kept) {
            if (index >= axes_[axis].size) {
                throw config_error("CartesianObject::restrict_axis: index " + std::to_string(index) + " of axis '" +
                                   axes_[axis].name + "' is out of range (size " +
                                   std::to_string(axes_[axis].size) + ")");
            }
            if (seen[index]) {
                throw config_error("CartesianObject::restrict_axis: index " + std::to_string(index) + " of axis '" +
                                   axes_[axis].name + "' is listed twice");
            }
            seen[index] = true;
        }
        std::vector<Axis> axes = axes_;
        axes[axis].size = kept.size();
        return from_function(std::move(axes), world_count_, [&](const std::vector<std::size_t>& coordinates) {
            std::vector<std::size_t> original = coordinates;
            original[axis] = kept[coordinates[axis]];
            return world(original);
        });
    }

    /// Fix axis `axis` at `index` and drop it.
    CartesianObject select(std::size_t axis, std::size_t index) const {
        require_axis(axis, "CartesianObject::select");
        if (axes_.size() < 2) {
            throw config_error("CartesianObject::select: selecting on the only axis would leave no axis");
        }
        if (index >= axes_[axis].size) {
            throw config_error("CartesianObject::select: index " + std::to_string(index) + " of axis '" +
                               axes_[axis].name + "' is out of range (size " + std::to_string(axes_[axis].size) +
                               ")");
        }
        std::vector<Axis> axes;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            if (i != axis) {
                axes.push_back(axes_[i]);
            }
        }
        return from_function(std::move(axes), world_count_, [&](const std::vector<std::size_t>& coordinates) {
            std::vector<std::size_t> original;
            original.reserve(axes_.size());
            for (std::size_t i = 0, k = 0; i < axes_.size(); ++i) {
                original.push_back(i == axis ? index : coordinates[k++]);
            }
            return world(original);
        });
    }

    void require_axis(std::size_t axis, const std::string& what) const {
        if (axis >= axes_.size()) {
            throw config_error(what + ": axis " + std::to_string(axis) + " is out of range (" +
                               std::to_string(axes_.size()) + " axes)");
        }
    }

private:
    /// Shape only; used by the named constructors before the worlds are known.
    explicit CartesianObject(std::vector<Axis> axes) : axes_(std::move(axes)) { validate_axes(); }

    void validate_axes() {
        if (axes_.empty()) {
            throw config_error("CartesianObject: an object needs at least one axis");
        }
        std::size_t environments = 0;
        std::size_t tokens = 0;
        cell_count_ = 1;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            const Axis& a = axes_[i];
            if (a.size == 0) {
                throw config_error("CartesianObject: axis '" + a.name + "' has size 0");
            }
            for (std::size_t j = 0; j < i; ++j) {
                if (axes_[j].name == a.name) {
                    throw config_error("CartesianObject: two axes are called '" + a.name + "'");
                }
            }
            environments += a.kind == AxisKind::environment ? 1 : 0;
            tokens += a.kind == AxisKind::token ? 1 : 0;
            if (cell_count_ > std::numeric_limits<std::size_t>::max() / a.size) {
                throw config_error("CartesianObject: the tensor (" + shape_text() + ") has too many cells");
            }
            cell_count_ *= a.size;
        }
        if (environments > 1 || tokens > 1) {
            throw config_error("CartesianObject: at most one environment axis and one token axis (got " +
                               std::to_string(environments) + " and " + std::to_string(tokens) + ")");
        }
    }

    std::string shape_text() const {
        std::string text;
        for (std::size_t i = 0; i < axes_.size(); ++i) {
            text += (i == 0 ? "" : " x ") + axes_[i].name + "[" + std::to_string(axes_[i].size) + "]";
        }
        return text;
    }

    std::string coordinates_text(const std::vector<std::size_t>& coordinates) const {
        std::string text = "(";
        for (std::size_t i = 0; i < coordinates.size(); ++i) {
            text += (i == 0 ? "" : ", ") + axes_[i].name + " = " + std::to_string(coordinates[i]);
        }
        return text + ")";
    }

    std::vector<Axis> axes_;
    std::size_t world_count_ = 0;
    std::vector<WorldId> worlds_;
    std::size_t cell_count_ = 1;
};

}  // namespace cartesian
}  // namespace sae
