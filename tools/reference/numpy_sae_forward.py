#!/usr/bin/env python3
"""Independent reference forward pass of a saved SAE, for tests/test_saelens.cpp.

Reads an SAE directory the way SAELens and sparsify define it, using only struct, json
and numpy (no libsae code, no torch, no safetensors package), runs the forward pass in
float64 and writes the reconstruction and the latent code.

    /usr/bin/python3 tools/reference/numpy_sae_forward.py DIR INPUT OUTPUT [DIR INPUT OUTPUT ...]

DIR     a SAELens directory (cfg.json + sae_weights.safetensors) or a sparsify one
        (cfg.json + sae.safetensors)
INPUT   a safetensors file with a tensor "x" [batch, d_in]
OUTPUT  a safetensors file written here with "x_hat" [batch, d_in] and
        "code" [batch, d_sae], both F64
More triples may follow (one interpreter start for several SAEs).

Forward pass, following SAELens 6 (sae_lens/saes/*.py) and sparsify (sparse_coder.py):
    sae_in = x - b_dec            (only when apply_b_dec_to_input; sparsify: not transcode)
    hidden = sae_in @ W_enc + b_enc
    hidden *= ||W_dec rows||      (topk with rescale_acts_by_decoder_norm)
    code   = topk:      k largest of each row, then ReLU (SAELens TopK, sparsify);
                        libsae's metadata.libsae.topk_relu = false keeps them signed
             jumprelu:  relu(hidden) * (hidden > threshold)
             batchtopk: as jumprelu with the scalar topk_threshold (a training save)
             standard:  relu(hidden)
    x_hat  = (code / ||W_dec rows|| when rescaled) @ W_dec + b_dec
"""
import json
import pathlib
import struct
import sys

import numpy as np

DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
          "I32": np.dtype("<i4"), "I64": np.dtype("<i8")}


def read_safetensors(path):
    """All tensors of a safetensors file as float64 arrays (BF16 widened by bit shift)."""
    raw = pathlib.Path(path).read_bytes()
    (header_size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_size].decode("utf-8"))
    data = raw[8 + header_size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        chunk = data[begin:end]
        if entry["dtype"] == "BF16":
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        else:
            values = np.frombuffer(chunk, dtype=DTYPES[entry["dtype"]])
        tensors[name] = values.astype(np.float64).reshape(entry["shape"])
    return tensors


def write_safetensors(path, tensors):
    """float64 tensors, compact header padded with spaces to 8 bytes."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def top_k(hidden, k, relu):
    code = np.zeros_like(hidden)
    # Stable sort of the negated values: ties go to the lower index, as in libsae.
    keep = np.argsort(-hidden, axis=1, kind="stable")[:, :k]
    rows = np.arange(hidden.shape[0])[:, None]
    kept = hidden[rows, keep]
    code[rows, keep] = np.maximum(kept, 0.0) if relu else kept
    return code


def saelens_forward(directory, x):
    cfg = json.loads((directory / "cfg.json").read_text())
    weights = read_safetensors(directory / "sae_weights.safetensors")
    libsae = (cfg.get("metadata") or {}).get("libsae") or {}
    architecture = cfg.get("architecture", "standard")
    activation_fn = cfg.get("activation_fn_str") or cfg.get("activation_fn") or "relu"
    if architecture == "standard" and activation_fn == "topk":
        architecture = "topk"
    W_enc, b_enc, W_dec, b_dec = (weights[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec"))

    sae_in = x - b_dec if cfg.get("apply_b_dec_to_input", True) else x
    hidden = sae_in @ W_enc + b_enc
    norms = np.linalg.norm(W_dec, axis=1)
    rescale = architecture in ("topk", "batchtopk") and cfg.get("rescale_acts_by_decoder_norm", False)
    if rescale:
        hidden = hidden * norms

    if architecture == "topk":
        k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
        code = top_k(hidden, int(k), libsae.get("topk_relu", True))
    elif architecture in ("jumprelu", "batchtopk"):
        threshold = weights["threshold"] if "threshold" in weights else weights["topk_threshold"].reshape(())
        code = np.maximum(hidden, 0.0) * (hidden > threshold)
    elif architecture == "standard":
        code = np.maximum(hidden, 0.0)
    else:
        raise SystemExit(f"unsupported architecture {architecture}")

    decoded = code / norms if rescale else code
    return decoded @ W_dec + b_dec, code


def sparsify_forward(directory, x):
    cfg = json.loads((directory / "cfg.json").read_text())
    weights = read_safetensors(directory / "sae.safetensors")
    sae_in = x if cfg.get("transcode", False) else x - weights["b_dec"]
    hidden = np.maximum(sae_in @ weights["encoder.weight"].T + weights["encoder.bias"], 0.0)
    code = top_k(hidden, int(cfg.get("k", 32)), True)
    return code @ weights["W_dec"] + weights["b_dec"], code


def main():
    arguments = sys.argv[1:]
    if not arguments or len(arguments) % 3 != 0:
        raise SystemExit(__doc__)
    for i in range(0, len(arguments), 3):
        directory = pathlib.Path(arguments[i])
        x = read_safetensors(arguments[i + 1])["x"]
        if (directory / "sae_weights.safetensors").exists():
            x_hat, code = saelens_forward(directory, x)
        else:
            x_hat, code = sparsify_forward(directory, x)
        write_safetensors(arguments[i + 2], {"x_hat": x_hat, "code": code})


if __name__ == "__main__":
    main()
