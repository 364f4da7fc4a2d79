#!/usr/bin/env python3
"""Seed inputs of the parser fuzzers (fuzz/) and of tests/test_parser_mutations.cpp.

Every seed is a real file of the format, trimmed so that a mutation test can parse it
ten thousand times in a few seconds: the .npy fixtures NumPy wrote, files that `sae train`
wrote (SAELens directories, checkpoints, run configs), the example configs, and slices
of the real data sets in examples/data (EDF/BDF headers and the first samples, the
EEGLAB tutorial .set rewritten by SciPy with 4 channels, the first GPT-2 merges, VADER's
first lines, sub-matrices of the fortunes and minGPT weights).

    /usr/bin/python3 fuzz/make_seeds.py --sae build/tools/cli/sae

writes
  tests/fixtures/mutations/<parser>/<seed>          one file, or a directory holding the
                                                    files a parser reads together
  fuzz/corpus/<parser>/seed_<seed>                  the same seed as one fuzzer input: the
                                                    files in the parser's slot order joined
                                                    by the separator of
                                                    tests/support/mutations.hpp (an absent
                                                    file is an empty part)
Run it from the repository root (Debian's /usr/bin/python3: NumPy and SciPy).
"""
import argparse
import base64
import json
import pathlib
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import scipy.io

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
FIXTURES = ROOT / "tests" / "fixtures"

# Must equal sae::test::mutation::part_separator (tests/support/mutations.hpp).
SEPARATOR = b"\x00SAE-FUZZ-NEXT-FILE\x00"

# Parser -> the file names its driver writes, in bundle order (fuzz/drivers.hpp).
SLOTS = {
    "npy": ["input.npy"],
    "safetensors": ["input.safetensors"],
    "saelens": ["cfg.json", "sae_weights.safetensors", "sae.safetensors"],
    "run_config": ["run.json"],
    "checkpoint": ["checkpoint.safetensors"],
    "edf": ["input.edf"],
    "eeglab": ["data.set", "data.fdt", "chan.locs"],
    "bpe": ["vocab.json", "merges.txt", "text.txt"],
    "gpt2_hf": ["config.json", "model.safetensors", "vocab_map.json"],
    "gpt2_mingpt": ["model.json"],
    "lexicon": ["lexicon.txt"],
    "activation_manifest": ["manifest.json", "shard_00000.npy", "shard_00001.safetensors"],
}


# ------------------------------------------------------------------------- helpers

def safetensors_bytes(tensors, metadata=None):
    """tensors: name -> (array, dtype name); the reference layout (compact JSON, padded to 8)."""
    codes = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}
    header = {"__metadata__": metadata} if metadata else {}
    blobs, offset = [], 0
    for name, (array, dtype) in tensors.items():
        if dtype == "BF16":  # the top half of the float32 bits (truncation is fine for a seed)
            blob = (np.ascontiguousarray(array, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            blob = np.ascontiguousarray(array, dtype=codes[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", None)
    codes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "F16": "<f2"}
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=codes[info["dtype"]]).reshape(info["shape"])
    return out, metadata


def npy_bytes(array):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "a.npy"
        np.save(path, array)
        return path.read_bytes()


class SeedWriter:
    def __init__(self):
        self.count = {}
        self.bytes = 0
        for parser in SLOTS:
            # The fixtures are only seeds; a corpus also keeps what the fuzzers found.
            fixtures = FIXTURES / "mutations" / parser
            shutil.rmtree(fixtures, ignore_errors=True)
            fixtures.mkdir(parents=True)
            corpus = ROOT / "fuzz" / "corpus" / parser
            corpus.mkdir(parents=True, exist_ok=True)
            for old in corpus.glob("seed_*"):
                old.unlink()

    def add(self, parser, name, files):
        """files: slot name -> bytes (missing slots: file absent)."""
        slots = SLOTS[parser]
        assert set(files) <= set(slots), (parser, set(files) - set(slots))
        base = FIXTURES / "mutations" / parser
        if len(slots) == 1:
            (base / name).write_bytes(files[slots[0]])
        else:
            (base / name).mkdir()
            for slot, data in files.items():
                (base / name / slot).write_bytes(data)
        parts = [files.get(slot, b"") for slot in slots]
        while len(parts) > 1 and parts[-1] == b"":
            parts.pop()
        bundle = SEPARATOR.join(parts)
        (ROOT / "fuzz" / "corpus" / parser / ("seed_" + name.replace(".", "_"))).write_bytes(bundle)
        self.count[parser] = self.count.get(parser, 0) + 1
        self.bytes += len(bundle)


def run_sae_train(sae, workdir):
    """Tiny `sae train` runs, one per architecture: run configs, checkpoints, SAELens dirs.
    On activation files rather than the synthetic generator, whose random engine state
    would make each checkpoint 7 KB larger."""
    shard = workdir / "activations.npy"
    np.save(shard, np.random.default_rng(3).normal(size=(64, 4)).astype(np.float32))
    runs = {}
    for arch in ("topk", "batchtopk", "jumprelu", "standard"):
        activation = {"architecture": arch}
        if arch in ("topk", "batchtopk"):
            activation["k"] = 2
        config = {
            "model": {"autoencoder": {"d_in": 4, "d_sae": 8, "tied": arch == "topk"}, "activation": activation},
            "trainer": {"total_steps": 3},
            "mfr": {"num_saes": 2} if arch == "jumprelu" else None,
            "data": {"source": "files", "train_files": [shard.name], "batch_size": 16, "shuffle_buffer_rows": 32,
                     "epochs": 2},
            "output": {"directory": str(workdir / ("out_" + arch)), "checkpoint_every": 2, "log_every": 0,
                       "progress": False},
            "seed": 7, "model_name": "fuzz-seed", "hook_name": "blocks.0.hook_mlp_out",
        }
        path = workdir / (arch + ".json")
        path.write_text(json.dumps(config, indent=2) + "\n")
        subprocess.run([sae, "train", "--config", str(path)], check=True, stdout=subprocess.DEVNULL)
        runs[arch] = workdir / ("out_" + arch)
    return runs


# ------------------------------------------------------------------------- per parser

def npy_seeds(w):
    for path in sorted((FIXTURES / "npy").glob("*.npy")):
        w.add("npy", path.name, {"input.npy": path.read_bytes()})


def safetensors_seeds(w, runs):
    w.add("safetensors", "saelens_topk.safetensors",
          {"input.safetensors": (runs["topk"] / "sae" / "sae_weights.safetensors").read_bytes()})
    rng = np.random.default_rng(5)
    tensors = {
        "f16": (rng.normal(size=(2, 3)), "F16"), "bf16": (rng.normal(size=(3,)), "BF16"),
        "f64": (rng.normal(size=(2, 2, 2)), "F64"), "i64": (np.arange(4), "I64"), "i32": (np.arange(-2, 1), "I32"),
        "scalar": (np.float32(2.5), "F32"), "empty": (np.zeros((0, 3)), "F32"),
    }
    w.add("safetensors", "dtypes.safetensors",
          {"input.safetensors": safetensors_bytes(tensors, {"format": "pt", "note": "libsae fuzz seed"})})


def saelens_seeds(w, runs):
    for arch in ("topk", "batchtopk", "standard"):
        sae = runs[arch] / "sae"
        w.add("saelens", "libsae_" + arch, {"cfg.json": (sae / "cfg.json").read_bytes(),
                                             "sae_weights.safetensors": (sae / "sae_weights.safetensors").read_bytes()})
    sae = runs["jumprelu"] / "sae_1"
    w.add("saelens", "libsae_jumprelu", {"cfg.json": (sae / "cfg.json").read_bytes(),
                                          "sae_weights.safetensors": (sae / "sae_weights.safetensors").read_bytes()})
    # SAELens before version 6: architecture "standard" with activation_fn_str "topk".
    weights, _ = read_safetensors(runs["topk"] / "sae" / "sae_weights.safetensors")
    old = {"architecture": "standard", "d_in": 4, "d_sae": 8, "dtype": "torch.float32", "activation_fn_str": "topk",
           "activation_fn_kwargs": {"k": 3}, "apply_b_dec_to_input": False, "normalize_activations": "none",
           "finetuning_scaling_factor": False, "model_name": "gpt2", "hook_name": "blocks.3.hook_resid_pre",
           "hook_layer": 3, "context_size": 128, "prepend_bos": True}
    w.add("saelens", "saelens5_topk", {
        "cfg.json": (json.dumps(old, indent=2) + "\n").encode(),
        "sae_weights.safetensors": safetensors_bytes({n: (a, "F32") for n, a in weights.items()})})
    # sparsify: encoder.weight [d_sae, d_in].
    sparsify = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": 8, "k": 2,
                "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": 4}
    w.add("saelens", "sparsify", {
        "cfg.json": json.dumps(sparsify).encode(),
        "sae.safetensors": safetensors_bytes({
            "encoder.weight": (weights["W_enc"].T, "F32"), "encoder.bias": (weights["b_enc"], "F32"),
            "W_dec": (weights["W_dec"], "F32"), "b_dec": (weights["b_dec"], "F32")})})


def run_config_seeds(w, runs):
    # The example that lists every key is left out: the saved configs list them too, and
    # its 5.6 KB of comments would make each mutant three times as slow to parse.
    path = ROOT / "examples" / "configs" / "mfr_npy.json"
    w.add("run_config", "example_" + path.name, {"run.json": path.read_bytes()})
    for arch in ("topk", "jumprelu"):
        w.add("run_config", "saved_" + arch + ".json", {"run.json": (runs[arch] / "config.json").read_bytes()})


def checkpoint_seeds(w, runs):
    for arch in ("topk", "jumprelu"):
        w.add("checkpoint", arch + ".safetensors",
              {"checkpoint.safetensors": (runs[arch] / "checkpoint.safetensors").read_bytes()})


def trim_edf(raw, keep_signals, keep_samples, keep_records):
    """The first signals, samples and records of an EDF/BDF file; an EDF+ annotation signal
    is kept whole (its TALs)."""
    ns = int(raw[252:256])
    width = 3 if raw[0] == 0xFF else 2
    fields = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32]
    offsets, at = [], 256
    for f in fields:
        offsets.append(at)
        at += f * ns
    label = lambda i: raw[256 + 16 * i:256 + 16 * i + 16].decode("latin-1").strip()  # noqa: E731
    spr = [int(raw[offsets[8] + 8 * i:offsets[8] + 8 * i + 8]) for i in range(ns)]
    chosen = list(range(min(keep_signals, ns)))
    chosen += [i for i in range(ns) if label(i).endswith("Annotations") and i not in chosen]
    new_spr = [spr[i] if label(i).endswith("Annotations") else min(spr[i], keep_samples) for i in chosen]
    header = bytearray(raw[:256])
    header[184:192] = str(256 * (len(chosen) + 1)).ljust(8).encode()
    header[236:244] = str(keep_records).ljust(8).encode()
    header[252:256] = str(len(chosen)).ljust(4).encode()
    for k, f in enumerate(fields):
        for i, s in zip(chosen, new_spr):
            header += str(s).ljust(8).encode() if k == 8 else raw[offsets[k] + f * i:offsets[k] + f * (i + 1)]
    record = sum(spr) * width
    starts = np.cumsum([0] + spr[:-1]) * width
    data = bytearray()
    for r in range(keep_records):
        base = int(raw[184:192]) + r * record
        for i, s in zip(chosen, new_spr):
            data += raw[base + starts[i]:base + starts[i] + s * width]
    return bytes(header + data)


def edf_seeds(w):
    eeg = DATA / "eeg"
    w.add("edf", "eeglab_test.edf", {"input.edf": trim_edf((eeg / "eeglab_test.edf").read_bytes(), 3, 8, 2)})
    w.add("edf", "mne_test_edfplus.edf", {"input.edf": trim_edf((eeg / "mne_test.edf").read_bytes(), 2, 4, 3)})
    w.add("edf", "mne_test.bdf", {"input.edf": trim_edf((eeg / "mne_test.bdf").read_bytes(), 3, 8, 1)})


def eeglab_seeds(w):
    eeg = DATA / "eeg"
    channels, points = 4, 8
    full = scipy.io.loadmat(eeg / "eeglab_data.set", struct_as_record=True, squeeze_me=False)["EEG"][0, 0]
    fdt = np.fromfile(eeg / "eeglab_data.fdt", dtype="<f4", count=32 * points).reshape(points, 32)[:, :channels]
    locs = "".join((eeg / "eeglab_chan32.locs").read_text().splitlines(keepends=True)[:channels]).encode()
    chanlocs = full["chanlocs"][:, :channels]
    fields = {}
    for name in full.dtype.names:
        value = full[name]
        if name in ("times", "event", "urevent", "chaninfo", "comments", "history", "reject", "stats"):
            continue  # long or bulky: the reader does not use them
        fields[name] = value
    fields.update({"nbchan": np.array([[channels]], dtype=np.uint8), "pnts": np.array([[points]], dtype=np.uint16),
                   "xmax": np.array([[(points - 1) / 128.0]]), "chanlocs": chanlocs, "data": "data.fdt",
                   "datfile": "data.fdt", "filename": "data.set", "times": np.arange(points) / 128.0 * 1000,
                   "event": full["event"][:, :2]})

    def mat_bytes(variables):
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "a.set"
            scipy.io.savemat(path, variables, format="5", do_compression=False, oned_as="row")
            return path.read_bytes()

    w.add("eeglab", "struct_fdt", {"data.set": mat_bytes({"EEG": fields}), "data.fdt": fdt.astype("<f4").tobytes(),
                                   "chan.locs": locs})
    inline = dict(fields)
    inline["data"] = fdt.T.astype(np.float32)  # [channels, points], stored column-major
    w.add("eeglab", "struct_inline", {"data.set": mat_bytes({"EEG": inline})})
    flat = {k: fields[k] for k in ("nbchan", "pnts", "trials", "srate", "chanlocs", "data")}
    w.add("eeglab", "flat_fdt", {"data.set": mat_bytes(flat), "data.fdt": fdt.astype("<f4").tobytes()})


def bpe_seeds(w):
    tok = DATA / "gpt2-tokenizer"
    vocab = json.loads((tok / "vocab.json").read_text())
    merges = (tok / "merges.txt").read_text().splitlines()
    by_id = {i: t for t, i in vocab.items()}
    tokens = [by_id[i] for i in range(256)]  # GPT-2's single-byte tokens are ids 0..255
    known, kept = set(tokens), []
    for line in merges[1:400]:
        a, b = line.split(" ")
        if a in known and b in known and a + b not in known and len(kept) < 48:
            kept.append(line)
            known.add(a + b)
            tokens.append(a + b)
    tokens.append("<|endoftext|>")
    small = json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False).encode()
    text = "The rain in Spain stays mainly in the plain. Isn't it? 3.14 \u00e9t\u00e9 \U0001F600\n\t  end".encode()
    w.add("bpe", "gpt2_head", {"vocab.json": small, "merges.txt": ("#version: 0.2\n" + "\n".join(kept) + "\n").encode(),
                               "text.txt": text + b" <|endoftext|> \xff\xc3("})


def gpt2_hf_seeds(w):
    fortunes = DATA / "fortunes-gpt2"
    weights, metadata = read_safetensors(fortunes / "model.safetensors")
    config = json.loads((fortunes / "config.json").read_text())
    # The training record libsae adds (1.8 KB of corpus and timing details) cut to two keys.
    config["libsae"] = {k: config["libsae"][k] for k in ("script", "seed")}
    vocab, embd, ctx, inner = 8, 4, 4, 16  # inner: 4 * n_embd, as n_inner = null says

    def block(layer, name):
        a = weights[f"h.{layer}.{name}"]
        C = weights["wte.weight"].shape[1]
        if name == "attn.c_attn.weight":  # [C, 3C]: q, k, v column blocks
            return np.concatenate([a[:embd, j * C:j * C + embd] for j in range(3)], axis=1)
        if name == "attn.c_attn.bias":
            return np.concatenate([a[j * C:j * C + embd] for j in range(3)])
        if name == "mlp.c_fc.weight":
            return a[:embd, :inner]
        if name == "mlp.c_fc.bias":
            return a[:inner]
        if name == "mlp.c_proj.weight":
            return a[:inner, :embd]
        return a[:embd, :embd] if a.ndim == 2 else a[:embd]

    names = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
             "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
             "mlp.c_proj.weight", "mlp.c_proj.bias"]
    small = {"wte.weight": weights["wte.weight"][:vocab, :embd], "wpe.weight": weights["wpe.weight"][:ctx, :embd]}
    for n in names:
        small["h.0." + n] = block(0, n)
    small["ln_f.weight"] = weights["ln_f.weight"][:embd]
    small["ln_f.bias"] = weights["ln_f.bias"][:embd]
    config.update({"vocab_size": vocab, "n_positions": ctx, "n_ctx": ctx, "n_embd": embd, "n_layer": 1, "n_head": 2,
                   "n_inner": None, "bos_token_id": vocab - 1, "eos_token_id": vocab - 1})
    vocab_map = json.loads((fortunes / "vocab_map.json").read_text())
    vocab_map["model_to_gpt2"] = vocab_map["model_to_gpt2"][:vocab - 2] + [50256, -1]
    vocab_map["unknown_model_id"] = vocab - 1
    w.add("gpt2_hf", "fortunes_sliced", {
        "config.json": (json.dumps(config, indent=2) + "\n").encode(),
        "model.safetensors": safetensors_bytes({"transformer." + n: (a, "F32") for n, a in small.items()}, metadata),
        "vocab_map.json": json.dumps(vocab_map, separators=(",", ":")).encode()})
    # Untied head, no prefix, F16, an explicit n_inner, no vocabulary map.
    config.update({"tie_word_embeddings": False, "n_inner": inner})
    untied = dict(small)
    untied["lm_head.weight"] = weights["wte.weight"][vocab:2 * vocab, :embd]
    w.add("gpt2_hf", "fortunes_untied_f16", {
        "config.json": json.dumps(config).encode(),
        "model.safetensors": safetensors_bytes({n: (a, "F16") for n, a in untied.items()})})


def slice_mingpt(tensors, C, embd, vocab, ctx, layers):
    """Linear [out, in] weights of minGPT cut to n_embd = embd (q, k, v blocks kept apart)."""
    out = {}
    for name, a in tensors.items():
        if name == "config":
            continue
        a = np.asarray(a, dtype=np.float32)
        if name.startswith("transformer.h.") and int(name.split(".")[2]) >= layers:
            continue
        if name.endswith(".attn.bias"):  # the causal mask buffer [1, 1, T, T]
            out[name] = a[:, :, :ctx, :ctx]
        elif name.endswith("c_attn.weight"):
            out[name] = np.concatenate([a[j * C:j * C + embd, :embd] for j in range(3)])
        elif name.endswith("c_attn.bias"):
            out[name] = np.concatenate([a[j * C:j * C + embd] for j in range(3)])
        elif name.endswith("mlp.c_fc.weight"):
            out[name] = a[:4 * embd, :embd]
        elif name.endswith("mlp.c_fc.bias"):
            out[name] = a[:4 * embd]
        elif name.endswith("mlp.c_proj.weight"):
            out[name] = a[:embd, :4 * embd]
        elif name.endswith("wte.weight") or name == "lm_head.weight":
            out[name] = a[:vocab, :embd]
        elif name.endswith("wpe.weight"):
            out[name] = a[:ctx, :embd]
        else:
            out[name] = a[:embd, :embd] if a.ndim == 2 else a[:embd]
    return out


def gpt2_mingpt_seeds(w):
    def decode(value):
        if isinstance(value, dict):
            return np.frombuffer(base64.b64decode(value["data"]), dtype="<f4").reshape(value["shape"])
        return np.asarray(value, dtype=np.float32)

    sort = json.loads((DATA / "nano-gpt-sort" / "gpt-nano-sort-model.json").read_text())
    config = sort["config"]
    small = slice_mingpt({k: decode(v) for k, v in sort.items() if k != "config"}, config["n_embd"], 3, 3, 3, 1)
    config = dict(config, n_layer=1, n_embd=3, block_size=3)
    encoded = {"config": config}
    for name, a in small.items():
        encoded[name] = {"shape": list(a.shape), "dtype": "torch.float32",
                         "data": base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()}
    w.add("gpt2_mingpt", "nano_sort_base64.json", {"model.json": json.dumps(encoded).encode()})

    shakespeare = json.loads((DATA / "gpt-nano-shakespeare" / "model_weights.json").read_text())
    small = slice_mingpt({k: decode(v) for k, v in shakespeare.items()}, 48, 3, 5, 3, 1)
    nested = {name: np.round(a.astype(np.float64), 4).tolist() for name, a in small.items()}
    w.add("gpt2_mingpt", "shakespeare_lists.json", {"model.json": json.dumps(nested).encode()})


def lexicon_seeds(w):
    lines = (DATA / "lexicon" / "vader_lexicon.txt").read_bytes().split(b"\n")
    chosen = lines[:16] + [l for l in lines if l.startswith(b"ok\t") or l.startswith(b"good\t")]
    w.add("lexicon", "vader_head.txt", {"lexicon.txt": b"\n".join(chosen) + b"\n"})


def activation_manifest_seeds(w):
    rng = np.random.default_rng(11)
    shard0 = rng.normal(size=(5, 3)).astype(np.float32)
    shard1 = rng.normal(size=(4, 3)).astype(np.float32)

    def manifest(shards, tensor, tokens):
        return (json.dumps({
            "format": "libsae-activations", "version": 1, "model": "fortunes-gpt2", "hook": "blocks.0.hook_mlp_out",
            "d": 3, "dtype": "F32", "tokens": tokens, "windows": 3, "context_length": 4, "prepend_bos": True,
            "exclude_bos": True, "document_separator": "\n%\n", "encoder": "gpt2 byte-level BPE",
            "text_files": ["fortunes.txt"], "tensor": tensor, "shards": shards}, indent=2) + "\n").encode()

    w.add("activation_manifest", "npy_shards", {
        "manifest.json": manifest([{"file": "shard_00000.npy", "rows": 5}], "", 5),
        "shard_00000.npy": npy_bytes(shard0)})
    w.add("activation_manifest", "mixed_shards", {
        "manifest.json": manifest([{"file": "shard_00000.npy", "rows": 5},
                                   {"file": "shard_00001.safetensors", "rows": 4}], "activations", 9),
        "shard_00000.npy": npy_bytes(shard0),
        "shard_00001.safetensors": safetensors_bytes({"activations": (shard1, "F32")},
                                                     {"hook": "blocks.0.hook_mlp_out", "model": "fortunes-gpt2"})})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sae", required=True, help="the sae command-line tool (build/tools/cli/sae)")
    args = parser.parse_args()
    w = SeedWriter()
    # A fixed directory: the shard path that checkpoints and saved configs record stays the same.
    workdir = pathlib.Path(tempfile.gettempdir()) / "libsae-fuzz-seeds"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    try:
        runs = run_sae_train(pathlib.Path(args.sae).resolve(), workdir)
        npy_seeds(w)
        safetensors_seeds(w, runs)
        saelens_seeds(w, runs)
        run_config_seeds(w, runs)
        checkpoint_seeds(w, runs)
        edf_seeds(w)
        eeglab_seeds(w)
        bpe_seeds(w)
        gpt2_hf_seeds(w)
        gpt2_mingpt_seeds(w)
        lexicon_seeds(w)
        activation_manifest_seeds(w)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("seeds:", ", ".join(f"{p} {n}" for p, n in w.count.items()), f"({w.bytes} bytes as fuzzer inputs)")


if __name__ == "__main__":
    main()
