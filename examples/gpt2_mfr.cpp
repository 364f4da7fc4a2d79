// gpt2_mfr: the MFR paper's language-model experiment. Extracts a GPT-2 hook's
// activations (layer-0 MLP output by default) from text into shards, trains an ensemble
// of tied TopK SAEs coupled by Mutual Feature Regularization and the same ensemble with
// lambda = 0 on the same batches, and compares them on held-out activations: MSE, FVU,
// L0, dead latents, and the language model's loss with each SAE spliced in.
//
//   gpt2_mfr                    the shipped fortunes GPT-2 on Debian's fortunes (quick default)
//   gpt2_mfr --shakespeare      the trained character-level gpt-nano on Tiny Shakespeare
//   gpt2_mfr --both             both, one after the other
//   gpt2_mfr --model DIR        any Hugging Face GPT-2 directory (e.g. real GPT-2 Small)
//   gpt2_mfr --paper            the paper's SAE setting (10 SAEs, 3072 latents, k = 6)
//   gpt2_mfr --help             every setting
#include "example_data.hpp"

#include <sae/cli/arguments.hpp>
#include <sae/models/activation_extractor.hpp>
#include <sae/models/gpt2_loader.hpp>
#include <sae/models/splice_metrics.hpp>
#include <sae/sae.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using sae::Index;
using Ensemble = sae::MfrEnsemble<float, sae::TopK>;
namespace models = sae::models;

// The English fortune files that tools/gpt2/train_fortunes.py trained the shipped model
// on (the same list, so the text is the model's own domain).
const char* const fortune_files[] = {
    "art",       "computers",  "cookie",      "debian",     "definitions", "disclaimer", "drugs",
    "education", "ethnic",     "food",        "fortunes",   "goedel",      "humorists",  "kids",
    "knghtbrd",  "law",        "linux",       "linuxcookie", "literature", "love",       "magic",
    "medicine",  "men-women",  "miscellaneous", "news",     "paradoxum",   "people",     "perl",
    "pets",      "platitudes", "politics",    "pratchett",  "riddles",     "science",    "songs-poems",
    "sports",    "startrek",   "tao",         "wisdom",     "work",        "zippy",
};

struct Options {
    // Models and text.
    std::string model_dir;  // empty: examples/data/fortunes-gpt2
    std::string tokenizer_dir = example_data_path("gpt2-tokenizer");
    std::string mingpt_json;
    std::string mingpt_type = "gpt-nano";
    std::string char_vocab;  // a text whose sorted distinct bytes are the character vocabulary
    std::vector<std::string> text_files;
    std::optional<std::string> separator;
    std::string fortunes_dir = "/usr/share/games/fortunes";
    bool shakespeare = false;
    bool both = false;
    // Extraction.
    std::string hook = "blocks.0.hook_mlp_out";
    Index context = 0;  // 0: min(n_ctx, 128)
    Index extract_batch = 16;
    bool prepend_bos = true;
    bool exclude_bos = true;
    std::int64_t train_tokens = 400'000;
    std::int64_t eval_tokens = 40'000;
    int holdout_every = 10;
    models::ShardFormat format = models::ShardFormat::npy;
    std::string out_dir = "gpt2_mfr_out";
    bool force_progress = false;
    // SAEs (the paper's GPT-2 setting, scaled: see --help).
    Index saes = 4;
    Index latents = 0;  // 0: 4 x d (the paper's 3072 / 768)
    Index k = 6;
    double lambda = 0.005;
    double lr = 1e-3;
    Index batch = 500;
    std::size_t steps = 2000;
    std::size_t warmup = 100;
    sae::MatchingMode matching = sae::MatchingMode::one_to_one;
    std::size_t refresh = 100;
    bool normalize = true;
    bool paper = false;
    int threads = 0;  // 0: the OpenMP default
    // Evaluation.
    Index splice_windows = 32;
    std::uint64_t seed = 0;
    std::string json_path;
};

void print_help() {
    std::cout << R"(gpt2_mfr: MFR ensemble vs the same SAEs with lambda = 0 on GPT-2 activations.

Models (default: the shipped fortunes GPT-2, examples/data/fortunes-gpt2, on the English
fortune files of /usr/share/games/fortunes, documents split on "\n%\n"):
  --model DIR          a Hugging Face GPT-2 directory (config.json + model.safetensors,
                       optional vocab_map.json), e.g. real GPT-2 Small
  --tokenizer DIR      GPT-2 BPE files [examples/data/gpt2-tokenizer]
  --mingpt-json FILE   a minGPT/nanoGPT JSON state dict, character-level
  --mingpt-type NAME   its minGPT preset [gpt-nano]
  --char-vocab FILE    text whose sorted distinct bytes are the character ids
                       [the first --text file]
  --text FILE          a text file (repeat for several)
  --separator STR      document separator, \n and \t understood ["" = a file is one
                       document; "\n%\n" for the fortunes]
  --fortunes-dir DIR   [/usr/share/games/fortunes]
  --shakespeare        the trained gpt-nano on Tiny Shakespeare (examples/data/
                       gpt-nano-shakespeare: char vocab of input.txt, no BOS)
  --both               the fortunes model, then the Shakespeare model

Extraction:
  --hook NAME          TransformerLens hook point [blocks.0.hook_mlp_out]
  --context N          tokens per window [min(n_ctx, 128)]
  --extract-batch N    windows per forward pass [16]
  --no-bos             do not prepend <|endoftext|> (implied for a model without one)
  --keep-bos-row       keep the BOS position's activation (dropped by default)
  --train-tokens N     training activations [400000]; 0 = all the training text
  --eval-tokens N      held-out activations [40000]
  --holdout-every N    every N-th document is held out; a single document gives its
                       last 1/N (cut at a line break) [10]
  --format npy|safetensors   shard format [npy]
  --out DIR            where the shards go [gpt2_mfr_out]
  --progress           draw the progress bar even when stderr is not a terminal

SAEs (tied TopK without ReLU, Adam, MSE: the MFR authors' SAE):
  --saes M             SAEs per ensemble [4; paper 10]
  --latents N          latents per SAE [4 x d_model; paper 3072 = 4 x 768]
  --k K                active latents [6]
  --lambda X           MFR coefficient of the coupled run [0.005]
  --lr X               Adam learning rate [1e-3]
  --batch N            activations per step [500]
  --steps N            training steps [2000]
  --warmup N           penalty warm-up steps [100]
  --matching MODE      one_to_one (Hungarian, the authors') | max_cosine [one_to_one]
  --refresh K          recompute the matching every K steps [100; paper 1]
  --no-normalize       train on the raw activations. By default they are scaled by one
                       constant so that E||x|| = sqrt(d_model) (SAELens' normalisation),
                       which makes lambda mean the same on every model: the penalty is
                       compared with an MSE whose size is otherwise set by the model's
                       activation scale. MSEs are reported in the units trained on.
  --paper              10 SAEs, 3072 latents (4 x d_model on a smaller model), k 6,
                       lambda 0.005, lr 1e-3, batch 500, matching refreshed every step.
                       Hours to days on a CPU; add --refresh 100 to make it tractable.

Evaluation and output:
  --splice-windows N   held-out windows for the spliced CE loss [32]
  --seed N             [0]
  --threads N          OpenMP/Eigen threads [the OpenMP default: all cores]. On a
                       machine shared with other jobs, 1 is often faster for these
                       small models (idle OpenMP threads spin).
  --json PATH          also write the results as JSON

Loss recovered = (CE zero-ablated - CE spliced) / (CE zero-ablated - CE clean), the
hook's activation replaced by each SAE's reconstruction on held-out windows (the BOS
position keeps its clean activation when BOS rows were not trained on).
)";
}

std::string unescape(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == 'n' || text[i + 1] == 't' || text[i + 1] == '\\')) {
            out.push_back(text[i + 1] == 'n' ? '\n' : text[i + 1] == 't' ? '\t' : '\\');
            ++i;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

Options parse(int argc, char** argv) {
    const sae::cli::Arguments args(
        argc, argv, 1,
        {{"model", true},          {"tokenizer", true},    {"mingpt-json", true},    {"mingpt-type", true},
         {"char-vocab", true},     {"text", true},         {"separator", true},      {"fortunes-dir", true},
         {"shakespeare", false},   {"both", false},        {"hook", true},           {"context", true},
         {"extract-batch", true},  {"no-bos", false},      {"keep-bos-row", false},  {"train-tokens", true},
         {"eval-tokens", true},    {"holdout-every", true}, {"format", true},        {"out", true},
         {"progress", false},      {"saes", true},         {"latents", true},        {"k", true},
         {"lambda", true},         {"lr", true},           {"batch", true},          {"steps", true},
         {"warmup", true},         {"matching", true},     {"refresh", true},        {"no-normalize", false},
         {"threads", true},        {"paper", false},       {"splice-windows", true}, {"seed", true},
         {"json", true}},
        "gpt2_mfr");
    if (args.help()) {
        print_help();
        std::exit(0);
    }
    if (!args.positional().empty()) throw sae::cli::usage_error("gpt2_mfr: unexpected argument '" + args.positional().front() + "'");
    const auto count = [&](const char* name, auto fallback, std::int64_t minimum) {
        return static_cast<decltype(fallback)>(args.integer(name, static_cast<std::int64_t>(fallback), minimum));
    };
    Options o;
    if (args.flag("paper")) {  // the paper's GPT-2 setting; the options below still override it
        o.paper = true;
        o.saes = 10;
        o.k = 6;
        o.lambda = 0.005;
        o.lr = 1e-3;
        o.batch = 500;
        o.refresh = 1;
    }
    o.model_dir = args.get("model", o.model_dir);
    o.tokenizer_dir = args.get("tokenizer", o.tokenizer_dir);
    o.mingpt_json = args.get("mingpt-json", o.mingpt_json);
    o.mingpt_type = args.get("mingpt-type", o.mingpt_type);
    o.char_vocab = args.get("char-vocab", o.char_vocab);
    o.text_files = args.all("text");
    if (args.flag("separator")) o.separator = unescape(args.get("separator", ""));
    o.fortunes_dir = args.get("fortunes-dir", o.fortunes_dir);
    o.shakespeare = args.flag("shakespeare");
    o.both = args.flag("both");
    o.hook = args.get("hook", o.hook);
    o.context = count("context", o.context, 0);
    o.extract_batch = count("extract-batch", o.extract_batch, 1);
    o.prepend_bos = !args.flag("no-bos");
    o.exclude_bos = !args.flag("keep-bos-row");
    o.train_tokens = count("train-tokens", o.train_tokens, 0);
    o.eval_tokens = count("eval-tokens", o.eval_tokens, 1);
    o.holdout_every = count("holdout-every", o.holdout_every, 2);
    o.format = args.choice("format", o.format, {{"npy", models::ShardFormat::npy}, {"safetensors", models::ShardFormat::safetensors}});
    o.out_dir = args.get("out", o.out_dir);
    o.force_progress = args.flag("progress");
    o.saes = count("saes", o.saes, 1);
    o.latents = count("latents", o.latents, 0);
    o.k = count("k", o.k, 1);
    o.lambda = args.real("lambda", o.lambda);
    o.lr = args.real("lr", o.lr);
    o.batch = count("batch", o.batch, 1);
    o.steps = count("steps", o.steps, 1);
    o.warmup = count("warmup", o.warmup, 0);
    o.matching = args.choice("matching", o.matching,
                             {{"one_to_one", sae::MatchingMode::one_to_one}, {"max_cosine", sae::MatchingMode::max_cosine}});
    o.refresh = count("refresh", o.refresh, 1);
    o.normalize = !args.flag("no-normalize");
    o.threads = count("threads", o.threads, 0);
    o.splice_windows = count("splice-windows", o.splice_windows, 0);
    o.seed = count("seed", o.seed, 0);
    o.json_path = args.get("json", o.json_path);
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// One language model with its text: what an experiment runs on.
struct Setting {
    std::string name;
    std::string description;
    std::unique_ptr<models::Gpt2<float>> model;
    std::unique_ptr<models::TextEncoder> encoder;
    std::vector<std::string> text_files;
    std::string separator;
};

Setting hf_setting(const Options& o, const std::string& name, const std::string& dir, std::vector<std::string> files,
                   std::string separator) {
    models::LoadedGpt2<float> loaded = models::load_hf_gpt2<float>(dir);
    Setting s;
    s.name = name;
    s.description = dir;
    s.model = std::make_unique<models::Gpt2<float>>(std::move(loaded.model));
    s.encoder = std::make_unique<models::BpeTextEncoder>(models::BpeTokenizer::from_directory(o.tokenizer_dir),
                                                         std::move(loaded.vocab_map));
    s.text_files = std::move(files);
    s.separator = std::move(separator);
    return s;
}

Setting mingpt_setting(const Options& o, const std::string& name, const std::string& json, const std::string& vocab_text,
                       std::vector<std::string> files, std::string separator) {
    Setting s;
    s.name = name;
    s.description = json;
    s.model = std::make_unique<models::Gpt2<float>>(models::load_mingpt_json<float>(json, models::mingpt_model_type(o.mingpt_type)));
    s.encoder = std::make_unique<models::CharTextEncoder>(models::CharTextEncoder::from_text(sae::read_whole_file(vocab_text)));
    s.text_files = std::move(files);
    s.separator = std::move(separator);
    return s;
}

std::vector<Setting> settings(const Options& o) {
    std::vector<Setting> out;
    const std::string data = example_data_path("");
    const auto fortunes = [&] {
        std::vector<std::string> files;
        for (const char* name : fortune_files) files.push_back(o.fortunes_dir + "/" + name);
        return hf_setting(o, "fortunes", data + "/fortunes-gpt2", files, o.separator.value_or("\n%\n"));
    };
    const auto shakespeare = [&] {
        const std::string dir = data + "/gpt-nano-shakespeare";
        return mingpt_setting(o, "shakespeare", dir + "/model_weights.json", dir + "/input.txt", {dir + "/input.txt"}, "");
    };
    if (o.both) {
        out.push_back(fortunes());
        out.push_back(shakespeare());
    } else if (o.shakespeare) {
        out.push_back(shakespeare());
    } else if (!o.mingpt_json.empty()) {
        if (o.text_files.empty()) throw sae::config_error("--mingpt-json needs --text FILE");
        out.push_back(mingpt_setting(o, "mingpt", o.mingpt_json, o.char_vocab.empty() ? o.text_files.front() : o.char_vocab,
                                     o.text_files, o.separator.value_or("")));
    } else if (!o.model_dir.empty()) {
        std::vector<std::string> files = o.text_files;
        std::string separator = o.separator.value_or("");
        if (files.empty()) {  // the fortunes, as for the shipped model
            for (const char* name : fortune_files) files.push_back(o.fortunes_dir + "/" + name);
            separator = o.separator.value_or("\n%\n");
        }
        out.push_back(hf_setting(o, "model", o.model_dir, files, separator));
    } else {
        out.push_back(fortunes());
        if (!o.text_files.empty()) {
            out.back().text_files = o.text_files;
            out.back().separator = o.separator.value_or("");
        }
    }
    return out;
}

/// The documents of all files, split into training and held-out parts: every
/// holdout_every-th document is held out; a lone document gives its last 1/holdout_every
/// (from the first line break after that point).
struct Corpus {
    std::deque<std::string> texts;  // owns the bytes the views point into (a deque never moves them)
    std::vector<std::string_view> train, held_out;
    std::size_t documents = 0;
};

Corpus read_corpus(const Setting& s, int holdout_every) {
    Corpus c;
    for (const std::string& path : s.text_files) c.texts.push_back(sae::read_whole_file(path));
    std::vector<std::string_view> docs;
    for (const std::string& text : c.texts) {
        for (const std::string_view d : models::split_documents(text, s.separator)) docs.push_back(d);
    }
    c.documents = docs.size();
    if (docs.size() == 1) {
        const std::string_view only = docs.front();
        std::size_t cut = only.find('\n', only.size() - only.size() / static_cast<std::size_t>(holdout_every));
        if (cut == std::string_view::npos) cut = only.size() - only.size() / static_cast<std::size_t>(holdout_every);
        c.train.push_back(only.substr(0, cut));
        c.held_out.push_back(only.substr(cut));
        return c;
    }
    for (std::size_t i = 0; i < docs.size(); ++i) {
        (i % static_cast<std::size_t>(holdout_every) == static_cast<std::size_t>(holdout_every - 1) ? c.held_out : c.train)
            .push_back(docs[i]);
    }
    return c;
}

models::ActivationManifest extract(const Options& o, const Setting& s, const std::vector<std::string_view>& docs,
                                   const std::string& part, std::int64_t max_tokens, Index context, bool bos) {
    models::ExtractionConfig config;
    config.hook = o.hook;
    config.context_length = context;
    config.batch_size = o.extract_batch;
    config.prepend_bos = bos;
    config.exclude_bos = o.exclude_bos;
    config.document_separator = s.separator;
    config.max_tokens = max_tokens;
    config.format = o.format;
    config.output_directory = o.out_dir + "/" + s.name + "/" + part;
    config.model_name = s.description;
    config.progress = o.force_progress ? models::ProgressDisplay::always : models::ProgressDisplay::if_terminal;
    models::ActivationExtractor<float> extractor(*s.model, *s.encoder, config);
    std::uint64_t bytes = 0;
    for (const std::string_view d : docs) bytes += d.size();
    extractor.expect_input_bytes(bytes);
    for (const std::string_view d : docs) {
        if (!extractor.add_document(d)) break;
    }
    models::ActivationManifest manifest = extractor.finish();
    manifest.text_files = s.text_files;
    manifest.save();  // record the source files (documents were passed one by one)
    return manifest;
}

struct MemberResult {
    double mse = 0, fvu = 0, l0 = 0, dead = 0;
    models::SpliceMetrics splice;
};

struct RunResult {
    std::string name;
    double lambda = 0;
    double seconds = 0;
    double pairwise_mmcs = 0;
    std::vector<MemberResult> members;
};

sae::Matrix<float> read_all_rows(const models::ActivationManifest& m) {
    sae::ShardSourceConfig config = m.shard_source_config();
    config.shuffle_buffer_rows = 0;
    config.batch_size = static_cast<Index>(m.tokens);
    sae::ShardSource<float> source(config);
    sae::Matrix<float> rows;
    source.next_batch(rows);
    return rows;
}

/// The constant that gives the training activations a mean norm of sqrt(d), from up to
/// 65,536 of them in file order.
double normalisation_scale(const models::ActivationManifest& m) {
    sae::ShardSourceConfig config = m.shard_source_config();
    config.shuffle_buffer_rows = 0;
    config.batch_size = static_cast<Index>(std::min<std::int64_t>(m.tokens, 65'536));
    sae::ShardSource<float> source(config);
    sae::Matrix<float> rows;
    source.next_batch(rows);
    const double mean_norm = rows.cast<double>().rowwise().norm().mean();
    if (!(mean_norm > 0.0)) throw sae::numeric_error(m.path() + ": the activations are all zero");
    return std::sqrt(static_cast<double>(m.d)) / mean_norm;
}

/// Training batches multiplied by one constant.
struct ScaledSource {
    sae::ShardSource<float>& shards;
    float scale;
    void next_batch(sae::Matrix<float>& out) {
        shards.next_batch(out);
        out *= scale;
    }
};

struct Experiment {
    const Options& o;
    const Setting& setting;
    const models::ActivationManifest& train_manifest;
    const sae::Matrix<float>& held_out;
    const std::vector<models::TokenBatch>& splice_batches;
    Index latents;
    bool bos_row_kept_clean;
    float scale;  ///< applied to every activation the SAEs see (1 = raw)
};

RunResult train_and_evaluate(const Experiment& e, const std::string& name, double lambda) {
    const Options& o = e.o;
    sae::MfrConfig mfr;
    mfr.num_saes = o.saes;
    mfr.penalty_coefficient = lambda;
    mfr.penalty_warmup_steps = o.warmup;
    mfr.matching = o.matching;
    mfr.matching_refresh_steps = o.refresh;
    sae::TrainingConfig training;
    training.learning_rate.base_rate = o.lr;
    training.loss.normalization = sae::ReconstructionNormalization::mean_over_elements;
    const sae::AutoencoderConfig model{e.train_manifest.d, e.latents, /*tied=*/true, /*decoder_bias=*/false};
    Ensemble ensemble(mfr, model, {o.k, /*relu=*/false}, training, o.seed);

    // The same seed gives both runs the same batches in the same order.
    sae::ShardSourceConfig data = e.train_manifest.shard_source_config();
    data.batch_size = o.batch;
    data.epochs = 0;
    data.seed = o.seed;
    data.shuffle_buffer_rows = std::min<Index>(262'144, static_cast<Index>(e.train_manifest.tokens));
    sae::ShardSource<float> shards(data);
    ScaledSource source{shards, e.scale};

    std::cerr << e.setting.name << ": " << name << " (lambda = " << lambda << ")\n";
    sae::TrainerConfig trainer;
    trainer.total_steps = o.steps;
    const auto start = std::chrono::steady_clock::now();
    sae::train(ensemble, source, trainer, sae::ProgressBar(std::cerr, std::max<std::size_t>(1, o.steps / 10)));
    RunResult result{name, lambda, seconds_since(start), ensemble.mean_pairwise_mmcs(), {}};

    const std::string hook = e.train_manifest.hook;
    for (const auto& member : ensemble.members()) {
        const auto& sae_model = member.model();
        sae::Evaluation evaluation(sae_model.d_in(), sae_model.d_sae());
        for (Index first = 0; first < e.held_out.rows(); first += 4096) {
            sae::evaluate_batch(sae_model, e.held_out.middleRows(first, std::min<Index>(4096, e.held_out.rows() - first)), evaluation);
        }
        MemberResult m;
        m.mse = evaluation.mse();
        m.fvu = evaluation.fvu();
        m.l0 = evaluation.l0();
        m.dead = evaluation.dead_fraction();
        const Index seq = e.splice_batches.front().cols();
        const bool keep_bos = e.bos_row_kept_clean;
        const float scale = e.scale;
        m.splice = models::splice_metrics<float>(*e.setting.model, e.splice_batches, hook,
                                                 [&sae_model, seq, keep_bos, scale](const sae::Matrix<float>& x) {
                                                     sae::Matrix<float> x_hat = sae_model.forward(x * scale) / scale;
                                                     if (keep_bos) {  // the SAE never saw BOS rows
                                                         for (Index r = 0; r < x.rows(); r += seq) x_hat.row(r) = x.row(r);
                                                     }
                                                     return x_hat;
                                                 });
        result.members.push_back(m);
    }
    return result;
}

double mean_of(const RunResult& run, double MemberResult::*field) {
    double total = 0;
    for (const auto& m : run.members) total += m.*field;
    return total / static_cast<double>(run.members.size());
}

double best_mse(const RunResult& run) {
    double best = run.members.front().mse;
    for (const auto& m : run.members) best = std::min(best, m.mse);
    return best;
}

double mean_recovered(const RunResult& run) {
    double total = 0;
    for (const auto& m : run.members) total += m.splice.loss_recovered;
    return total / static_cast<double>(run.members.size());
}

double best_recovered(const RunResult& run) {
    double best = run.members.front().splice.loss_recovered;
    for (const auto& m : run.members) best = std::max(best, m.splice.loss_recovered);
    return best;
}

struct SettingResult {
    std::string name;
    std::string header;
    std::vector<RunResult> runs;
    double ce_clean = 0, ce_zero = 0;
    std::size_t predictions = 0;
    double seconds = 0;
};

void print_result(const SettingResult& r) {
    std::cout << "\n" << r.header << "\n\n";
    std::cout << "| run      | lambda | SAE | held-out MSE | FVU    | L0   | dead  | CE spliced | loss recovered |\n"
              << "|----------|--------|-----|--------------|--------|------|-------|------------|----------------|\n"
              << std::fixed;
    for (const auto& run : r.runs) {
        for (std::size_t i = 0; i < run.members.size(); ++i) {
            const MemberResult& m = run.members[i];
            std::cout << "| " << std::left << std::setw(8) << run.name << std::right << " | " << std::setw(6) << std::setprecision(3)
                      << run.lambda << " | " << std::setw(3) << i << " | " << std::setw(12) << std::setprecision(6) << m.mse
                      << " | " << std::setw(6) << std::setprecision(4) << m.fvu << " | " << std::setw(4) << std::setprecision(1)
                      << m.l0 << " | " << std::setw(5) << std::setprecision(3) << m.dead << " | " << std::setw(10)
                      << std::setprecision(4) << m.splice.ce_spliced << " | " << std::setw(14) << std::setprecision(4)
                      << m.splice.loss_recovered << " |\n";
        }
    }
    const RunResult& base = r.runs[0];
    const RunResult& coupled = r.runs[1];
    const double mean_base = mean_of(base, &MemberResult::mse), mean_mfr = mean_of(coupled, &MemberResult::mse);
    const double best_base = best_mse(base), best_mfr = best_mse(coupled);
    std::cout << "\nCE clean " << std::setprecision(4) << r.ce_clean << ", zero-ablated " << r.ce_zero << " (nats/token, "
              << r.predictions << " held-out predictions)\n";
    for (const RunResult* run : {&base, &coupled}) {
        std::cout << run->name << ": mean MSE " << std::setprecision(6) << mean_of(*run, &MemberResult::mse) << ", best "
                  << best_mse(*run) << "; mean L0 " << std::setprecision(2) << mean_of(*run, &MemberResult::l0) << ", mean dead "
                  << std::setprecision(3) << mean_of(*run, &MemberResult::dead) << "; loss recovered mean "
                  << std::setprecision(4) << mean_recovered(*run) << ", best " << best_recovered(*run)
                  << "; pairwise MMCS " << run->pairwise_mmcs << "; " << std::setprecision(1) << run->seconds << " s\n";
    }
    std::cout << std::showpos << std::setprecision(2) << "MSE improvement of MFR over lambda = 0: mean member "
              << 100.0 * (mean_base - mean_mfr) / mean_base << "%, best member " << 100.0 * (best_base - best_mfr) / best_base
              << "% (the paper: up to +21.21% on GPT-2 Small)\n"
              << std::noshowpos << std::defaultfloat;
}

SettingResult run_setting(const Options& o, const Setting& s) {
    const auto start = std::chrono::steady_clock::now();
    const models::Gpt2Config& config = s.model->config();
    const Index context = o.context > 0 ? o.context : std::min(config.n_ctx, 128);
    const bool bos = o.prepend_bos && s.encoder->end_of_text_id().has_value();
    const Corpus corpus = read_corpus(s, o.holdout_every);
    std::cout << "\n## " << s.name << ": " << s.description << "\n"
              << "model: " << config.n_layer << " layers, d_model " << config.n_embd << ", n_ctx " << config.n_ctx << ", vocab "
              << config.vocab_size << "; text: " << s.text_files.size() << " file(s), " << corpus.documents << " document(s), "
              << corpus.train.size() << " for training, " << corpus.held_out.size() << " held out; encoder "
              << s.encoder->description() << "\n";

    const auto extract_start = std::chrono::steady_clock::now();
    const models::ActivationManifest train = extract(o, s, corpus.train, "train", o.train_tokens, context, bos);
    const models::ActivationManifest eval = extract(o, s, corpus.held_out, "eval", o.eval_tokens, context, bos);
    std::cout << "extracted " << train.hook << " (d = " << train.d << "): " << train.tokens << " training and " << eval.tokens
              << " held-out activations in " << train.shards.size() << " + " << eval.shards.size() << " shard(s), windows of "
              << context << " tokens, BOS " << (bos ? "prepended" : "none") << (bos && o.exclude_bos ? " (its row excluded)" : "")
              << ", " << std::fixed << std::setprecision(1) << seconds_since(extract_start) << " s; manifests in " << o.out_dir
              << "/" << s.name << "/{train,eval}/manifest.json\n"
              << std::defaultfloat;

    const float scale = o.normalize ? static_cast<float>(normalisation_scale(train)) : 1.0f;
    const sae::Matrix<float> held_out = read_all_rows(eval) * scale;
    const models::TokenBatch windows = models::token_windows(*s.encoder, corpus.held_out, context, bos, o.splice_windows);
    if (windows.rows() == 0) throw sae::config_error(s.name + ": the held-out text has no complete window for the splice metrics");
    std::vector<models::TokenBatch> splice_batches;
    for (Index first = 0; first < windows.rows(); first += 8) splice_batches.push_back(windows.middleRows(first, std::min<Index>(8, windows.rows() - first)));

    // 4 x d_model is the paper's ratio (3072 latents on GPT-2 Small's 768).
    const Index latents = o.latents > 0 ? o.latents : 4 * train.d;
    const Experiment e{o, s, train, held_out, splice_batches, latents, bos && o.exclude_bos, scale};
    std::ostringstream header;
    header << "### " << s.name << ": " << o.saes << " tied TopK SAEs (" << e.latents << " latents = " << e.latents / train.d
           << " x d_model " << train.d << ", k = " << o.k << "), lambda " << o.lambda << " vs 0, Adam " << o.lr << ", "
           << o.steps << " steps x " << o.batch << " activations, matching "
           << (o.matching == sae::MatchingMode::one_to_one ? "one_to_one" : "max_cosine") << " every " << o.refresh
           << " steps, inputs " << (o.normalize ? "scaled by " + std::to_string(scale) + " (E||x|| = sqrt(d))" : std::string("raw"))
           << ", seed " << o.seed << (o.paper ? " (--paper)" : " (scaled default; --paper for the full setting)") << "\n"
           << "hook " << train.hook << "; " << train.tokens << " training activations; held out: " << held_out.rows()
           << " activations for MSE/FVU/L0/dead, " << windows.rows() << " windows of " << context << " tokens for the spliced loss";

    SettingResult result;
    result.name = s.name;
    result.runs.push_back(train_and_evaluate(e, "baseline", 0.0));
    result.runs.push_back(train_and_evaluate(e, "MFR", o.lambda));
    result.ce_clean = result.runs[0].members.front().splice.ce_clean;
    result.ce_zero = result.runs[0].members.front().splice.ce_zero_ablated;
    result.predictions = result.runs[0].members.front().splice.predictions;
    result.seconds = seconds_since(start);
    header << "; total " << std::fixed << std::setprecision(1) << result.seconds << " s";
    result.header = header.str();
    return result;
}

void write_json(const Options& o, const std::vector<SettingResult>& results) {
    nlohmann::json out;
    out["seed"] = o.seed;
    out["steps"] = o.steps;
    out["batch"] = o.batch;
    out["saes"] = o.saes;
    out["k"] = o.k;
    out["lambda"] = o.lambda;
    for (const SettingResult& r : results) {
        nlohmann::json setting{{"name", r.name}, {"description", r.header}, {"ce_clean", r.ce_clean}, {"ce_zero_ablated", r.ce_zero},
                               {"predictions", r.predictions}, {"seconds", r.seconds}};
        for (const RunResult& run : r.runs) {
            nlohmann::json j{{"name", run.name}, {"lambda", run.lambda}, {"seconds", run.seconds}, {"pairwise_mmcs", run.pairwise_mmcs}};
            for (const MemberResult& m : run.members) {
                j["members"].push_back({{"mse", m.mse}, {"fvu", m.fvu}, {"l0", m.l0}, {"dead_fraction", m.dead},
                                        {"ce_spliced", m.splice.ce_spliced}, {"loss_recovered", m.splice.loss_recovered},
                                        {"kl_clean_spliced", m.splice.kl_clean_spliced}});
            }
            setting["runs"].push_back(j);
        }
        const double base = mean_of(r.runs[0], &MemberResult::mse), mfr = mean_of(r.runs[1], &MemberResult::mse);
        setting["mse_improvement_percent_mean_member"] = 100.0 * (base - mfr) / base;
        setting["mse_improvement_percent_best_member"] = 100.0 * (best_mse(r.runs[0]) - best_mse(r.runs[1])) / best_mse(r.runs[0]);
        out["settings"].push_back(setting);
    }
    sae::write_file_atomically(o.json_path, out.dump(2) + "\n");
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        if (o.threads > 0) {
#if defined(_OPENMP)
            omp_set_num_threads(o.threads);
#endif
            Eigen::setNbThreads(o.threads);
        }
        std::cout << "threads: " << Eigen::nbThreads() << "\n";
        const std::vector<Setting> all = settings(o);
        std::vector<SettingResult> results;
        for (const Setting& s : all) {
            results.push_back(run_setting(o, s));
            print_result(results.back());
        }
        if (!o.json_path.empty()) write_json(o, results);
        return 0;
    } catch (...) {
        return sae::cli::exit_status_of_current_exception("gpt2_mfr");
    }
}
