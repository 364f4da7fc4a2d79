#pragma once
/// \file arguments.hpp
/// Command-line parsing for the `sae` tool: `--name value`, `--name=value`, flags and
/// positional arguments, checked against the options a command declares. Misuse
/// throws `usage_error` (exit status 2); everything else is the library's sae::error
/// (exit status 1).

#include <sae/core/error.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace sae::cli {

/// The command line was wrong (unknown option, missing value): exit status 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct OptionSpec {
    std::string name;  ///< without the leading "--"
    bool takes_value;
};

class Arguments {
public:
    /// Parses argv[first..argc); `specs` lists the command's options.
    Arguments(int argc, char** argv, int first, const std::vector<OptionSpec>& specs, const std::string& command)
        : command_(command) {
        std::map<std::string, bool> known;
        for (const OptionSpec& spec : specs) known[spec.name] = spec.takes_value;
        for (int i = first; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "-h" || arg == "--help") {
                help_ = true;
                continue;
            }
            if (arg.rfind("--", 0) != 0 || arg == "--") {
                positional_.push_back(arg);
                continue;
            }
            std::string name = arg.substr(2), value;
            const std::size_t equals = name.find('=');
            const bool inline_value = equals != std::string::npos;
            if (inline_value) {
                value = name.substr(equals + 1);
                name = name.substr(0, equals);
            }
            const auto found = known.find(name);
            if (found == known.end()) throw usage_error(command_ + ": unknown option --" + name);
            if (found->second && !inline_value) {
                if (i + 1 >= argc) throw usage_error(command_ + ": option --" + name + " needs a value");
                value = argv[++i];
            } else if (!found->second && inline_value) {
                throw usage_error(command_ + ": option --" + name + " takes no value");
            }
            values_[name].push_back(value);
        }
    }

    bool help() const { return help_; }
    bool flag(const std::string& name) const { return values_.count(name) != 0; }
    const std::vector<std::string>& positional() const { return positional_; }

    std::string get(const std::string& name, const std::string& fallback) const {
        const auto found = values_.find(name);
        return found == values_.end() ? fallback : found->second.back();
    }
    std::string require(const std::string& name) const {
        const auto found = values_.find(name);
        if (found == values_.end()) throw usage_error(command_ + ": --" + name + " is required");
        return found->second.back();
    }
    /// Every value of a repeatable option (--data a.npy --data b.npy).
    std::vector<std::string> all(const std::string& name) const {
        const auto found = values_.find(name);
        return found == values_.end() ? std::vector<std::string>{} : found->second;
    }
    std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t minimum) const {
        const auto found = values_.find(name);
        if (found == values_.end()) return fallback;
        const std::string& text = found->second.back();
        std::size_t used = 0;
        std::int64_t value = 0;
        try {
            value = std::stoll(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || text.empty()) throw usage_error(command_ + ": --" + name + " = '" + text + "' is not an integer");
        if (value < minimum) {
            throw usage_error(command_ + ": --" + name + " = " + text + " must be >= " + std::to_string(minimum));
        }
        return value;
    }

private:
    std::string command_;
    std::map<std::string, std::vector<std::string>> values_;
    std::vector<std::string> positional_;
    bool help_ = false;
};

}  // namespace sae::cli
