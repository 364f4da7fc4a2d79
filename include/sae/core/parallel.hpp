#pragma once
/// \file parallel.hpp
/// The one way libsae runs a loop on several threads: `parallel_for(count, body)` calls
/// body(i, slot) for every i in [0, count), spread over the OpenMP threads when libsae is
/// compiled with OpenMP (and run sequentially otherwise). `slot`, in
/// [0, available_threads()), names the thread running body(i), so that the body can use
/// per-thread scratch memory; two bodies running at the same time never share a slot.
///
/// Requires: body(i) and body(j) touch disjoint data for i != j (or only read shared
///           data), so that the result never depends on the number of threads; a
///           reduction writes one partial per i and the caller sums them in index order.
/// Ensures:  every body(i) has run when parallel_for returns or throws; the first
///           exception thrown by any body is then rethrown on the calling thread
///           (exceptions cannot leave an OpenMP region). Inside an enclosing parallel region the loop runs on the
///           calling thread only (no nested teams).

#include "types.hpp"

#include <exception>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sae::detail {

/// Threads a parallel_for started here would use.
inline int available_threads() {
#if defined(_OPENMP)
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

template <class Body>
void parallel_for(Index count, Body&& body) {
    if (count <= 0) return;
    // Every body runs even after one has thrown (on one thread as on many), so what a
    // failure leaves behind does not depend on the thread count.
    std::exception_ptr failure;
    const auto run = [&](Index i, int slot) {
        try {
            body(i, slot);
        } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(sae_parallel_for_failure)
#endif
            if (!failure) failure = std::current_exception();
        }
    };
    if (count == 1 || available_threads() == 1) {
        for (Index i = 0; i < count; ++i) run(i, 0);
    } else {
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1)
        for (Index i = 0; i < count; ++i) run(i, omp_get_thread_num());
#endif
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace sae::detail
