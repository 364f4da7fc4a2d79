// sae::cli::Arguments, the command-line parser of the `sae` tool and the examples:
// every accepted form, and each way a command line can be wrong.

#include <sae/cli/arguments.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace test_arguments_cases {

using sae::cli::Arguments;
using sae::cli::usage_error;
using Catch::Matchers::Contains;

/// argv for `program args...` (Arguments only reads it; the strings outlive the call).
struct CommandLine {
    explicit CommandLine(std::vector<std::string> words) : storage(std::move(words)) {
        for (std::string& word : storage) pointers.push_back(word.data());
    }
    int argc() const { return static_cast<int>(pointers.size()); }
    char** argv() { return pointers.data(); }
    std::vector<std::string> storage;
    std::vector<char*> pointers;
};

const std::vector<sae::cli::OptionSpec> specs = {{"lr", true}, {"batch", true}, {"paper", false}, {"text", true},
                                                 {"mode", true}, {"budgets", true}, {"only", true}};

Arguments parse(std::vector<std::string> words) {
    words.insert(words.begin(), "prog");
    CommandLine line(std::move(words));
    return Arguments(line.argc(), line.argv(), 1, specs, "prog");
}

enum class Mode { fast, exact };

TEST_CASE("Arguments: values, flags, repeats, positionals and fallbacks") {
    const Arguments args = parse({"--lr", "0.25", "--batch=64", "--paper", "--text", "a.txt", "in.npy", "--text", "b.txt"});
    CHECK(args.real("lr", 1.0) == 0.25);
    CHECK(args.integer("batch", 1, 1) == 64);
    CHECK(args.flag("paper"));
    CHECK(args.all("text") == std::vector<std::string>{"a.txt", "b.txt"});
    CHECK(args.get("text", "") == "b.txt");  // the last value wins
    CHECK(args.positional() == std::vector<std::string>{"in.npy"});
    CHECK_FALSE(args.help());
    CHECK(args.choice("mode", Mode::exact, {{"fast", Mode::fast}, {"exact", Mode::exact}}) == Mode::exact);
    CHECK(args.reals("budgets", {1.0, 2.0}) == std::vector<double>{1.0, 2.0});
    CHECK(parse({"-h"}).help());
    CHECK(parse({"--mode", "fast"}).choice("mode", Mode::exact, {{"fast", Mode::fast}, {"exact", Mode::exact}}) == Mode::fast);
    CHECK(parse({"--budgets", "16,24.5,1e2"}).reals("budgets", {}) == std::vector<double>{16.0, 24.5, 100.0});
    CHECK(parse({"--only", "a,b"}).items("only", {}) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("Arguments: every malformed command line is a usage_error naming the option") {
    CHECK_THROWS_MATCHES(parse({"--nope"}), usage_error, Catch::Matchers::Message("prog: unknown option --nope"));
    CHECK_THROWS_WITH(parse({"--lr"}), "prog: option --lr needs a value");
    CHECK_THROWS_WITH(parse({"--paper=1"}), "prog: option --paper takes no value");
    CHECK_THROWS_WITH(parse({"--batch", "1e3"}).integer("batch", 1, 1), "prog: --batch = '1e3' is not an integer");
    CHECK_THROWS_WITH(parse({"--batch", "0"}).integer("batch", 1, 1), "prog: --batch = 0 must be >= 1");
    CHECK_THROWS_WITH(parse({"--batch", ""}).integer("batch", 1, 1), "prog: --batch = '' is not an integer");
    CHECK_THROWS_WITH(parse({"--lr", "fast"}).real("lr", 1.0), "prog: --lr = 'fast' is not a finite number");
    CHECK_THROWS_WITH(parse({"--lr", "0.1x"}).real("lr", 1.0), "prog: --lr = '0.1x' is not a finite number");
    CHECK_THROWS_WITH(parse({"--lr", "inf"}).real("lr", 1.0), "prog: --lr = 'inf' is not a finite number");
    CHECK_THROWS_WITH(parse({"--lr", "nan"}).real("lr", 1.0), "prog: --lr = 'nan' is not a finite number");
    CHECK_THROWS_WITH(parse({"--mode", "slow"}).choice("mode", Mode::fast, {{"fast", Mode::fast}, {"exact", Mode::exact}}),
                      "prog: --mode = 'slow' is not one of fast | exact");
    CHECK_THROWS_WITH(parse({"--budgets", "1,,2"}).reals("budgets", {}), "prog: --budgets = '1,,2' has an empty item");
    CHECK_THROWS_WITH(parse({"--budgets", "1,x"}).reals("budgets", {}), "prog: --budgets = 'x' is not a finite number");
    CHECK_THROWS_AS(parse({"--batch", "x"}).integer("batch", 1, 1), sae::config_error);  // usage errors are config errors
}

TEST_CASE("Arguments: asking for an undeclared option is a programming error, not a silent fallback") {
    const Arguments args = parse({});
    CHECK_THROWS_WITH(args.get("typo", "x"), Contains("--typo was never declared"));
    CHECK_THROWS_AS(args.integer("typo", 1, 0), std::logic_error);
    CHECK_THROWS_AS(args.flag("typo"), std::logic_error);
}

}  // namespace test_arguments_cases
