#pragma once
/// \file arguments.hpp
/// Command-line parsing for the `sae` tool and the examples: `--name value`,
/// `--name=value`, flags and positional arguments, checked against the options a
/// program declares. Every value is parsed strictly (the whole text must be the number,
/// in range), so `--batch 1e3` or `--lr fast` is an error naming the option and the
/// text, not a silent 1 or a stray std::invalid_argument.
///
///   Arguments args(argc, argv, first, {{"lr", true}, {"paper", false}}, "eeg_mfr");
///   if (args.help()) ...                        -h / --help was given
///   args.flag("paper")                          a flag (or valued option) was given
///   args.get("out", "default")                  the last value of an option, or the fallback
///   args.integer("batch", 1024, 1)              checked integer >= minimum
///   args.real("lr", 1e-3)                       checked finite real
///   args.choice("matching", Mode::a, {{"a", Mode::a}, {"b", Mode::b}})
///   args.all("text")                            every value of a repeatable option
///   args.items("only", {"a", "b"})              a comma-separated list (empty items refused)
///   args.reals("budgets", {16, 32})             a comma-separated list of finite reals
///   args.positional()                           the arguments that are not options
///
/// Misuse throws `usage_error`, a config_error (the `sae` tool exits with status 2 on
/// it). Asking for an option the program did not declare is a programming error and
/// throws std::logic_error, so a typo in a name cannot silently return the fallback.

#include "../core/error.hpp"

#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sae::cli {

/// The command line was wrong (unknown option, missing or malformed value).
class usage_error : public config_error {
public:
    using config_error::config_error;
};

struct OptionSpec {
    std::string name;  ///< without the leading "--"
    bool takes_value;
};

class Arguments {
public:
    /// Parses argv[first..argc); `specs` lists the program's options; `program` starts
    /// every message.
    Arguments(int argc, char** argv, int first, const std::vector<OptionSpec>& specs, std::string program)
        : program_(std::move(program)) {
        for (const OptionSpec& spec : specs) known_[spec.name] = spec.takes_value;
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
            const auto found = known_.find(name);
            if (found == known_.end()) throw usage_error(program_ + ": unknown option --" + name);
            if (found->second && !inline_value) {
                if (i + 1 >= argc) throw usage_error(program_ + ": option --" + name + " needs a value");
                value = argv[++i];
            } else if (!found->second && inline_value) {
                throw usage_error(program_ + ": option --" + name + " takes no value");
            }
            values_[name].push_back(value);
        }
    }

    bool help() const { return help_; }
    bool flag(const std::string& name) const { return values_.count(declared(name)) != 0; }
    const std::vector<std::string>& positional() const { return positional_; }

    std::string get(const std::string& name, const std::string& fallback) const {
        const auto found = values_.find(declared(name));
        return found == values_.end() ? fallback : found->second.back();
    }
    std::string require(const std::string& name) const {
        const auto found = values_.find(declared(name));
        if (found == values_.end()) throw usage_error(program_ + ": --" + name + " is required");
        return found->second.back();
    }
    /// Every value of a repeatable option (--data a.npy --data b.npy), in order.
    std::vector<std::string> all(const std::string& name) const {
        const auto found = values_.find(declared(name));
        return found == values_.end() ? std::vector<std::string>{} : found->second;
    }

    /// The option's value split at commas, or the fallback when absent.
    std::vector<std::string> items(const std::string& name, std::vector<std::string> fallback) const {
        const auto found = values_.find(declared(name));
        if (found == values_.end()) return fallback;
        const std::string& text = found->second.back();
        std::vector<std::string> out;
        for (std::size_t start = 0;;) {
            const std::size_t comma = text.find(',', start);
            out.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
            if (out.back().empty()) throw usage_error(program_ + ": --" + name + " = '" + text + "' has an empty item");
            if (comma == std::string::npos) return out;
            start = comma + 1;
        }
    }

    /// The option as a comma-separated list of finite reals, or the fallback when absent.
    std::vector<double> reals(const std::string& name, std::vector<double> fallback) const {
        if (!flag(name)) return fallback;
        std::vector<double> out;
        for (const std::string& item : items(name, {})) out.push_back(parse_real(name, item));
        return out;
    }

    /// The option as a whole decimal integer >= minimum, or the fallback when absent.
    std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t minimum) const {
        const auto found = values_.find(declared(name));
        if (found == values_.end()) return fallback;
        const std::string& text = found->second.back();
        std::size_t used = 0;
        std::int64_t value = 0;
        try {
            value = std::stoll(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || text.empty()) throw usage_error(program_ + ": --" + name + " = '" + text + "' is not an integer");
        if (value < minimum) {
            throw usage_error(program_ + ": --" + name + " = " + text + " must be >= " + std::to_string(minimum));
        }
        return value;
    }

    /// The option as a finite real number, or the fallback when absent.
    double real(const std::string& name, double fallback) const {
        const auto found = values_.find(declared(name));
        if (found == values_.end()) return fallback;
        return parse_real(name, found->second.back());
    }

    /// The option as one of the named values, or the fallback when absent.
    template <class Value>
    Value choice(const std::string& name, Value fallback, const std::vector<std::pair<std::string, Value>>& options) const {
        const auto found = values_.find(declared(name));
        if (found == values_.end()) return fallback;
        std::string names;
        for (const auto& [text, value] : options) {
            if (text == found->second.back()) return value;
            names += (names.empty() ? "" : " | ") + text;
        }
        throw usage_error(program_ + ": --" + name + " = '" + found->second.back() + "' is not one of " + names);
    }

private:
    double parse_real(const std::string& name, const std::string& text) const {
        std::size_t used = 0;
        double value = 0;
        try {
            value = std::stod(text, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != text.size() || text.empty() || !std::isfinite(value)) {
            throw usage_error(program_ + ": --" + name + " = '" + text + "' is not a finite number");
        }
        return value;
    }

    const std::string& declared(const std::string& name) const {
        if (known_.count(name) == 0) throw std::logic_error(program_ + ": option --" + name + " was never declared");
        return name;
    }

    std::string program_;
    std::map<std::string, bool> known_;
    std::map<std::string, std::vector<std::string>> values_;
    std::vector<std::string> positional_;
    bool help_ = false;
};

/// The exit status of a program whose main() caught an exception: call it inside a
/// catch block. Prints the message to stderr and returns
///   2 for a usage_error (its message already names the program),
///   2 for any other config_error (a bad setting), after "program: ",
///   1 for any other std::exception (or anything else), after "program: ".
/// The examples and benchmarks all end this way, so a script can tell a wrong
/// invocation (2) from a run that failed (1).
inline int exit_status_of_current_exception(const char* program) {
    try {
        throw;
    } catch (const usage_error& e) {
        std::cerr << e.what() << "\n";
        return 2;
    } catch (const config_error& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 1;
    } catch (...) {
        std::cerr << program << ": unknown error\n";
        return 1;
    }
}

/// A program's main(): returns body()'s status, or exit_status_of_current_exception's.
template <class Body>
int run_main(const char* program, Body&& body) {
    try {
        return body();
    } catch (...) {
        return exit_status_of_current_exception(program);
    }
}

}  // namespace sae::cli
