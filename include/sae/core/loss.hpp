#pragma once
/// \file loss.hpp
/// The training loss of one SAE and its analytic gradients.
///
///   L = R + S + A
///   R = ||x - x_hat||^2 / N                      reconstruction (N: see normalisation)
///   S = Activation::sparsity_loss                 L1 (ReLU), L0 (JumpReLU) or 0 (TopK)
///   A = alpha ||e - e_hat||^2 / N                 AuxK (Gao et al.): e = x - x_hat is a
///       constant, e_hat = f_aux W_dec with f_aux the aux_k largest pre-activations
///       (after ReLU) among dead latents
///
/// How it is computed (the only path; the gradient tests check it):
///  1. `forward_backward` streams the encoder (encoder_stream.hpp, the same routine as
///     inference's Autoencoder::encode_sparse): the batch is cut into blocks of
///     `stream_block_rows` rows (in groups of consecutive blocks, one task each, in
///     parallel) and every block's pre-activations are made `stream_chunk_cols` latents
///     at a time by a small GEMM whose result stays in cache. Activations that select
///     each row on its own (`selects_rows_independently`: TopK, ReluL1) consume the
///     chunks as they come, so the dense [batch, d_sae] matrix never exists; the others
///     (BatchTopK selects over the whole batch, JumpReLU's backward reads
///     pre-activations near the threshold) get it written out. AuxK's dead-latent
///     selection is streamed the same way. The decoder, dL/dx_hat and dL/df then touch
///     only the active latents of each row (O(batch * active * d_in)); the sparse
///     code's transpose (`LatentBlockIndex`) lists each latent's rows for the next step.
///  2. `latent_block_gradient(b)` forms the gradient of the `latent_block_size` latents
///     of block b alone — their decoder rows, encoder columns and encoder biases — from
///     the rows where they are active, visited in row order (a row active for several of
///     the block's latents is read once into cache). Nothing of size [d_in, d_sae] is
///     built: a trainer applies each block's gradient as soon as it exists
///     (TrainableSae), and `loss_and_gradients` merely collects the blocks into dense
///     `Gradients` for callers that want the whole thing.
/// Only the encoder GEMM is dense. Every partial sum is taken per row block or per latent
/// and combined in a fixed order, so results do not depend on the number of threads.
///
/// The gradient of W_dec is in "decoder-row space": callers may add further terms on the
/// decoder rows (the MFR penalty does) before `project_decoder_gradient` (or the per-latent
/// `project_latent_gradient`) maps it onto the trainable parameters (tied: into W_enc
/// through the row normalisation; unit-norm untied: the component parallel to each row
/// removed).

#include "autoencoder.hpp"
#include "encoder_stream.hpp"
#include "parallel.hpp"
#include "sparse_code_builder.hpp"
#include "activations/topk.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace sae {

/// How the squared reconstruction error is averaged.
enum class ReconstructionNormalization {
    sum_over_features,  ///< mean over the batch of ||x - x_hat||^2 (SAELens default)
    mean_over_elements  ///< mean over batch and features (torch MSELoss; the MFR authors)
};

struct LossConfig {
    ReconstructionNormalization normalization = ReconstructionNormalization::sum_over_features;
    double aux_coefficient = 0.0;  ///< alpha of the AuxK loss (Gao et al. use 1/32); 0 = off
    Index aux_k = 0;               ///< latents per row in AuxK; 0 = d_in / 2 (Gao et al.)

    void validate() const {
        if (!(aux_coefficient >= 0.0)) {
            throw config_error("aux_coefficient = " + std::to_string(aux_coefficient) + " must be >= 0");
        }
        if (aux_k < 0) throw config_error("aux_k = " + std::to_string(aux_k) + " must be >= 0");
    }
};

/// The terms of one evaluation of the loss.
struct LossBreakdown {
    double reconstruction = 0.0;  ///< R
    double sparsity = 0.0;        ///< S
    double auxiliary = 0.0;       ///< A
    double penalty = 0.0;         ///< terms added by a coupling (MFR), if any
    double mean_l0 = 0.0;         ///< mean active latents per row
    double total() const { return reconstruction + sparsity + auxiliary + penalty; }
};

/// Gradients of every trainable tensor, shaped like the parameters.
template <class Scalar>
struct Gradients {
    Matrix<Scalar> W_enc;        ///< [d_in, d_sae]
    RowVector<Scalar> b_enc;     ///< [d_sae]
    Matrix<Scalar> W_dec;        ///< [d_sae, d_in], decoder-row space (see file comment)
    RowVector<Scalar> b_dec;     ///< [d_in]
    RowVector<Scalar> parameter; ///< the activation's own trainable vector, if any

    template <class Model>
    void reset_for(const Model& model) {
        W_enc.setZero(model.d_in(), model.d_sae());
        b_enc.setZero(model.d_sae());
        W_dec.setZero(model.d_sae(), model.d_in());
        b_dec.setZero(model.d_in());
        parameter.setZero(model.activation().parameter().size());
    }
};

namespace detail {
/// Latents per block of the backward pass (latent_block_gradient, TrainableSae's update):
/// a block's gradients, 2 x 64 x d_in values, stay in L2.
inline constexpr Index latent_block_size = 64;
}  // namespace detail

/// The transpose of a row-major sparse code, by blocks of detail::latent_block_size latents: the
/// entries [start[b], start[b + 1]) are those of block b's latents, in increasing row
/// order, each with its row, its latent and its position in the code's value array.
struct LatentBlockIndex {
    std::vector<int> start;
    std::vector<int> row;
    std::vector<int> latent;
    std::vector<int> position;

    template <class Scalar>
    void build(const SparseCode<Scalar>& code) {
        constexpr Index latent_block_size = detail::latent_block_size;
        const Index blocks = (code.cols() + latent_block_size - 1) / latent_block_size, nonzeros = code.nonZeros();
        start.assign(static_cast<std::size_t>(blocks + 1), 0);
        const int* inner = code.innerIndexPtr();
        const int* outer = code.outerIndexPtr();
        for (Index e = 0; e < nonzeros; ++e) ++start[static_cast<std::size_t>(inner[e] / latent_block_size + 1)];
        for (Index b = 0; b < blocks; ++b) start[static_cast<std::size_t>(b + 1)] += start[static_cast<std::size_t>(b)];
        cursor_.assign(start.begin(), start.end() - 1);
        row.resize(static_cast<std::size_t>(nonzeros));
        latent.resize(static_cast<std::size_t>(nonzeros));
        position.resize(static_cast<std::size_t>(nonzeros));
        for (Index r = 0; r < code.rows(); ++r) {
            for (int e = outer[r]; e < outer[r + 1]; ++e) {
                const std::size_t slot = static_cast<std::size_t>(cursor_[static_cast<std::size_t>(inner[e] / latent_block_size)]++);
                row[slot] = static_cast<int>(r);
                latent[slot] = inner[e];
                position[slot] = e;
            }
        }
    }

private:
    std::vector<int> cursor_;
};

namespace detail {

/// Whether sparsity_loss / backward read the decoder norms (true unless declared false).
template <class Act, class = void>
struct reads_decoder_norms : std::true_type {};
template <class Act>
struct reads_decoder_norms<Act, std::enable_if_t<!Act::uses_decoder_norms>> : std::false_type {};

/// Scratch whose type depends on the activation, kept in a cache that does not: built on
/// first use, rebuilt if another type is asked for. A copy starts empty (scratch is not state).
class TypedScratch {
public:
    TypedScratch() = default;
    TypedScratch(const TypedScratch&) {}
    TypedScratch& operator=(const TypedScratch&) { return *this; }
    TypedScratch(TypedScratch&&) noexcept = default;
    TypedScratch& operator=(TypedScratch&&) noexcept = default;

    template <class T>
    T& get() {
        if (auto* held = dynamic_cast<Holder<T>*>(held_.get())) return held->value;
        auto fresh = std::make_unique<Holder<T>>();
        T& value = fresh->value;
        held_ = std::move(fresh);
        return value;
    }

private:
    struct Base {
        virtual ~Base() = default;
    };
    template <class T>
    struct Holder : Base {
        T value;
    };
    std::unique_ptr<Base> held_;
};

/// Per-thread and per-block buffers of forward_backward, kept between steps.
template <class Scalar>
struct StreamScratch {
    std::vector<Matrix<Scalar>> tiles;                    ///< per thread: [stream_block_rows, stream_chunk_cols]
    std::vector<RunningTopK<Scalar>> aux_selections;      ///< per (thread, group position): stream_state_index
    std::vector<std::size_t> next_dead;                   ///< per (thread, group position): next dead latent to offer
    RowBlockCode<Scalar, true> bounded_code;              ///< builds the code of a row-bounded activation (TopK)
    RowBlockCode<Scalar, false> unbounded_code;           ///< builds the code of any other streamed one
    RowBlockCode<Scalar, true> aux_code;                  ///< builds the AuxK code (at most aux_k per row)
    std::vector<double> squared_error;                    ///< per row block
    std::vector<double> aux_squared_error;                ///< per row block
    Matrix<Scalar> d_x_hat_sums;                          ///< per row block: column sums of dL/dx_hat
    std::vector<Index> dead_latents;
    TypedScratch selections;                              ///< per (thread, group position): Activation::RowSelection
};

}  // namespace detail

/// Buffers of one forward/backward pass, kept between steps to avoid reallocation.
template <class Scalar>
struct ForwardCache {
    Matrix<Scalar> centered;        ///< x - b_dec [batch, d_in]
    Matrix<Scalar> pre;             ///< pre-activations [batch, d_sae] when the activation needs them all; else [batch, 0]
    SparseCode<Scalar> code;        ///< f
    Matrix<Scalar> d_x_hat;         ///< dL/dx_hat
    SparseCode<Scalar> grad_code;   ///< dL/df on the code's pattern
    SparseCode<Scalar> d_pre;       ///< dL/dpre of R and S
    SparseCode<Scalar> aux_code;    ///< AuxK code over dead latents
    SparseCode<Scalar> aux_d_pre;   ///< dL/dpre of A, on aux_code's pattern
    Matrix<Scalar> d_aux;           ///< dL/de_hat of A [batch, d_in] (only with AuxK)
    RowVector<Scalar> decoder_norms;    ///< ||W_dec,j||, for activations that read them
    RowVector<Scalar> d_decoder_norms;  ///< dL/d||W_dec,j|| of S (empty when S ignores the norms)
    RowVector<Scalar> d_b_enc;      ///< dL/db_enc
    RowVector<Scalar> d_b_dec;      ///< dL/db_dec (zero without a decoder bias)
    LatentBlockIndex code_by_latent;   ///< transpose of code
    LatentBlockIndex d_pre_by_latent;  ///< transpose of d_pre
    LatentBlockIndex aux_by_latent;    ///< transpose of aux_code (and aux_d_pre)
    detail::StreamScratch<Scalar> scratch;
};

namespace detail {

/// The number N that the squared error is divided by.
inline double reconstruction_denominator(ReconstructionNormalization normalization, Index rows, Index cols) {
    return normalization == ReconstructionNormalization::sum_over_features ? static_cast<double>(rows)
                                                                           : static_cast<double>(rows * cols);
}

/// Throws shape_error unless `x` has `d_in` columns, numeric_error if it holds NaN/Inf.
template <class Scalar>
void check_training_batch(const ConstMatrixRef<Scalar>& x, Index d_in, const char* where) {
    if (x.cols() != d_in) check_batch(x, d_in, where);
    require_finite_rows(x, 0, where);
}

template <class Scalar>
void resize_scratch(StreamScratch<Scalar>& scratch, Index blocks, int threads) {
    const std::size_t b = static_cast<std::size_t>(blocks), t = static_cast<std::size_t>(threads);
    if (scratch.tiles.size() < t) scratch.tiles.resize(t);
    const std::size_t states = t * static_cast<std::size_t>(stream_group_blocks);
    if (scratch.aux_selections.size() < states) scratch.aux_selections.resize(states);
    if (scratch.next_dead.size() < states) scratch.next_dead.resize(states);
    scratch.squared_error.assign(b, 0.0);
    scratch.aux_squared_error.assign(b, 0.0);
}

/// Pass 1: centered = x - b_dec, the code (or the dense pre-activations) and the AuxK code,
/// block by block (stream_pre_activations); see the file comment.
template <class Scalar, template <class> class Act>
void encode_stream(const Autoencoder<Scalar, Act>& model, const ConstMatrixRef<Scalar>& x, Index aux_k,
                   ForwardCache<Scalar>& cache) {
    using Activation = typename Autoencoder<Scalar, Act>::Activation;
    constexpr bool streamed = streams_rows<Activation>::value;
    const Index rows = x.rows(), d_sae = model.d_sae();
    const int threads = available_threads();
    StreamScratch<Scalar>& scratch = cache.scratch;
    const std::vector<Index>& dead = scratch.dead_latents;
    const bool with_aux = aux_k > 0;
    const Index blocks = (rows + stream_block_rows - 1) / stream_block_rows;
    const Matrix<Scalar>& W_enc = model.W_enc();
    const RowVector<Scalar>& b_enc = model.b_enc();
    const Activation& activation = model.activation();

    using Selection = typename row_selection<Activation>::type;
    std::vector<Selection>& selections = scratch.selections.template get<std::vector<Selection>>();
    const std::size_t states = static_cast<std::size_t>(threads) * static_cast<std::size_t>(stream_group_blocks);
    if (selections.size() < states) selections.resize(states);
    constexpr bool bounded = bounds_row_entries<Activation>::value;
    auto& code = [&]() -> auto& {
        if constexpr (bounded) {
            return scratch.bounded_code;
        } else {
            return scratch.unbounded_code;
        }
    }();
    if constexpr (streamed) {
        cache.pre.resize(rows, 0);
        code.open(cache.code, rows, d_sae, blocks, row_entry_bound_of(activation));
    } else {
        cache.pre.resize(rows, d_sae);
    }
    if (with_aux) scratch.aux_code.open(cache.aux_code, rows, d_sae, blocks, aux_k);

    const auto start_block = [&](const StreamBlock& block) {
        cache.centered.middleRows(block.first, block.count) = x.middleRows(block.first, block.count).rowwise() - model.b_dec();
        if constexpr (streamed) activation.start_rows(selections[stream_state_index(block)], block.count);
        if (with_aux) scratch.aux_selections[stream_state_index(block)].start(block.count, aux_k, /*positive_only=*/true);
        scratch.next_dead[stream_state_index(block)] = 0;
        return cache.centered.middleRows(block.first, block.count);
    };
    const auto tile_of = [&](const StreamBlock& block, Index c0, Index width) {
        if constexpr (streamed) {
            return stream_tile(scratch.tiles[static_cast<std::size_t>(block.slot)], block, width);
        } else {
            return cache.pre.block(block.first, c0, block.count, width);
        }
    };
    const auto consume = [&](const StreamBlock& block, const auto& tile, Index c0) {
        if constexpr (streamed) activation.select_chunk(selections[stream_state_index(block)], tile, c0);
        if (with_aux) {
            RunningTopK<Scalar>& aux = scratch.aux_selections[stream_state_index(block)];
            std::size_t& next_dead = scratch.next_dead[stream_state_index(block)];
            for (; next_dead < dead.size() && dead[next_dead] < c0 + tile.cols(); ++next_dead) {
                const Index col = dead[next_dead];
                for (Index r = 0; r < block.count; ++r) aux.offer(r, col, tile(r, col - c0));
            }
        }
    };
    const auto finish = [&](const StreamBlock& block) {
        if constexpr (streamed) {
            code.fill(block.block, block.first, block.count,
                      [&](auto& out) { activation.finish_rows(selections[stream_state_index(block)], out); });
        }
        if (with_aux) {
            RunningTopK<Scalar>& aux = scratch.aux_selections[stream_state_index(block)];
            scratch.aux_code.fill(block.block, block.first, block.count, [&](auto& out) {
                for (Index r = 0; r < block.count; ++r) aux.emit_row(r, out);
            });
        }
    };
    stream_pre_activations<Scalar>(rows, W_enc, b_enc, start_block, tile_of, consume, finish);
    if constexpr (streamed) code.close();
    if (with_aux) scratch.aux_code.close();
}

/// Pass 2: dL/dx_hat (through x_hat), dL/df on the code, and the AuxK error and dL/dpre on its
/// code, one row block per task; only the active latents of each row are touched.
template <class Scalar, template <class> class Act>
void decode_stream(const Autoencoder<Scalar, Act>& model, const ConstMatrixRef<Scalar>& x, Scalar scale,
                   bool with_aux, Scalar aux_scale, ForwardCache<Scalar>& cache) {
    const Index rows = x.rows(), d_in = model.d_in();
    const Index blocks = (rows + stream_block_rows - 1) / stream_block_rows;
    StreamScratch<Scalar>& scratch = cache.scratch;
    const Matrix<Scalar>& W_dec = model.W_dec();
    const RowVector<Scalar>& b_dec = model.b_dec();
    scratch.d_x_hat_sums.resize(blocks, d_in);
    const int* outer = cache.code.outerIndexPtr();
    const int* inner = cache.code.innerIndexPtr();
    const Scalar* f = cache.code.valuePtr();
    Scalar* grad_f = cache.grad_code.valuePtr();
    const int* aux_outer = with_aux ? cache.aux_code.outerIndexPtr() : nullptr;
    const int* aux_inner = with_aux ? cache.aux_code.innerIndexPtr() : nullptr;
    const Scalar* aux_f = with_aux ? cache.aux_code.valuePtr() : nullptr;
    Scalar* aux_grad = with_aux ? cache.aux_d_pre.valuePtr() : nullptr;

    parallel_for(blocks, [&](Index block, int) {
        const Index first = block * stream_block_rows;
        const Index last = std::min(rows, first + stream_block_rows);
        double squared_error = 0.0, aux_squared_error = 0.0;
        auto sums = scratch.d_x_hat_sums.row(block);
        sums.setZero();
        for (Index r = first; r < last; ++r) {
            // x_hat is built in dL/dx_hat's own row, then x taken off: no [batch, d_in]
            // matrix for x_hat alone.
            auto d_x_hat = cache.d_x_hat.row(r);
            d_x_hat = b_dec;
            for (int e = outer[r]; e < outer[r + 1]; ++e) d_x_hat += f[e] * W_dec.row(inner[e]);
            d_x_hat -= x.row(r);
            squared_error += static_cast<double>(d_x_hat.squaredNorm());
            if (with_aux) {
                // e_hat - e with e = x - x_hat the (constant) residual.
                auto aux_error = cache.d_aux.row(r);
                aux_error = d_x_hat;
                for (int e = aux_outer[r]; e < aux_outer[r + 1]; ++e) aux_error += aux_f[e] * W_dec.row(aux_inner[e]);
                aux_squared_error += static_cast<double>(aux_error.squaredNorm());
                aux_error *= aux_scale;
                for (int e = aux_outer[r]; e < aux_outer[r + 1]; ++e) aux_grad[e] = aux_error.dot(W_dec.row(aux_inner[e]));
            }
            d_x_hat *= scale;
            sums += d_x_hat;
            for (int e = outer[r]; e < outer[r + 1]; ++e) grad_f[e] = d_x_hat.dot(W_dec.row(inner[e]));
        }
        scratch.squared_error[static_cast<std::size_t>(block)] = squared_error;
        scratch.aux_squared_error[static_cast<std::size_t>(block)] = aux_squared_error;
    });
}

/// out = W_enc * v, one task per block of rows of W_enc.
template <class Scalar>
void encoder_times(const Matrix<Scalar>& W_enc, const RowVector<Scalar>& v, RowVector<Scalar>& out) {
    constexpr Index block_rows = 32;
    out.resize(W_enc.rows());
    parallel_for((W_enc.rows() + block_rows - 1) / block_rows, [&](Index block, int) {
        const Index last = std::min(W_enc.rows(), (block + 1) * block_rows);
        for (Index i = block * block_rows; i < last; ++i) out(i) = W_enc.row(i).dot(v);
    });
}

}  // namespace detail

namespace detail {

/// forward_backward on a batch the caller has already checked (check_training_batch):
/// TrainableSae checks each batch once per step, before anything else uses it.
template <class Scalar, template <class> class Act>
LossBreakdown forward_backward_of_checked_batch(Autoencoder<Scalar, Act>& model, const ConstMatrixRef<Scalar>& x,
                                                const LossConfig& loss, double sparsity_coefficient,
                                                const Eigen::Array<bool, Eigen::Dynamic, 1>* dead,
                                                ForwardCache<Scalar>& cache, RowVector<Scalar>& d_parameter,
                                                Index batch_rows) {
    using Activation = typename Autoencoder<Scalar, Act>::Activation;
    const Index rows = x.rows(), d_in = model.d_in(), d_sae = model.d_sae();
    if (batch_rows == 0) batch_rows = rows;
    if (batch_rows < rows) {
        throw shape_error("forward_backward: a slice of " + std::to_string(rows) + " rows cannot belong to a batch of " +
                          std::to_string(batch_rows));
    }
    // The activation divides its sparsity term by the rows it sees; a slice's share of the
    // batch mean is lambda * (rows / batch_rows) over those rows.
    const double slice_sparsity_coefficient =
        batch_rows == rows ? sparsity_coefficient
                           : sparsity_coefficient * static_cast<double>(rows) / static_cast<double>(batch_rows);
    const Matrix<Scalar>& W_dec = model.W_dec();
    detail::StreamScratch<Scalar>& scratch = cache.scratch;
    const Index blocks = (rows + detail::stream_block_rows - 1) / detail::stream_block_rows;
    detail::resize_scratch(scratch, blocks, detail::available_threads());

    // AuxK: which latents are dead, and how many of them each row may use.
    scratch.dead_latents.clear();
    if (loss.aux_coefficient > 0.0 && dead != nullptr && dead->size() == d_sae) {
        for (Index j = 0; j < d_sae; ++j) {
            if ((*dead)(j)) scratch.dead_latents.push_back(j);
        }
    }
    const Index preferred_aux_k = loss.aux_k > 0 ? loss.aux_k : std::max<Index>(1, d_in / 2);
    const Index aux_k = std::min<Index>(preferred_aux_k, static_cast<Index>(scratch.dead_latents.size()));
    const bool with_aux = aux_k > 0;

    cache.centered.resize(rows, d_in);
    cache.d_x_hat.resize(rows, d_in);
    if (with_aux) cache.d_aux.resize(rows, d_in);
    detail::encode_stream(model, x, aux_k, cache);
    if constexpr (!detail::streams_rows<Activation>::value) model.activation().select_training(cache.pre, cache.code);
    if (!with_aux) cache.aux_code.resize(rows, d_sae);
    cache.grad_code = cache.code;
    cache.aux_d_pre = cache.aux_code;

    const double denominator = detail::reconstruction_denominator(loss.normalization, batch_rows, d_in);
    const Scalar scale = static_cast<Scalar>(2.0 / denominator);
    const Scalar aux_scale = static_cast<Scalar>(2.0 * loss.aux_coefficient / denominator);
    detail::decode_stream(model, x, scale, with_aux, aux_scale, cache);

    LossBreakdown result;
    double squared_error = 0.0, aux_squared_error = 0.0;
    for (Index b = 0; b < blocks; ++b) {
        squared_error += scratch.squared_error[static_cast<std::size_t>(b)];
        aux_squared_error += scratch.aux_squared_error[static_cast<std::size_t>(b)];
    }
    if (rows > 0) {
        result.reconstruction = squared_error / denominator;
        result.auxiliary = with_aux ? loss.aux_coefficient * aux_squared_error / denominator : 0.0;
        result.mean_l0 = static_cast<double>(cache.code.nonZeros()) / static_cast<double>(batch_rows);
    }

    // Sparsity term and the activation's backward (dL/df -> dL/dpre).
    if constexpr (detail::reads_decoder_norms<Activation>::value) {
        cache.decoder_norms = model.decoder_row_norms();
        cache.d_decoder_norms.setZero(d_sae);
    } else {
        cache.decoder_norms.resize(0);
        cache.d_decoder_norms.resize(0);
    }
    result.sparsity = rows == 0 ? 0.0
                                : model.activation().sparsity_loss(cache.pre, cache.code, cache.decoder_norms,
                                                                   slice_sparsity_coefficient);
    const auto grad_at = [&cache, &W_dec](Index r, Index c) { return cache.d_x_hat.row(r).dot(W_dec.row(c)); };
    model.activation().backward(cache.pre, cache.code, cache.grad_code, grad_at, slice_sparsity_coefficient,
                                cache.decoder_norms, cache.d_pre, cache.d_decoder_norms, d_parameter);

    cache.code_by_latent.build(cache.code);
    cache.d_pre_by_latent.build(cache.d_pre);
    cache.aux_by_latent.build(cache.aux_code);

    // Bias gradients: dL/db_enc sums dL/dpre over rows; b_dec enters through x_hat and
    // through centered = x - b_dec, so dL/db_dec = sum_rows dL/dx_hat - W_enc dL/db_enc.
    cache.d_b_enc.setZero(d_sae);
    for (const SparseCode<Scalar>* part : {&cache.d_pre, &cache.aux_d_pre}) {
        const Scalar* values = part->valuePtr();
        const int* inner = part->innerIndexPtr();
        for (Index e = 0; e < part->nonZeros(); ++e) cache.d_b_enc(inner[e]) += values[e];
    }
    cache.d_b_dec.setZero(d_in);
    if (model.config().decoder_bias) {
        for (Index b = 0; b < blocks; ++b) cache.d_b_dec += scratch.d_x_hat_sums.row(b);
        RowVector<Scalar> through_encoder;
        detail::encoder_times(model.W_enc(), cache.d_b_enc, through_encoder);
        cache.d_b_dec -= through_encoder;
    }
    return result;
}

}  // namespace detail

/// Pass 1 and 2 of the file comment on batch `x` [batch, d_in]: the loss, and in `cache`
/// everything latent_block_gradient needs (code, dL/dx_hat, dL/dpre, AuxK terms, the bias
/// gradients, the latent index). `sparsity_coefficient` is lambda at this step (after any
/// warm-up); `dead` marks dead latents for AuxK (nullptr or empty: no AuxK); dL/d(the
/// activation's parameter) is added to `d_parameter` (sized like the parameter). The model
/// is non-const because training-time selection may update activation statistics
/// (BatchTopK's threshold).
///
/// `batch_rows` (0: x.rows()) says that x is one micro-batch of a batch of that many rows
/// (it must be >= x.rows()): every mean over the rows (R, S, A, mean_l0) is then taken
/// over the whole batch, so the returned terms, the gradients in `cache` and the
/// addition to `d_parameter` are this slice's shares, whose sums over the slices are the
/// batch's. Only activations that select each row on its own may be fed slices (not
/// BatchTopK). With batch_rows = x.rows() nothing changes.
template <class Scalar, template <class> class Act>
LossBreakdown forward_backward(Autoencoder<Scalar, Act>& model, const ConstMatrixRef<detail::non_deduced_t<Scalar>>& x,
                               const LossConfig& loss, double sparsity_coefficient,
                               const Eigen::Array<bool, Eigen::Dynamic, 1>* dead, ForwardCache<Scalar>& cache,
                               RowVector<Scalar>& d_parameter, Index batch_rows = 0) {
    detail::check_training_batch<Scalar>(x, model.d_in(), "loss_and_gradients");
    return detail::forward_backward_of_checked_batch(model, x, loss, sparsity_coefficient, dead, cache, d_parameter, batch_rows);
}

/// The gradient of the latents of block b, [first, first + count) with first =
/// b * latent_block_size, from a cache filled by forward_backward: row i of g_dec
/// [count, d_in] = dL/dW_dec row first + i (decoder-row space, plus that row of `coupling`
/// when not null), row i of g_enc [count, d_in] = dL/dW_enc column first + i (dL/db_enc is
/// cache.d_b_enc). g_dec and g_enc are row-major with d_in columns.
template <class Scalar, template <class> class Act>
void latent_block_gradient(const Autoencoder<Scalar, Act>& model, const ForwardCache<Scalar>& cache, Index block,
                           const Matrix<detail::non_deduced_t<Scalar>>* coupling, detail::non_deduced_t<Scalar>* g_dec,
                           detail::non_deduced_t<Scalar>* g_enc) {
    const Index d_in = model.d_in();
    const Index first = block * detail::latent_block_size;
    const Index count = std::min(detail::latent_block_size, model.d_sae() - first);
    Eigen::Map<Matrix<Scalar>> decoder(g_dec, count, d_in), encoder(g_enc, count, d_in);
    decoder.setZero();
    encoder.setZero();
    const std::size_t b = static_cast<std::size_t>(block);
    const LatentBlockIndex& code = cache.code_by_latent;
    const Scalar* f = cache.code.valuePtr();
    for (int e = code.start[b]; e < code.start[b + 1]; ++e) {
        const std::size_t i = static_cast<std::size_t>(e);
        decoder.row(code.latent[i] - first) += f[code.position[i]] * cache.d_x_hat.row(code.row[i]);
    }
    const LatentBlockIndex& d_pre = cache.d_pre_by_latent;
    const Scalar* dp = cache.d_pre.valuePtr();
    for (int e = d_pre.start[b]; e < d_pre.start[b + 1]; ++e) {
        const std::size_t i = static_cast<std::size_t>(e);
        encoder.row(d_pre.latent[i] - first) += dp[d_pre.position[i]] * cache.centered.row(d_pre.row[i]);
    }
    if (cache.aux_code.nonZeros() > 0) {
        const LatentBlockIndex& aux = cache.aux_by_latent;
        const Scalar* a = cache.aux_code.valuePtr();
        const Scalar* da = cache.aux_d_pre.valuePtr();
        for (int e = aux.start[b]; e < aux.start[b + 1]; ++e) {
            const std::size_t i = static_cast<std::size_t>(e);
            decoder.row(aux.latent[i] - first) += a[aux.position[i]] * cache.d_aux.row(aux.row[i]);
            encoder.row(aux.latent[i] - first) += da[aux.position[i]] * cache.centered.row(aux.row[i]);
        }
    }
    for (Index i = 0; i < count; ++i) {
        const Index j = first + i;
        if (cache.d_decoder_norms.size() > 0 && cache.d_decoder_norms(j) != Scalar(0) && cache.decoder_norms(j) > Scalar(0)) {
            decoder.row(i) += (cache.d_decoder_norms(j) / cache.decoder_norms(j)) * model.W_dec().row(j);
        }
        if (coupling != nullptr) decoder.row(i) += coupling->row(j);
    }
}

/// Map latent j's decoder-row gradient g_dec onto the trainable parameters:
///  - tied: W_dec,j = w_j / ||w_j|| with w_j = W_enc[:, j], so
///    g_enc += (g_dec - (g_dec . u_j) u_j) / ||w_j||, and g_dec is cleared;
///  - untied with unit-norm rows: remove from g_dec its component along the row, so
///    the step moves along the sphere (renormalise after the update).
template <class Scalar, template <class> class Act>
void project_latent_gradient(const Autoencoder<Scalar, Act>& model, Index j, Scalar* g_dec, Scalar* g_enc) {
    const Index d_in = model.d_in();
    Eigen::Map<RowVector<Scalar>> decoder(g_dec, d_in), encoder(g_enc, d_in);
    const auto row = model.W_dec().row(j);
    const Scalar along = decoder.dot(row);
    if (model.config().tied) {
        const Scalar inverse_norm = Scalar(1) / std::max(model.encoder_column_norms()(j), Scalar(1e-12));
        encoder += inverse_norm * (decoder - along * row);
        decoder.setZero();
    } else if (model.config().unit_norm_decoder) {
        decoder -= (along / std::max(row.squaredNorm(), Scalar(1e-24))) * row;
    }
}

/// Every latent's gradient from a cache filled by forward_backward, collected by latent
/// block: row j of `decoder_rows` = dL/dW_dec row j (decoder-row space), row j of
/// `encoder_rows` = dL/dW_enc column j; both resized to [d_sae, d_in].
template <class Scalar, template <class> class Act>
void collect_latent_gradients(const Autoencoder<Scalar, Act>& model, const ForwardCache<Scalar>& cache,
                              Matrix<Scalar>& decoder_rows, Matrix<Scalar>& encoder_rows) {
    const Index d_sae = model.d_sae(), d_in = model.d_in();
    decoder_rows.resize(d_sae, d_in);
    encoder_rows.resize(d_sae, d_in);
    detail::parallel_for((d_sae + detail::latent_block_size - 1) / detail::latent_block_size, [&](Index b, int) {
        const Index first = b * detail::latent_block_size;
        latent_block_gradient(model, cache, b, nullptr, decoder_rows.row(first).data(), encoder_rows.row(first).data());
    });
}

/// Evaluate the loss of `model` on batch `x` [batch, d_in] and write every gradient
/// into `grads` (overwritten): forward_backward, then every latent's gradient collected
/// into dense matrices (see forward_backward for the arguments).
template <class Scalar, template <class> class Act>
LossBreakdown loss_and_gradients(Autoencoder<Scalar, Act>& model, const ConstMatrixRef<detail::non_deduced_t<Scalar>>& x,
                                 const LossConfig& loss, double sparsity_coefficient,
                                 const Eigen::Array<bool, Eigen::Dynamic, 1>* dead, ForwardCache<Scalar>& cache,
                                 Gradients<Scalar>& grads) {
    grads.reset_for(model);
    const LossBreakdown result = forward_backward(model, x, loss, sparsity_coefficient, dead, cache, grads.parameter);
    Matrix<Scalar> encoder_columns;
    collect_latent_gradients(model, cache, grads.W_dec, encoder_columns);
    grads.W_enc = encoder_columns.transpose();
    grads.b_enc = cache.d_b_enc;
    grads.b_dec = cache.d_b_dec;
    return result;
}

/// project_latent_gradient for every latent of dense gradients (grads.W_dec in
/// decoder-row space on entry; see the file comment).
template <class Scalar, template <class> class Act>
void project_decoder_gradient(const Autoencoder<Scalar, Act>& model, Gradients<Scalar>& grads) {
    RowVector<Scalar> encoder(model.d_in());
    for (Index j = 0; j < model.d_sae(); ++j) {
        encoder = grads.W_enc.col(j).transpose();
        project_latent_gradient(model, j, grads.W_dec.row(j).data(), encoder.data());
        grads.W_enc.col(j) = encoder.transpose();
    }
}

}  // namespace sae
