#!/usr/bin/python3
"""The PyTorch side of benchmarks/gpt2_forward.cpp: the GPT-2 forward pass on the CPU.

Loads a Hugging Face GPT-2 directory (config.json + model.safetensors, Conv1D weights
[in, out], LM head tied to wte) written by the C++ benchmark, runs the same computation
as libsae's Gpt2::forward (every position's logits, float32, eval mode, no autograd),
checks the logits of the last positions against the C++ ones, and writes a JSON object:
tokens_per_second, seconds_median, threads, torch version, max_abs_diff_last_logits.

The model is written out in plain PyTorch (no `transformers`): embeddings, pre-LN
blocks, causal attention as Q K^T / sqrt(d_head) + masked softmax + P V, tanh-GELU MLP,
final LayerNorm, tied LM head.

Backends (--backend):
  blas    plain tensor operations: matrix products go to the BLAS that torch was built
          against (Debian's python3-torch: BLAS_INFO=generic, i.e. whatever the
          libblas.so.3 alternative points to — the reference BLAS unless OpenBLAS or
          BLIS is installed). What `model(x)` gives a user of that package.
  onednn  the same model with its linear layers (c_attn, c_proj, c_fc, mlp c_proj and
          the LM head; 93% of the FLOPs at context 1024) converted with
          torch.utils.mkldnn.to_mkldnn, PyTorch's documented CPU inference path, which
          runs them through oneDNN's own JIT GEMM whatever the system BLAS; attention
          products stay torch.matmul.

Usage: gpt2_forward_torch.py --model DIR --tokens tokens.npy [--check last_logits.npy]
                             [--backend blas|onednn] [--reps 3] [--warmup 1]
                             [--threads N] [--out result.json]
"""

import argparse
import json
import math
import os
import statistics
import struct
import time

# The OpenMP environment (OMP_WAIT_POLICY, ...) is inherited from the C++ benchmark that
# starts this script, so both sides run under the same settings.
import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    """name -> float32 tensor, from the file's header and little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=DTYPES[info["dtype"]], count=(end - begin) // np.dtype(DTYPES[info["dtype"]]).itemsize,
                              offset=base + begin).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.astype(np.float32))
    return tensors


def conv1d_linear(weight, bias):
    """An nn.Linear computing x W + b for a Hugging Face Conv1D weight W [in, out]."""
    layer = torch.nn.Linear(weight.shape[0], weight.shape[1], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight.t())
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


class Gpt2:
    def __init__(self, directory, backend):
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        self.n_layer = config["n_layer"]
        self.n_head = config["n_head"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        t = read_safetensors(os.path.join(directory, "model.safetensors"))
        self.t = {name[len("transformer."):] if name.startswith("transformer.") else name: value for name, value in t.items()}
        self.linear = {}
        for layer in range(self.n_layer):
            for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                key = f"h.{layer}.{name}"
                self.linear[key] = conv1d_linear(self.t[key + ".weight"], self.t[key + ".bias"])
        self.linear["lm_head"] = conv1d_linear(self.t["wte.weight"].t(), None)  # tied to wte
        if backend == "onednn":
            from torch.utils import mkldnn
            self.linear = {key: mkldnn.to_mkldnn(layer) for key, layer in self.linear.items()}
        self.onednn = backend == "onednn"

    def apply(self, key, x):
        """The linear layer `key` on rows x [n, in] (dense in, dense out)."""
        if self.onednn:
            return self.linear[key](x.to_mkldnn()).to_dense()
        return self.linear[key](x)

    def forward(self, ids):
        t = self.t
        batch, seq = ids.shape
        width = t["wte.weight"].shape[1]
        head = width // self.n_head
        x = t["wte.weight"][ids] + t["wpe.weight"][:seq]
        mask = torch.ones(seq, seq, dtype=torch.bool).tril()
        for layer in range(self.n_layer):
            p = f"h.{layer}."
            h = F.layer_norm(x, (width,), t[p + "ln_1.weight"], t[p + "ln_1.bias"], self.eps)
            qkv = self.apply(p + "attn.c_attn", h.reshape(-1, width))
            q, k, v = qkv.reshape(batch, seq, 3, self.n_head, head).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(head)
            scores = scores.masked_fill(~mask, float("-inf"))
            z = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(-1, width)
            x = x + self.apply(p + "attn.c_proj", z).reshape(batch, seq, width)
            h = F.layer_norm(x, (width,), t[p + "ln_2.weight"], t[p + "ln_2.bias"], self.eps)
            hidden = F.gelu(self.apply(p + "mlp.c_fc", h.reshape(-1, width)), approximate="tanh")
            x = x + self.apply(p + "mlp.c_proj", hidden).reshape(batch, seq, width)
        x = F.layer_norm(x, (width,), t["ln_f.weight"], t["ln_f.bias"], self.eps)
        return self.apply("lm_head", x.reshape(-1, width).contiguous())  # [batch*seq, vocab]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--check", default="")
    parser.add_argument("--backend", choices=("blas", "onednn"), default="blas")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = Gpt2(args.model, args.backend)
    ids = torch.from_numpy(np.load(args.tokens).astype(np.int64))
    batch, seq = ids.shape
    with torch.inference_mode():
        for _ in range(args.warmup):
            logits = model.forward(ids)
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            logits = model.forward(ids)
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    result = {"torch": torch.__version__, "backend": args.backend, "threads": torch.get_num_threads(), "reps": args.reps,
              "seconds": times, "seconds_median": seconds, "tokens_per_second": batch * seq / seconds,
              "max_abs_diff_last_logits": None}
    if args.check:
        expected = np.load(args.check)
        last = logits.reshape(batch, seq, -1)[:, -1, :].numpy()
        result["max_abs_diff_last_logits"] = float(np.abs(last - expected).max())
    text = json.dumps(result)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
