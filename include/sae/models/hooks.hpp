#pragma once
/// \file hooks.hpp
/// Callbacks attached to hook points of a forward pass, and a cache of activations.
///
///   Hooks<Scalar>
///     read(point or name, fn)      fn(const Matrix<Scalar>& activation) sees the activation
///     replace(point or name, fn)   fn(Matrix<Scalar>& activation) may overwrite it in place;
///                                  the rest of the pass uses the new values (how an SAE
///                                  reconstruction is spliced in). The shape must stay:
///                                  shape_error naming the hook point otherwise.
///     Several callbacks at one point run in registration order. Names are parsed on
///     registration (config_error for an unknown one); layers are checked against the
///     model when it runs.
///   ActivationCache<Scalar>        activations by hook point; at(name) accepts any name
///                                  HookPoint::parse accepts; config_error for one not cached.
/// Layouts of each hook's matrix: hook_point.hpp.

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "hook_point.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sae::models {

template <class Scalar>
class Hooks {
public:
    using Reader = std::function<void(const Matrix<Scalar>&)>;
    using Editor = std::function<void(Matrix<Scalar>&)>;

    Hooks& read(const HookPoint& point, Reader fn) {
        entries_.push_back(Entry{point, std::move(fn), nullptr});
        return *this;
    }
    Hooks& read(const std::string& name, Reader fn) { return read(HookPoint::parse(name), std::move(fn)); }

    Hooks& replace(const HookPoint& point, Editor fn) {
        entries_.push_back(Entry{point, nullptr, std::move(fn)});
        return *this;
    }
    Hooks& replace(const std::string& name, Editor fn) { return replace(HookPoint::parse(name), std::move(fn)); }

    bool empty() const { return entries_.empty(); }

    bool has(const HookPoint& point) const {
        for (const Entry& e : entries_) {
            if (e.point == point) return true;
        }
        return false;
    }

    /// The registered point that the forward pass reaches last; empty when there is none.
    std::optional<HookPoint> last() const {
        std::optional<HookPoint> latest;
        for (const Entry& e : entries_) {
            if (!latest || *latest < e.point) latest = e.point;
        }
        return latest;
    }

    /// config_error for a point whose block a model with n_layer blocks lacks.
    void check_layers(int n_layer) const {
        for (const Entry& e : entries_) e.point.check_layer(n_layer);
    }

    /// Runs the callbacks registered at `point` on `activation`.
    void apply(const HookPoint& point, Matrix<Scalar>& activation) const {
        for (const Entry& e : entries_) {
            if (e.point != point) continue;
            if (e.reader) {
                e.reader(activation);
                continue;
            }
            const Index rows = activation.rows(), cols = activation.cols();
            e.editor(activation);
            if (activation.rows() != rows || activation.cols() != cols) {
                throw shape_error("hook '" + point.name() + "': the replacement has shape [" +
                                  std::to_string(activation.rows()) + ", " + std::to_string(activation.cols()) +
                                  "] but the activation is [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                  "]");
            }
        }
    }

private:
    struct Entry {
        HookPoint point;
        Reader reader;
        Editor editor;
    };
    std::vector<Entry> entries_;
};

/// Activations recorded by a forward pass, by hook point.
template <class Scalar>
class ActivationCache {
public:
    void store(const HookPoint& point, Matrix<Scalar> activation) { entries_[point.name()] = std::move(activation); }

    bool contains(const HookPoint& point) const { return entries_.count(point.name()) != 0; }

    const Matrix<Scalar>& at(const HookPoint& point) const {
        const auto it = entries_.find(point.name());
        if (it == entries_.end()) {
            throw config_error("activation cache: hook point '" + point.name() + "' was not recorded (recorded: " +
                               recorded_names() + ")");
        }
        return it->second;
    }
    const Matrix<Scalar>& at(const std::string& name) const { return at(HookPoint::parse(name)); }

    /// Canonical names of the recorded points, sorted by name.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& entry : entries_) out.push_back(entry.first);
        return out;
    }

private:
    std::string recorded_names() const {
        std::string text;
        for (const auto& entry : entries_) text += (text.empty() ? "" : ", ") + entry.first;
        return text.empty() ? "none" : text;
    }

    std::map<std::string, Matrix<Scalar>> entries_;
};

}  // namespace sae::models
