#pragma once
// What a parser driver is: the files one input consists of (its slots) and the function
// that hands them to the parser. Shared by the libFuzzer targets (fuzz/fuzz_target.cpp)
// and the CI mutation test (tests/test_parser_mutations.cpp), so both exercise a parser
// the same way.
//
// Contract of a driver's `run`: it reads the workspace's files (or their bytes) through
// the library's public reading functions, uses what they return (decodes every tensor,
// reads every signal, encodes text...) and checks the invariants the library documents
// (a round trip, decode(encode(x)) == x, ...). It may end in success or throw a
// sae::error; a broken invariant throws std::logic_error. Anything else a parser does on
// any input — another exception, a crash, a sanitizer report, a hang, a huge
// allocation — is a bug.

#include "sae/core/error.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace sae::fuzz {

/// A private directory holding the files of the current input. Files are written with
/// plain POSIX calls: the mutation test writes a hundred thousand of them.
class Workspace {
public:
    explicit Workspace(const std::string& tag) {
        const std::filesystem::path base = std::filesystem::temp_directory_path();
        for (unsigned attempt = 0;; ++attempt) {
            dir_ = (base / ("sae_fuzz_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(attempt))).string();
            std::error_code error;
            if (std::filesystem::create_directory(dir_, error)) break;
            if (attempt > 100) throw std::runtime_error("cannot create a workspace under " + base.string());
        }
    }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    const std::string& dir() const { return dir_; }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    /// Makes the directory hold exactly the non-empty parts, as the files named `slots`
    /// (a part beyond the slots is ignored; a missing or empty part is a missing file).
    /// Files a driver wrote itself are removed too.
    void set_files(const std::vector<std::string>& slots, const std::vector<std::string>& parts) {
        std::error_code ignored;
        for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator(dir_, ignored)) {
            std::filesystem::remove_all(entry.path(), ignored);
        }
        parts_.assign(slots.size(), std::string());
        for (std::size_t i = 0; i < slots.size() && i < parts.size(); ++i) {
            parts_[i] = parts[i];
            if (!parts[i].empty()) write(path(slots[i]), parts[i]);
        }
    }

    /// The bytes of slot `i` ("" when the file is missing).
    const std::string& part(std::size_t i) const { return parts_.at(i); }
    bool has(std::size_t i) const { return !parts_.at(i).empty(); }

private:
    static void write(const std::string& path, const std::string& bytes) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error("cannot write " + path);
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ::ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n <= 0) {
                ::close(fd);
                throw std::runtime_error("cannot write " + path);
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
    }

    std::string dir_;
    std::vector<std::string> parts_;
};

/// One parser under test.
struct Driver {
    const char* name;                  ///< corpus folder fuzz/corpus/<name>, seeds tests/fixtures/mutations/<name>
    std::vector<std::string> slots;    ///< file names, in bundle order
    void (*run)(const Workspace& ws);  ///< see the file comment
};

/// Throws std::logic_error (never a sae::error, so it is reported) when an invariant fails.
inline void require(bool holds, const std::string& what) {
    if (!holds) throw std::logic_error("invariant broken: " + what);
}

/// Runs `body`, swallowing the sae::error it may throw: for drivers that try several
/// reading functions on the same files, each independently.
template <class Body>
void attempt(Body&& body) {
    try {
        body();
    } catch (const sae::error&) {
    }
}

}  // namespace sae::fuzz
