#!/usr/bin/env python3
"""Reference GPT-2 forward pass in plain PyTorch (float64), and the fixtures of tests/test_gpt2.cpp.

Independent of libsae: GPT-2 written here from its definition (Radford et al. 2019, the
Hugging Face / minGPT modules): token + learned position embeddings, pre-LN blocks
(LayerNorm, eps 1e-5, biased variance), causal multi-head attention with scores scaled by
1/sqrt(d_head), tanh-approximated GELU, final LayerNorm, LM head. Weights are held in the
Hugging Face Conv1D layout (y = x W + b, W [in, out]); minGPT Linear weights ([out, in])
are transposed on load. Safetensors files are read and written here with struct + numpy
(the `safetensors` package is not installed), so no libsae code is involved.

    /usr/bin/python3 tools/reference/gpt2_reference.py [--out tests/fixtures/gpt2]
        [--data examples/data]

writes (all small):
  tiny_hf/config.json, tiny_hf/model.safetensors
        a random 2-layer GPT-2 in Hugging Face layout (n_embd 16, 4 heads, vocab 50,
        n_positions 16), tensor names with the `transformer.` prefix, tied LM head, F32
  tiny_hf_expected.safetensors
        tokens [2, 16] (I64) and, computed in float64 from the F32 weights: logits
        [32, 50] and the activations at blocks.0.hook_resid_mid, blocks.1.hook_mlp_out,
        blocks.0.attn.hook_pattern ([batch*heads*seq, seq]) and ln_final.hook_normalized
  shakespeare_ce.json
        the mean next-character cross-entropy of gpt-nano-shakespeare over ten 128-char
        windows of input.txt (offsets i * (len - 128) // 10, i = 0..9), per window and mean

and checks this reference against llm-viz's recorded activations of nano-gpt-sort
(gpt-nano-sort-t0-partials.json), printing the largest deviation (it must be < 1e-5).
"""
import argparse
import base64
import json
import math
import pathlib
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


# ----------------------------------------------------------------------------- model

class Config:
    def __init__(self, n_layer, n_head, n_embd, n_ctx, vocab_size, eps=1e-5):
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.n_ctx, self.vocab_size, self.eps = n_ctx, vocab_size, eps


def layer_norm(x, weight, bias, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, cfg, idx, capture=None):
    """Logits [B, T, V] of token ids idx [B, T]; p holds HF-layout float64 tensors
    ('wte', 'wpe', 'h.L.attn.c_attn.weight', ..., 'ln_f.weight', 'lm_head' [V, C]).
    `capture` (dict) receives every intermediate by TransformerLens hook name."""
    cap = capture if capture is not None else {}
    B, T = idx.shape
    C, H = cfg.n_embd, cfg.n_head
    hd = C // H
    tok = p["wte"][idx]
    pos = p["wpe"][:T].unsqueeze(0).expand(B, T, C)
    cap["hook_embed"], cap["hook_pos_embed"] = tok, pos
    x = tok + pos
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for layer in range(cfg.n_layer):
        w = lambda name: p[f"h.{layer}.{name}"]  # noqa: E731
        pre = f"blocks.{layer}."
        cap[pre + "hook_resid_pre"] = x
        ln1 = layer_norm(x, w("ln_1.weight"), w("ln_1.bias"), cfg.eps)
        cap[pre + "ln1.hook_normalized"] = ln1
        qkv = ln1 @ w("attn.c_attn.weight") + w("attn.c_attn.bias")
        q, k, v = qkv.split(C, dim=2)
        cap[pre + "attn.hook_q"], cap[pre + "attn.hook_k"], cap[pre + "attn.hook_v"] = q, k, v
        heads = lambda t: t.view(B, T, H, hd).transpose(1, 2)  # noqa: E731  [B, H, T, hd]
        scores = heads(q) @ heads(k).transpose(-2, -1) / math.sqrt(hd)
        scores = scores.masked_fill(~causal, float("-inf"))
        cap[pre + "attn.hook_attn_scores"] = scores
        pattern = torch.softmax(scores, dim=-1)
        cap[pre + "attn.hook_pattern"] = pattern
        z = (pattern @ heads(v)).transpose(1, 2).reshape(B, T, C)
        cap[pre + "attn.hook_z"] = z
        attn_out = z @ w("attn.c_proj.weight") + w("attn.c_proj.bias")
        cap[pre + "hook_attn_out"] = attn_out
        x = x + attn_out
        cap[pre + "hook_resid_mid"] = x
        ln2 = layer_norm(x, w("ln_2.weight"), w("ln_2.bias"), cfg.eps)
        cap[pre + "ln2.hook_normalized"] = ln2
        fc = ln2 @ w("mlp.c_fc.weight") + w("mlp.c_fc.bias")
        cap[pre + "mlp.hook_pre"] = fc
        act = gelu_tanh(fc)
        cap[pre + "mlp.hook_post"] = act
        mlp_out = act @ w("mlp.c_proj.weight") + w("mlp.c_proj.bias")
        cap[pre + "hook_mlp_out"] = mlp_out
        x = x + mlp_out
        cap[pre + "hook_resid_post"] = x
    final = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], cfg.eps)
    cap["ln_final.hook_normalized"] = final
    return final @ p["lm_head"].T


def next_token_ce(logits, idx):
    """Mean cross-entropy of positions 0..T-2 predicting tokens 1..T-1."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return -logp.gather(2, idx[:, 1:].unsqueeze(-1)).mean().item()


# ----------------------------------------------------------------------------- files

def mingpt_to_hf(tensors):
    """minGPT state dict (Linear [out, in], `transformer.` prefix) -> HF-layout dict."""
    p = {}
    for name, t in tensors.items():
        if name.endswith(".attn.bias") and t.dim() == 4:
            continue  # causal mask buffer
        if name == "lm_head.weight":
            p["lm_head"] = t
            continue
        short = name[len("transformer."):]
        if short in ("wte.weight", "wpe.weight"):
            p[short.split(".")[0]] = t
        elif short.endswith(".weight") and t.dim() == 2:
            p[short] = t.T.contiguous()
        else:
            p[short] = t
    return p


def load_mingpt_json(path):
    """Both JSON layouts: {name: {shape, dtype, data(base64 f32)}} or {name: nested lists}."""
    raw = json.loads(pathlib.Path(path).read_text())
    tensors = {}
    for name, value in raw.items():
        if name == "config":
            continue
        if isinstance(value, dict):
            array = np.frombuffer(base64.b64decode(value["data"]), dtype="<f4").reshape(value["shape"])
        else:
            array = np.asarray(value, dtype=np.float32)
        tensors[name] = torch.from_numpy(array.astype(np.float64))
    return raw.get("config"), tensors


def write_safetensors(path, tensors):
    """tensors: name -> (numpy array, dtype name); compact header padded with spaces."""
    codes = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    header, blobs, offset = {}, [], 0
    for name, (array, dtype) in tensors.items():
        blob = np.ascontiguousarray(array, dtype=codes[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ----------------------------------------------------------------------------- fixtures

def make_tiny_hf(out_dir):
    cfg = Config(n_layer=2, n_head=4, n_embd=16, n_ctx=16, vocab_size=50)
    gen = torch.Generator().manual_seed(20240)
    C = cfg.n_embd

    def rand(*shape, scale=0.3):
        return (torch.randn(*shape, generator=gen) * scale).to(torch.float32)

    weights = {"wte.weight": rand(cfg.vocab_size, C), "wpe.weight": rand(cfg.n_ctx, C)}
    for layer in range(cfg.n_layer):
        pre = f"h.{layer}."
        weights.update({
            pre + "ln_1.weight": 1.0 + rand(C, scale=0.1), pre + "ln_1.bias": rand(C, scale=0.1),
            pre + "attn.c_attn.weight": rand(C, 3 * C), pre + "attn.c_attn.bias": rand(3 * C, scale=0.1),
            pre + "attn.c_proj.weight": rand(C, C), pre + "attn.c_proj.bias": rand(C, scale=0.1),
            pre + "ln_2.weight": 1.0 + rand(C, scale=0.1), pre + "ln_2.bias": rand(C, scale=0.1),
            pre + "mlp.c_fc.weight": rand(C, 4 * C), pre + "mlp.c_fc.bias": rand(4 * C, scale=0.1),
            pre + "mlp.c_proj.weight": rand(4 * C, C), pre + "mlp.c_proj.bias": rand(C, scale=0.1),
        })
    weights["ln_f.weight"] = 1.0 + rand(C, scale=0.1)
    weights["ln_f.bias"] = rand(C, scale=0.1)

    model_dir = out_dir / "tiny_hf"
    model_dir.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "gpt2", "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": C,
              "n_positions": cfg.n_ctx, "n_ctx": cfg.n_ctx, "vocab_size": cfg.vocab_size,
              "layer_norm_epsilon": cfg.eps, "tie_word_embeddings": True}
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(model_dir / "model.safetensors",
                      {"transformer." + n: (t.numpy(), "F32") for n, t in weights.items()})

    p = {("wte" if n == "wte.weight" else "wpe" if n == "wpe.weight" else n): t.to(torch.float64)
         for n, t in weights.items()}
    p["lm_head"] = p["wte"]
    tokens = torch.randint(0, cfg.vocab_size, (2, cfg.n_ctx), generator=gen)
    cap = {}
    logits = forward(p, cfg, tokens, cap)
    flat = lambda t: t.reshape(-1, t.shape[-1]).numpy()  # noqa: E731
    expected = {"tokens": (tokens.numpy().astype(np.int64), "I64"), "logits": (flat(logits), "F64")}
    for name in ("blocks.0.hook_resid_mid", "blocks.1.hook_mlp_out", "blocks.0.attn.hook_pattern",
                 "ln_final.hook_normalized"):
        expected[name] = (flat(cap[name]), "F64")
    write_safetensors(out_dir / "tiny_hf_expected.safetensors", expected)
    print(f"tiny_hf: logits[0,0,:3] = {logits[0, 0, :3].tolist()}")


def make_shakespeare(data_dir, out_dir):
    folder = data_dir / "gpt-nano-shakespeare"
    _, tensors = load_mingpt_json(folder / "model_weights.json")
    p = mingpt_to_hf(tensors)
    cfg = Config(n_layer=3, n_head=3, n_embd=48, n_ctx=128, vocab_size=p["wte"].shape[0])
    text = (folder / "input.txt").read_text()
    chars = sorted(set(text))
    assert len(chars) == cfg.vocab_size, (len(chars), cfg.vocab_size)
    index = {c: i for i, c in enumerate(chars)}
    window = 128
    offsets = [i * (len(text) - window) // 10 for i in range(10)]
    per_window = []
    for offset in offsets:
        idx = torch.tensor([[index[c] for c in text[offset:offset + window]]])
        per_window.append(next_token_ce(forward(p, cfg, idx), idx))
    mean = sum(per_window) / len(per_window)
    result = {"source": "tools/reference/gpt2_reference.py (float64 PyTorch forward pass)",
              "window": window, "offsets": offsets, "ce_per_window": per_window, "mean_ce": mean}
    (out_dir / "shakespeare_ce.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"shakespeare: mean next-char CE over 10 windows = {mean:.6f} nats")


def check_sort_partials(data_dir):
    folder = data_dir / "nano-gpt-sort"
    config, tensors = load_mingpt_json(folder / "gpt-nano-sort-model.json")
    p = mingpt_to_hf(tensors)
    cfg = Config(config["n_layer"], config["n_head"], config["n_embd"], config["block_size"], config["vocab_size"])
    _, partials = load_mingpt_json(folder / "gpt-nano-sort-t0-partials.json")
    idx = partials["idx"].long()
    cap = {}
    logits = forward(p, cfg, idx, cap)
    B, T = idx.shape
    heads = lambda t: t.view(B, T, cfg.n_head, -1).transpose(1, 2)  # noqa: E731
    ours = {"tok_emb": cap["hook_embed"], "pos_emb": cap["hook_pos_embed"][:1], "x": cap["blocks.0.hook_resid_pre"],
            "ln1": cap["blocks.0.ln1.hook_normalized"], "q": heads(cap["blocks.0.attn.hook_q"]),
            "k": heads(cap["blocks.0.attn.hook_k"]), "v": heads(cap["blocks.0.attn.hook_v"]),
            "qkv": torch.cat([cap["blocks.0.attn.hook_" + n] for n in "qkv"], dim=2),
            "att": cap["blocks.0.attn.hook_attn_scores"], "attSm": cap["blocks.0.attn.hook_pattern"],
            "y": cap["blocks.0.attn.hook_z"], "yProj": cap["blocks.0.hook_attn_out"],
            "attnResid": cap["blocks.0.hook_resid_mid"], "ln2": cap["blocks.0.ln2.hook_normalized"],
            "fc": cap["blocks.0.mlp.hook_pre"], "gelu": cap["blocks.0.mlp.hook_post"],
            "mlp": cap["blocks.0.hook_mlp_out"], "mlpResid": cap["blocks.0.hook_resid_post"],
            "ln_f": cap["ln_final.hook_normalized"], "lm_head": logits, "probs": torch.softmax(logits, dim=-1)}
    for layer in range(cfg.n_layer):
        ours[f"block{layer}"] = cap[f"blocks.{layer}.hook_resid_post"]
    worst = 0.0
    for name, value in ours.items():
        want = partials[name]
        finite = torch.isfinite(want)
        assert torch.equal(finite, torch.isfinite(value)), name
        worst = max(worst, (value[finite] - want[finite]).abs().max().item())
    missing = set(partials) - set(ours) - {"idx"}
    assert not missing, missing
    print(f"nano-gpt-sort partials: largest deviation {worst:.3g} over {len(ours)} tensors")
    assert worst < 1e-5


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = pathlib.Path(__file__).resolve().parents[2]
    parser.add_argument("--out", type=pathlib.Path, default=root / "tests" / "fixtures" / "gpt2")
    parser.add_argument("--data", type=pathlib.Path, default=root / "examples" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    check_sort_partials(args.data)
    make_tiny_hf(args.out)
    make_shakespeare(args.data, args.out)


if __name__ == "__main__":
    main()
