#pragma once
/// \file step_agreement.hpp
/// `StepAgreement`: makes every rank of a distributed step take the same path when
/// something fails on some of them.
///
/// A distributed step is a sequence of local work and collectives. If one rank threw
/// in its local work (a NaN loss in its rows, a non-finite gradient in its member) and
/// the others went on into the next collective, the job would hang or, worse, pair up
/// different collectives. So each local phase runs through `run`, which ends with a
/// small collective: if the phase failed anywhere, it throws everywhere — the lowest
/// failing rank its own exception, the others a numeric_error naming that rank.
///
/// The trainer (trainer.hpp) then classifies each rank's exception into a fault and
/// asks the model, through `agree_on_fault`, which fault the whole job handles: `agree`
/// returns the fault of the rank that failed (or, for faults the trainer found itself
/// — a non-finite value in one rank's rows, a diverged loss — the lowest rank that
/// found one), identical on every rank, so every rank applies the same policy: all
/// skip the batch, or all stop.

#include "../core/error.hpp"
#include "../core/numeric_faults.hpp"
#include "communicator.hpp"

#include <climits>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace sae {

class StepAgreement {
public:
    /// `comm` must outlive this object.
    explicit StepAgreement(const Communicator& comm) : comm_(&comm) {}

    /// Runs `work()`; collective. Throws on every rank when it threw a numeric_error on any.
    template <class Work>
    void run(const std::string& phase, Work&& work) {
        std::exception_ptr failure;
        try {
            work();
        } catch (const numeric_error&) {
            // Only numeric faults are agreed on: any other error ends its rank, and the
            // MPI launcher then ends the job.
            failure = std::current_exception();
        }
        int first_failed = failure ? comm_->rank() : INT_MAX;
        comm_->allreduce_min(&first_failed, 1, "failures of " + phase);
        if (first_failed == INT_MAX) return;
        failed_rank_ = first_failed;
        if (failure) std::rethrow_exception(failure);
        throw numeric_error(phase + " failed on rank " + std::to_string(first_failed) + " of " +
                            std::to_string(comm_->size()) + "; every rank stops this step with it");
    }

    /// The fault every rank handles for this step, given this rank's own (none, or the
    /// one the trainer found or classified here); collective.
    std::optional<NumericFault> agree(const std::optional<NumericFault>& local) {
        int source = failed_rank_;
        failed_rank_ = -1;
        if (source < 0) {
            source = local ? comm_->rank() : INT_MAX;
            comm_->allreduce_min(&source, 1, "numeric fault flags");
            if (source == INT_MAX) return std::nullopt;
        }
        // The source rank's fault, as numbers and one string, broadcast to everyone.
        std::uint64_t numbers[3] = {0, 0, 0};
        std::string text;
        if (comm_->rank() == source && local) {
            numbers[0] = static_cast<std::uint64_t>(local->kind);
            numbers[1] = local->step;
            numbers[2] = local->tensor.size();
            text = local->tensor + local->detail;
        }
        comm_->broadcast(numbers, 3, source, "numeric fault");
        std::uint64_t length = text.size();
        comm_->broadcast(&length, 1, source, "numeric fault text length");
        std::vector<char> characters(text.begin(), text.end());
        characters.resize(static_cast<std::size_t>(length));
        if (length > 0) comm_->broadcast(characters.data(), characters.size(), source, "numeric fault text");
        NumericFault fault;
        fault.kind = static_cast<FaultKind>(numbers[0]);
        fault.step = static_cast<std::size_t>(numbers[1]);
        const std::size_t tensor_length = std::min<std::size_t>(static_cast<std::size_t>(numbers[2]), characters.size());
        fault.tensor.assign(characters.begin(), characters.begin() + static_cast<std::ptrdiff_t>(tensor_length));
        fault.detail.assign(characters.begin() + static_cast<std::ptrdiff_t>(tensor_length), characters.end());
        if (source != comm_->rank()) fault.detail += " (on rank " + std::to_string(source) + ")";
        return fault;
    }

private:
    const Communicator* comm_;
    int failed_rank_ = -1;  ///< set by a failed run(), identical on every rank, read by the next agree()
};

}  // namespace sae
