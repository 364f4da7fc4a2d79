// irm_probe: the implicit reward model (IRM) of a fine-tuned GPT-2, recovered with SAEs
// and a linear probe, and compared with the explicit reward the model was tuned on
// (Marks et al. 2023, "Beyond Training Objectives: Interpreting Reward Model Divergence in
// Large Language Models"; their code: apartresearch/Probing-Learned-Feedback-Patterns).
//
// The pipeline (sae/irm/irm.hpp), run on a base model and its tuned copy:
//  1. layer divergence: sum over each block's tensors of ||theta_base - theta_tuned||_2;
//     the k blocks that moved most are the layers studied;
//  2. SAEs on those layers' MLP outputs (blocks.L.hook_mlp_out), one per layer and model,
//     on the same text: tied, ReLU + L1 (the authors' SAE), Adam; held-out FVU / L0 / dead
//     latents, and MMCS (Hungarian matching of the feature directions) between the base
//     and the tuned dictionary of each layer, next to the MMCS of two SAEs that differ
//     only in their seed (how alike two dictionaries of one model are anyway);
//  3. contrastive triples from real sentences: a strongly positive VADER word (top
//     quartile of the lexicon) where it occurs in the text, the same context with a
//     strongly negative word (bottom quartile) and with a neutral word (absent from the
//     lexicon: utility 0) in its place; each model's activations at the swapped token;
//  4. a ridge probe (alpha 1, intercept) from the concatenated SAE features of the positive
//     and negative swaps to the signed targets +-||f_pos/neg - f_neutral||, trained on 80%
//     of the triples; its held-out predictions mapped by their 10th / 90th percentiles onto
//     the lexicon's scale [-3.9, 3.4]; per word, the mean mapped prediction against the
//     word's lexicon value: Kendall's tau-b (true and predicted value of each word paired,
//     not the words' names as the authors' code did), Spearman's rho, recovered words
//     (|true| and |predicted| >= 2, same sign) and wrong-sign words, all on the held-out
//     split (the authors counted in-sample; the in-sample numbers are printed too);
//  5. the same for the base model's SAEs and activations, and for random probes on the
//     tuned model's features;
//  6. the features behind the tuned model's probe: the most positive and most negative
//     ones, with the swapped words and the text contexts that activate them most.
//
//   irm_probe                          examples/data/fortunes-gpt2 vs fortunes-gpt2-vader
//   irm_probe --base DIR --tuned DIR   any two Hugging Face GPT-2 directories of one shape
//   irm_probe --help                   every setting
#include "example_data.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/irm/irm.hpp>
#include <sae/models/activation_extractor.hpp>
#include <sae/models/bpe_tokenizer.hpp>
#include <sae/models/gpt2_loader.hpp>
#include <sae/models/sentiment_lexicon.hpp>
#include <sae/sae.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using sae::Index;
namespace irm = sae::irm;
namespace models = sae::models;
using Sae = sae::TrainableSae<float, sae::ReluL1>;
using SaeModel = Sae::Model;

struct Options {
    std::string base_dir = example_data_path("fortunes-gpt2");
    std::string tuned_dir = example_data_path("fortunes-gpt2-vader");
    std::string tokenizer_dir = example_data_path("gpt2-tokenizer");
    std::string lexicon_path = example_data_path("lexicon/vader_lexicon.txt");
    std::string fortunes_dir = "/usr/share/games/fortunes";
    std::vector<std::string> text_files;  // empty: the fortune files of the base model's config.json
    std::string separator = "\n%\n";
    std::size_t layers = 2;
    // SAEs
    Index latents = 0;  // 0: 2 x d_model
    double l1 = 1e-3;
    double lr = 1e-3;
    Index batch = 64;
    std::size_t steps = 6000;
    Index sae_tokens = 120'000;
    bool reference_saes = true;
    // Triples and probe
    std::size_t triples = 4000;
    std::size_t per_word = 15;
    std::size_t triple_context = 64;
    double alpha = 1.0;
    double train_fraction = 0.8;
    std::size_t random_probes = 200;
    double threshold = 2.0;
    bool distances_in_activations = false;
    std::size_t top_features = 5;
    std::uint64_t seed = 0;
    int threads = 1;
    std::string json_path;
};

void print_help() {
    std::cout << R"(irm_probe: the implicit reward model of a fine-tuned GPT-2, recovered with SAEs and a
ridge probe on contrastive triples, against the explicit (VADER lexicon) reward.

Models and text:
  --base DIR           base Hugging Face GPT-2 directory [examples/data/fortunes-gpt2]
  --tuned DIR          its fine-tuned copy, same shape and vocabulary
                       [examples/data/fortunes-gpt2-vader]
  --tokenizer DIR      GPT-2 BPE files [examples/data/gpt2-tokenizer]
  --lexicon FILE       VADER lexicon [examples/data/lexicon/vader_lexicon.txt]
  --fortunes-dir DIR   where the fortune files are [/usr/share/games/fortunes]; the files
                       are those listed in the base model's config.json (libsae.corpus.files),
                       the text it was trained on (Debian packages fortunes, fortunes-min)
  --text FILE          a text file instead (repeatable)
  --separator STR      document separator of --text files, \n understood ["\n%\n"]

Layers and SAEs (tied, ReLU + L1, Adam: the IRM authors' SAE; inputs scaled by one
constant per layer and model so that E||x|| = sqrt(d_model)):
  --layers K           blocks with the largest divergence to study [2]
  --latents N          latents per SAE [2 x d_model, the authors' larger dictionary]
  --l1 X               L1 coefficient [1e-3, the authors']
  --lr X               Adam learning rate [1e-3]
  --batch N            activations per step [64]
  --steps N            steps per SAE [6000]
  --sae-tokens N       text activations per model and layer (90% train, 10% held out) [120000]
  --no-reference       skip the base model's second-seed SAEs (the MMCS reference)

Triples and probe:
  --triples N          contrastive triples at most [4000]
  --per-word N         at most N triples per positive word [15]
  --triple-context N   tokens of context kept before a swapped word, BOS included
                       [64; at most n_ctx - 1]
  --alpha X            ridge coefficient [1]
  --train-fraction X   triples the probe is fitted on [0.8]
  --random-probes N    random probes of the baseline [200]
  --threshold X        |utility| counted as strong for "recovered" [2.0]
  --target-space S     features | activations: where ||a_pos/neg - a_neutral|| is measured
                       [features: the concatenated SAE features, as the authors' code]
  --top-features N     features shown per direction [5]

  --seed N             [0]
  --threads N          Eigen/OpenMP threads [1]
  --json PATH          also write the results as JSON
)";
}

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(argc, argv, 1,
                                   {{"base", true},          {"tuned", true},         {"tokenizer", true},
                                    {"lexicon", true},       {"fortunes-dir", true},  {"text", true},
                                    {"separator", true},     {"layers", true},        {"latents", true},
                                    {"l1", true},            {"lr", true},            {"batch", true},
                                    {"steps", true},         {"sae-tokens", true},    {"no-reference", false},
                                    {"triples", true},       {"per-word", true},      {"triple-context", true},
                                    {"alpha", true},
                                    {"train-fraction", true}, {"random-probes", true}, {"threshold", true},
                                    {"target-space", true},  {"top-features", true},  {"seed", true},
                                    {"threads", true},       {"json", true}},
                                   "irm_probe");
    if (args.help()) {
        print_help();
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("irm_probe: unexpected argument '" + args.positional().front() + "'");
    Options o;
    o.base_dir = args.get("base", o.base_dir);
    o.tuned_dir = args.get("tuned", o.tuned_dir);
    o.tokenizer_dir = args.get("tokenizer", o.tokenizer_dir);
    o.lexicon_path = args.get("lexicon", o.lexicon_path);
    o.fortunes_dir = args.get("fortunes-dir", o.fortunes_dir);
    o.text_files = args.all("text");
    std::string separator = args.get("separator", "\\n%\\n");
    o.separator.clear();
    for (std::size_t i = 0; i < separator.size(); ++i) {
        if (separator[i] == '\\' && i + 1 < separator.size() && separator[i + 1] == 'n') {
            o.separator.push_back('\n');
            ++i;
        } else {
            o.separator.push_back(separator[i]);
        }
    }
    o.layers = static_cast<std::size_t>(args.integer("layers", static_cast<std::int64_t>(o.layers), 1));
    o.latents = args.integer("latents", o.latents, 0);
    o.l1 = args.real("l1", o.l1);
    o.lr = args.real("lr", o.lr);
    o.batch = args.integer("batch", o.batch, 1);
    o.steps = static_cast<std::size_t>(args.integer("steps", static_cast<std::int64_t>(o.steps), 1));
    o.sae_tokens = args.integer("sae-tokens", o.sae_tokens, 1000);
    o.reference_saes = !args.flag("no-reference");
    o.triples = static_cast<std::size_t>(args.integer("triples", static_cast<std::int64_t>(o.triples), 10));
    o.per_word = static_cast<std::size_t>(args.integer("per-word", static_cast<std::int64_t>(o.per_word), 0));
    o.triple_context = static_cast<std::size_t>(args.integer("triple-context", static_cast<std::int64_t>(o.triple_context), 2));
    o.alpha = args.real("alpha", o.alpha);
    o.train_fraction = args.real("train-fraction", o.train_fraction);
    o.random_probes = static_cast<std::size_t>(args.integer("random-probes", static_cast<std::int64_t>(o.random_probes), 1));
    o.threshold = args.real("threshold", o.threshold);
    o.distances_in_activations =
        args.choice("target-space", o.distances_in_activations, {{"features", false}, {"activations", true}});
    o.top_features = static_cast<std::size_t>(args.integer("top-features", static_cast<std::int64_t>(o.top_features), 0));
    o.seed = static_cast<std::uint64_t>(args.integer("seed", 0, 0));
    o.threads = static_cast<int>(args.integer("threads", o.threads, 1));
    o.json_path = args.get("json", "");
    if (!(o.l1 >= 0) || !(o.lr > 0) || !(o.alpha > 0) || !(o.threshold > 0)) {
        throw sae::cli::usage_error("irm_probe: --l1 must be >= 0 and --lr, --alpha, --threshold > 0");
    }
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Progress on stderr: one line per stage, with the wall and CPU time since the start
/// (on a busy machine the two differ).
class Progress {
public:
    void stage(const std::string& what) const {
        const double cpu = static_cast<double>(std::clock() - cpu_start_) / CLOCKS_PER_SEC;
        std::fprintf(stderr, "[%6.1f s, cpu %6.1f s] %s\n", seconds_since(start_), cpu, what.c_str());
    }
    double elapsed() const { return seconds_since(start_); }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::clock_t cpu_start_ = std::clock();
};

// ------------------------------------------------------------------------------- text

/// The fortune files' documents, read as tools/gpt2/train_fortunes.py reads them:
/// nroff overstrike removed ("_\bA" prints A), one document per fortune (lines "%"
/// separate them), trailing blanks of each line dropped.
std::vector<std::string> fortune_documents(const std::string& text) {
    std::string clean;
    for (const char c : text) {
        if (c == '\r') continue;
        if (c == '\b') {
            if (!clean.empty() && clean.back() != '\n') clean.pop_back();
            continue;
        }
        clean.push_back(c);
    }
    std::vector<std::string> documents;
    std::string current;
    const auto finish = [&] {
        while (!current.empty() && current.back() == '\n') current.pop_back();
        std::size_t first = 0;
        while (first < current.size() && current[first] == '\n') ++first;
        if (current.find_first_not_of(" \t\n", first) != std::string::npos) documents.push_back(current.substr(first));
        current.clear();
    };
    std::size_t begin = 0;
    while (begin <= clean.size()) {
        std::size_t end = clean.find('\n', begin);
        if (end == std::string::npos) end = clean.size();
        std::string line = clean.substr(begin, end - begin);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
        if (line == "%") {
            finish();
        } else {
            current += line;
            current += '\n';
        }
        begin = end + 1;
    }
    finish();
    return documents;
}

struct Corpus {
    std::deque<std::string> storage;      // owns the bytes (a deque never moves them)
    std::vector<std::string_view> documents;
    std::string description;
};

Corpus read_corpus(const Options& o) {
    Corpus corpus;
    if (!o.text_files.empty()) {
        for (const std::string& path : o.text_files) {
            corpus.storage.push_back(sae::read_whole_file(path));
            for (const std::string_view d : models::split_documents(corpus.storage.back(), o.separator)) corpus.documents.push_back(d);
        }
        corpus.description = std::to_string(o.text_files.size()) + " text file(s)";
        return corpus;
    }
    const std::string config_path = o.base_dir + "/config.json";
    const nlohmann::json config = nlohmann::json::parse(sae::read_whole_file(config_path));
    const nlohmann::json* files = nullptr;
    if (config.contains("libsae") && config["libsae"].contains("corpus") && config["libsae"]["corpus"].contains("files")) {
        files = &config["libsae"]["corpus"]["files"];
    }
    if (files == nullptr || !files->is_array() || files->empty()) {
        throw sae::config_error(config_path + " lists no training corpus (libsae.corpus.files); pass --text FILE");
    }
    for (const nlohmann::json& name : *files) {
        const std::string path = o.fortunes_dir + "/" + name.get<std::string>();
        if (!std::filesystem::is_regular_file(path)) {
            throw sae::io_error(path + " is missing: install the Debian packages 'fortunes' and 'fortunes-min', or pass "
                                       "--fortunes-dir DIR or --text FILE");
        }
        for (std::string& d : fortune_documents(sae::read_whole_file(path))) corpus.storage.push_back(std::move(d));
    }
    for (const std::string& d : corpus.storage) corpus.documents.push_back(d);
    corpus.description = std::to_string(files->size()) + " fortune files of " + o.fortunes_dir;
    return corpus;
}

// --------------------------------------------------------------------------- models

struct Model {
    std::string name;
    std::string dir;
    models::LoadedGpt2<float> loaded;
};

/// The printable text of a model token ("<unk>" for the unknown slot).
std::string token_text(const models::BpeTokenizer& tokenizer, const models::VocabMap& map, int model_id) {
    if (!map.has_gpt2_token(model_id)) return "<unk>";
    const int gpt2 = map.to_gpt2(model_id);
    if (gpt2 == tokenizer.eot_id()) return "<|endoftext|>";
    std::string text;
    for (const char c : tokenizer.token_bytes(gpt2)) {
        if (c == '\n') text += "\\n";
        else if (c == '\t') text += "\\t";
        else if (c == '|') text += "\\|";  // the tables are Markdown
        else text.push_back(c);
    }
    return text;
}

// ----------------------------------------------------------------------------- SAEs

/// A layer's text activations of one model, scaled: training rows, then held-out rows
/// (row r is position 1 + r % (context - 1) of window r / (context - 1)).
struct LayerActivations {
    sae::Matrix<float> train, held_out;
    float scale = 1.0f;  ///< applied to every activation an SAE sees: E||scale x|| = sqrt(d)
};

struct TextActivations {
    std::vector<LayerActivations> layers;  ///< one per hook
};

/// Rows [windows x (context - 1), d] of each hook, without the BOS position.
TextActivations text_activations(const Model& m, const models::TokenBatch& windows, Index held_out_windows,
                                 const std::vector<std::string>& hooks) {
    const Index seq = windows.cols(), per_window = seq - 1;
    const Index n_windows = windows.rows();
    std::vector<sae::Matrix<float>> all(hooks.size());
    for (Index first = 0; first < n_windows; first += 16) {
        const Index count = std::min<Index>(16, n_windows - first);
        const models::ActivationCache<float> cache = m.loaded.model.run_with_cache(windows.middleRows(first, count), hooks);
        for (std::size_t h = 0; h < hooks.size(); ++h) {
            const sae::Matrix<float>& a = cache.at(hooks[h]);
            if (all[h].size() == 0) all[h].resize(n_windows * per_window, a.cols());
            for (Index w = 0; w < count; ++w) {
                all[h].middleRows((first + w) * per_window, per_window) = a.middleRows(w * seq + 1, per_window);
            }
        }
    }
    TextActivations out;
    const Index train_rows = (n_windows - held_out_windows) * per_window;
    for (std::size_t h = 0; h < hooks.size(); ++h) {
        const sae::Matrix<float>& rows = all[h];
        LayerActivations layer;
        layer.train = rows.topRows(train_rows);
        layer.held_out = rows.bottomRows(rows.rows() - train_rows);
        const double mean_norm = layer.train.cast<double>().rowwise().norm().mean();
        if (!(mean_norm > 0.0)) throw sae::numeric_error(m.name + ": the activations of " + hooks[h] + " are all zero");
        layer.scale = static_cast<float>(std::sqrt(static_cast<double>(rows.cols())) / mean_norm);
        layer.train *= layer.scale;
        layer.held_out *= layer.scale;
        out.layers.push_back(std::move(layer));
    }
    return out;
}

/// Batches of rows in a fresh random order each epoch.
class RowBatches {
public:
    RowBatches(const sae::Matrix<float>& rows, Index batch, std::uint64_t seed) : rows_(rows), batch_(batch), rng_(seed) {
        order_.resize(static_cast<std::size_t>(rows.rows()));
        std::iota(order_.begin(), order_.end(), Index(0));
        std::shuffle(order_.begin(), order_.end(), rng_);
    }
    void next_batch(sae::Matrix<float>& out) {
        out.resize(batch_, rows_.cols());
        for (Index r = 0; r < batch_; ++r) {
            if (next_ == order_.size()) {
                std::shuffle(order_.begin(), order_.end(), rng_);
                next_ = 0;
            }
            out.row(r) = rows_.row(order_[next_++]);
        }
    }

private:
    const sae::Matrix<float>& rows_;
    Index batch_;
    std::mt19937_64 rng_;
    std::vector<Index> order_;
    std::size_t next_ = 0;
};

struct SaeQuality {
    double fvu = 0, l0 = 0, dead = 0;
};

struct TrainedSae {
    SaeModel model;
    float scale = 1.0f;
    SaeQuality quality;
};

TrainedSae train_sae(const Options& o, const LayerActivations& data, Index latents, std::uint64_t seed, const std::string& label) {
    sae::TrainingConfig training;
    training.learning_rate.base_rate = o.lr;
    training.sparsity.target = o.l1;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;  // torch MSELoss, the authors'
    const sae::AutoencoderConfig config{data.train.cols(), latents, /*tied=*/true, /*decoder_bias=*/true};
    Sae trainable(config, {}, training, seed);
    RowBatches batches(data.train, o.batch, seed);
    sae::TrainerConfig trainer;
    trainer.total_steps = o.steps;
    std::cerr << "  SAE " << label << "\n";
    sae::train(trainable, batches, trainer, sae::ProgressBar(std::cerr, std::max<std::size_t>(1, o.steps / 4)));
    TrainedSae out{trainable.exported_model(), data.scale, {}};
    sae::Evaluation evaluation(out.model.d_in(), out.model.d_sae());
    for (Index first = 0; first < data.held_out.rows(); first += 4096) {
        sae::evaluate_batch(out.model, data.held_out.middleRows(first, std::min<Index>(4096, data.held_out.rows() - first)), evaluation);
    }
    out.quality = {evaluation.fvu(), evaluation.l0(), evaluation.dead_fraction()};
    return out;
}

// ---------------------------------------------------------------------------- probe

/// One model's probe data: SAE features (and raw activations) at the swapped tokens.
struct TripleFeatures {
    sae::Matrix<float> positive, negative, neutral;  ///< concatenated SAE features [triples, layers x latents]
    sae::Matrix<float> raw_positive, raw_negative, raw_neutral;  ///< concatenated (scaled) activations
};

TripleFeatures triple_features(const Model& m, const std::vector<irm::ContrastiveTriple>& triples,
                               const std::vector<std::string>& hooks, const std::vector<TrainedSae>& saes) {
    const irm::TripleActivations<float> acts = irm::swapped_token_activations(m.loaded.model, triples, hooks);
    TripleFeatures f;
    const auto side = [&](const std::vector<sae::Matrix<float>>& per_hook, sae::Matrix<float>& features, sae::Matrix<float>& raw) {
        Index width = 0, raw_width = 0;
        for (std::size_t h = 0; h < hooks.size(); ++h) {
            width += saes[h].model.d_sae();
            raw_width += per_hook[h].cols();
        }
        features.resize(static_cast<Index>(triples.size()), width);
        raw.resize(static_cast<Index>(triples.size()), raw_width);
        Index column = 0, raw_column = 0;
        for (std::size_t h = 0; h < hooks.size(); ++h) {
            const sae::Matrix<float> scaled = per_hook[h] * saes[h].scale;
            features.middleCols(column, saes[h].model.d_sae()) = saes[h].model.encode(scaled);
            raw.middleCols(raw_column, scaled.cols()) = scaled;
            column += saes[h].model.d_sae();
            raw_column += scaled.cols();
        }
    };
    side(acts.positive, f.positive, f.raw_positive);
    side(acts.negative, f.negative, f.raw_negative);
    side(acts.neutral, f.neutral, f.raw_neutral);
    return f;
}

struct ProbeResult {
    std::string name;
    std::optional<irm::RidgeRegression> ridge;
    irm::ProbeEvaluation held_out, in_sample;
    double r2_held_out = 0;  ///< of the signed targets
    irm::ContrastiveProbeData<float> data;
    std::optional<irm::RandomProbeBaseline> random;
};

double r_squared(const Eigen::VectorXd& target, const Eigen::VectorXd& predicted) {
    const double residual = (target - predicted).squaredNorm();
    const double total = (target.array() - target.mean()).matrix().squaredNorm();
    return total > 0 ? 1.0 - residual / total : std::nan("");
}

ProbeResult fit_probe(const Options& o, const std::string& name, const TripleFeatures& f,
                      const std::vector<irm::ContrastiveTriple>& triples, const irm::TrainTestSplit& split, bool with_random) {
    ProbeResult r;
    r.name = name;
    r.data = o.distances_in_activations
                 ? irm::contrastive_probe_data(f.positive, f.negative, f.raw_positive, f.raw_negative, f.raw_neutral, triples)
                 : irm::contrastive_probe_data(f.positive, f.negative, f.neutral, triples);
    const irm::ContrastiveProbeData<float> train = r.data.rows_of(split.train);
    const irm::ContrastiveProbeData<float> test = r.data.rows_of(split.test);
    r.ridge = irm::RidgeRegression::fit(train.inputs, train.targets, o.alpha);
    irm::UtilityScale scale;  // [-3.9, 3.4], the 10th and 90th percentiles
    const Eigen::VectorXd test_predictions = r.ridge->predict(test.inputs);
    r.held_out = irm::evaluate_predictions(test.words, test.utilities, test_predictions, scale, o.threshold);
    r.in_sample = irm::evaluate_predictions(train.words, train.utilities, r.ridge->predict(train.inputs), scale, o.threshold);
    r.r2_held_out = r_squared(test.targets, test_predictions);
    if (with_random) {
        r.random = irm::random_probe_baseline(test.inputs, test.words, test.utilities, o.random_probes, o.seed + 17, scale, o.threshold);
    }
    return r;
}

// --------------------------------------------------------------------------- output

std::string fixed(double value, int decimals) {
    if (std::isnan(value)) return "n/a";
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    return buffer;
}

std::string signed_fixed(double value, int decimals) {
    if (std::isnan(value)) return "n/a";
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%+.*f", decimals, value);
    return buffer;
}

std::string counts(std::size_t part, std::size_t whole) { return std::to_string(part) + "/" + std::to_string(whole); }

void print_agreement_row(const std::string& label, const irm::RewardAgreement& a, double r2) {
    std::printf("| %-22s | %6s | %6s | %6s | %6s | %9s | %9s | %10s | %5s | %6s |\n", label.c_str(), fixed(a.kendall_tau_b, 3).c_str(),
                fixed(a.spearman_rho, 3).c_str(), fixed(a.kendall_tau_b_positive, 3).c_str(),
                fixed(a.kendall_tau_b_negative, 3).c_str(), counts(a.recovered_positive, a.strongly_positive).c_str(),
                counts(a.recovered_negative, a.strongly_negative).c_str(), counts(a.wrong_sign, a.tokens).c_str(),
                fixed(a.mean_absolute_error, 2).c_str(), fixed(r2, 3).c_str());
}

/// For feature j of the concatenation: "L<layer>.<latent>".
std::string feature_name(Index j, const std::vector<Index>& layers, Index latents) {
    return "L" + std::to_string(layers[static_cast<std::size_t>(j / latents)]) + "." + std::to_string(j % latents);
}

/// The distinct swapped words that activate feature j most, with their activation.
std::string top_words(const irm::ContrastiveProbeData<float>& data, Index j, std::size_t count) {
    std::vector<std::pair<double, std::string>> rows;
    for (Index r = 0; r < data.rows(); ++r) {
        const double v = data.inputs(r, j);
        if (v > 0) rows.emplace_back(v, data.words[static_cast<std::size_t>(r)]);
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    std::string text;
    std::vector<std::string> seen;
    for (const auto& [value, word] : rows) {
        if (seen.size() >= count) break;
        if (std::find(seen.begin(), seen.end(), word) != seen.end()) continue;
        seen.push_back(word);
        text += (text.empty() ? "" : ", ") + word + " " + fixed(value, 1);
    }
    return text.empty() ? "(never active)" : text;
}

// ---------------------------------------------------------------------------- stages

/// What every stage shares: the models, the text and the layers chosen.
struct Setting {
    const Options& o;
    Progress progress;
    Model base, tuned;
    models::BpeTokenizer tokenizer;
    std::optional<models::BpeTextEncoder> encoder;
    models::SentimentLexicon lexicon;
    Corpus corpus;
    std::vector<Index> layers;         ///< chosen blocks, ascending (the features' order)
    std::vector<Index> by_divergence;  ///< the same, most divergent first
    std::vector<std::string> hooks;    ///< blocks.L.hook_mlp_out of each chosen layer
    Index latents = 0;

    const models::Gpt2Config& config() const { return base.loaded.model.config(); }
    const models::VocabMap& vocab() const { return base.loaded.vocab_map; }
};

Setting load(const Options& o) {
    Progress progress;
    progress.stage("loading " + o.base_dir + " and " + o.tuned_dir);
    Setting s{o,
              progress,
              Model{"base", o.base_dir, models::load_hf_gpt2<float>(o.base_dir)},
              Model{"tuned", o.tuned_dir, models::load_hf_gpt2<float>(o.tuned_dir)},
              models::BpeTokenizer::from_directory(o.tokenizer_dir),
              std::nullopt,
              models::SentimentLexicon::load(o.lexicon_path),
              read_corpus(o),
              {},
              {},
              {},
              0};
    if (s.base.loaded.vocab_map.model_to_gpt2() != s.tuned.loaded.vocab_map.model_to_gpt2()) {
        throw sae::config_error("the base and tuned models have different vocabularies (vocab_map.json)");
    }
    s.encoder.emplace(s.tokenizer, s.base.loaded.vocab_map);
    s.latents = o.latents > 0 ? o.latents : 2 * s.config().n_embd;
    s.progress.stage("text: " + std::to_string(s.corpus.documents.size()) + " documents from " + s.corpus.description);
    return s;
}

/// 1. Per-block divergence, printed; chooses the layers.
irm::ModelDivergence choose_layers(Setting& s) {
    const irm::ModelDivergence divergence = irm::model_divergence(s.base.loaded.model.weights(), s.tuned.loaded.model.weights());
    if (s.o.layers > divergence.blocks.size()) {
        throw sae::cli::usage_error("irm_probe: --layers " + std::to_string(s.o.layers) + " but the models have " +
                                    std::to_string(divergence.blocks.size()) + " blocks");
    }
    s.by_divergence = irm::top_divergent_blocks(divergence.blocks, s.o.layers);
    s.layers = s.by_divergence;
    std::sort(s.layers.begin(), s.layers.end());
    for (const Index l : s.layers) s.hooks.push_back("blocks." + std::to_string(l) + ".hook_mlp_out");

    const models::Gpt2Config& config = s.config();
    std::printf("# IRM probe: %s (base) vs %s (tuned)\n\n", s.o.base_dir.c_str(), s.o.tuned_dir.c_str());
    std::printf("model: %d layers, d_model %d, vocab %d; text: %zu documents (%s)\n\n", config.n_layer, config.n_embd,
                config.vocab_size, s.corpus.documents.size(), s.corpus.description.c_str());
    std::printf("## Layer divergence: sum over a block's 12 tensors of ||theta_base - theta_tuned||_2\n\n");
    std::printf("| block | total | attention | MLP | LayerNorms | rank |\n|---|---|---|---|---|---|\n");
    for (const irm::BlockDivergence& b : divergence.blocks) {
        const auto rank = std::find(s.by_divergence.begin(), s.by_divergence.end(), b.layer);
        const std::string rank_text = rank == s.by_divergence.end() ? "" : std::to_string(rank - s.by_divergence.begin() + 1);
        std::printf("| %lld | %.4f | %.4f | %.4f | %.4f | %s |\n", static_cast<long long>(b.layer), b.total, b.attention, b.mlp,
                    b.layer_norms, rank_text.c_str());
    }
    std::printf("\noutside the blocks:");
    for (const irm::TensorDivergence& t : divergence.outside) std::printf(" %s %.4f;", t.name.c_str(), t.distance);
    std::printf("\nlayers studied (top %zu):", s.o.layers);
    for (const Index l : s.by_divergence) std::printf(" %lld", static_cast<long long>(l));
    std::printf("\n\n");
    return divergence;
}

/// 2. The SAEs of both models on the chosen layers, and how alike their dictionaries are.
struct SaeStage {
    models::TokenBatch windows;  ///< the text the SAEs were trained on
    TextActivations tuned_text;  ///< for the top-activating contexts
    std::vector<TrainedSae> base, tuned, reference;
    std::vector<double> mmcs_base_tuned;
};

SaeStage train_saes(Setting& s) {
    const Options& o = s.o;
    SaeStage stage;
    const Index context = std::min<Index>(s.config().n_ctx, 128);
    std::vector<std::string_view> shuffled = s.corpus.documents;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(o.seed));
    const Index n_windows = std::max<Index>(10, o.sae_tokens / (context - 1));
    stage.windows = models::token_windows(*s.encoder, shuffled, context, /*prepend_bos=*/true, n_windows);
    const Index held_out_windows = std::max<Index>(1, stage.windows.rows() / 10);
    s.progress.stage("text activations: " + std::to_string(stage.windows.rows()) + " windows of " + std::to_string(context) +
                     " tokens, " + std::to_string(s.hooks.size()) + " hooks");
    const TextActivations base_text = text_activations(s.base, stage.windows, held_out_windows, s.hooks);
    stage.tuned_text = text_activations(s.tuned, stage.windows, held_out_windows, s.hooks);

    for (std::size_t h = 0; h < s.hooks.size(); ++h) {
        s.progress.stage("training SAEs on " + s.hooks[h]);
        stage.base.push_back(train_sae(o, base_text.layers[h], s.latents, o.seed + 1, "base " + s.hooks[h]));
        stage.tuned.push_back(train_sae(o, stage.tuned_text.layers[h], s.latents, o.seed + 1, "tuned " + s.hooks[h]));
        if (o.reference_saes) {
            stage.reference.push_back(train_sae(o, base_text.layers[h], s.latents, o.seed + 2, "base (second seed) " + s.hooks[h]));
        }
    }

    std::printf("## SAEs: tied, ReLU + L1 (lambda %g), %lld latents = %lld x d_model, Adam %g, %zu steps x %lld, "
                "%lld training / %lld held-out activations per layer, inputs scaled to E||x|| = sqrt(d)\n\n",
                o.l1, static_cast<long long>(s.latents), static_cast<long long>(s.latents / s.config().n_embd), o.lr, o.steps,
                static_cast<long long>(o.batch), static_cast<long long>(base_text.layers[0].train.rows()),
                static_cast<long long>(base_text.layers[0].held_out.rows()));
    std::printf("| layer | FVU base | FVU tuned | L0 base | L0 tuned | dead base | dead tuned | MMCS base-tuned | MMCS base-base' | MMCS base'-tuned |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n");
    const auto directions = [](const TrainedSae& t) { return t.model.feature_directions(); };
    for (std::size_t h = 0; h < s.hooks.size(); ++h) {
        const double mmcs = sae::mmcs(directions(stage.base[h]), directions(stage.tuned[h]));
        const double seeds = o.reference_saes ? sae::mmcs(directions(stage.base[h]), directions(stage.reference[h])) : std::nan("");
        const double both = o.reference_saes ? sae::mmcs(directions(stage.reference[h]), directions(stage.tuned[h])) : std::nan("");
        stage.mmcs_base_tuned.push_back(mmcs);
        const SaeQuality& qb = stage.base[h].quality;
        const SaeQuality& qt = stage.tuned[h].quality;
        std::printf("| %lld | %.4f | %.4f | %.1f | %.1f | %.3f | %.3f | %.4f | %s | %s |\n", static_cast<long long>(s.layers[h]),
                    qb.fvu, qt.fvu, qb.l0, qt.l0, qb.dead, qt.dead, mmcs, fixed(seeds, 4).c_str(), fixed(both, 4).c_str());
    }
    std::printf("\nMMCS: mean cosine of the Hungarian matching of two dictionaries' feature directions. The base and "
                "tuned SAEs share their seed (initialisation and batch order), so their MMCS shows what the models' "
                "difference does to the dictionary; base' is a second SAE on the base model with another seed: base-base' "
                "is what the seed alone does, base'-tuned both.\n\n");
    return stage;
}

/// 3. Contrastive triples from the text.
std::vector<irm::ContrastiveTriple> make_triples(Setting& s) {
    const models::VocabMap& vocab = s.vocab();
    const irm::SingleTokenLookup single_token = [&](const std::string& word) -> std::optional<int> {
        const std::vector<std::int32_t> ids = s.tokenizer.encode(" " + word);
        if (ids.size() != 1) return std::nullopt;
        const int id = vocab.to_model(ids.front());
        if (!vocab.has_gpt2_token(id)) return std::nullopt;  // the unknown slot
        return id;
    };
    const irm::SwapVocabulary vocabulary = irm::swap_vocabulary(s.lexicon, s.corpus.documents, single_token);
    irm::TripleConfig config;
    config.max_triples = s.o.triples;
    config.max_per_word = s.o.per_word;
    config.max_context_tokens = std::min(s.o.triple_context, static_cast<std::size_t>(s.config().n_ctx - 1));
    config.bos = s.encoder->end_of_text_id();
    config.seed = s.o.seed;
    const models::BpeTextEncoder& encoder = *s.encoder;
    std::vector<irm::ContrastiveTriple> triples = irm::contrastive_triples(
        s.corpus.documents, vocabulary, [&](std::string_view text) { return encoder.encode(text); }, config);
    if (triples.size() < 10) throw sae::config_error("only " + std::to_string(triples.size()) + " triples found in the text");

    std::set<std::string> positive_used;
    for (const irm::ContrastiveTriple& t : triples) positive_used.insert(t.positive.word);
    std::printf("## Contrastive triples\n\n%zu triples: %zu distinct positive words of %zu (valence >= %.2f, the lexicon's "
                "top quartile) where they occur in the text, swapped for one of %zu negative words (<= %.2f, the bottom "
                "quartile) and one of %zu neutral words (not in the lexicon; the most frequent in the text); every word a "
                "single token the models know; at most %zu tokens of context.\n",
                triples.size(), positive_used.size(), vocabulary.positive.size(), vocabulary.positive_threshold,
                vocabulary.negative.size(), vocabulary.negative_threshold, vocabulary.neutral.size(), config.max_context_tokens);
    const irm::ContrastiveTriple& t = triples.front();
    const std::string_view document = s.corpus.documents[t.document];
    const std::size_t begin = t.offset > 60 ? t.offset - 60 : 0;
    std::string before(document.substr(begin, t.offset - begin));
    std::replace(before.begin(), before.end(), '\n', ' ');
    std::printf("example: \"...%s[%s | %s | %s]\"\n\n", before.c_str(), t.positive.word.c_str(), t.negative.word.c_str(),
                t.neutral.word.c_str());
    return triples;
}

/// 4./5. The probes of both models, the random probes, and the recovered table.
struct ProbeStage {
    TripleFeatures tuned_features;
    ProbeResult tuned, base;
    irm::TrainTestSplit split;
};

const auto tau = [](const irm::RewardAgreement& a) { return a.kendall_tau_b; };
const auto tau_positive = [](const irm::RewardAgreement& a) { return a.kendall_tau_b_positive; };

void print_random_rows(const irm::RandomProbeBaseline& random) {
    const std::vector<std::function<double(const irm::RewardAgreement&)>> fields{
        tau,
        [](const irm::RewardAgreement& a) { return a.spearman_rho; },
        tau_positive,
        [](const irm::RewardAgreement& a) { return a.kendall_tau_b_negative; },
        [](const irm::RewardAgreement& a) { return static_cast<double>(a.recovered_positive); },
        [](const irm::RewardAgreement& a) { return static_cast<double>(a.recovered_negative); },
        [](const irm::RewardAgreement& a) { return static_cast<double>(a.wrong_sign); },
        [](const irm::RewardAgreement& a) { return a.mean_absolute_error; }};
    const int decimals[] = {3, 3, 3, 3, 1, 1, 1, 2};
    std::vector<std::string> mean, sd;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        mean.push_back(i < 4 ? signed_fixed(random.mean(fields[i]), decimals[i]) : fixed(random.mean(fields[i]), decimals[i]));
        sd.push_back(fixed(random.standard_deviation(fields[i]), decimals[i]));
    }
    const std::string label = "random probes (" + std::to_string(random.probes.size()) + ")";
    for (const auto& [name, v] : {std::pair<std::string, const std::vector<std::string>*>{label, &mean}, {"  (sd over probes)", &sd}}) {
        std::printf("| %-22s | %6s | %6s | %6s | %6s | %9s | %9s | %10s | %5s | %6s |\n", name.c_str(), (*v)[0].c_str(),
                    (*v)[1].c_str(), (*v)[2].c_str(), (*v)[3].c_str(), (*v)[4].c_str(), (*v)[5].c_str(), (*v)[6].c_str(),
                    (*v)[7].c_str(), "");
    }
}

ProbeStage run_probes(Setting& s, const SaeStage& saes, const std::vector<irm::ContrastiveTriple>& triples) {
    const Options& o = s.o;
    ProbeStage stage;
    stage.split = irm::train_test_split(triples.size(), o.train_fraction, o.seed + 5);
    std::size_t tokens = 0;
    for (const irm::ContrastiveTriple& t : triples) tokens += 3 * (t.context.size() + 1);
    s.progress.stage("swapped-token activations and SAE features of " + std::to_string(triples.size()) + " triples (" +
                     std::to_string(tokens) + " tokens per model)");
    stage.tuned_features = triple_features(s.tuned, triples, s.hooks, saes.tuned);
    const TripleFeatures base_features = triple_features(s.base, triples, s.hooks, saes.base);
    s.progress.stage("ridge probes and " + std::to_string(o.random_probes) + " random probes");
    stage.tuned = fit_probe(o, "tuned", stage.tuned_features, triples, stage.split, /*with_random=*/true);
    stage.base = fit_probe(o, "base", base_features, triples, stage.split, /*with_random=*/false);

    std::printf("## Implicit reward vs the lexicon (held out: %zu triples, %zu words; probe fitted on %zu triples)\n\n",
                stage.split.test.size(), stage.tuned.held_out.table.size(), stage.split.train.size());
    std::printf("ridge alpha %g on %lld features (%zu layers x %lld latents), targets +-||a - a_neutral|| in %s; "
                "predictions mapped by their 10th/90th percentiles onto [-3.9, 3.4]; recovered: |true| and |predicted| "
                ">= %g with the same sign\n\n",
                o.alpha, static_cast<long long>(stage.tuned_features.positive.cols()), s.hooks.size(),
                static_cast<long long>(s.latents), o.distances_in_activations ? "the raw (scaled) activations" : "SAE-feature space",
                o.threshold);
    std::printf("| probe                  | tau_b  | rho    | tau+   | tau-   | recov. +  | recov. -  | wrong sign | MAE   | R^2    |\n"
                "|------------------------|--------|--------|--------|--------|-----------|-----------|------------|-------|--------|\n");
    print_agreement_row("tuned model, held-out", stage.tuned.held_out.agreement, stage.tuned.r2_held_out);
    print_agreement_row("base model, held-out", stage.base.held_out.agreement, stage.base.r2_held_out);
    const irm::RandomProbeBaseline& random = *stage.tuned.random;
    print_random_rows(random);
    print_agreement_row("tuned, in-sample", stage.tuned.in_sample.agreement, std::nan(""));
    print_agreement_row("base, in-sample", stage.base.in_sample.agreement, std::nan(""));
    std::printf("\ntau+ / tau-: tau_b within the positive / negative words (the order beyond the sign, which the signed "
                "targets give away); R^2 of the signed targets. Random probes (tuned model's features) with tau_b >= the "
                "tuned probe's: %s; with tau+ >= it: %s.\n",
                fixed(random.fraction_at_least(tau, stage.tuned.held_out.agreement.kendall_tau_b), 3).c_str(),
                fixed(random.fraction_at_least(tau_positive, stage.tuned.held_out.agreement.kendall_tau_b_positive), 3).c_str());
    if (random.degenerate > 0) std::printf("(%zu random probes had no spread to map and were left out)\n", random.degenerate);

    const std::vector<irm::TokenUtility>& table = stage.tuned.held_out.table;
    std::printf("\nRecovered token utilities (tuned model, held out), strongest by the lexicon:\n\n"
                "| word | lexicon | recovered | n |\n|---|---|---|---|\n");
    const std::size_t show = std::min<std::size_t>(8, table.size() / 2);
    for (std::size_t i = 0; i < table.size(); ++i) {
        if (i == show && table.size() > 2 * show) std::printf("| ... | | | |\n");
        if (i >= show && i + show < table.size()) continue;
        std::printf("| %s | %+.1f | %+.2f | %zu |\n", table[i].token.c_str(), table[i].true_utility, table[i].predicted_utility,
                    table[i].occurrences);
    }
    std::printf("\n");
    return stage;
}

/// 6. The features behind the tuned model's probe.
void print_features(Setting& s, const SaeStage& saes, const ProbeStage& probes) {
    s.progress.stage("classifying features");
    const std::vector<irm::FeatureClassification> classes =
        irm::classify_features(probes.tuned.ridge->weights(), probes.tuned_features.positive, probes.tuned_features.negative);
    std::map<irm::UtilityAlignment, std::size_t> tally;
    for (const irm::FeatureClassification& c : classes) ++tally[c.alignment];

    // The text rows (training then held-out windows, BOS positions left out) that
    // activate each latent of the tuned model's SAEs most.
    std::vector<irm::TopActivations> text_top;
    for (std::size_t h = 0; h < s.hooks.size(); ++h) {
        irm::TopActivations top(s.latents, 3);
        const LayerActivations& a = saes.tuned_text.layers[h];
        Index row = 0;
        for (const sae::Matrix<float>* part : {&a.train, &a.held_out}) {
            for (Index first = 0; first < part->rows(); first += 4096) {
                const Index count = std::min<Index>(4096, part->rows() - first);
                top.add(saes.tuned[h].model.encode(part->middleRows(first, count)), row);
                row += count;
            }
        }
        text_top.push_back(std::move(top));
    }
    const auto context_of = [&](Index row) {
        const Index per_window = saes.windows.cols() - 1;
        const Index w = row / per_window, position = 1 + row % per_window;
        std::string text;
        for (Index t = std::max<Index>(1, position - 6); t <= position; ++t) {
            const std::string piece = token_text(s.tokenizer, s.vocab(), saes.windows(w, t));
            text += t == position ? "[" + piece + "]" : piece;
        }
        return text;
    };

    std::printf("## Features of the tuned model's probe (%zu: %zu positive, %zu negative, %zu mixed, %zu inactive)\n\n",
                classes.size(), tally[irm::UtilityAlignment::positive], tally[irm::UtilityAlignment::negative],
                tally[irm::UtilityAlignment::mixed], tally[irm::UtilityAlignment::inactive]);
    std::printf("L<layer>.<latent>; contribution = weight x (mean on positive words - mean on negative words); fires = "
                "fraction of the positive / negative swaps where it is active; words and contexts with their activation "
                "/ the activating token in brackets\n\n");
    for (const irm::UtilityAlignment alignment : {irm::UtilityAlignment::positive, irm::UtilityAlignment::negative}) {
        std::printf("| %s feature | weight | contribution | fires +/- | top swapped words | top text contexts |\n"
                    "|---|---|---|---|---|---|\n",
                    irm::to_string(alignment));
        for (const irm::FeatureClassification& c : irm::strongest(classes, alignment, s.o.top_features)) {
            const std::size_t h = static_cast<std::size_t>(c.feature / s.latents);
            std::string contexts;
            for (const irm::FeatureActivation& a : text_top[h].top(c.feature % s.latents)) {
                contexts += (contexts.empty() ? "" : "; ") + context_of(a.row);
            }
            std::printf("| %s | %+.3f | %.3f | %.2f/%.2f | %s | %s |\n", feature_name(c.feature, s.layers, s.latents).c_str(),
                        c.weight, c.contribution, c.firing_positive, c.firing_negative,
                        top_words(probes.tuned.data, c.feature, 5).c_str(),
                        contexts.empty() ? "(never active on the text)" : contexts.c_str());
        }
        std::printf("\n");
    }
}

nlohmann::json agreement_json(const irm::RewardAgreement& a) {
    const auto number = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
    return nlohmann::json{{"kendall_tau_b", number(a.kendall_tau_b)},
                          {"spearman_rho", number(a.spearman_rho)},
                          {"kendall_tau_b_positive", number(a.kendall_tau_b_positive)},
                          {"kendall_tau_b_negative", number(a.kendall_tau_b_negative)},
                          {"tokens", a.tokens},
                          {"recovered_positive", a.recovered_positive},
                          {"strongly_positive", a.strongly_positive},
                          {"recovered_negative", a.recovered_negative},
                          {"strongly_negative", a.strongly_negative},
                          {"wrong_sign", a.wrong_sign},
                          {"mean_absolute_error", a.mean_absolute_error}};
}

void write_json(const Setting& s, const irm::ModelDivergence& divergence, const SaeStage& saes, std::size_t triples,
                const ProbeStage& probes) {
    nlohmann::json out;
    out["base"] = s.o.base_dir;
    out["tuned"] = s.o.tuned_dir;
    out["seed"] = s.o.seed;
    for (const irm::BlockDivergence& b : divergence.blocks) out["divergence"].push_back({{"layer", b.layer}, {"total", b.total}});
    out["layers"] = s.by_divergence;
    out["mmcs_base_tuned"] = saes.mmcs_base_tuned;
    out["triples"] = triples;
    out["tuned_held_out"] = agreement_json(probes.tuned.held_out.agreement);
    out["base_held_out"] = agreement_json(probes.base.held_out.agreement);
    out["tuned_in_sample"] = agreement_json(probes.tuned.in_sample.agreement);
    out["random_mean_kendall_tau_b"] = probes.tuned.random->mean(tau);
    out["random_sd_kendall_tau_b"] = probes.tuned.random->standard_deviation(tau);
    sae::write_file_atomically(s.o.json_path, out.dump(2) + "\n");
}

int run(const Options& o) {
#if defined(_OPENMP)
    omp_set_num_threads(o.threads);
#endif
    Eigen::setNbThreads(o.threads);
    Setting s = load(o);
    const irm::ModelDivergence divergence = choose_layers(s);
    const SaeStage saes = train_saes(s);
    const std::vector<irm::ContrastiveTriple> triples = make_triples(s);
    const ProbeStage probes = run_probes(s, saes, triples);
    print_features(s, saes, probes);
    std::printf("total %.1f s\n", s.progress.elapsed());
    if (!o.json_path.empty()) write_json(s, divergence, saes, triples.size(), probes);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return sae::cli::run_main("irm_probe", [&] { return run(parse(argc, argv)); });
}
