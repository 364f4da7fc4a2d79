#pragma once
/// \file irm.hpp
/// Umbrella header of the implicit-reward-model (IRM) toolkit: the pipeline of "Beyond
/// Training Objectives: Interpreting Reward Model Divergence in Large Language Models"
/// (Marks et al. 2023) on libsae's GPT-2 and SAEs. In the order the pipeline uses them:
///
///   layer_divergence.hpp           which blocks fine-tuning moved most (base vs tuned)
///   contrastive_triples.hpp        positive / negative / neutral swaps of lexicon words
///                                  in real sentences
///   swapped_token_activations.hpp  a model's activations at the swapped token
///   contrastive_probe_data.hpp     probe rows and their signed targets +-||a - a_neutral||
///   data_split.hpp                 the seeded 80/20 split by triple
///   ridge_regression.hpp           the linear probe (ridge with an intercept, closed form)
///   utility_scale.hpp              percentiles and the mapping onto the reward's scale
///   utility_table.hpp              the recovered token-utility table
///   rank_correlation.hpp           Kendall's tau-b (O(n log n)) and Spearman's rho
///   reward_agreement.hpp           agreement with the explicit reward, random-probe baseline
///   feature_classification.hpp     top activations, probe weights and alignment per feature
///
/// Dictionaries of base and tuned SAEs are compared with sae/mfr/feature_matching.hpp
/// (`sae::mmcs`, Hungarian matching). Not included by sae/sae.hpp (it pulls in the GPT-2
/// stack).

#include "contrastive_probe_data.hpp"
#include "contrastive_triples.hpp"
#include "data_split.hpp"
#include "feature_classification.hpp"
#include "input_checks.hpp"
#include "layer_divergence.hpp"
#include "rank_correlation.hpp"
#include "reward_agreement.hpp"
#include "ridge_regression.hpp"
#include "swapped_token_activations.hpp"
#include "utility_scale.hpp"
#include "utility_table.hpp"
