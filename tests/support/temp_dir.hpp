#pragma once
// A temporary directory for file tests, removed with everything in it, plus the two
// byte-level file helpers the I/O tests share.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace sae::test {

inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class TempDir {
public:
    explicit TempDir(const std::string& tag = "test") {
        static int counter = 0;
        path_ = (std::filesystem::temp_directory_path() /
                 ("sae_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
                    .string();
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    /// The directory itself.
    const std::string& path() const { return path_; }
    /// The path of `name` inside it.
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    /// Writes `bytes` to `name` (creating sub-directories) and returns its path.
    std::string file(const std::string& name, const std::string& bytes) const {
        const std::filesystem::path target = std::filesystem::path(path_) / name;
        std::filesystem::create_directories(target.parent_path());
        write_bytes(target.string(), bytes);
        return target.string();
    }

private:
    std::string path_;
};

}  // namespace sae::test
