#pragma once
/// \file file.hpp
/// The file layer under every reader and writer of libsae.
///
///   MappedFile(path)            read-only memory map of a whole file (RAII). Pages are
///                               loaded on demand, so a 10 GB activation file costs only
///                               what is touched. An empty file maps to size() == 0.
///                               Throws io_error naming the path when it cannot be opened.
///   AtomicFileWriter(path)      writes to "<path>.tmp.<pid>.<n>" in the same directory;
///                               commit() flushes, fsyncs, renames over `path` and fsyncs
///                               the directory, so a reader (or a crash) sees either the
///                               old file or the complete new one, never a partial one.
///                               Destroyed without commit(), it removes the temporary.
///   write_file_atomically(path, bytes)   the one-call form.
///   read_whole_file(path)       small files (JSON configs): the bytes as a string.
///   has_extension(path, ".npy") whether the file name ends with that extension.
///   checked_product(a, b, what) a * b, or io_error naming `what` when it overflows; used
///                               wherever a file's header claims a size, so that a shape
///                               of 10^15 elements is rejected before any allocation.

#include "../core/error.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sae {

namespace detail {
inline std::string errno_text() { return std::strerror(errno); }

inline std::string parent_directory(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

/// Closes a POSIX descriptor on scope exit.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd = -1) noexcept : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    FileDescriptor& operator=(FileDescriptor&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~FileDescriptor() { reset(); }
    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};
}  // namespace detail

inline bool has_extension(const std::string& path, const std::string& extension) {
    return path.size() >= extension.size() &&
           path.compare(path.size() - extension.size(), extension.size(), extension) == 0;
}

/// a * b for sizes read from a file header; io_error("<what> overflows") past SIZE_MAX.
inline std::size_t checked_product(std::size_t a, std::size_t b, const std::string& what) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) {
        throw io_error(what + " overflows (" + std::to_string(a) + " * " + std::to_string(b) + ")");
    }
    return a * b;
}

class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path) : path_(path) {
        detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) throw io_error(path + ": cannot open for reading: " + detail::errno_text());
        struct stat info {};
        if (::fstat(fd.get(), &info) != 0) throw io_error(path + ": cannot stat: " + detail::errno_text());
        if (!S_ISREG(info.st_mode)) throw io_error(path + ": not a regular file");
        size_ = static_cast<std::size_t>(info.st_size);
        if (size_ == 0) return;  // mmap of length 0 is an error; an empty map is fine
        void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
        if (address == MAP_FAILED) throw io_error(path + ": cannot memory-map: " + detail::errno_text());
        data_ = static_cast<const unsigned char*>(address);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    MappedFile(MappedFile&& other) noexcept
        : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    MappedFile& operator=(MappedFile&& other) noexcept {
        if (this != &other) {
            unmap();
            path_ = std::move(other.path_);
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ~MappedFile() { unmap(); }

    const unsigned char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }

    /// Tells the kernel the range [offset, offset + length) will be read in order
    /// (readahead) or is no longer needed (lets it drop the pages), keeping the resident
    /// set of a streaming reader bounded. Advisory: failures are ignored.
    void advise_sequential(std::size_t offset, std::size_t length) const noexcept { advise(offset, length, MADV_SEQUENTIAL); }
    void advise_done(std::size_t offset, std::size_t length) const noexcept { advise(offset, length, MADV_DONTNEED); }

private:
    void advise(std::size_t offset, std::size_t length, int advice) const noexcept {
        if (data_ == nullptr || offset >= size_) return;
        const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        const std::size_t start = offset / page * page;  // madvise needs a page-aligned start
        const std::size_t end = std::min(size_, offset + length);
        ::madvise(const_cast<unsigned char*>(data_) + start, end - start, advice);
    }
    void unmap() noexcept {
        if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
        data_ = nullptr;
        size_ = 0;
    }

    std::string path_;
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

class AtomicFileWriter {
public:
    explicit AtomicFileWriter(std::string path) : path_(std::move(path)), temp_path_(make_temp_name(path_)) {
        fd_ = detail::FileDescriptor(::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd_.valid()) throw io_error(path_ + ": cannot create temporary file " + temp_path_ + ": " + detail::errno_text());
    }
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
    ~AtomicFileWriter() {
        if (!committed_) {
            fd_.reset();
            ::unlink(temp_path_.c_str());
        }
    }

    void write(const void* bytes, std::size_t count) {
        const char* p = static_cast<const char*>(bytes);
        while (count > 0) {
            const ::ssize_t n = ::write(fd_.get(), p, count);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw io_error(path_ + ": write failed: " + detail::errno_text());
            }
            p += n;
            count -= static_cast<std::size_t>(n);
        }
    }
    void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }

    /// fsync, rename over the destination, fsync the directory.
    void commit() {
        if (committed_) throw io_error(path_ + ": AtomicFileWriter::commit called twice");
        if (::fsync(fd_.get()) != 0) throw io_error(path_ + ": fsync failed: " + detail::errno_text());
        fd_.reset();
        if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
            const std::string reason = detail::errno_text();
            ::unlink(temp_path_.c_str());
            committed_ = true;
            throw io_error(path_ + ": cannot rename " + temp_path_ + " into place: " + reason);
        }
        committed_ = true;
        detail::FileDescriptor dir(::open(detail::parent_directory(path_).c_str(), O_RDONLY | O_CLOEXEC));
        if (dir.valid()) ::fsync(dir.get());  // best effort: some file systems refuse it
    }

    const std::string& path() const noexcept { return path_; }

private:
    static std::string make_temp_name(const std::string& path) {
        static std::atomic<unsigned> counter{0};
        return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    }

    std::string path_;
    std::string temp_path_;
    detail::FileDescriptor fd_;
    bool committed_ = false;
};

inline void write_file_atomically(const std::string& path, const std::string& bytes) {
    AtomicFileWriter writer(path);
    writer.write(bytes);
    writer.commit();
}

inline std::string read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path + ": cannot open for reading: " + detail::errno_text());
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) throw io_error(path + ": read failed");
    return buffer.str();
}

}  // namespace sae
