#pragma once
// The mutation engine shared by tests/test_parser_mutations.cpp (a deterministic,
// bounded mutation test of every parser) and the libFuzzer targets in fuzz/ (their
// custom mutator and their seed handling): one engine, so that what CI tries and what
// the fuzzers explore are the same kinds of damage.
//
// Inputs and seeds. A parser that reads several files together (cfg.json + weights, a
// .set + its .fdt, vocab.json + merges.txt, ...) takes a *bundle*: the files in a fixed
// order (the parser's slots), joined by `part_separator`. An empty part is a missing
// file. A single-file parser's bundle is the file itself. Seeds live in
// tests/fixtures/mutations/<parser>/ (fuzz/make_seeds.py writes them): one file per seed,
// or one directory per seed holding the slot files.
//
// Mutations (each input gets 1 to 4 of them, stacked): bit flips; a byte set to 0, 0xFF
// or another boundary value; a little-endian 16/32/64-bit boundary value written over
// the bytes at a random offset (size fields: offset 0 is favoured); an ASCII decimal
// number in the text replaced by a huge, negative, fractional or non-numeric one (JSON
// shapes, EDF header fields, npy shapes); truncation; erasure, duplication and insertion
// of chunks; insertion of a syntax token (brackets, quotes, separators, escape
// sequences, control and non-UTF-8 bytes); a short chunk repeated 70 to 400 times
// (nesting past the readers' limits, long runs); a splice of this input's head with a donor seed's tail.
// A bundle is changed in one part (sometimes two), or a part is taken from another
// seed's bundle, or dropped.
//
// Determinism: SplitMix64 and arithmetic on its output only (no std:: distributions,
// whose results differ between standard libraries), so a (seed, index) pair names the
// same input on every machine.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sae::test::mutation {

/// Joins the files of a bundle; NUL bytes keep it out of any text file.
inline constexpr std::string_view part_separator{"\0SAE-FUZZ-NEXT-FILE\0", sizeof("\0SAE-FUZZ-NEXT-FILE\0") - 1};

inline std::vector<std::string> split_parts(std::string_view bundle) {
    std::vector<std::string> parts;
    for (std::size_t begin = 0;;) {
        const std::size_t found = bundle.find(part_separator, begin);
        if (found == std::string_view::npos) {
            parts.emplace_back(bundle.substr(begin));
            return parts;
        }
        parts.emplace_back(bundle.substr(begin, found - begin));
        begin = found + part_separator.size();
    }
}

inline std::string join_parts(const std::vector<std::string>& parts) {
    std::string bundle;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) bundle += part_separator;
        bundle += parts[i];
    }
    return bundle;
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same sequence everywhere.
class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n) (n > 0; the modulo bias is irrelevant here).
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    bool percent(unsigned p) { return below(100) < p; }

private:
    std::uint64_t state_;
};

/// What mutate() may do (see the file comment).
enum class Operation {
    flip_bits,
    set_byte,
    boundary_integer,
    replace_number,
    truncate,
    erase_chunk,
    duplicate_chunk,
    insert_random_bytes,
    insert_token,
    repeat_chunk,
    splice,
    count
};

class Mutator {
public:
    explicit Mutator(std::uint64_t seed) : random_(seed) {}

    Random& random() { return random_; }

    /// `input` after 1 to 4 operations, at most `max_size` bytes long. `donors` (other
    /// inputs of the same format) feed the splices; it may be empty.
    std::string mutate(std::string input, const std::vector<std::string>& donors, std::size_t max_size) {
        const std::size_t steps = 1 + random_.below(4);
        for (std::size_t s = 0; s < steps; ++s) {
            apply(static_cast<Operation>(random_.below(static_cast<std::size_t>(Operation::count))), input, donors);
        }
        if (input.size() > max_size) input.resize(max_size);
        return input;
    }

    /// A bundle after one change (see the file comment); `donors` are other bundles of the
    /// same parser (same slots).
    std::vector<std::string> mutate_parts(std::vector<std::string> parts, const std::vector<std::vector<std::string>>& donors,
                                          std::size_t max_part_size) {
        const std::size_t roll = random_.below(100);
        if (parts.size() > 1 && roll < 5) {  // a file goes missing
            parts[random_.below(parts.size())].clear();
            return parts;
        }
        if (parts.size() > 1 && roll < 12 && !donors.empty()) {  // a file from another seed
            const std::vector<std::string>& donor = donors[random_.below(donors.size())];
            const std::size_t slot = random_.below(parts.size());
            parts[slot] = slot < donor.size() ? donor[slot] : std::string();
            return parts;
        }
        const std::size_t changes = parts.size() > 1 && roll < 25 ? 2 : 1;
        for (std::size_t c = 0; c < changes; ++c) {
            const std::size_t slot = pick_slot(parts);
            std::vector<std::string> same_slot;
            for (const std::vector<std::string>& donor : donors) {
                if (slot < donor.size() && !donor[slot].empty()) same_slot.push_back(donor[slot]);
            }
            parts[slot] = mutate(std::move(parts[slot]), same_slot, max_part_size);
        }
        return parts;
    }

private:
    /// A non-empty part, mostly (a missing file mutated is a new file made from nothing).
    std::size_t pick_slot(const std::vector<std::string>& parts) {
        std::vector<std::size_t> present;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            if (!parts[i].empty()) present.push_back(i);
        }
        if (present.empty() || random_.percent(3)) return random_.below(parts.size());
        return present[random_.below(present.size())];
    }

    std::size_t position(const std::string& s) { return random_.below(s.size() + 1); }

    /// A chunk [begin, begin + length) of `s`, at most 64 bytes, favouring short ones.
    std::pair<std::size_t, std::size_t> chunk(const std::string& s) {
        const std::size_t begin = random_.below(s.size());
        const std::size_t limit = std::min<std::size_t>(s.size() - begin, random_.percent(70) ? 8 : 64);
        return {begin, 1 + random_.below(limit)};
    }

    void apply(Operation op, std::string& s, const std::vector<std::string>& donors) {
        static constexpr std::array<unsigned char, 9> boundary_bytes{0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x20, 0x30, 0x39};
        static constexpr std::array<std::uint64_t, 16> boundary_words{
            0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            0x100000000ULL, 100'000'001ULL, 0x7FFFFFFFFFFFFFFFULL, 0x8000000000000000ULL, ~0ULL};
        static constexpr std::array<const char*, 18> numbers{
            "0", "-1", "1", "-0", "2147483648", "4294967296", "9223372036854775807", "18446744073709551616",
            "99999999999999999999999999", "1e308", "1e999", "-1e999", "3.5", "0.0", "1e-320", "NaN", "65536", "-9223372036854775809"};
        static constexpr std::array<const char*, 30> tokens{
            "{", "}", "[", "]", "\"", "'", ",", ":", "null", "true", "false", "-", "\\u0000", "\\ud800", "\\", "\n", "\t", "\r\n",
            "\x14", "\x15", "(", ")", " ", "1e5", "#version: 0.2", "//", "/*", "\xC3", "\xFF", "\xF0\x9F\x98"};
        switch (op) {
            case Operation::flip_bits: {
                if (s.empty()) return;
                for (std::size_t n = 1 + random_.below(3); n-- > 0;) s[random_.below(s.size())] ^= static_cast<char>(1u << random_.below(8));
                return;
            }
            case Operation::set_byte: {
                if (s.empty()) return;
                s[random_.below(s.size())] = static_cast<char>(boundary_bytes[random_.below(boundary_bytes.size())]);
                return;
            }
            case Operation::boundary_integer: {
                static constexpr std::array<std::size_t, 4> widths{1, 2, 4, 8};
                const std::size_t width = widths[random_.below(widths.size())];
                if (s.size() < width) return;
                // Size fields sit at the start of many headers (safetensors, npy, MAT tags).
                const std::size_t at = random_.percent(25) ? random_.below(std::min<std::size_t>(s.size() - width, 16) + 1)
                                                           : random_.below(s.size() - width + 1);
                std::uint64_t value = boundary_words[random_.below(boundary_words.size())];
                if (random_.percent(20)) value -= 1 + random_.below(2);
                for (std::size_t k = 0; k < width; ++k) s[at + k] = static_cast<char>((value >> (8 * k)) & 0xFFu);
                return;
            }
            case Operation::replace_number: {
                // A random run of ASCII digits (with an optional leading '-') replaced.
                std::vector<std::size_t> starts;
                for (std::size_t i = 0; i < s.size(); ++i) {
                    const bool digit = s[i] >= '0' && s[i] <= '9';
                    const bool after_digit = i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9';
                    if (digit && !after_digit) starts.push_back(i);
                }
                if (starts.empty()) return;
                const std::size_t begin = starts[random_.below(starts.size())];
                std::size_t end = begin;
                while (end < s.size() && ((s[end] >= '0' && s[end] <= '9') || s[end] == '.')) ++end;
                s.replace(begin, end - begin, numbers[random_.below(numbers.size())]);
                return;
            }
            case Operation::truncate: {
                if (!s.empty()) s.resize(random_.below(s.size()));
                return;
            }
            case Operation::erase_chunk: {
                if (s.empty()) return;
                const auto [begin, length] = chunk(s);
                s.erase(begin, length);
                return;
            }
            case Operation::duplicate_chunk: {
                if (s.empty()) return;
                const auto [begin, length] = chunk(s);
                s.insert(position(s), s.substr(begin, length));
                return;
            }
            case Operation::insert_random_bytes: {
                std::string bytes(1 + random_.below(8), '\0');
                for (char& c : bytes) c = static_cast<char>(random_.next() & 0xFFu);
                s.insert(position(s), bytes);
                return;
            }
            case Operation::insert_token: {
                s.insert(position(s), tokens[random_.below(tokens.size())]);
                return;
            }
            case Operation::repeat_chunk: {
                if (s.empty()) return;
                const std::size_t begin = random_.below(s.size());
                const std::string unit = s.substr(begin, 1 + random_.below(std::min<std::size_t>(4, s.size() - begin)));
                std::string run;
                for (std::size_t n = 70 + random_.below(330); n-- > 0;) run += unit;  // past every nesting limit
                s.insert(begin, run);
                return;
            }
            case Operation::splice: {
                if (donors.empty()) return;
                const std::string& donor = donors[random_.below(donors.size())];
                s = s.substr(0, position(s)) + donor.substr(random_.below(donor.size() + 1));
                return;
            }
            case Operation::count: return;
        }
    }

    Random random_;
};

inline std::string read_file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

/// One seed of a parser: its name and its files in slot order ("" = absent).
struct Seed {
    std::string name;
    std::vector<std::string> parts;
};

/// Every seed in `directory` (see the file comment), sorted by name.
inline std::vector<Seed> load_seeds(const std::filesystem::path& directory, const std::vector<std::string>& slots) {
    std::vector<Seed> seeds;
    for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator(directory)) {
        Seed seed{entry.path().filename().string(), std::vector<std::string>(slots.size())};
        if (entry.is_directory()) {
            for (std::size_t i = 0; i < slots.size(); ++i) {
                const std::filesystem::path file = entry.path() / slots[i];
                if (std::filesystem::exists(file)) seed.parts[i] = read_file_bytes(file);
            }
        } else {
            seed.parts[0] = read_file_bytes(entry.path());
        }
        seeds.push_back(std::move(seed));
    }
    std::sort(seeds.begin(), seeds.end(), [](const Seed& a, const Seed& b) { return a.name < b.name; });
    return seeds;
}

}  // namespace sae::test::mutation
