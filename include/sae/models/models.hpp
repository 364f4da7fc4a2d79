#pragma once
/// \file models.hpp
/// Everything in sae::models: the GPT-2 forward pass in Eigen with its loaders (Hugging
/// Face safetensors, minGPT JSON), TransformerLens-style hook points, sampling, SAE-splice
/// metrics, key/value-cached sampling, the GPT-2 byte-level BPE tokenizer and the VADER
/// sentiment lexicon.

#include "activation_extractor.hpp"
#include "bpe_tokenizer.hpp"
#include "gpt2.hpp"
#include "gpt2_config.hpp"
#include "gpt2_layers.hpp"
#include "gpt2_loader.hpp"
#include "gpt2_weights.hpp"
#include "hook_point.hpp"
#include "hooks.hpp"
#include "sampling.hpp"
#include "splice_metrics.hpp"
#include "kv_cache.hpp"
#include "sentiment_lexicon.hpp"
#include "vocab_map.hpp"
