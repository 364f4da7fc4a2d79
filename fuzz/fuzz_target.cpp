// One libFuzzer target per parser: built once per driver in fuzz/drivers/ with
// SAE_FUZZ_DRIVER_HEADER and SAE_FUZZ_DRIVER set (fuzz/CMakeLists.txt). An input is a
// bundle (tests/support/mutations.hpp): the parser's files joined by the separator. The
// only acceptable outcomes are success and a sae::error; any other exception escapes
// and libFuzzer reports it (as it reports crashes, sanitizer findings, timeouts, leaks
// and allocations over -malloc_limit_mb).
#include SAE_FUZZ_DRIVER_HEADER
#include "../tests/support/mutations.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

const sae::fuzz::Driver& driver() {
    static const sae::fuzz::Driver d = sae::fuzz::SAE_FUZZ_DRIVER();
    return d;
}

sae::fuzz::Workspace& workspace() {
    static sae::fuzz::Workspace ws(driver().name);
    return ws;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    workspace().set_files(driver().slots, sae::test::mutation::split_parts(bytes));
    try {
        driver().run(workspace());
    } catch (const sae::error& e) {
        // SAE_FUZZ_VERBOSE=1: say why an input was rejected (when replaying one).
        static const bool verbose = std::getenv("SAE_FUZZ_VERBOSE") != nullptr;
        if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
    }
    return 0;
}

// Mutates one file of the bundle at a time, so the separators (the structure) survive:
// mostly with libFuzzer's own mutator, sometimes with the engine the CI test uses.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    namespace mutation = sae::test::mutation;
    std::vector<std::string> parts = mutation::split_parts(std::string_view(reinterpret_cast<const char*>(data), size));
    parts.resize(std::max(parts.size(), driver().slots.size()));
    mutation::Mutator mutator(seed);
    const std::size_t overhead = (parts.size() - 1) * mutation::part_separator.size();
    const std::size_t budget = max_size > overhead ? max_size - overhead : 0;
    if (mutator.random().percent(25)) {
        parts = mutator.mutate_parts(std::move(parts), {}, budget);
    } else {
        std::size_t slot = mutator.random().below(parts.size());
        for (std::size_t tries = 0; parts[slot].empty() && tries < 4; ++tries) slot = mutator.random().below(parts.size());
        std::string& part = parts[slot];
        if (part.empty()) part = mutator.mutate(std::string(), {}, budget);  // a new file: give it bytes first
        std::size_t others = 0;
        for (const std::string& p : parts) others += p.size();
        others -= part.size();
        const std::size_t room = budget > others ? budget - others : part.size();
        const std::size_t old_size = part.size();
        part.resize(std::max(room, old_size));
        if (old_size > 0) part.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(part.data()), old_size, part.size()));
    }
    while (parts.size() > 1 && parts.back().empty()) parts.pop_back();
    std::string bundle = mutation::join_parts(parts);
    if (bundle.size() > max_size) bundle.resize(max_size);
    std::memcpy(data, bundle.data(), bundle.size());
    return bundle.size();
}
