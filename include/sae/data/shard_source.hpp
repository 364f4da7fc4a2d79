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

    /// Copies rows [first, first + count) into `out` and lets the kernel drop their pages.
    template <class Scalar>
    void copy_rows(Index first, Index count, Eigen::Ref<Matrix<Scalar>> out) const {
        if (const auto* npy = std::get_if<std::unique_ptr<NpyRowReader>>(&reader_)) {
            (*npy)->template read_rows<Scalar>(first, count, out);
            (*npy)->release(first, count);
            return;
        }
        const SafetensorsFile& file = *std::get<std::unique_ptr<SafetensorsFile>>(reader_);
        file.template read_rows<Scalar>(tensor_, first, count, out);
        file.release(tensor_, first, count);
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
        const Index buffer = config_.shuffle_buffer_rows > 0 ? config_.shuffle_buffer_rows : config_.batch_size;
        chunk_rows_ = std::max<Index>(1, (buffer + config_.chunks_per_window - 1) / config_.chunks_per_window);
        for (std::size_t s = 0; s < shards_.size(); ++s) {
            for (Index first = 0; first < shards_[s].rows(); first += chunk_rows_) {
                chunks_.push_back(Chunk{s, first, std::min(chunk_rows_, shards_[s].rows() - first)});
            }
        }
        start_epoch(0);
    }

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
        out.resize(config_.batch_size, d_in_);
        for (Index filled = 0; filled < out.rows();) {
            if (offset_ == window_rows()) advance_window();
            const Index take = std::min(out.rows() - filled, window_rows() - offset_);
            for (Index i = 0; i < take; ++i) out.row(filled + i) = window_.row(order_[static_cast<std::size_t>(offset_ + i)]);
            offset_ += take;
            filled += take;
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
        start_epoch(epoch);
        if (window >= window_count() && !(window == 0 && chunks_.empty())) {
            throw io_error("checkpoint: value '" + prefix + "window' = " + std::to_string(window) + " is past the last window");
        }
        load_window(window);
        if (offset < 0 || offset > window_rows()) {
            throw io_error("checkpoint: value '" + prefix + "offset' = " + std::to_string(offset) + " is outside the window");
        }
        offset_ = offset;
        batches_served_ = dict.template get<std::size_t>(prefix + "batches_served");
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
    Index window_rows() const { return window_.rows(); }
    std::size_t window_count() const {
        const std::size_t per = static_cast<std::size_t>(config_.chunks_per_window);
        return (chunks_.size() + per - 1) / per;
    }

    void start_epoch(std::size_t epoch) {
        epoch_ = epoch;
        chunk_order_.resize(chunks_.size());
        std::iota(chunk_order_.begin(), chunk_order_.end(), std::size_t{0});
        if (shuffling()) {
            std::mt19937_64 rng(derive_seed(config_.seed, 2 * epoch));
            std::shuffle(chunk_order_.begin(), chunk_order_.end(), rng);
        }
        load_window(0);
    }

    void advance_window() {
        if (window_index_ + 1 < window_count()) {
            load_window(window_index_ + 1);
            return;
        }
        if (config_.epochs != 0 && epoch_ + 1 >= config_.epochs) {
            throw io_error(config_.files.front() + " (and the other shards): all " + std::to_string(config_.epochs) +
                           " epochs (" + std::to_string(batches_served_) +
                           " batches) are used up; raise data.epochs or lower trainer.total_steps");
        }
        start_epoch(epoch_ + 1);
    }

    /// Reads the chunks of window `index` into the buffer and draws its row order.
    void load_window(std::size_t index) {
        window_index_ = index;
        offset_ = 0;
        const std::size_t per = static_cast<std::size_t>(config_.chunks_per_window);
        const std::size_t begin = index * per, end = std::min(chunk_order_.size(), begin + per);
        Index rows = 0;
        for (std::size_t c = begin; c < end; ++c) rows += chunks_[chunk_order_[c]].rows;
        window_.resize(rows, d_in_);
        Index filled = 0;
        for (std::size_t c = begin; c < end; ++c) {
            const Chunk& chunk = chunks_[chunk_order_[c]];
            shards_[chunk.shard].template copy_rows<Scalar>(chunk.first, chunk.rows, window_.middleRows(filled, chunk.rows));
            filled += chunk.rows;
        }
        order_.resize(static_cast<std::size_t>(rows));
        std::iota(order_.begin(), order_.end(), Index{0});
        if (shuffling()) {
            std::mt19937_64 rng(derive_seed(derive_seed(config_.seed, 2 * epoch_ + 1), index));
            std::shuffle(order_.begin(), order_.end(), rng);
        }
    }

    ShardSourceConfig config_;
    std::vector<ShardReader> shards_;
    std::vector<Chunk> chunks_;
    std::vector<std::size_t> chunk_order_;
    Matrix<Scalar> window_;
    std::vector<Index> order_;
    Index d_in_ = 0;
    Index total_rows_ = 0;
    Index chunk_rows_ = 1;
    std::size_t epoch_ = 0;
    std::size_t window_index_ = 0;
    Index offset_ = 0;
    std::size_t batches_served_ = 0;
};

}  // namespace sae
