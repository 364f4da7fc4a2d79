#pragma once
/// \file shard_source.hpp
/// `ShardSource<Scalar>`: training batches streamed from many activation files
/// (`.npy`, or one tensor of a `.safetensors` file), shuffled through a bounded buffer,
/// for any number of epochs, resumable bit for bit from a checkpoint.
///
/// How rows are ordered. All shards together form one row space, cut into chunks of
/// `chunk_rows = ceil(shuffle_buffer_rows / chunks_per_window)` rows (never crossing a
/// shard). Each epoch permutes all chunks (seeded by seed and epoch), then takes them
/// `chunks_per_window` at a time into the shuffle buffer (a window), permutes the
/// window's rows (seeded by seed, epoch and window) and hands them out in that order.
/// Batches are always full: a batch that reaches the end of a window continues in the
/// next one, and the end of an epoch continues into the next epoch.
///
/// Why this instead of a reservoir buffer: the position in the stream is just
/// (epoch, window, offset), so a checkpoint is three integers and a resumed run reloads
/// one window and continues with the same rows in the same order.
///
/// Memory: one window (shuffle_buffer_rows x d_in Scalars) plus the chunk table (one
/// entry per chunk), independent of the total data size. Files are memory-mapped and
/// the pages of a chunk are released once it is copied into the window, so the
/// resident set stays bounded too.
///
///   ShardSource(config)     opens every shard (io_error naming a bad file, shape_error
///                           when the shards disagree on the row width).
///   next_batch(out)         [batch_size, d_in]; io_error when `epochs` epochs are used up.
///   batches_available()     full batches in `epochs` epochs (SIZE_MAX when epochs = 0,
///                           which cycles forever).
///   save_state / load_state the stream position, with a fingerprint of the shards so a
///                           checkpoint cannot silently continue on other data.
///   keep_batch_part(r, P)   data-parallel training: hand out only rows
///                           [B r / P, B (r + 1) / P) of every batch (rank r's part of
///                           the batch the job trains on, sae/mpi/data_parallel.hpp), and
///                           read only those rows from the files and keep only them in
///                           the window. The stream itself is unchanged: the P parts of a
///                           batch are the batch of one process, and the saved position
///                           resumes with any number of parts.

#include "../core/error.hpp"
#include "../core/state_dict.hpp"
#include "../core/trainable_sae.hpp"
#include "../core/types.hpp"
#include "../io/file.hpp"
#include "../io/npy.hpp"
#include "../io/safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace sae {

struct ShardSourceConfig {
    std::vector<std::string> files;        ///< .npy or .safetensors shards, [rows, d_in] (leading dims flattened)
    std::string tensor;                    ///< safetensors: tensor name; "" = the file's only tensor
    Index batch_size = 4096;
    Index shuffle_buffer_rows = 262'144;   ///< rows held in memory; 0 = no shuffling (file order)
    Index chunks_per_window = 16;          ///< chunks from different places mixed in one window
    std::size_t epochs = 1;                ///< passes over the data; 0 = cycle forever
    std::uint64_t seed = 0;

    void validate() const {
        if (files.empty()) throw config_error("data.train_files: no shard files given");
        if (batch_size < 1) throw config_error("data.batch_size = " + std::to_string(batch_size) + " must be >= 1");
        if (shuffle_buffer_rows < 0) {
            throw config_error("data.shuffle_buffer_rows = " + std::to_string(shuffle_buffer_rows) + " must be >= 0");
        }
        if (chunks_per_window < 1) {
            throw config_error("data.chunks_per_window = " + std::to_string(chunks_per_window) + " must be >= 1");
        }
    }
};

/// One shard: an .npy file or one tensor of a .safetensors file, read by rows
/// (leading dimensions flattened into rows). Also useful on its own to stream a file
/// in order, e.g. for evaluation.
class ShardReader {
public:
    ShardReader(const std::string& path, const std::string& tensor) {
        if (has_extension(path, ".npy")) {
            reader_ = std::make_unique<NpyRowReader>(path);
            return;
        }
        if (!has_extension(path, ".safetensors")) {
            throw io_error(path + ": unknown shard type (expected a .npy or .safetensors file)");
        }
        auto file = std::make_unique<SafetensorsFile>(path);
        tensor_ = tensor;
        if (tensor_.empty()) {
            const std::vector<std::string> names = file->names();
            if (names.size() != 1) {
                throw io_error(path + ": holds " + std::to_string(names.size()) +
                               " tensors; name the activation tensor with data.tensor");
            }
            tensor_ = names.front();
        }
        const std::vector<std::size_t>& shape = file->info(tensor_).shape;
        if (shape.empty()) throw io_error(path + ": tensor '" + tensor_ + "' is a scalar, not [rows, d_in]");
        cols_ = static_cast<Index>(shape.back());
        rows_ = cols_ == 0 ? 0 : static_cast<Index>(file->info(tensor_).element_count()) / cols_;
        reader_ = std::move(file);
    }

    Index rows() const {
        if (const auto* npy = std::get_if<std::unique_ptr<NpyRowReader>>(&reader_)) return (*npy)->rows();
        return rows_;
    }
    Index cols() const {
        if (const auto* npy = std::get_if<std::unique_ptr<NpyRowReader>>(&reader_)) return (*npy)->cols();
        return cols_;
    }

    /// Copies rows [first, first + count) into `out`; with `release`, lets the kernel
    /// drop their pages.
    template <class Scalar>
    void copy_rows(Index first, Index count, Eigen::Ref<Matrix<Scalar>> out, bool release = true) const {
        if (const auto* npy = std::get_if<std::unique_ptr<NpyRowReader>>(&reader_)) {
            (*npy)->template read_rows<Scalar>(first, count, out);
        } else {
            std::get<std::unique_ptr<SafetensorsFile>>(reader_)->template read_rows<Scalar>(tensor_, first, count, out);
        }
        if (release) release_rows(first, count);
    }

    /// Lets the kernel drop the pages of rows [first, first + count).
    void release_rows(Index first, Index count) const {
        if (const auto* npy = std::get_if<std::unique_ptr<NpyRowReader>>(&reader_)) {
            (*npy)->release(first, count);
            return;
        }
        std::get<std::unique_ptr<SafetensorsFile>>(reader_)->release(tensor_, first, count);
    }

private:
    std::variant<std::unique_ptr<NpyRowReader>, std::unique_ptr<SafetensorsFile>> reader_;
    std::string tensor_;
    Index rows_ = 0;
    Index cols_ = 0;
};

template <class Scalar>
class ShardSource {
public:
    explicit ShardSource(ShardSourceConfig config) : config_((config.validate(), std::move(config))) {
        for (const std::string& path : config_.files) {
            shards_.emplace_back(path, config_.tensor);
            const ShardReader& shard = shards_.back();
            if (shards_.size() == 1) d_in_ = shard.cols();
            if (shard.cols() != d_in_) {
                throw shape_error(path + ": rows have " + std::to_string(shard.cols()) + " values, but " +
                                  config_.files.front() + " has " + std::to_string(d_in_));
            }
            // Rows of no values cost no bytes, so their count is unbounded by the file;
            // the chunk table below would grow with it (10^12 rows: terabytes).
            if (shard.cols() == 0 && shard.rows() > 0) {
                throw io_error(path + ": its " + std::to_string(shard.rows()) + " rows have no values (last dimension 0)");
            }
            total_rows_ += shard.rows();
        }
        if (total_rows_ == 0) throw io_error(config_.files.front() + ": the shards hold no rows");
        part_end_ = config_.batch_size;
        const Index buffer = config_.shuffle_buffer_rows > 0 ? config_.shuffle_buffer_rows : config_.batch_size;
        chunk_rows_ = std::max<Index>(1, (buffer + config_.chunks_per_window - 1) / config_.chunks_per_window);
        for (std::size_t s = 0; s < shards_.size(); ++s) {
            for (Index first = 0; first < shards_[s].rows(); first += chunk_rows_) {
                chunks_.push_back(Chunk{s, first, std::min(chunk_rows_, shards_[s].rows() - first)});
            }
        }
        start_epoch(0);
    }

    /// See the file comment; call before the first batch (or after load_state). Throws
    /// config_error unless 0 <= part < parts.
    void keep_batch_part(int part, int parts) {
        if (parts < 1 || part < 0 || part >= parts) {
            throw config_error("ShardSource::keep_batch_part: part " + std::to_string(part) + " of " + std::to_string(parts));
        }
        part_first_ = config_.batch_size * part / parts;
        part_end_ = config_.batch_size * (part + 1) / parts;
        const Index offset = offset_;
        load_window(window_index_, window_start_);  // keep only this part's rows of the current window
        offset_ = offset;
    }

    /// Rows per batch that next_batch hands out (the part's, after keep_batch_part).
    Index part_rows() const { return part_end_ - part_first_; }

    Index input_dim() const { return d_in_; }
    Index total_rows() const { return total_rows_; }
    Index batch_size() const { return config_.batch_size; }
    std::size_t epoch() const { return epoch_; }
    const ShardSourceConfig& config() const { return config_; }

    std::size_t batches_available() const {
        if (config_.epochs == 0) return std::numeric_limits<std::size_t>::max();
        return static_cast<std::size_t>(total_rows_) * config_.epochs / static_cast<std::size_t>(config_.batch_size);
    }

    void next_batch(Matrix<Scalar>& out) {
        out.resize(part_rows(), d_in_);
        // Walk the whole batch of the stream, keeping positions [part_first_, part_end_).
        for (Index position = 0; position < config_.batch_size;) {
            if (offset_ == window_rows()) advance_window();
            const Index take = std::min(config_.batch_size - position, window_rows() - offset_);
            const Index keep_first = std::max(position, part_first_), keep_end = std::min(position + take, part_end_);
            for (Index p = keep_first; p < keep_end; ++p) {
                out.row(p - part_first_) = window_.row(slot_[static_cast<std::size_t>(order_[static_cast<std::size_t>(offset_ + p - position)])]);
            }
            offset_ += take;
            position += take;
        }
        ++batches_served_;
    }

    void save_state(StateDict<Scalar>& dict, const std::string& prefix = "data/") const {
        dict.set(prefix + "fingerprint", fingerprint());
        dict.set(prefix + "epoch", epoch_);
        dict.set(prefix + "window", window_index_);
        dict.set(prefix + "offset", offset_);
        dict.set(prefix + "batches_served", batches_served_);
    }

    void load_state(const StateDict<Scalar>& dict, const std::string& prefix = "data/") {
        const std::string saved = dict.template get<std::string>(prefix + "fingerprint");
        if (saved != fingerprint()) {
            throw io_error("checkpoint: data.train_files differ from the run that wrote it (checkpoint: " + saved +
                           "; now: " + fingerprint() + ")");
        }
        const std::size_t epoch = dict.template get<std::size_t>(prefix + "epoch");
        const std::size_t window = dict.template get<std::size_t>(prefix + "window");
        const Index offset = dict.template get<Index>(prefix + "offset");
        const std::size_t batches_served = dict.template get<std::size_t>(prefix + "batches_served");
        start_epoch(epoch);
        if (window >= window_count() && !(window == 0 && chunks_.empty())) {
            throw io_error("checkpoint: value '" + prefix + "window' = " + std::to_string(window) + " is past the last window");
        }
        // Batches are always full, so the stream position is batches_served * batch_size.
        const Index position = static_cast<Index>(batches_served) * config_.batch_size;
        if (offset < 0 || offset > position) {
            throw io_error("checkpoint: value '" + prefix + "offset' = " + std::to_string(offset) + " is outside the window");
        }
        load_window(window, position - offset);
        if (offset > window_rows()) {
            throw io_error("checkpoint: value '" + prefix + "offset' = " + std::to_string(offset) + " is outside the window");
        }
        offset_ = offset;
        batches_served_ = batches_served;
    }

private:
    struct Chunk {
        std::size_t shard;
        Index first;
        Index rows;
    };

    /// Identifies the data: every path with its row count and width, and the ordering
    /// settings (a different seed or buffer size means a different stream).
    std::string fingerprint() const {
        std::string text;
        for (std::size_t s = 0; s < shards_.size(); ++s) {
            text += config_.files[s] + ":" + std::to_string(shards_[s].rows()) + "x" + std::to_string(d_in_) + ";";
        }
        return text + "seed=" + std::to_string(config_.seed) + ";buffer=" + std::to_string(config_.shuffle_buffer_rows) +
               ";chunks=" + std::to_string(config_.chunks_per_window);
    }

    bool shuffling() const { return config_.shuffle_buffer_rows > 0; }
    /// Rows of the current window (window_ holds only those this source hands out).
    Index window_rows() const { return static_cast<Index>(order_.size()); }
    std::size_t window_count() const {
        const std::size_t per = static_cast<std::size_t>(config_.chunks_per_window);
        return (chunks_.size() + per - 1) / per;
    }

    void start_epoch(std::size_t epoch) {
        const Index start = window_start_ + window_rows();  // the stream goes on where the last window ended
        epoch_ = epoch;
        chunk_order_.resize(chunks_.size());
        std::iota(chunk_order_.begin(), chunk_order_.end(), std::size_t{0});
        if (shuffling()) {
            std::mt19937_64 rng(derive_seed(config_.seed, 2 * epoch));
            std::shuffle(chunk_order_.begin(), chunk_order_.end(), rng);
        }
        load_window(0, start);
    }

    void advance_window() {
        if (window_index_ + 1 < window_count()) {
            load_window(window_index_ + 1, window_start_ + window_rows());
            return;
        }
        if (config_.epochs != 0 && epoch_ + 1 >= config_.epochs) {
            throw io_error(config_.files.front() + " (and the other shards): all " + std::to_string(config_.epochs) +
                           " epochs (" + std::to_string(batches_served_) +
                           " batches) are used up; raise data.epochs or lower trainer.total_steps");
        }
        start_epoch(epoch_ + 1);
    }

    /// Draws the row order of window `index`, whose first row is row `start` of the
    /// stream, and reads into the buffer the rows of its chunks that this source hands
    /// out (all of them, unless keep_batch_part chose a part).
    void load_window(std::size_t index, Index start) {
        window_index_ = index;
        window_start_ = start;
        offset_ = 0;
        const std::size_t per = static_cast<std::size_t>(config_.chunks_per_window);
        const std::size_t begin = index * per, end = std::min(chunk_order_.size(), begin + per);
        Index rows = 0;
        for (std::size_t c = begin; c < end; ++c) rows += chunks_[chunk_order_[c]].rows;
        order_.resize(static_cast<std::size_t>(rows));
        std::iota(order_.begin(), order_.end(), Index{0});
        if (shuffling()) {
            std::mt19937_64 rng(derive_seed(derive_seed(config_.seed, 2 * epoch_ + 1), index));
            std::shuffle(order_.begin(), order_.end(), rng);
        }
        // slot_[row of the window] = its row in window_, or -1 for a row of another part.
        const bool whole = part_first_ == 0 && part_end_ == config_.batch_size;
        slot_.assign(static_cast<std::size_t>(rows), whole ? 0 : -1);
        Index kept = rows;
        if (whole) {
            std::iota(slot_.begin(), slot_.end(), Index{0});
        } else {
            for (Index o = 0; o < rows; ++o) {
                const Index in_batch = (start + o) % config_.batch_size;
                if (in_batch >= part_first_ && in_batch < part_end_) slot_[static_cast<std::size_t>(order_[static_cast<std::size_t>(o)])] = 1;
            }
            kept = 0;
            for (Index& slot : slot_) slot = slot < 0 ? -1 : kept++;
        }
        window_.resize(kept, d_in_);
        Index window_row = 0;
        for (std::size_t c = begin; c < end; ++c) {
            const Chunk& chunk = chunks_[chunk_order_[c]];
            const ShardReader& shard = shards_[chunk.shard];
            if (whole) {
                shard.template copy_rows<Scalar>(chunk.first, chunk.rows, window_.middleRows(window_row, chunk.rows));
            } else {
                // Runs of consecutive kept rows, one copy each; the chunk's pages released once.
                for (Index r = 0; r < chunk.rows;) {
                    const Index slot = slot_[static_cast<std::size_t>(window_row + r)];
                    if (slot < 0) {
                        ++r;
                        continue;
                    }
                    Index run = 1;
                    while (r + run < chunk.rows && slot_[static_cast<std::size_t>(window_row + r + run)] == slot + run) ++run;
                    shard.template copy_rows<Scalar>(chunk.first + r, run, window_.middleRows(slot, run), false);
                    r += run;
                }
                shard.release_rows(chunk.first, chunk.rows);
            }
            window_row += chunk.rows;
        }
    }

    ShardSourceConfig config_;
    std::vector<ShardReader> shards_;
    std::vector<Chunk> chunks_;
    std::vector<std::size_t> chunk_order_;
    Matrix<Scalar> window_;
    std::vector<Index> order_;
    std::vector<Index> slot_;  ///< per window row: its row in window_, or -1 (see load_window)
    Index d_in_ = 0;
    Index total_rows_ = 0;
    Index chunk_rows_ = 1;
    std::size_t epoch_ = 0;
    std::size_t window_index_ = 0;
    Index offset_ = 0;
    Index window_start_ = 0;  ///< the stream position of the window's first row
    Index part_first_ = 0;    ///< keep_batch_part: rows [part_first_, part_end_) of each batch
    Index part_end_ = 0;
    std::size_t batches_served_ = 0;
};

}  // namespace sae
