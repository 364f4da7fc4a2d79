#!/usr/bin/python3
"""Train a small GPT-2 on the English fortunes of Debian's `fortunes` package.

The result is a real trained text model for libsae's GPT-2 forward pass and for the
language-model MFR experiment, saved in the Hugging Face GPT-2 layout:

  <out>/config.json         model_type "gpt2" + a "libsae" provenance block
  <out>/model.safetensors   wte, wpe, h.{l}.*, ln_f (Conv1D weights [in, out]), float32,
                            no lm_head (it is tied to wte)
  <out>/vocab_map.json      model id -> GPT-2 id (the model's vocabulary is the GPT-2
                            tokens that occur in the training split, plus
                            <|endoftext|> and one unknown slot)
  <out>/README.md           source, licence, measured losses, samples
  <out>/LICENSE             copyright/licence of the fortunes text (Debian's file)

and a small reference fixture for the C++ forward pass:

  <fixture-dir>/fortunes_reference.json   token sequences, texts, per-position
                                          log-sum-exp / target logits / argmax, mean CE
  <fixture-dir>/fortunes_reference.npy    float32 [n_sequences, vocab_size]: the full
                                          logit row at the last position of each sequence

The model is implemented here in plain PyTorch (no `transformers`), following GPT-2
exactly: learned position embeddings, pre-LN blocks, causal multi-head attention,
tanh-GELU MLP (4x), final LayerNorm, LM head tied to wte, LayerNorm eps 1e-5, biases
everywhere. The GPT-2 byte-level BPE is the project's reference encoder in
tools/reference/gpt2_bpe.py.

Everything random is seeded (--seed): the validation split, the initialisation, the
batch sampling, dropout and the sampled continuations. On one machine with the same
thread count a rerun reproduces the same weights.

Run from the repository root:  /usr/bin/python3 tools/gpt2/train_fortunes.py
"""

import argparse
import base64
import collections
import hashlib
import io
import json
import math
import os
import random
import re
import struct
import sys
import tempfile
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a machine shared with compilers,
# spinning threads of PyTorch and of the BLAS fight over the cores (measured ~1.8x slower).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools" / "reference"))
from gpt2_bpe import Encoder  # noqa: E402  (the project's one GPT-2 BPE)

GPT2_EOT_ID = 50256
VOCAB_MAP_FORMAT = "libsae-vocab-map"
FIXTURE_FORMAT = "libsae-gpt2-reference"

# The English fortune files of `fortunes` and `fortunes-min` (Debian 1:1.99.1), named
# explicitly so that the corpus does not change with what else is installed. Left out:
# `ascii-art` (pictures, not text), `translate-me` (mostly Latin) and the offensive
# files under off/ (never read).
CORPUS_FILES = (
    "art", "computers", "cookie", "debian", "definitions", "disclaimer", "drugs",
    "education", "ethnic", "food", "fortunes", "goedel", "humorists", "kids",
    "knghtbrd", "law", "linux", "linuxcookie", "literature", "love", "magic",
    "medicine", "men-women", "miscellaneous", "news", "paradoxum", "people", "perl",
    "pets", "platitudes", "politics", "pratchett", "riddles", "science",
    "songs-poems", "sports", "startrek", "tao", "wisdom", "work", "zippy",
)

# ---------------------------------------------------------------------------------
# Corpus


def strip_overstrike(text):
    """Remove nroff-style overstrike ("_\\bA" underlines A), keeping what is printed last,
    like `col -b`."""
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"[^\n]\x08", "", text)
    return text.replace("\x08", "")


def read_fortunes(fortunes_dir):
    """All fortunes of CORPUS_FILES, in file order, as (file, text) pairs."""
    fortunes = []
    for name in CORPUS_FILES:
        path = Path(fortunes_dir) / name
        if not path.is_file():
            raise SystemExit(f"error: fortune file {path} is missing (install the Debian "
                             f"packages 'fortunes' and 'fortunes-min')")
        raw = path.read_bytes().decode("utf-8")
        body = strip_overstrike(raw.replace("\r\n", "\n"))
        for chunk in re.split(r"^%\n", body + ("\n" if not body.endswith("\n") else ""),
                              flags=re.MULTILINE):
            text = "\n".join(line.rstrip() for line in chunk.split("\n")).strip("\n")
            if text.strip():
                fortunes.append((name, text))
    return fortunes


def corpus_digest(fortunes):
    digest = hashlib.sha256()
    for _, text in fortunes:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


# ---------------------------------------------------------------------------------
# Model: GPT-2, written out so the C++ forward can be checked against it line by line.


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, n_ctx, pdrop):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)  # q, k, v stacked along outputs
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(pdrop)
        self.resid_dropout = nn.Dropout(pdrop)
        self.register_buffer("causal", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)),
                             persistent=False)

    def forward(self, x):
        batch, length, width = x.shape
        head = width // self.n_head
        q, k, v = self.c_attn(x).split(width, dim=2)
        q = q.view(batch, length, self.n_head, head).transpose(1, 2)
        k = k.view(batch, length, self.n_head, head).transpose(1, 2)
        v = v.view(batch, length, self.n_head, head).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head)
        scores = scores.masked_fill(~self.causal[:length, :length], float("-inf"))
        weights = self.attn_dropout(torch.softmax(scores, dim=-1))
        y = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.resid_dropout(self.c_proj(y))


def gelu_tanh(x):
    """GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); PyTorch's fused
    kernel for that formula (a handful of separate elementwise ops is ~3x slower here)."""
    return F.gelu(x, approximate="tanh")


class Mlp(nn.Module):
    def __init__(self, n_embd, pdrop):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(gelu_tanh(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, n_ctx, eps, pdrop):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = Attention(n_embd, n_head, n_ctx, pdrop)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = Mlp(n_embd, pdrop)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt2(nn.Module):
    """Parameter names equal the Hugging Face GPT2Model names (nn.Linear stores the
    transpose of GPT-2's Conv1D weight; export_state transposes back)."""

    def __init__(self, vocab_size, n_ctx, n_embd, n_layer, n_head, eps, pdrop):
        super().__init__()
        self.n_ctx = n_ctx
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_ctx, n_embd)
        self.drop = nn.Dropout(pdrop)
        self.h = nn.ModuleList(Block(n_embd, n_head, n_ctx, eps, pdrop) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)
        self._init_weights(n_layer)

    def _init_weights(self, n_layer):
        # GPT-2's initialisation: N(0, 0.02) for embeddings and projections, residual
        # projections (c_proj) scaled by 1/sqrt(2 n_layer), zero biases; LayerNorms keep
        # PyTorch's (1, 0).
        for name, param in self.named_parameters():
            if "ln_" in name:
                continue
            if name.endswith(".bias"):
                nn.init.zeros_(param)
            elif name.endswith("c_proj.weight"):
                nn.init.normal_(param, 0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                nn.init.normal_(param, 0.0, 0.02)

    def forward(self, ids):
        length = ids.shape[1]
        if length > self.n_ctx:
            raise ValueError(f"sequence of {length} tokens exceeds n_ctx {self.n_ctx}")
        positions = torch.arange(length, device=ids.device)
        x = self.drop(self.wte(ids) + self.wpe(positions))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied LM head


def export_state(model):
    """Hugging Face GPT-2 tensors: Conv1D weights are [in, out] = nn.Linear.weight^T."""
    state = {}
    for name, tensor in model.state_dict().items():
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if name.startswith("h.") and (".c_attn." in name or ".c_proj." in name
                                      or ".c_fc." in name) and name.endswith(".weight"):
            array = array.T
        state[name] = np.ascontiguousarray(array, dtype="<f4")
    return state


def import_state(model, state):
    """Inverse of export_state: load Hugging Face tensors into a Gpt2 module."""
    own = model.state_dict()
    if set(own) != set(state):
        raise ValueError(f"tensor names differ: missing {sorted(set(own) - set(state))}, "
                         f"unexpected {sorted(set(state) - set(own))}")
    loaded = {}
    for name, array in state.items():
        tensor = torch.from_numpy(np.array(array, dtype=np.float32))
        if name.startswith("h.") and (".c_attn." in name or ".c_proj." in name
                                      or ".c_fc." in name) and name.endswith(".weight"):
            tensor = tensor.t().contiguous()
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ValueError(f"{name}: shape {tuple(tensor.shape)} != {tuple(own[name].shape)}")
        loaded[name] = tensor
    model.load_state_dict(loaded)


# ---------------------------------------------------------------------------------
# Files: atomic writes, safetensors written and read back by hand.


def write_atomically(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_bytes(value):
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def safetensors_bytes(tensors, metadata):
    """safetensors: u64 LE header length, JSON header (padded with spaces to a multiple
    of 8), then the raw little-endian data in header order."""
    header = {"__metadata__": {key: str(value) for key, value in metadata.items()}}
    offset = 0
    for name in sorted(tensors):
        array = tensors[name]
        assert array.dtype == np.dtype("<f4") and array.flags["C_CONTIGUOUS"], name
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_json = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_json += b" " * (-len(header_json) % 8)
    body = b"".join(tensors[name].tobytes(order="C") for name in sorted(tensors))
    return struct.pack("<Q", len(header_json)) + header_json + body


def read_safetensors(path):
    """Independent reader used to verify what was written: returns (tensors, metadata)."""
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ValueError(f"{path}: header length {header_len} past end of file")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    body = data[8 + header_len:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    end_max = 0
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if end - start != 4 * count or end > len(body):
            raise ValueError(f"{path}: {name} offsets {start}..{end} do not fit shape")
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"])
        end_max = max(end_max, end)
    if end_max != len(body):
        raise ValueError(f"{path}: {len(body) - end_max} trailing bytes after the tensors")
    return tensors, metadata


# ---------------------------------------------------------------------------------
# Training


def lr_at(step, steps, peak, warmup):
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def stream_loss(model, stream, n_ctx, batch_size):
    """Mean cross-entropy (nats/token) predicting every token of `stream` after the
    first, in consecutive non-overlapping windows of (up to) n_ctx targets."""
    model.eval()
    total, count = 0.0, 0
    starts = list(range(0, len(stream) - 1, n_ctx))
    full = [s for s in starts if s + n_ctx + 1 <= len(stream)]
    tail = [s for s in starts if s + n_ctx + 1 > len(stream)]  # at most one, shorter
    batches = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
    batches += [[s] for s in tail]
    for group in batches:
        end = min(n_ctx, len(stream) - 1 - group[0])
        x = torch.stack([stream[s:s + end] for s in group])
        y = torch.stack([stream[s + 1:s + end + 1] for s in group])
        logits = model(x)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def unigram_loss(train_stream, stream, vocab_size):
    """Cross-entropy of `stream` (after its first token) under the training split's token
    frequencies: the best a model without context can do. Every model id occurs in the
    training stream, so no probability is zero."""
    counts = torch.bincount(train_stream, minlength=vocab_size).to(torch.float64)
    log_p = torch.log(counts / counts.sum())
    return float(-log_p[stream[1:]].mean())


def to_stream(docs, eot_model_id):
    """<|endoftext|> doc <|endoftext|> doc ... <|endoftext|>: every fortune is predicted
    from the separator, as GPT-2 separates documents."""
    ids = [eot_model_id]
    for doc in docs:
        ids.extend(doc)
        ids.append(eot_model_id)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def sample(model, prompt_ids, new_tokens, temperature, top_k, generator, eot_model_id,
           unknown_id):
    """Greedy (temperature 0) or top-k sampling; the unknown slot is never emitted since
    it has no text."""
    model.eval()
    ids = list(prompt_ids)
    for _ in range(new_tokens):
        context = torch.tensor([ids[-model.n_ctx:]], dtype=torch.long)
        logits = model(context)[0, -1].clone()
        logits[unknown_id] = float("-inf")
        if temperature == 0.0:
            token = int(torch.argmax(logits))
        else:
            logits = logits / temperature
            if top_k:
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            token = int(torch.multinomial(torch.softmax(logits, dim=-1), 1,
                                          generator=generator))
        if token == eot_model_id:
            break
        ids.append(token)
    model.train()
    return ids[len(prompt_ids):]


# ---------------------------------------------------------------------------------
# Reference fixture for the C++ forward pass


def pick_fixture_windows(val_stream, val_stream_gpt2, encoder, eot_model_id, lengths):
    """Windows of the validation stream that start at a document separator and whose
    text re-encodes to exactly their GPT-2 ids (so a C++ test can run the whole chain
    text -> GPT-2 ids -> model ids -> logits), one per requested length. The first
    length is n_ctx, so every position embedding is exercised."""
    model_ids = val_stream.tolist()
    gpt2_ids = val_stream_gpt2.tolist()
    starts = [i for i, t in enumerate(model_ids) if t == eot_model_id]
    windows, taken = [], []  # taken: [begin, end) of the windows chosen so far
    for length in lengths:
        for start in starts:
            end = start + length
            if end > len(model_ids) or any(start < e and b < end for b, e in taken):
                continue  # windows do not overlap, so they cover different text
            window_gpt2 = gpt2_ids[start:end]
            if encoder.encode(encoder.decode(window_gpt2), allow_special=True) != window_gpt2:
                continue
            taken.append((start, end))
            windows.append((model_ids[start:end], window_gpt2))
            break
        else:
            raise SystemExit(f"error: no validation window of {length} tokens round-trips")
    return windows


@torch.no_grad()
def build_fixture(model, windows, encoder, unknown_id, model_dir_rel):
    model.eval()
    sequences, last_rows = [], []
    total_ce, total_count = 0.0, 0
    for ids, gpt2_ids in windows:
        logits32 = model(torch.tensor([ids], dtype=torch.long))[0]
        logits = logits32.to(torch.float64)
        lse = torch.logsumexp(logits, dim=-1)
        targets = torch.tensor(ids[1:], dtype=torch.long)
        target_logits = logits[:-1].gather(1, targets.unsqueeze(1)).squeeze(1)
        ce = lse[:-1] - target_logits
        total_ce += float(ce.sum())
        total_count += len(ids) - 1
        sequences.append({
            "text": encoder.decode(gpt2_ids),
            "gpt2_ids": gpt2_ids,
            "model_ids": ids,
            "unknown_positions": [i for i, t in enumerate(ids) if t == unknown_id],
            "logsumexp": [float(v) for v in lse],
            "argmax": [int(v) for v in torch.argmax(logits32, dim=-1)],
            "target_logit": [float(v) for v in target_logits],
            "cross_entropy": [float(v) for v in ce],
            "mean_cross_entropy": float(ce.mean()),
        })
        last_rows.append(logits32[-1].numpy())
    model.train()
    description = {
        "format": FIXTURE_FORMAT,
        "version": 1,
        "model_dir": model_dir_rel,
        "description": (
            "Reference outputs of the PyTorch GPT-2 of tools/gpt2/train_fortunes.py for the "
            "saved model (float32 forward). Each sequence is run alone: batch 1, positions "
            "0..len-1. text encodes (GPT-2 BPE, <|endoftext|> as the special token) to "
            "gpt2_ids; model_ids[i] is the model id of gpt2_ids[i] under vocab_map.json "
            "(unknown_model_id where the token is not in the model's vocabulary, listed in "
            "unknown_positions). For every position t: logsumexp[t] = log sum_v "
            "exp(logits[t][v]) and argmax[t]; for t < len-1: target_logit[t] = "
            "logits[t][model_ids[t+1]] and cross_entropy[t] = logsumexp[t] - "
            "target_logit[t]. mean_cross_entropy averages cross_entropy over all sequences. "
            "fortunes_reference.npy: float32 [n_sequences, vocab_size], row s = "
            "logits[len_s - 1][:] of sequence s."),
        "vocab_size": int(model.wte.weight.shape[0]),
        "unknown_model_id": unknown_id,
        "logits_npy": "fortunes_reference.npy",
        "npy_shape": [len(windows), int(model.wte.weight.shape[0])],
        "mean_cross_entropy": total_ce / total_count,
        "cross_entropy_count": total_count,
        "sequences": sequences,
    }
    return description, np.ascontiguousarray(np.stack(last_rows), dtype="<f4")


def npy_bytes(array):
    """NumPy .npy (format 1.0) of a little-endian float32 C-order array."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array, dtype="<f4"),
                              version=(1, 0))
    return buffer.getvalue()


# ---------------------------------------------------------------------------------
# --check: the shipped files against the fixture, through a NumPy forward pass that reads
# the Hugging Face layout directly (independent of the PyTorch module above).


def numpy_forward(tensors, config, ids):
    """GPT-2 logits [len(ids), vocab] in float64 from Hugging Face tensors."""
    def layer_norm(x, prefix):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + config["layer_norm_epsilon"]) * \
            t[prefix + ".weight"] + t[prefix + ".bias"]

    t = {name: array.astype(np.float64) for name, array in tensors.items()}
    width, heads = config["n_embd"], config["n_head"]
    head = width // heads
    length = len(ids)
    x = t["wte.weight"][ids] + t["wpe.weight"][:length]
    future = np.triu(np.ones((length, length), dtype=bool), k=1)
    for layer in range(config["n_layer"]):
        p = f"h.{layer}."
        qkv = layer_norm(x, p + "ln_1") @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * width:(i + 1) * width].reshape(length, heads, head)
                   .transpose(1, 0, 2) for i in range(3))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
        scores[:, future] = -np.inf
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        attended = (weights @ v).transpose(1, 0, 2).reshape(length, width)
        x = x + attended @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        hidden = layer_norm(x, p + "ln_2") @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"]
        hidden = 0.5 * hidden * (1.0 + np.tanh(math.sqrt(2.0 / math.pi)
                                               * (hidden + 0.044715 * hidden ** 3)))
        x = x + hidden @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    return layer_norm(x, "ln_f") @ t["wte.weight"].T


def check(model_dir, fixture_dir, tokenizer_dir):
    """Verify config, vocabulary map, tensors and the fixture against each other."""
    model_dir, fixture_dir = Path(model_dir), Path(fixture_dir)
    config = json.loads((model_dir / "config.json").read_text())
    vocab_map = json.loads((model_dir / "vocab_map.json").read_text())
    tensors, _ = read_safetensors(model_dir / "model.safetensors")
    fixture = json.loads((fixture_dir / "fortunes_reference.json").read_text())
    last_rows = np.load(fixture_dir / "fortunes_reference.npy")
    encoder = Encoder.from_dir(tokenizer_dir)

    vocab, width = config["vocab_size"], config["n_embd"]
    expected = {"wte.weight": (vocab, width), "wpe.weight": (config["n_positions"], width),
                "ln_f.weight": (width,), "ln_f.bias": (width,)}
    for layer in range(config["n_layer"]):
        p = f"h.{layer}."
        expected.update({
            p + "ln_1.weight": (width,), p + "ln_1.bias": (width,),
            p + "attn.c_attn.weight": (width, 3 * width), p + "attn.c_attn.bias": (3 * width,),
            p + "attn.c_proj.weight": (width, width), p + "attn.c_proj.bias": (width,),
            p + "ln_2.weight": (width,), p + "ln_2.bias": (width,),
            p + "mlp.c_fc.weight": (width, 4 * width), p + "mlp.c_fc.bias": (4 * width,),
            p + "mlp.c_proj.weight": (4 * width, width), p + "mlp.c_proj.bias": (width,)})
    assert {n: tuple(a.shape) for n, a in tensors.items()} == expected, "tensor names/shapes"
    assert config["model_type"] == "gpt2" and config["n_ctx"] == config["n_positions"]
    assert vocab_map["format"] == VOCAB_MAP_FORMAT and vocab_map["version"] == 1
    model_to_gpt2 = vocab_map["model_to_gpt2"]
    unknown_id = vocab_map["unknown_model_id"]
    assert len(model_to_gpt2) == vocab and model_to_gpt2[unknown_id] == -1
    assert model_to_gpt2.count(-1) == 1 and GPT2_EOT_ID in model_to_gpt2
    known = [g for g in model_to_gpt2 if g >= 0]
    assert len(set(known)) == len(known) and all(0 <= g <= GPT2_EOT_ID for g in known)
    gpt2_to_model = {g: m for m, g in enumerate(model_to_gpt2) if g >= 0}

    assert fixture["format"] == FIXTURE_FORMAT and fixture["vocab_size"] == vocab
    assert last_rows.dtype == np.float32 and last_rows.shape == (len(fixture["sequences"]), vocab)
    worst = 0.0
    total_ce, count = 0.0, 0
    for index, seq in enumerate(fixture["sequences"]):
        assert encoder.encode(seq["text"], allow_special=True) == seq["gpt2_ids"], "text"
        assert [gpt2_to_model.get(g, unknown_id) for g in seq["gpt2_ids"]] == seq["model_ids"]
        logits = numpy_forward(tensors, config, seq["model_ids"])
        top = logits.max(axis=-1)
        lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=-1))
        targets = logits[np.arange(len(seq["model_ids"]) - 1), seq["model_ids"][1:]]
        ce = lse[:-1] - targets
        total_ce += ce.sum()
        count += len(ce)
        deltas = [np.abs(lse - seq["logsumexp"]).max(),
                  np.abs(targets - seq["target_logit"]).max(),
                  np.abs(ce - seq["cross_entropy"]).max(),
                  np.abs(logits[-1] - last_rows[index]).max(),
                  # the reference argmax is a maximum here too (up to rounding)
                  np.abs(top - logits[np.arange(len(top)), seq["argmax"]]).max()]
        worst = max(worst, *deltas)
    assert abs(total_ce / count - fixture["mean_cross_entropy"]) < 1e-4
    if worst > 1e-3:
        raise SystemExit(f"error: NumPy forward differs from the fixture by {worst:.3g}")
    print(f"check: {model_dir} and {fixture_dir} agree; NumPy float64 forward vs PyTorch "
          f"float32 reference: max |difference| {worst:.2e} (logits, log-sum-exp, CE); "
          f"mean CE {total_ce / count:.4f} over {count} predictions")


def check_architecture(nano_dir):
    """The PyTorch module above against activations that others recorded for a trained
    minGPT (same architecture; shared/data/nano-gpt-sort, untied lm_head): an external
    check that the blocks are GPT-2's."""
    def array(value):
        return np.frombuffer(base64.b64decode(value["data"]), dtype="<f4").reshape(
            value["shape"]).copy()

    weights = json.loads((Path(nano_dir) / "gpt-nano-sort-model.json").read_text())
    partials = json.loads((Path(nano_dir) / "gpt-nano-sort-t0-partials.json").read_text())
    cfg = weights["config"]
    model = Gpt2(cfg["vocab_size"], cfg["block_size"], cfg["n_embd"], cfg["n_layer"],
                 cfg["n_head"], 1e-5, 0.0)
    model.load_state_dict({name[len("transformer."):]: torch.from_numpy(array(value))
                           for name, value in weights.items()
                           if name.startswith("transformer.") and not name.endswith(".attn.bias")})
    model.eval()
    ids = torch.from_numpy(array(partials["idx"]).astype(np.int64))
    with torch.no_grad():
        x = model.wte(ids) + model.wpe(torch.arange(ids.shape[1]))
        for block in model.h:
            x = block(x)
        logits = model.ln_f(x) @ torch.from_numpy(array(weights["lm_head.weight"])).t()
    worst = max(float(np.abs(x.numpy() - array(partials[f"block{cfg['n_layer'] - 1}"])).max()),
                float(np.abs(logits.numpy() - array(partials["lm_head"])).max()))
    if worst > 1e-4:
        raise SystemExit(f"error: GPT-2 module differs from {nano_dir} by {worst:.3g}")
    print(f"check: PyTorch GPT-2 module reproduces {nano_dir} (last block, logits) to "
          f"{worst:.2e}")


# ---------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--min-count", type=int, default=5,
                        help="GPT-2 tokens seen fewer times in training map to the unknown id")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=128)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--eval-interval", type=int, default=150)
    # One intra-op thread is the default: on the 2-core machine shared with compilers,
    # 2 threads measured 2-3x slower per step (each parallel region waits for the thread
    # that lost its core). Results are reproducible for a given thread count.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fortunes-dir", default="/usr/share/games/fortunes")
    parser.add_argument("--licence-file", default="/usr/share/doc/fortunes/copyright")
    parser.add_argument("--tokenizer-dir",
                        default=str(REPO_ROOT.parent / "shared" / "data" / "gpt2-tokenizer"))
    parser.add_argument("--out", default=str(REPO_ROOT / "examples" / "data" / "fortunes-gpt2"))
    parser.add_argument("--fixture-dir", default=str(REPO_ROOT / "tests" / "fixtures" / "gpt2"),
                        help="where fortunes_reference.{json,npy} go; '' to skip")
    parser.add_argument("--check", action="store_true",
                        help="train nothing: verify --out and --fixture-dir against each "
                             "other with an independent NumPy forward pass")
    return parser.parse_args()


def loaded_blas():
    """The BLAS shared library this process loaded (Debian's libblas.so.3 alternative:
    the reference BLAS is several times slower than OpenBLAS for this training)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "blas" in line.rsplit("/", 1)[-1].lower()})
    resolved = sorted({os.path.basename(os.path.realpath(path)) for path in paths})
    return ", ".join(resolved) if resolved else "unknown"


def relative(path):
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def main():
    args = parse_args()
    if args.check:
        nano_dir = Path(args.tokenizer_dir).parent / "nano-gpt-sort"
        if nano_dir.is_dir():
            check_architecture(nano_dir)
        check(args.out, args.fixture_dir, args.tokenizer_dir)
        return
    if args.n_embd % args.n_head:
        raise SystemExit("error: --n-embd must be a multiple of --n-head")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    started = time.time()

    # Corpus, split by fortune.
    fortunes = read_fortunes(args.fortunes_dir)
    order = list(range(len(fortunes)))
    random.Random(args.seed).shuffle(order)
    n_val = max(1, round(args.val_fraction * len(fortunes)))
    val_docs_text = [fortunes[i][1] for i in order[:n_val]]
    train_docs_text = [fortunes[i][1] for i in order[n_val:]]

    encoder = Encoder.from_dir(args.tokenizer_dir)
    if encoder.eot_id != GPT2_EOT_ID:
        raise SystemExit(f"error: tokenizer's <|endoftext|> is {encoder.eot_id}, not 50256")
    t0 = time.time()
    train_gpt2 = [encoder.encode(text) for text in train_docs_text]
    val_gpt2 = [encoder.encode(text) for text in val_docs_text]
    tokenize_s = time.time() - t0

    # Vocabulary: the GPT-2 ids seen at least --min-count times in the training split
    # (ascending), then <|endoftext|>, then one unknown slot (GPT-2 id recorded as -1)
    # that stands for every other token. Rarer tokens go to the unknown slot because the
    # tied embedding/LM head over all ~30k distinct tokens would dominate both the file
    # size and the training time while those tokens are too rare to be learned.
    counts = collections.Counter(t for doc in train_gpt2 for t in doc)
    seen = sorted(t for t, n in counts.items() if n >= args.min_count and t != GPT2_EOT_ID)
    model_to_gpt2 = seen + [GPT2_EOT_ID, -1]
    eot_model_id = len(seen)
    unknown_id = len(seen) + 1
    gpt2_to_model = {g: m for m, g in enumerate(model_to_gpt2) if g >= 0}
    vocab_size = len(model_to_gpt2)

    def to_model(doc):
        return [gpt2_to_model.get(t, unknown_id) for t in doc]

    train_stream = to_stream([to_model(d) for d in train_gpt2], eot_model_id)
    val_stream = to_stream([to_model(d) for d in val_gpt2], eot_model_id)
    val_stream_gpt2 = to_stream(val_gpt2, GPT2_EOT_ID)  # the same tokens, GPT-2 ids
    train_unknown = int((train_stream == unknown_id).sum())
    val_unknown = int((val_stream == unknown_id).sum())
    print(f"corpus: {len(fortunes)} fortunes from {len(CORPUS_FILES)} files, "
          f"{sum(len(t) for _, t in fortunes)} chars; train {len(train_docs_text)} fortunes "
          f"/ {len(train_stream)} tokens, val {len(val_docs_text)} fortunes / "
          f"{len(val_stream)} tokens; unknown tokens: train {train_unknown} "
          f"({100 * train_unknown / len(train_stream):.1f}%), val {val_unknown} "
          f"({100 * val_unknown / len(val_stream):.1f}%); tokenized in {tokenize_s:.1f} s")
    unigram_val = unigram_loss(train_stream, val_stream, vocab_size)
    print(f"vocabulary: {vocab_size} model ids ({len(seen)} GPT-2 tokens seen >= "
          f"{args.min_count} times in training + <|endoftext|> + unknown); baselines on "
          f"val: uniform ln(V) = {math.log(vocab_size):.4f}, unigram "
          f"{unigram_val:.4f} nats/token")

    model = Gpt2(vocab_size, args.n_ctx, args.n_embd, args.n_layer, args.n_head, 1e-5,
                 args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.n_layer} layers, {args.n_head} heads, n_embd {args.n_embd}, n_ctx "
          f"{args.n_ctx}: {n_params} parameters ({4 * n_params} bytes float32)")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    batch_gen = torch.Generator().manual_seed(args.seed + 1)
    max_start = len(train_stream) - args.n_ctx - 1
    history = []
    window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.time()
    train_started = time.time()
    init_val = stream_loss(model, val_stream, args.n_ctx, 32)
    print(f"step     0  val {init_val:.4f}")
    history.append({"step": 0, "train_loss": None, "val_loss": init_val})
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        starts = torch.randint(0, max_start + 1, (args.batch_size,), generator=batch_gen)
        x = torch.stack([train_stream[s:s + args.n_ctx] for s in starts.tolist()])
        y = torch.stack([train_stream[s + 1:s + args.n_ctx + 1] for s in starts.tolist()])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        window_loss += loss.item()
        window_steps += 1
        window_tokens += y.numel()
        if (step + 1) % args.eval_interval == 0 or step + 1 == args.steps:
            val = stream_loss(model, val_stream, args.n_ctx, 32)
            elapsed = time.time() - window_start
            train = window_loss / window_steps
            print(f"step {step + 1:5d}  train {train:.4f}  val {val:.4f}  "
                  f"lr {optimizer.param_groups[0]['lr']:.2e}  "
                  f"{window_tokens / elapsed:.0f} tok/s  "
                  f"elapsed {time.time() - train_started:.0f} s", flush=True)
            history.append({"step": step + 1, "train_loss": train, "val_loss": val})
            window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.time()
    train_s = time.time() - train_started

    # Save, then reload from the written files and measure everything on the reloaded
    # model, so the numbers and the fixture describe exactly what is on disk.
    out = Path(args.out)
    state = export_state(model)
    final_val = history[-1]["val_loss"]
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": vocab_size,
        "n_positions": args.n_ctx,
        "n_ctx": args.n_ctx,
        "n_embd": args.n_embd,
        "n_layer": args.n_layer,
        "n_head": args.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "resid_pdrop": args.dropout,
        "embd_pdrop": args.dropout,
        "attn_pdrop": args.dropout,
        "tie_word_embeddings": True,
        "bos_token_id": eot_model_id,
        "eos_token_id": eot_model_id,
        "torch_dtype": "float32",
    }
    safetensors = safetensors_bytes(state, {"format": "pt",
                                            "source": "libsae tools/gpt2/train_fortunes.py"})
    vocab_map = {"format": VOCAB_MAP_FORMAT, "version": 1,
                 "model_to_gpt2": model_to_gpt2, "unknown_model_id": unknown_id}

    reloaded = Gpt2(vocab_size, args.n_ctx, args.n_embd, args.n_layer, args.n_head, 1e-5, 0.0)
    write_atomically(out / "model.safetensors", safetensors)
    tensors, _ = read_safetensors(out / "model.safetensors")
    for name, array in state.items():
        if not np.array_equal(tensors[name], array):
            raise SystemExit(f"error: {name} read back from model.safetensors differs")
    import_state(reloaded, tensors)
    reloaded.eval()
    final_val = stream_loss(reloaded, val_stream, args.n_ctx, 32)
    train_probe = train_stream[:len(val_stream)]
    final_train = stream_loss(reloaded, train_probe, args.n_ctx, 32)

    sample_gen = torch.Generator().manual_seed(args.seed + 2)
    samples = []
    for prompt, temperature in (("The meaning of life is", 0.0),
                                ("A computer", 0.0),
                                ("Q: Why did the chicken cross the road?\nA:", 0.8),
                                ("Never", 0.8)):
        prompt_ids = [eot_model_id] + to_model(encoder.encode(prompt))
        new = sample(reloaded, prompt_ids, 60, temperature, 40, sample_gen, eot_model_id,
                     unknown_id)
        text = encoder.decode([model_to_gpt2[i] for i in new if model_to_gpt2[i] >= 0])
        samples.append({"prompt": prompt, "temperature": temperature, "top_k": 40 if
                        temperature else None, "continuation": text})

    config["libsae"] = {
        "script": "tools/gpt2/train_fortunes.py",
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "dropout": args.dropout,
        "corpus": {
            "package": "Debian fortunes / fortunes-min 1:1.99.1 (English, no off/)",
            "files": list(CORPUS_FILES),
            "fortunes": len(fortunes),
            "sha256": corpus_digest(fortunes),
            "train_fortunes": len(train_docs_text),
            "val_fortunes": len(val_docs_text),
            "train_tokens": len(train_stream),
            "val_tokens": len(val_stream),
            "train_unknown_tokens": train_unknown,
            "val_unknown_tokens": val_unknown,
            "document_separator": "<|endoftext|>",
        },
        "tokenizer": "GPT-2 byte-level BPE (vocab.json + merges.txt), ids restricted by "
                     "vocab_map.json",
        "min_count": args.min_count,
        "blas": loaded_blas(),
        "eot_model_id": eot_model_id,
        "unknown_model_id": unknown_id,
        "parameters": n_params,
        "train_seconds": round(train_s, 1),
        "val_loss_nats_per_token": round(final_val, 4),
        "train_loss_nats_per_token": round(final_train, 4),
        "uniform_baseline_nats_per_token": round(math.log(vocab_size), 4),
        "unigram_baseline_nats_per_token": round(unigram_val, 4),
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                    for h in history],
    }
    write_atomically(out / "config.json", json_bytes(config))
    write_atomically(out / "vocab_map.json",
                     (json.dumps(vocab_map, separators=(",", ":")) + "\n").encode("utf-8"))
    write_atomically(out / "LICENSE", (
        f"Copyright and licence of the training text (Debian packages fortunes and "
        f"fortunes-min 1:1.99.1),\ncopied verbatim from {args.licence_file}:\n\n"
        ).encode("utf-8") + Path(args.licence_file).read_bytes())
    write_atomically(out / "README.md", model_readme(config, samples,
                                                     (out / "model.safetensors").stat().st_size,
                                                     args.licence_file).encode("utf-8"))

    if args.fixture_dir:
        windows = pick_fixture_windows(val_stream, val_stream_gpt2, encoder, eot_model_id,
                                       (args.n_ctx, 40, 9))
        fixture, last_rows = build_fixture(reloaded, windows, encoder, unknown_id,
                                           relative(out))
        fixture_dir = Path(args.fixture_dir)
        write_atomically(fixture_dir / "fortunes_reference.npy", npy_bytes(last_rows))
        write_atomically(fixture_dir / "fortunes_reference.json", json_bytes(fixture))
        readback = np.load(fixture_dir / "fortunes_reference.npy")
        if readback.dtype != np.float32 or not np.array_equal(readback, last_rows):
            raise SystemExit("error: fortunes_reference.npy does not read back")
        check(out, fixture_dir, args.tokenizer_dir)
        print(f"fixture: {len(windows)} sequences of lengths "
              f"{[len(w[0]) for w in windows]}, mean CE {fixture['mean_cross_entropy']:.4f}, "
              f"written to {relative(fixture_dir)}")

    print("\nsamples:")
    for s in samples:
        print(f"  [{s['prompt']!r}, T={s['temperature']}] -> {s['continuation']!r}")
    print(f"\nsummary: {n_params} parameters, model.safetensors "
          f"{(out / 'model.safetensors').stat().st_size} bytes, trained {args.steps} steps "
          f"in {train_s:.0f} s; val loss {final_val:.4f} nats/token, train loss "
          f"{final_train:.4f} (same-size slice of the training split), baselines uniform "
          f"ln({vocab_size}) = {math.log(vocab_size):.4f}, unigram {unigram_val:.4f}; total {time.time() - started:.0f} s")


def model_readme(config, samples, safetensors_size, licence_file):
    info = config["libsae"]
    rows = "\n".join(
        f"| {h['step']} | {'' if h['train_loss'] is None else format(h['train_loss'], '.3f')} "
        f"| {h['val_loss']:.3f} |" for h in info["history"])
    sample_lines = "\n".join(
        f"- `{s['prompt']!r}` ({'greedy' if not s['temperature'] else 'T=%g, top-k %d' % (s['temperature'], s['top_k'])}): "
        f"{json.dumps(s['continuation'], ensure_ascii=False)}" for s in samples)
    return f"""# fortunes-gpt2: a small GPT-2 trained on Debian's fortunes

A real trained text language model in the Hugging Face GPT-2 layout, for libsae's GPT-2
forward pass, its tests and the language-model MFR example. Made by
`tools/gpt2/train_fortunes.py` (see `tools/gpt2/README.md`); rerunning it with the same
arguments on one machine reproduces these files.

| | |
|---|---|
| architecture | GPT-2 (learned positions, pre-LN, causal attention, tanh-GELU MLP 4x, final LN, LM head tied to `wte`, LayerNorm eps 1e-5) |
| size | {config['n_layer']} layers, {config['n_head']} heads, n_embd {config['n_embd']}, n_ctx {config['n_ctx']}, vocab {config['vocab_size']}: {info['parameters']:,} parameters, `model.safetensors` {safetensors_size:,} bytes (float32) |
| tokenizer | GPT-2 byte-level BPE; the model's vocabulary is the GPT-2 tokens seen at least {info['min_count']} times in the training split, then `<|endoftext|>` (model id {info['eot_model_id']}), then one unknown slot (model id {info['unknown_model_id']}, GPT-2 id -1) for every other token; `vocab_map.json` lists the GPT-2 id of each model id (`model_to_gpt2`) |
| corpus | {info['corpus']['package']}: {info['corpus']['fortunes']:,} fortunes from {len(info['corpus']['files'])} files, each followed by `<|endoftext|>`; validation = {info['corpus']['val_fortunes']} fortunes chosen by seed {info['seed']} ({info['corpus']['val_tokens']:,} tokens, {info['corpus']['val_unknown_tokens']:,} of them unknown), training = the other {info['corpus']['train_fortunes']:,} ({info['corpus']['train_tokens']:,} tokens, {info['corpus']['train_unknown_tokens']:,} unknown) |
| training | {info['steps']} steps of {info['batch_size']} x {config['n_ctx']} tokens, AdamW (lr {info['learning_rate']}, warm-up {info['warmup_steps']}, cosine to 10%, weight decay {info['weight_decay']}), dropout {config['resid_pdrop']}, seed {info['seed']}, CPU threads: {info['threads']}, {info['train_seconds']:.0f} s, torch {info['torch_version']}, BLAS `{info['blas']}` |
| **validation loss** | **{info['val_loss_nats_per_token']:.4f} nats/token** over the model's vocabulary (the unknown slot is one class); baselines: uniform ln({config['vocab_size']}) = {info['uniform_baseline_nats_per_token']:.4f}, unigram (training-split token frequencies, no context) {info['unigram_baseline_nats_per_token']:.4f}; on an equally long slice of the training split {info['train_loss_nats_per_token']:.4f} |

Tensors (float32, Conv1D weights `[in, out]`): `wte.weight [vocab, n_embd]`,
`wpe.weight [n_ctx, n_embd]`, `h.{{l}}.ln_1.{{weight,bias}}`,
`h.{{l}}.attn.c_attn.{{weight [n_embd, 3 n_embd], bias}}`,
`h.{{l}}.attn.c_proj.{{weight [n_embd, n_embd], bias}}`, `h.{{l}}.ln_2.*`,
`h.{{l}}.mlp.c_fc.{{weight [n_embd, 4 n_embd], bias}}`,
`h.{{l}}.mlp.c_proj.{{weight [4 n_embd, n_embd], bias}}`, `ln_f.{{weight,bias}}`; no `lm_head`.

Loss during training (train = mean loss of the training batches since the previous
row; val = the whole validation split):

| step | train | val |
|---|---|---|
{rows}

Continuations generated by the saved model (prompt preceded by `<|endoftext|>`; the
unknown slot is never emitted; at most 60 tokens, stopping at `<|endoftext|>`):

{sample_lines}

## Source and licence

The training text is the fortune cookie files of the Debian packages `fortunes` and
`fortunes-min` (fortune-mod 1.99.1, files listed in `config.json`; offensive files were
not used). Their copyright and licence statement, copied from `{licence_file}`, is in
`LICENSE` (BSD licence of the Regents of the University of California for fortune-mod,
plus the note on the atheism cookie file). The weights are derived from that text.
The GPT-2 tokenizer files are OpenAI's (MIT), in `shared/data/gpt2-tokenizer/`.
"""


if __name__ == "__main__":
    main()
