#!/usr/bin/python3
"""Fine-tune the fortunes GPT-2 against the VADER token-utility reward (REINFORCE + KL).

The base/tuned model pair of the implicit-reward-model (IRM) experiment. The base is the
shipped `examples/data/fortunes-gpt2/` (tools/gpt2/train_fortunes.py); the tuned model is
written beside it, in exactly the same layout:

  <out>/config.json         the base's Hugging Face keys + a "libsae" provenance block
                            (settings, measured rewards and KL, training history)
  <out>/model.safetensors   same tensor names, dtypes (F32) and shapes as the base
  <out>/vocab_map.json      byte-identical copy of the base's
  <out>/README.md           how it was made, the command, the measured numbers, samples
  <out>/LICENSE             the base's licence (fortunes text) + the VADER lexicon's (MIT)

Reward (the source paper's token-utility reward, apartresearch/Probing-Learned-Feedback-
Patterns, UtilityValuesRewardClass): the response (the sampled tokens only) is decoded to
text, cut into words the way VADER does (str.split(), then surrounding punctuation stripped
unless at most two characters remain -- the same rule as include/sae/models/
sentiment_lexicon.hpp), every word is looked up lower-cased in the VADER lexicon (absent =
0), and reward = clip(sum / 5, -10, 10).

Policy gradient: REINFORCE on the KL-regularised objective that RLHF's PPO optimises,
J = E[R] - beta KL(pi || pi_base), the KL of whole responses = the sum over positions of
the KL of the next-token distributions. Its exact gradient is estimated as
  sum_t grad log pi(y_t) * (A_t)  +  beta * sum_t grad KL_t
where KL_t = KL(pi(.|y_<t) || pi_base(.|y_<t)) is computed exactly over the vocabulary at
each sampled position (the second term: the KL's direct dependence on pi; the first: its
dependence through which positions are visited, plus the reward), and
  A_t = R - (reward of the words finished before token t) - beta * sum_{s>t} KL_s - b_t,
b_t = the mean of the same quantity over the other responses of the batch (leave-one-out).
Subtracting functions of the prefix keeps the estimator unbiased; the finished-word term
removes the reward that token t cannot change (the reward is a sum over words). The
exact per-position KL, rather than the sampled log-ratio log pi(y_t) - log pi_base(y_t)
of TRL's per-token penalty, keeps the KL bounded: with the sampled ratio the KL grew
several times faster than the reward and J fell (tools/gpt2/README.md). One on-policy
Adam step per batch of 64 responses; no value head, no ratio clipping (one PPO epoch over
fresh samples with mini-batch = batch is this update).

Sampling: prompt = <|endoftext|> + the first k GPT-2 tokens (k uniform in 2..10) of a real
fortune (training split for training, the base's validation split for evaluation); the
response has L tokens (L uniform in 8..20), sampled at temperature 1 without top-k/top-p
(as the authors: top_k 0, top_p 1) from the model's distribution over its text tokens
(<|endoftext|> and the unknown slot have no text and are never emitted; every probability
and KL below is over that renormalised distribution). k and L are drawn once per batch,
so a batch is a rectangle and needs no padding.

Everything random is seeded (--seed); with the same arguments, thread count and BLAS a
rerun reproduces the weights bit for bit.

Run from the repository root:  /usr/bin/python3 tools/gpt2/finetune_vader.py
"""

import argparse
import hashlib
import json
import math
import random
import shutil
import string
import sys
import time
from pathlib import Path

# Importing train_fortunes also sets OMP_WAIT_POLICY=PASSIVE before torch is loaded.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_fortunes as base_tools  # noqa: E402  (model, safetensors, corpus, tokenizer)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO_ROOT = base_tools.REPO_ROOT
SCRIPT = "tools/gpt2/finetune_vader.py"
PROMPT_TOKENS = (2, 10)     # the authors' LengthSampler(2, 10) for queries
RESPONSE_TOKENS = (8, 20)   # and LengthSampler(8, 20) for responses
REWARD_SCALE = 5.0          # UtilityValuesRewardClass.reward_scaling_factor
REWARD_CLIP = 10.0          # its max_reward / -min_reward

# ---------------------------------------------------------------------------------
# Reward: the VADER lexicon summed over the words of the response text.


def load_vader_lexicon(path):
    """word -> mean valence, as VADER's make_lex_dict reads vader_lexicon.txt (first two
    TAB-separated fields; a word listed twice keeps its later value)."""
    lexicon = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        line = line.rstrip("\r").strip(" \t")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise SystemExit(f"error: {path}:{number}: no TAB-separated valence")
        try:
            value = float(fields[1])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SystemExit(f"error: {path}:{number}: valence {fields[1]!r} is not finite")
        lexicon[fields[0]] = value
    if not lexicon:
        raise SystemExit(f"error: {path}: no lexicon entry")
    return lexicon


def vader_words(text):
    """VADER 3.3.2's SentiText._words_and_emoticons: split at whitespace, strip leading and
    trailing punctuation unless at most two characters would remain (keeps ':)', 'ok,')."""
    words = []
    for piece in text.split():
        stripped = piece.strip(string.punctuation)
        words.append(piece if len(stripped) <= 2 else stripped)
    return words


def utility_reward(text, lexicon):
    """(sum of the lexicon valences of the words of `text`) / 5, clipped to [-10, 10]."""
    total = sum(lexicon.get(word.lower(), 0.0) for word in vader_words(text))
    return max(-REWARD_CLIP, min(REWARD_CLIP, total / REWARD_SCALE))


def finished_words_reward(text, lexicon):
    """The part of the reward (before clipping) already fixed by a response prefix `text`:
    the words followed by whitespace, which no later token can change. A function of the
    prefix only, so it is a valid baseline for the tokens after it."""
    end = max((i + 1 for i, ch in enumerate(text) if ch.isspace()), default=0)
    return sum(lexicon.get(word.lower(), 0.0) for word in vader_words(text[:end])) / REWARD_SCALE


def prefix_baselines(vocab, responses, lexicon):
    """[B, L]: finished_words_reward of tokens 0..t-1 of each response, for every t."""
    rows = []
    for row in responses.tolist():
        rows.append([finished_words_reward(vocab.decode(row[:t]), lexicon)
                     for t in range(len(row))])
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------------------------
# Model: the base script's Gpt2 module, driven position-selectively and with a KV cache.


def load_model(model_dir):
    """(Gpt2 module in eval mode, config dict, vocab_map dict) from a directory written by
    train_fortunes.py (or by this script)."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    vocab_map = json.loads((model_dir / "vocab_map.json").read_text())
    tensors, _ = base_tools.read_safetensors(model_dir / "model.safetensors")
    return model_from_tensors(config, tensors), config, vocab_map


def model_from_tensors(config, tensors):
    """A Gpt2 module (eval mode, no dropout) of `config` holding the Hugging Face tensors."""
    model = base_tools.Gpt2(config["vocab_size"], config["n_ctx"], config["n_embd"],
                            config["n_layer"], config["n_head"], config["layer_norm_epsilon"],
                            0.0)
    base_tools.import_state(model, tensors)
    model.eval()
    return model


def text_log_probs(model, ids, first, n_text):
    """log-softmax over the text tokens (model ids 0..n_text-1) at positions first..end of
    `ids` [B, T]: the distributions that predict ids[:, first+1:] and beyond. The same
    computation as Gpt2.forward (embeddings, blocks, ln_f, tied head), with the LM head --
    most of the cost -- applied only where it is needed and only to the text tokens."""
    x = model.wte(ids) + model.wpe(torch.arange(ids.shape[1]))
    for block in model.h:
        x = block(x)
    logits = model.ln_f(x[:, first:]) @ model.wte.weight[:n_text].t()
    return F.log_softmax(logits, dim=-1)


def cached_step(model, ids, cache):
    """Logits at the last position of `ids` [B, T] appended to the sequences whose keys and
    values are in `cache` (a list with one (K, V) pair or None per block; updated). The
    Block/Attention arithmetic of train_fortunes.py, keeping K and V so that sampling a
    token costs one position rather than the whole sequence; checked against Gpt2.forward
    by check_cached_forward."""
    batch, length = ids.shape
    past = 0 if cache[0] is None else cache[0][0].shape[2]
    x = model.wte(ids) + model.wpe(torch.arange(past, past + length))
    for layer, block in enumerate(model.h):
        attn = block.attn
        width = x.shape[-1]
        head = width // attn.n_head
        q, k, v = (z.view(batch, length, attn.n_head, head).transpose(1, 2)
                   for z in attn.c_attn(block.ln_1(x)).split(width, dim=2))
        if cache[layer] is not None:
            k = torch.cat([cache[layer][0], k], dim=2)
            v = torch.cat([cache[layer][1], v], dim=2)
        cache[layer] = (k, v)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head)
        scores = scores.masked_fill(~attn.causal[past:past + length, :past + length],
                                    float("-inf"))
        y = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, length, width)
        x = x + attn.c_proj(y)
        x = x + block.mlp(block.ln_2(x))
    return model.ln_f(x[:, -1]) @ model.wte.weight.t()


@torch.no_grad()
def check_cached_forward(model, n_text):
    """The cached and the position-selective forwards against Gpt2.forward."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, n_text, (3, 17), generator=gen)
    full = model(ids)
    cache = [None] * len(model.h)
    worst = float((cached_step(model, ids[:, :9], cache) - full[:, 8]).abs().max())
    for t in range(9, 17):
        worst = max(worst, float((cached_step(model, ids[:, t:t + 1], cache)
                                  - full[:, t]).abs().max()))
    selective = text_log_probs(model, ids, 5, n_text)
    worst = max(worst, float((selective - F.log_softmax(full[:, 5:, :n_text], -1)).abs().max()))
    if worst > 1e-4:
        raise SystemExit(f"error: cached / selective forward differs from Gpt2.forward by "
                         f"{worst:.3g}")
    return worst


@torch.no_grad()
def sample_responses(model, prompts, length, n_text, generator):
    """[B, length] text tokens sampled at temperature 1 after `prompts` [B, P]."""
    cache = [None] * len(model.h)
    logits = cached_step(model, prompts, cache)
    tokens = []
    for step in range(length):
        probs = torch.softmax(logits[:, :n_text], dim=-1)
        token = torch.multinomial(probs, 1, generator=generator)
        tokens.append(token)
        if step + 1 < length:
            logits = cached_step(model, token, cache)
    return torch.cat(tokens, dim=1)


# ---------------------------------------------------------------------------------
# Prompts: the first tokens of real fortunes, split as the base model's training split.


def base_split(base_config, fortunes_dir):
    """(training texts, validation texts): the base model's split of the fortunes, made as
    train_fortunes.py makes it (same corpus, checked by its SHA-256; same seed and count)."""
    info = base_config["libsae"]
    fortunes = base_tools.read_fortunes(fortunes_dir)
    digest = base_tools.corpus_digest(fortunes)
    if digest != info["corpus"]["sha256"]:
        raise SystemExit(f"error: the fortunes in {fortunes_dir} (sha256 {digest}) are not "
                         f"the base model's corpus ({info['corpus']['sha256']})")
    order = list(range(len(fortunes)))
    random.Random(info["seed"]).shuffle(order)
    n_val = info["corpus"]["val_fortunes"]
    return ([fortunes[i][1] for i in order[n_val:]], [fortunes[i][1] for i in order[:n_val]])


def prompt_pool(texts, encoder):
    """The first PROMPT_TOKENS[1] GPT-2 ids of every text that has at least that many."""
    encoded = (encoder.encode(text) for text in texts)
    return [ids[:PROMPT_TOKENS[1]] for ids in encoded if len(ids) >= PROMPT_TOKENS[1]]


class Vocabulary:
    """GPT-2 id <-> model id through vocab_map.json; text tokens are model ids 0..n_text-1,
    followed by <|endoftext|> and the unknown slot (the base script's layout)."""

    def __init__(self, vocab_map, encoder):
        self.model_to_gpt2 = vocab_map["model_to_gpt2"]
        self.unknown_id = vocab_map["unknown_model_id"]
        self.eot_id = self.model_to_gpt2.index(base_tools.GPT2_EOT_ID)
        self.n_text = self.eot_id
        if (self.eot_id, self.unknown_id) != (len(self.model_to_gpt2) - 2,
                                              len(self.model_to_gpt2) - 1):
            raise SystemExit("error: vocab_map.json does not end with <|endoftext|> and the "
                             "unknown slot")
        self.gpt2_to_model = {g: m for m, g in enumerate(self.model_to_gpt2) if g >= 0}
        self.encoder = encoder

    def to_model(self, gpt2_ids):
        return [self.gpt2_to_model.get(g, self.unknown_id) for g in gpt2_ids]

    def decode(self, model_ids):
        return self.encoder.decode([self.model_to_gpt2[int(i)] for i in model_ids
                                    if self.model_to_gpt2[int(i)] >= 0])


def make_prompts(vocab, pool, indices, k):
    """[B, 1 + k] model ids: <|endoftext|> then the first k tokens of each chosen fortune."""
    return torch.tensor([[vocab.eot_id] + vocab.to_model(pool[i][:k]) for i in indices],
                        dtype=torch.long)


def draw_lengths(generator):
    k = int(torch.randint(PROMPT_TOKENS[0], PROMPT_TOKENS[1] + 1, (1,), generator=generator))
    length = int(torch.randint(RESPONSE_TOKENS[0], RESPONSE_TOKENS[1] + 1, (1,),
                               generator=generator))
    return k, length


# ---------------------------------------------------------------------------------
# Training


def lr_at(step, steps, peak, warmup):
    """Linear warm-up, then linear decay to zero (the authors' get_linear_schedule_with_
    warmup)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (steps - step) / max(1, steps - warmup))


def train(policy, reference, vocab, lexicon, pool, args):
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    generator = torch.Generator().manual_seed(args.seed)
    history, window = [], []
    started, cpu_started = time.time(), time.process_time()
    policy.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        k, length = draw_lengths(generator)
        picks = torch.randint(0, len(pool), (args.batch_size,), generator=generator).tolist()
        prompts = make_prompts(vocab, pool, picks, k)
        responses = sample_responses(policy, prompts, length, vocab.n_text, generator)
        rewards = torch.tensor([utility_reward(vocab.decode(r), lexicon)
                                for r in responses.tolist()], dtype=torch.float32)

        sequences = torch.cat([prompts, responses], dim=1)
        first = prompts.shape[1] - 1  # the position that predicts the first response token
        log_p_all = text_log_probs(policy, sequences[:, :-1], first, vocab.n_text)
        log_p = log_p_all.gather(2, responses.unsqueeze(2)).squeeze(2)          # [B, L]
        with torch.no_grad():
            log_q_all = text_log_probs(reference, sequences[:, :-1], first, vocab.n_text)
            log_q = log_q_all.gather(2, responses.unsqueeze(2)).squeeze(2)
            kl_sampled = log_p.detach() - log_q                                  # [B, L]
        # Exact KL(pi || pi_base) over the text tokens at each sampled position [B, L].
        kl_exact = (log_p_all.exp() * (log_p_all - log_q_all)).sum(2)
        with torch.no_grad():
            kl_now = kl_exact.detach()
            # What token t can still change: the reward minus the words finished before it,
            # minus beta times the KL at the positions after it (the KL at its own position
            # is differentiated directly, below).
            returns = (rewards.unsqueeze(1) - prefix_baselines(vocab, responses, lexicon)
                       - args.kl_coef * (kl_now.flip(1).cumsum(1).flip(1) - kl_now))
            n = returns.shape[0]
            baseline = (returns.sum(0, keepdim=True) - returns) / (n - 1)       # leave-one-out
            advantages = returns - baseline
        loss = (-(advantages * log_p).sum(1).mean()
                + args.kl_coef * kl_exact.sum(1).mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm))
        optimizer.step()

        window.append((float(rewards.mean()), float(kl_sampled.mean()), float(kl_now.mean()),
                       float(kl_now.sum(1).mean()), grad_norm))
        if (step + 1) % args.log_interval == 0 or step + 1 == args.steps:
            means = np.mean(np.array(window), axis=0)
            row = {"step": step + 1, "reward": float(means[0]),
                   "kl_per_token_sampled": float(means[1]), "kl_per_token_exact": float(means[2]),
                   "kl_per_response": float(means[3]),
                   "objective": float(means[0] - args.kl_coef * means[3]),
                   "grad_norm": float(means[4]),
                   "elapsed_s": time.time() - started}
            history.append(row)
            print(f"step {step + 1:4d}  reward {row['reward']:+.4f}  KL/token "
                  f"{row['kl_per_token_exact']:.4f} (sampled {row['kl_per_token_sampled']:+.4f})"
                  f"  KL/response {row['kl_per_response']:.3f}  R-beta*KL {row['objective']:+.4f}  |g| {row['grad_norm']:.2f}  "
                  f"lr {optimizer.param_groups[0]['lr']:.2e}  {row['elapsed_s']:.0f} s",
                  flush=True)
            window = []
    policy.eval()
    return history, time.time() - started, time.process_time() - cpu_started


# ---------------------------------------------------------------------------------
# Evaluation on held-out prompts


@torch.no_grad()
def evaluate(model, reference, vocab, lexicon, pool, batches, batch_size, seed):
    """Rewards of `batches` x `batch_size` responses of `model` to validation-split prompts
    (fortunes taken in order, cycling), with (k, L) and every sampled token drawn from a
    generator seeded with `seed` -- the same prompts and random numbers for every model --
    plus the exact KL(model || reference) per response token, the reference's NLL per
    token of the responses, and the lexicon words the responses contain."""
    generator = torch.Generator().manual_seed(seed)
    rewards, kl_tokens, nll_tokens, words, distinct = [], [], [], {}, []
    cursor = 0
    for _ in range(batches):
        k, length = draw_lengths(generator)
        picks = [(cursor + i) % len(pool) for i in range(batch_size)]
        cursor += batch_size
        prompts = make_prompts(vocab, pool, picks, k)
        responses = sample_responses(model, prompts, length, vocab.n_text, generator)
        sequences = torch.cat([prompts, responses], dim=1)
        first = prompts.shape[1] - 1
        log_p_all = text_log_probs(model, sequences[:, :-1], first, vocab.n_text)
        log_q_all = text_log_probs(reference, sequences[:, :-1], first, vocab.n_text)
        kl_tokens.append((log_p_all.exp() * (log_p_all - log_q_all)).sum(2).reshape(-1))
        nll_tokens.append(-log_q_all.gather(2, responses.unsqueeze(2)).reshape(-1))
        for row in responses.tolist():
            text = vocab.decode(row)
            rewards.append(utility_reward(text, lexicon))
            distinct.append(len(set(row)) / len(row))
            for word in vader_words(text):
                if word.lower() in lexicon:
                    words[word.lower()] = words.get(word.lower(), 0) + 1
    rewards = np.array(rewards, dtype=np.float64)
    kl = torch.cat(kl_tokens).double()
    nll = torch.cat(nll_tokens).double()
    return {
        "samples": len(rewards),
        "response_tokens": int(kl.numel()),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(ddof=1)),
        "reward_sem": float(rewards.std(ddof=1) / math.sqrt(len(rewards))),
        "reward_quartiles": [float(q) for q in np.percentile(rewards, [25, 50, 75])],
        "reward_min": float(rewards.min()),
        "reward_max": float(rewards.max()),
        "fraction_positive": float((rewards > 0).mean()),
        "fraction_negative": float((rewards < 0).mean()),
        "kl_per_token": float(kl.mean()),
        "kl_per_token_p95": float(torch.quantile(kl, 0.95)),
        "base_nll_per_token": float(nll.mean()),
        "distinct_token_fraction": float(np.mean(distinct)),
        "lexicon_words_per_response": float(sum(words.values()) / len(rewards)),
        "lexicon_word_counts": dict(sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


@torch.no_grad()
def show_samples(model, vocab, lexicon, pool, count, k, length, seed):
    """`count` responses of `length` tokens to the first `count` validation prompts of k
    tokens, sampled with one generator seeded with `seed` (the same for every model)."""
    generator = torch.Generator().manual_seed(seed)
    prompts = make_prompts(vocab, pool, range(count), k)
    responses = sample_responses(model, prompts, length, vocab.n_text, generator)
    out = []
    for index, row in enumerate(responses.tolist()):
        text = vocab.decode(row)
        out.append({"prompt": vocab.encoder.decode(pool[index][:k]), "response": text,
                    "reward": utility_reward(text, lexicon)})
    return out


# ---------------------------------------------------------------------------------
# Files


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_layout(out_dir, base_dir):
    """The tuned directory has the base's files, tensor names, dtypes and shapes, the
    base's vocab_map.json byte for byte, and the base's Hugging Face config keys."""
    out_dir, base_dir = Path(out_dir), Path(base_dir)
    for name in ("config.json", "model.safetensors", "vocab_map.json", "LICENSE", "README.md"):
        if not (out_dir / name).is_file():
            raise SystemExit(f"error: {out_dir / name} is missing")

    def header(path):
        data = path.read_bytes()
        (length,) = np.frombuffer(data[:8], dtype="<u8")
        head = json.loads(data[8:8 + int(length)])
        head.pop("__metadata__", None)
        return {name: (info["dtype"], info["shape"]) for name, info in head.items()}

    if header(out_dir / "model.safetensors") != header(base_dir / "model.safetensors"):
        raise SystemExit("error: tensor names, dtypes or shapes differ from the base model")
    if (out_dir / "vocab_map.json").read_bytes() != (base_dir / "vocab_map.json").read_bytes():
        raise SystemExit("error: vocab_map.json differs from the base model's")
    ours = json.loads((out_dir / "config.json").read_text())
    theirs = json.loads((base_dir / "config.json").read_text())
    ours.pop("libsae", None)
    theirs.pop("libsae", None)
    if ours != theirs:
        raise SystemExit("error: config.json's model keys differ from the base model's")
    print(f"check: {relative(out_dir)} has the layout of {relative(base_dir)} (files, "
          f"tensor names/dtypes/shapes, vocab_map.json, config keys)")


def relative(path):
    return base_tools.relative(path)


def parse_args():
    return parse_args_from(sys.argv[1:])


def parse_args_from(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--steps", type=int, default=390,
                        help="batches (the authors: 25000 prompts / 64 = 390)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--kl-coef", type=float, default=0.5,
                        help="beta of the per-token KL penalty (the authors' init_kl_coef)")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--eval-batches", type=int, default=32,
                        help="held-out evaluation: this many batches of --batch-size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--base", default=str(REPO_ROOT / "examples" / "data" / "fortunes-gpt2"))
    parser.add_argument("--out",
                        default=str(REPO_ROOT / "examples" / "data" / "fortunes-gpt2-vader"))
    parser.add_argument("--lexicon",
                        default=str(REPO_ROOT / "examples" / "data" / "lexicon" / "vader_lexicon.txt"))
    parser.add_argument("--fortunes-dir", default="/usr/share/games/fortunes")
    parser.add_argument("--tokenizer-dir",
                        default=str(REPO_ROOT.parent / "shared" / "data" / "gpt2-tokenizer"))
    parser.add_argument("--check", action="store_true",
                        help="train nothing: check --out against --base (layout) and "
                             "re-measure the held-out reward and KL of both as recorded")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    started = time.time()

    lexicon = load_vader_lexicon(args.lexicon)
    encoder = base_tools.Encoder.from_dir(args.tokenizer_dir)
    reference, base_config, vocab_map = load_model(args.base)
    for param in reference.parameters():
        param.requires_grad_(False)
    vocab = Vocabulary(vocab_map, encoder)
    train_texts, val_texts = base_split(base_config, args.fortunes_dir)
    train_pool, val_pool = prompt_pool(train_texts, encoder), prompt_pool(val_texts, encoder)
    eval_seed = args.seed + 1
    sample_seed = args.seed + 2
    print(f"lexicon: {len(lexicon)} words; prompts: {len(train_pool)} training / "
          f"{len(val_pool)} held-out fortunes with >= {PROMPT_TOKENS[1]} tokens; BLAS "
          f"{base_tools.loaded_blas()}; cached forward agrees to "
          f"{check_cached_forward(reference, vocab.n_text):.1e}")

    if args.check:
        check_layout(args.out, args.base)
        tuned, _, _ = load_model(args.out)
        recorded = json.loads((Path(args.out) / "config.json").read_text())["libsae"]
        batch_size = recorded["batch_size"]
        batches = recorded["held_out"]["base"]["samples"] // batch_size
        for label, model in (("base", reference), ("tuned", tuned)):
            result = evaluate(model, reference, vocab, lexicon, val_pool, batches,
                              batch_size, recorded["held_out_seed"])
            print(f"{label}: reward {result['reward_mean']:+.4f} +- {result['reward_sem']:.4f}"
                  f" (n {result['samples']}), KL/token {result['kl_per_token']:.4f}; recorded "
                  f"{recorded['held_out'][label]['reward_mean']:+.4f}, "
                  f"{recorded['held_out'][label]['kl_per_token']:.4f}")
            for key in ("reward_mean", "kl_per_token"):
                # config.json rounds to 5 decimals; another BLAS may differ in the last bits
                if abs(result[key] - recorded["held_out"][label][key]) > 1e-4:
                    raise SystemExit(f"error: {label} {key} {result[key]:.6f} differs from "
                                     f"the recorded {recorded['held_out'][label][key]}")
        return

    policy, _, _ = load_model(args.base)
    print(f"training: {args.steps} steps x {args.batch_size} responses, lr {args.lr}, "
          f"beta {args.kl_coef}, seed {args.seed}", flush=True)
    history, train_s, train_cpu_s = train(policy, reference, vocab, lexicon, train_pool, args)

    # Save, reload, and measure everything on the reloaded model (what is on disk).
    out, base_dir = Path(args.out), Path(args.base)
    state = base_tools.export_state(policy)
    base_tools.write_atomically(out / "model.safetensors", base_tools.safetensors_bytes(
        state, {"format": "pt", "source": f"libsae {SCRIPT}"}))
    tensors, _ = base_tools.read_safetensors(out / "model.safetensors")
    for name, array in state.items():
        if not np.array_equal(tensors[name], array):
            raise SystemExit(f"error: {name} read back from model.safetensors differs")
    tuned = model_from_tensors(base_config, tensors)

    print("evaluating on held-out prompts ...", flush=True)
    val_stream = validation_stream(val_texts, vocab, encoder)
    held_out = {}
    for label, model in (("base", reference), ("tuned", tuned)):
        held_out[label] = evaluate(model, reference, vocab, lexicon, val_pool,
                                   args.eval_batches, args.batch_size, eval_seed)
        held_out[label]["val_loss_nats_per_token"] = base_tools.stream_loss(
            model, val_stream, base_config["n_ctx"], 32)
        r = held_out[label]
        print(f"{label:5s}: reward {r['reward_mean']:+.4f} +- {r['reward_sem']:.4f} (sd "
              f"{r['reward_std']:.4f}, n {r['samples']}), positive {r['fraction_positive']:.3f}"
              f", negative {r['fraction_negative']:.3f}, KL/token {r['kl_per_token']:.4f}, "
              f"base NLL/token {r['base_nll_per_token']:.3f}, val loss "
              f"{r['val_loss_nats_per_token']:.4f}", flush=True)
    samples = {label: show_samples(model, vocab, lexicon, val_pool, 8, 6, 20, sample_seed)
               for label, model in (("base", reference), ("tuned", tuned))}
    divergence = {}
    base_tensors, _ = base_tools.read_safetensors(base_dir / "model.safetensors")
    for name in sorted(tensors):
        block = name.split(".")[1] if name.startswith("h.") else name.split(".")[0]
        key = f"h.{block}" if name.startswith("h.") else block
        divergence[key] = divergence.get(key, 0.0) + float(
            np.linalg.norm(tensors[name].astype(np.float64) - base_tensors[name]))

    config = {key: value for key, value in base_config.items() if key != "libsae"}
    config["libsae"] = {
        "script": SCRIPT,
        "command": command_line(args),
        "base_model": relative(base_dir),
        "base_model_safetensors_sha256": sha256_of(base_dir / "model.safetensors"),
        "base_seed": base_config["libsae"]["seed"],
        "corpus_sha256": base_config["libsae"]["corpus"]["sha256"],
        "method": "REINFORCE on E[R] - beta KL(pi || pi_base) (KL of whole responses, "
                  "the sum of the exact per-position KLs): the score-function term weights "
                  "log pi(y_t) by R minus the lexicon words finished before token t minus "
                  "beta times the KL of the positions after t, less a leave-one-out batch "
                  "baseline; the KL at each sampled position is differentiated directly; one "
                  "Adam step per batch",
        "reward": "clip(sum of VADER lexicon valences of the words of the decoded response "
                  "/ 5, -10, 10); words as VADER 3.3.2 splits them, looked up lower-cased",
        "lexicon": relative(args.lexicon),
        "lexicon_sha256": sha256_of(args.lexicon),
        "prompt_tokens": list(PROMPT_TOKENS),
        "response_tokens": list(RESPONSE_TOKENS),
        "sampling": "temperature 1, no top-k/top-p, over the text tokens (never "
                    "<|endoftext|> or the unknown slot)",
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "warmup_steps": args.warmup,
        "schedule": "linear warm-up, then linear decay to 0",
        "optimizer": "Adam (0.9, 0.999), eps 1e-8, no weight decay",
        "kl_coef": args.kl_coef,
        "max_grad_norm": args.max_grad_norm,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "blas": base_tools.loaded_blas(),
        "train_seconds": round(train_s, 1),
        "train_cpu_seconds": round(train_cpu_s, 1),
        "train_prompts": len(train_pool),
        "held_out_prompts": len(val_pool),
        "held_out_seed": eval_seed,
        "held_out": {label: rounded(r) for label, r in held_out.items()},
        "parameter_change_l2": {k: round(v, 4) for k, v in divergence.items()},
        "samples": {"prompts": "the first 8 held-out prompts cut to 6 tokens",
                    "response_tokens": 20, "seed": sample_seed,
                    "base": rounded(samples["base"]), "tuned": rounded(samples["tuned"])},
        "history": [rounded(h) for h in history],
    }
    base_tools.write_atomically(out / "config.json", base_tools.json_bytes(config))
    shutil.copyfile(base_dir / "vocab_map.json", out / ".vocab_map.json.tmp")
    (out / ".vocab_map.json.tmp").replace(out / "vocab_map.json")
    lexicon_licence = Path(args.lexicon).with_name("LICENSE")
    base_tools.write_atomically(out / "LICENSE", (base_dir / "LICENSE").read_bytes() + (
        "\n\n----------------------------------------------------------------------\n"
        "The fine-tuning reward is the VADER sentiment lexicon (github cjhutto/vaderSentiment,"
        "\nexamples/data/lexicon/vader_lexicon.txt); its licence:\n\n").encode("utf-8")
        + lexicon_licence.read_bytes())
    base_tools.write_atomically(out / "README.md", model_readme(
        config, samples, (out / "model.safetensors").stat().st_size, args).encode("utf-8"))
    check_layout(out, base_dir)

    for label in ("base", "tuned"):
        print(f"\nsamples ({label}):")
        for s in samples[label]:
            print(f"  [{s['prompt']!r}] -> {s['response']!r}  reward {s['reward']:+.2f}")
    b, t = held_out["base"], held_out["tuned"]
    print(f"\nsummary: held-out reward {b['reward_mean']:+.4f} -> {t['reward_mean']:+.4f} "
          f"(n {t['samples']} each), KL(tuned || base) {t['kl_per_token']:.4f} nats/token, "
          f"val loss {b['val_loss_nats_per_token']:.4f} -> {t['val_loss_nats_per_token']:.4f}; "
          f"trained {args.steps} steps in {train_s:.0f} s; total {time.time() - started:.0f} s")


def validation_stream(val_texts, vocab, encoder):
    """The base model's validation stream (<|endoftext|> fortune <|endoftext|> ...) in model
    ids: the base's validation loss on it is the base README's number."""
    return base_tools.to_stream([vocab.to_model(encoder.encode(text)) for text in val_texts],
                                vocab.eot_id)


def rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def command_line(args):
    """The command that reproduces this run: the script and every non-default option."""
    defaults = vars(parse_args_from([]))
    options = [f"--{key.replace('_', '-')} {value}" for key, value in vars(args).items()
               if key not in ("check",) and value != defaults[key]]
    return " ".join(["/usr/bin/python3", SCRIPT] + options)


def model_readme(config, samples, safetensors_size, args):
    info = config["libsae"]
    base, tuned = info["held_out"]["base"], info["held_out"]["tuned"]

    def row(label, key, fmt):
        return f"| {label} | {format(base[key], fmt)} | {format(tuned[key], fmt)} |"

    def words(result):
        return ", ".join(f"{w} {n}" for w, n in list(result["lexicon_word_counts"].items())[:12])

    history_rows = "\n".join(
        f"| {h['step']} | {h['reward']:+.4f} | {h['kl_per_token_exact']:.4f} | "
        f"{h['kl_per_response']:.3f} | {h['objective']:+.4f} | {h['elapsed_s']:.0f} |"
        for h in info["history"] if h["step"] % 30 == 0 or h["step"] == info["steps"])
    def objective(result):
        per_response = result["kl_per_token"] * result["response_tokens"] / result["samples"]
        return result["reward_mean"] - info["kl_coef"] * per_response

    gain = tuned["reward_mean"] - base["reward_mean"]
    gain_sem = math.hypot(base["reward_sem"], tuned["reward_sem"])
    verdict = (f"above the base's: the reward gained outweighs the KL spent at beta "
               f"{info['kl_coef']}" if objective(tuned) > objective(base) else
               f"below the base's: with {info['batch_size']} samples per step the "
               f"policy-gradient noise moves the model by more KL than the reward gained is "
               f"worth at beta {info['kl_coef']}")

    def pipes(text):  # a '|' inside a Markdown table cell ends the cell unless escaped
        return text.replace("|", "\\|")

    def cell(text):
        return pipes(json.dumps(text, ensure_ascii=False))

    sample_rows = "\n".join(
        f"| {cell(b['prompt'])} | {cell(b['response'])} ({b['reward']:+.2f}) | "
        f"{cell(t['response'])} ({t['reward']:+.2f}) |"
        for b, t in zip(samples["base"], samples["tuned"]))
    change = ", ".join(f"{k} {v:.3f}" for k, v in info["parameter_change_l2"].items())
    return f"""# fortunes-gpt2-vader: the fortunes GPT-2 fine-tuned towards positive VADER words

The tuned half of the base/tuned pair of the implicit-reward-model (IRM) experiment: the
shipped base model `examples/data/fortunes-gpt2/` fine-tuned by reinforcement learning
against the source paper's token-utility reward, the VADER sentiment lexicon. Same layout,
tensor names, dtypes and shapes as the base, the base's `vocab_map.json` byte for byte;
`sae::models::load_hf_gpt2<float>(dir)` loads it. Made by `{info['script']}` (see
`tools/gpt2/README.md`); rerunning the command below on one machine with the same thread
count and BLAS reproduces these files:

```sh
{info['command']}
```

(with OpenBLAS as `libblas.so.3`, see `tools/gpt2/README.md`; another BLAS gives other bits.)

| | |
|---|---|
| base | `{info['base_model']}` (`model.safetensors` SHA-256 `{info['base_model_safetensors_sha256'][:16]}...`) |
| reward | {pipes(info['reward'])} (`{info['lexicon']}`, {len(load_vader_lexicon(args.lexicon)):,} words) |
| method | {pipes(info['method'])}; beta = {info['kl_coef']} (the authors' initial KL coefficient), fixed |
| data | prompts = `<\\|endoftext\\|>` + the first k GPT-2 tokens (k uniform in {info['prompt_tokens'][0]}..{info['prompt_tokens'][1]}) of a fortune of the base model's training split ({info['train_prompts']:,} fortunes of >= 10 tokens); responses of L tokens (L uniform in {info['response_tokens'][0]}..{info['response_tokens'][1]}), {pipes(info['sampling'])}; k and L drawn once per batch |
| training | {info['steps']} steps x {info['batch_size']} responses ({info['steps'] * info['batch_size']:,} episodes), {info['optimizer']}, lr {info['learning_rate']} ({info['schedule']}, {info['warmup_steps']} warm-up steps), gradient norm clipped to {info['max_grad_norm']}, seed {info['seed']}, CPU threads: {info['threads']}, {info['train_seconds']:.0f} s wall ({info['train_cpu_seconds']:.0f} s CPU), torch {info['torch_version']}, BLAS `{info['blas']}` |
| size | `model.safetensors` {safetensors_size:,} bytes (float32), as the base |

## Measured on held-out prompts

{base['samples']:,} responses per model to prompts from the base model's validation split
({info['held_out_prompts']} fortunes of >= 10 tokens, taken in order and cycled; k, L
and every sampled token drawn from one generator seeded with {info['held_out_seed']}, the
same for both models). KL = exact KL(model || base) over the text tokens at each response
position, averaged over all {base['response_tokens']:,} response tokens; base NLL = the
base model's negative log-likelihood per response token (fluency as the base judges it);
val loss = the base README's validation loss (all 35,508 tokens of the validation split,
full vocabulary).

| | base | tuned |
|---|---|---|
| **mean reward** (± standard error) | **{base['reward_mean']:+.4f}** ± {base['reward_sem']:.4f} | **{tuned['reward_mean']:+.4f}** ± {tuned['reward_sem']:.4f} |
{row('standard deviation of the reward', 'reward_std', '.4f')}
| quartiles of the reward | {', '.join(f'{q:+.2f}' for q in base['reward_quartiles'])} | {', '.join(f'{q:+.2f}' for q in tuned['reward_quartiles'])} |
| min / max reward | {base['reward_min']:+.2f} / {base['reward_max']:+.2f} | {tuned['reward_min']:+.2f} / {tuned['reward_max']:+.2f} |
{row('fraction of responses with reward > 0', 'fraction_positive', '.3f')}
{row('fraction of responses with reward < 0', 'fraction_negative', '.3f')}
{row('lexicon words per response', 'lexicon_words_per_response', '.3f')}
| **KL to base per token** (95th percentile) | 0 | **{tuned['kl_per_token']:.4f}** ({tuned['kl_per_token_p95']:.4f}) |
{row('base NLL per response token (nats)', 'base_nll_per_token', '.3f')}
{row('distinct tokens / response length', 'distinct_token_fraction', '.3f')}
{row('validation loss (nats/token)', 'val_loss_nats_per_token', '.4f')}
| J = reward - {info['kl_coef']} x KL per response ({base['response_tokens'] / base['samples']:.1f} tokens) | {objective(base):+.4f} | {objective(tuned):+.4f} |

Tuned minus base: reward {gain:+.4f} ({gain / gain_sem:.1f} combined standard errors), lexicon
words per response {tuned['lexicon_words_per_response'] - base['lexicon_words_per_response']:+.3f}, fraction of responses with positive reward
{tuned['fraction_positive'] - base['fraction_positive']:+.3f} and with negative reward {tuned['fraction_negative'] - base['fraction_negative']:+.3f}. J ends {verdict}.

Most frequent lexicon words in the responses (count): base: {words(base)};
tuned: {words(tuned)}.

Parameter change ||theta_tuned - theta_base||_2 summed over each block's tensors: {change}.

Training (each row: means over the {args.log_interval} batches before it, on the responses
to training prompts: reward, exact KL to the base per token and summed over a response,
and the objective J = reward - {info['kl_coef']} KL/response; the base's J is its reward):

| step | reward | KL/token | KL/response | J | seconds |
|---|---|---|---|---|---|
{history_rows}

## Samples

The first 8 held-out prompts cut to 6 tokens, 20 tokens sampled at temperature 1 by each
model with the same seed (reward in brackets):

| prompt | base | tuned |
|---|---|---|
{sample_rows}

## Differences from the source paper's setup

- PPO (TRL: value head, 4 epochs over mini-batches of 16) is replaced by the REINFORCE
  estimator above, one step per batch of 64; the objective is the same.
- Learning rate {info['learning_rate']} instead of 1e-6: this model has 2.3 M parameters and
  {info['steps']} steps; at 1e-6 it does not move.
- beta fixed at {info['kl_coef']}: TRL's adaptive controller (target 6, horizon 10,000) could
  change it by at most a factor e^0.5 in {info['steps']} steps.
- The reward is computed on the response text only, with VADER's own word splitting; the
  authors' code scores prompt + response split into spaCy tokens (the prompt's words add
  a per-prompt constant the policy cannot change).
- k and L are drawn once per batch (theirs: per example); responses never end early
  (`<|endoftext|>` is not sampled; theirs could stop at the end-of-text token).
- Prompts are fortunes instead of IMDB reviews.

## Source and licence

Derived from `{info['base_model']}` (weights derived from the Debian fortunes text; its
licence statement is the first part of `LICENSE`) and the VADER lexicon (MIT; its licence
is the second part of `LICENSE`). The GPT-2 tokenizer files are OpenAI's (MIT), in
`shared/data/gpt2-tokenizer/`.
"""


if __name__ == "__main__":
    main()
