#pragma once
/// \file communicator.hpp
/// The MPI layer of libsae (optional component, CMake target `sae::mpi`): an RAII
/// environment, an RAII communicator whose every call is checked, and the few
/// collectives the distributed trainers need, typed on the library's Scalars.
///
/// Errors: the communicator is switched to MPI_ERRORS_RETURN, and a failed call
/// throws `sae::mpi_error` naming the MPI function, what was being exchanged and the
/// rank, e.g. "MPI_Allreduce (gradient 'W_enc') failed on rank 1 of 3: ...".
/// A rank that dies is a different matter: MPI has no portable recovery, so the
/// launcher (mpirun, srun) ends the whole job; `run_ranks` (below) makes a rank that
/// throws end the job at once with its message, instead of leaving its peers blocked
/// in the next collective.
///
/// Counts: MPI counts are `int`. Element-wise collectives on larger arrays are split
/// into pieces of at most `max_message_elements`; the variable-size exchanges
/// (gather, all-gather) throw mpi_error when one rank's part exceeds INT_MAX elements.

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace sae {

/// An MPI call failed (or the ranks disagree about something that must be identical).
class mpi_error : public error {
public:
    using error::error;
};

namespace detail {

template <class T>
MPI_Datatype mpi_datatype();
template <>
inline MPI_Datatype mpi_datatype<float>() { return MPI_FLOAT; }
template <>
inline MPI_Datatype mpi_datatype<double>() { return MPI_DOUBLE; }
template <>
inline MPI_Datatype mpi_datatype<std::int64_t>() { return MPI_INT64_T; }
template <>
inline MPI_Datatype mpi_datatype<std::uint64_t>() { return MPI_UINT64_T; }
template <>
inline MPI_Datatype mpi_datatype<char>() { return MPI_CHAR; }
template <>
inline MPI_Datatype mpi_datatype<int>() { return MPI_INT; }

inline std::string mpi_error_text(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error code " + std::to_string(code);
    return std::string(text, static_cast<std::size_t>(length));
}

inline int checked_count(std::size_t count, const char* function, const std::string& what) {
    if (count > static_cast<std::size_t>(INT_MAX)) {
        throw mpi_error(std::string(function) + " (" + what + "): " + std::to_string(count) +
                        " elements exceed MPI's int count; exchange the data in blocks");
    }
    return static_cast<int>(count);
}

}  // namespace detail

/// MPI_Init_thread / MPI_Finalize for the lifetime of the object. If MPI is already
/// initialised (by the application or another library) it is left alone.
class MpiEnvironment {
public:
    MpiEnvironment(int& argc, char**& argv) {
        int initialised = 0;
        MPI_Initialized(&initialised);
        if (initialised) return;
        int provided = 0;
        // FUNNELED: OpenMP threads may compute, only the main thread calls MPI.
        const int code = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        if (code != MPI_SUCCESS) throw mpi_error("MPI_Init_thread failed: " + detail::mpi_error_text(code));
        owns_ = true;
    }
    MpiEnvironment(const MpiEnvironment&) = delete;
    MpiEnvironment& operator=(const MpiEnvironment&) = delete;
    ~MpiEnvironment() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (owns_ && !finalised) MPI_Finalize();
    }

private:
    bool owns_ = false;
};

/// What a communicator's collectives moved, for benchmarks and logs. `payload_bytes`
/// counts the data handed to each collective on this rank (an all-reduce of N bytes
/// counts N, whatever algorithm MPI uses; an all-gather counts the bytes received).
struct CommunicationStats {
    std::size_t calls = 0;
    std::size_t payload_bytes = 0;
    double seconds = 0.0;  ///< wall time inside MPI calls (includes waiting for other ranks)
};

/// A checked, RAII MPI communicator. Like any library, it works on its own duplicate
/// of the communicator it is given (MPI_Comm_dup), so its messages cannot mix with the
/// application's and its error handler (MPI_ERRORS_RETURN) does not change the
/// application's communicator; the duplicate is freed on destruction.
class Communicator {
public:
    /// Collective over `comm`: a duplicate of it (MPI_COMM_WORLD by default).
    explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) {
        const int code = MPI_Comm_dup(comm, &comm_);
        if (code != MPI_SUCCESS) throw mpi_error("MPI_Comm_dup failed: " + detail::mpi_error_text(code));
        owned_ = true;
        attach();
    }

    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;
    Communicator(Communicator&& other) noexcept
        : comm_(std::exchange(other.comm_, MPI_COMM_NULL)), owned_(std::exchange(other.owned_, false)),
          rank_(other.rank_), size_(other.size_), stats_(other.stats_) {}
    Communicator& operator=(Communicator&& other) noexcept {
        if (this != &other) {
            release();
            comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
            owned_ = std::exchange(other.owned_, false);
            rank_ = other.rank_;
            size_ = other.size_;
            stats_ = other.stats_;
        }
        return *this;
    }
    ~Communicator() { release(); }

    const CommunicationStats& stats() const { return stats_; }
    void reset_stats() const { stats_ = CommunicationStats{}; }

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    MPI_Comm handle() const { return comm_; }

    /// Collective: a new communicator of the ranks with the same `color`, ordered by `key`.
    Communicator split(int color, int key) const {
        MPI_Comm out = MPI_COMM_NULL;
        check(MPI_Comm_split(comm_, color, key, &out), "MPI_Comm_split", "color " + std::to_string(color));
        return Communicator(out, Adopt{});
    }

    void barrier(const std::string& what = "barrier") const { check(MPI_Barrier(comm_), "MPI_Barrier", what); }

    /// In place: data[i] = sum over ranks of data[i].
    template <class T>
    void allreduce_sum(T* data, std::size_t count, const std::string& what) const {
        allreduce(data, count, MPI_SUM, what);
    }
    template <class T>
    void allreduce_max(T* data, std::size_t count, const std::string& what) const {
        allreduce(data, count, MPI_MAX, what);
    }
    template <class T>
    void allreduce_min(T* data, std::size_t count, const std::string& what) const {
        allreduce(data, count, MPI_MIN, what);
    }
    template <class T>
    T sum(T value, const std::string& what) const {
        allreduce_sum(&value, 1, what);
        return value;
    }
    bool any(bool value, const std::string& what) const { return sum<int>(value ? 1 : 0, what) > 0; }

    /// In place: `data` on every rank becomes root's.
    template <class T>
    void broadcast(T* data, std::size_t count, int root, const std::string& what) const {
        const Timer timer(*this, count * sizeof(T));
        for (std::size_t done = 0; done < count;) {
            const std::size_t piece = std::min(count - done, max_message_elements);
            check(MPI_Bcast(data + done, static_cast<int>(piece), detail::mpi_datatype<T>(), root, comm_), "MPI_Bcast",
                  what);
            done += piece;
        }
    }

    /// Every rank's `local` concatenated in rank order, on every rank.
    template <class T>
    std::vector<T> allgather(const std::vector<T>& local, const std::string& what) const {
        std::vector<int> counts(static_cast<std::size_t>(size_));
        const int mine = detail::checked_count(local.size(), "MPI_Allgatherv", what);
        check(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather", what + " (sizes)");
        const std::vector<int> offsets = displacements(counts, "MPI_Allgatherv", what);
        std::vector<T> all(static_cast<std::size_t>(offsets.back() + counts.back()));
        const Timer timer(*this, all.size() * sizeof(T));
        check(MPI_Allgatherv(local.data(), mine, detail::mpi_datatype<T>(), all.data(), counts.data(), offsets.data(),
                             detail::mpi_datatype<T>(), comm_),
              "MPI_Allgatherv", what);
        return all;
    }

    /// Every rank's `local` on `root` (one vector per rank); empty elsewhere.
    template <class T>
    std::vector<std::vector<T>> gather(const std::vector<T>& local, int root, const std::string& what) const {
        std::vector<int> counts(static_cast<std::size_t>(size_));
        const int mine = detail::checked_count(local.size(), "MPI_Gatherv", what);
        check(MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm_), "MPI_Gather", what + " (sizes)");
        std::vector<int> offsets(counts.size(), 0);
        std::vector<T> all;
        const Timer timer(*this, local.size() * sizeof(T));
        if (rank_ == root) {
            offsets = displacements(counts, "MPI_Gatherv", what);
            all.resize(static_cast<std::size_t>(offsets.back() + counts.back()));
        }
        check(MPI_Gatherv(local.data(), mine, detail::mpi_datatype<T>(), all.data(), counts.data(), offsets.data(),
                          detail::mpi_datatype<T>(), root, comm_),
              "MPI_Gatherv", what);
        std::vector<std::vector<T>> parts;
        if (rank_ == root) {
            for (std::size_t r = 0; r < counts.size(); ++r) {
                parts.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + counts[r]);
            }
        }
        return parts;
    }

    /// Ends every rank of the job (MPI_Abort); for a rank that cannot continue.
    [[noreturn]] void abort(int code) const {
        MPI_Abort(comm_, code);
        std::terminate();  // MPI_Abort does not return; this keeps [[noreturn]] honest
    }

    /// Largest piece of one element-wise collective (MPI counts are int).
    static constexpr std::size_t max_message_elements = std::size_t{1} << 30;

private:
    struct Adopt {};
    /// Takes ownership of `comm` (a communicator this class created).
    Communicator(MPI_Comm comm, Adopt) : comm_(comm), owned_(true) { attach(); }

    void attach() {
        if (comm_ == MPI_COMM_NULL) throw mpi_error("Communicator: MPI_COMM_NULL");
        check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", "communicator set-up");
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", "communicator set-up");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", "communicator set-up");
    }

    void release() noexcept {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (owned_ && comm_ != MPI_COMM_NULL && !finalised) MPI_Comm_free(&comm_);
        comm_ = MPI_COMM_NULL;
        owned_ = false;
    }

    /// Adds one collective's bytes and duration to stats_.
    class Timer {
    public:
        Timer(const Communicator& comm, std::size_t bytes) : comm_(comm), start_(std::chrono::steady_clock::now()) {
            ++comm_.stats_.calls;
            comm_.stats_.payload_bytes += bytes;
        }
        Timer(const Timer&) = delete;
        Timer& operator=(const Timer&) = delete;
        ~Timer() {
            comm_.stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        }

    private:
        const Communicator& comm_;
        std::chrono::steady_clock::time_point start_;
    };

    template <class T>
    void allreduce(T* data, std::size_t count, MPI_Op op, const std::string& what) const {
        const Timer timer(*this, count * sizeof(T));
        for (std::size_t done = 0; done < count;) {
            const std::size_t piece = std::min(count - done, max_message_elements);
            check(MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(piece), detail::mpi_datatype<T>(), op, comm_),
                  "MPI_Allreduce", what);
            done += piece;
        }
    }

    static std::vector<int> displacements(const std::vector<int>& counts, const char* function, const std::string& what) {
        std::vector<int> offsets(counts.size(), 0);
        std::size_t total = 0;
        for (std::size_t r = 0; r < counts.size(); ++r) {
            offsets[r] = detail::checked_count(total, function, what + " (total)");
            total += static_cast<std::size_t>(counts[r]);
        }
        detail::checked_count(total, function, what + " (total)");
        return offsets;
    }

    void check(int code, const char* function, const std::string& what) const {
        if (code == MPI_SUCCESS) return;
        throw mpi_error(std::string(function) + " (" + what + ") failed on rank " + std::to_string(rank_) + " of " +
                        std::to_string(size_) + ": " + detail::mpi_error_text(code));
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    bool owned_ = false;
    int rank_ = 0;
    int size_ = 1;
    mutable CommunicationStats stats_;
};

/// Runs `body(world)` on this rank; an exception that leaves it is printed as
/// "rank R of P: <type>: <message>" on stderr and ends the whole job (MPI_Abort with
/// code 1), so that the other ranks do not wait forever in their next collective.
/// Returns body's exit code otherwise.
template <class Body>
int run_ranks(int& argc, char**& argv, Body&& body) {
    MpiEnvironment environment(argc, argv);
    Communicator world;
    try {
        return body(world);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d of %d: error: %s\n", world.rank(), world.size(), e.what());
        std::fflush(stderr);
        world.abort(1);
    }
}

}  // namespace sae
