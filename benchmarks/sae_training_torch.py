#!/usr/bin/python3
"""The PyTorch side of benchmarks/sae_training.cpp: the same TopK SAE step on the CPU.

The computation is libsae's TrainableSae<float, TopK> with its defaults, written in
PyTorch (float32, all cores unless --threads):

  pre   = (x - b_dec) W_enc + b_enc                 W_enc [d_in, d_sae]
  f     = ReLU(TopK_k(pre))                          k largest per row, then ReLU
  x_hat = f W_dec + b_dec                            W_dec [d_sae, d_in], unit rows
  L     = mean over rows of ||x - x_hat||^2          (SAELens' normalisation)
  backward; remove from each W_dec row's gradient its component along the row;
  Adam (lr 1e-3, betas 0.9 / 0.999, eps 1e-8, torch.optim.Adam's defaults);
  renormalise the W_dec rows to unit norm.

Two ways to write it (--variant):
  dense   plain autograd, the way SAELens, the MFR authors and most PyTorch SAE code
          write it: the code is scattered into a dense [batch, d_sae] matrix and the
          decoder is a dense matmul, so the backward is dense too.
  sparse  EleutherAI sparsify's CPU path: the decoder is F.embedding_bag over the k active
          rows, and the encoder is an autograd.Function whose backward only touches the
          active latents (index_add_), like sparsify's FusedEncoder.
With --num-saes m, m independent SAEs (each with its own Adam) take the step on the same
batch, one after the other (each step uses all threads).

--mode encode times inference instead: pre-activations, TopK, ReLU, no autograd.

--check DIR runs the dense variant from the initial weights and batches that the C++
benchmark wrote to DIR (npy files) and writes the loss of every step, so that the C++
side can confirm both compute the same thing.

Matrix products go to the BLAS torch was built against (Debian: BLAS_INFO=generic, the
libblas.so.3 the system points to); benchmarks/run_all.py chooses OpenBLAS when it is
installed (see that script).

Writes one JSON object to --out: seconds per step (median over --steps timed steps after
--warmup untimed ones), tokens per second, threads, torch version.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


class SparseTopKEncoder(torch.autograd.Function):
    """pre = x W^T + b with W [d_sae, d_in] (nn.Linear layout); returns the top k of every
    row after ReLU and their indices. The backward touches only the k active latents."""

    @staticmethod
    def forward(ctx, x, weight, bias, k):
        pre = F.linear(x, weight, bias)
        values, indices = torch.topk(pre, k, dim=-1, sorted=False)
        values = F.relu(values)
        ctx.save_for_backward(x, weight, indices, values)
        return values, indices

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        x, weight, indices, values = ctx.saved_tensors
        grad_values = grad_values * (values > 0)  # ReLU
        grad_x = F.embedding_bag(indices, weight, per_sample_weights=grad_values, mode="sum")
        contributions = (grad_values.unsqueeze(2) * x.unsqueeze(1)).reshape(-1, x.shape[1])
        grad_weight = torch.zeros_like(weight).index_add_(0, indices.flatten(), contributions)
        grad_bias = torch.zeros(weight.shape[0], dtype=weight.dtype).index_add_(0, indices.flatten(), grad_values.flatten())
        return grad_x, grad_weight, grad_bias, None


class TopKSae:
    def __init__(self, d_in, d_sae, k, variant, lr, generator, weights=None):
        self.k, self.variant = k, variant
        if weights is None:
            W_dec = torch.randn(d_sae, d_in, generator=generator)
            W_dec /= W_dec.norm(dim=1, keepdim=True)
            W_enc = W_dec.t().clone()
            b_enc, b_dec = torch.zeros(d_sae), torch.zeros(d_in)
        else:
            W_enc, b_enc, W_dec, b_dec = (torch.from_numpy(w).float() for w in weights)
        if variant == "sparse":
            W_enc = W_enc.t().contiguous()  # [d_sae, d_in], nn.Linear's layout as in sparsify
        self.W_enc = W_enc.requires_grad_()
        self.b_enc = b_enc.clone().requires_grad_()
        self.W_dec = W_dec.clone().requires_grad_()
        self.b_dec = b_dec.clone().requires_grad_()
        self.optimizer = torch.optim.Adam([self.W_enc, self.b_enc, self.W_dec, self.b_dec], lr=lr, betas=(0.9, 0.999),
                                          eps=1e-8)

    def reconstruct(self, x):
        centered = x - self.b_dec
        if self.variant == "sparse":
            values, indices = SparseTopKEncoder.apply(centered, self.W_enc, self.b_enc, self.k)
            return F.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum") + self.b_dec
        pre = centered @ self.W_enc + self.b_enc
        values, indices = torch.topk(pre, self.k, dim=-1, sorted=False)
        code = torch.zeros_like(pre).scatter(-1, indices, F.relu(values))
        return code @ self.W_dec + self.b_dec

    def train_step(self, x):
        loss = (self.reconstruct(x) - x).pow(2).sum(dim=-1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            W, G = self.W_dec, self.W_dec.grad
            G -= ((G * W).sum(dim=1, keepdim=True) / (W * W).sum(dim=1, keepdim=True)) * W
        self.optimizer.step()
        with torch.no_grad():
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)
        return float(loss)

    @torch.no_grad()
    def encode(self, x):
        centered = x - self.b_dec
        pre = F.linear(centered, self.W_enc, self.b_enc) if self.variant == "sparse" else centered @ self.W_enc + self.b_enc
        values, indices = torch.topk(pre, self.k, dim=-1, sorted=False)
        return F.relu(values), indices


def timed(function, warmup, steps):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d-in", type=int, required=True)
    parser.add_argument("--d-sae", type=int, required=True)
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--num-saes", type=int, default=1)
    parser.add_argument("--variant", choices=["dense", "sparse"], default="dense")
    parser.add_argument("--mode", choices=["train", "encode"], default="train")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--check", help="directory with init_*.npy and batch_*.npy written by the C++ side")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    threads = args.threads if args.threads > 0 else os.cpu_count()
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "variant": args.variant, "mode": args.mode}

    if args.check:
        names = ["W_enc", "b_enc", "W_dec", "b_dec"]
        weights = [np.load(os.path.join(args.check, f"init_{name}.npy")).reshape(-1) if name.startswith("b")
                   else np.load(os.path.join(args.check, f"init_{name}.npy")) for name in names]
        sae = TopKSae(args.d_in, args.d_sae, args.k, args.variant, args.lr, generator, weights)
        losses = []
        step = 0
        while os.path.exists(os.path.join(args.check, f"batch_{step}.npy")):
            losses.append(sae.train_step(torch.from_numpy(np.load(os.path.join(args.check, f"batch_{step}.npy")))))
            step += 1
        result["losses"] = losses
    else:
        x = torch.randn(args.batch, args.d_in, generator=generator)
        saes = [TopKSae(args.d_in, args.d_sae, args.k, args.variant, args.lr, generator) for _ in range(args.num_saes)]
        if args.mode == "train":
            step = lambda: [sae.train_step(x) for sae in saes]
        else:
            step = lambda: [sae.encode(x) for sae in saes]
        seconds, times = timed(step, args.warmup, args.steps)
        result.update({"seconds": seconds, "all_seconds": times, "tokens_per_second": args.batch / seconds,
                       "warmup": args.warmup, "steps": args.steps})
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
