#pragma once
// Activation shard directories (models/activation_extractor.hpp ActivationManifest,
// data/shard_source.hpp ShardSource): manifest.json, then batches streamed from the
// shards it lists through a small shuffle buffer for two epochs.
#include "../driver.hpp"
#include "sae/data/shard_source.hpp"
#include "sae/models/activation_extractor.hpp"

namespace sae::fuzz {

inline void run_activation_manifest(const Workspace& ws) {
    for (const char* shard : {"shard_00000.npy", "shard_00001.safetensors"}) {
        attempt([&] { (void)ShardReader(ws.path(shard), ""); });
    }
    const models::ActivationManifest manifest = models::ActivationManifest::load(ws.dir());
    ShardSourceConfig config = manifest.shard_source_config();
    config.batch_size = 2;
    config.shuffle_buffer_rows = 4;
    config.chunks_per_window = 2;
    config.epochs = 2;
    ShardSource<float> source(config);
    Matrix<float> batch;
    for (int b = 0; b < 12 && static_cast<std::size_t>(b) < source.batches_available(); ++b) {
        source.next_batch(batch);
        require(batch.rows() == 2 && batch.cols() == source.input_dim(), "shards: batch shape");
    }
}

inline Driver activation_manifest_driver() {
    return {"activation_manifest", {"manifest.json", "shard_00000.npy", "shard_00001.safetensors"}, &run_activation_manifest};
}

}  // namespace sae::fuzz
