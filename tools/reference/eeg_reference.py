#!/usr/bin/env python3
"""Reference values for tests/test_eeg_files.cpp and tests/test_eeg_signal.cpp.

    /usr/bin/python3 tools/reference/eeg_reference.py [data_dir] [output_dir]

data_dir   the EEG recordings (default: examples/data/eeg in the repository)
output_dir tests/fixtures/eeg by default

Writes two small JSON files:

edf_reference.json   the three real EDF/BDF files and the EEGLAB recording read
    independently of libsae: EDF headers parsed field by field with plain string
    slicing, samples decoded with NumPy (int16 little-endian, or three bytes
    sign-extended for BDF), scaled with pyedflib's formula
    phys = (dig + offset) * gain, gain = (pmax - pmin) / (dmax - dmin),
    offset = pmax / gain - dmax; EDF+ annotations split from the TAL bytes with
    bytes.split; the EEGLAB .set read with scipy.io.loadmat and the .fdt with
    numpy.fromfile. For every ordinary signal: first and last 6 physical values, min,
    max, mean and the number of samples outside the header's digital range.

signal_reference.json  SciPy 1.10 (Debian python3-scipy) results:
    scipy.signal.butter(..., output='sos') for several designs, sosfilt_zi,
    sosfiltfilt (default padding) of a fixed test signal, resample_poly for several
    up/down ratios and scipy.signal.welch PSDs. The inputs are stored too, so the C++
    test feeds exactly the same numbers.
"""
import json
import pathlib
import sys

import numpy as np
import scipy.io
import scipy.signal as signal

REPO = pathlib.Path(__file__).resolve().parents[2]


def edf_header(raw):
    version = raw[0:8]
    ns = int(raw[252:256].decode("ascii"))
    text = raw[256:256 * (ns + 1)].decode("latin-1")
    widths = [("label", 16), ("transducer", 80), ("dimension", 8), ("pmin", 8), ("pmax", 8),
              ("dmin", 8), ("dmax", 8), ("prefilter", 80), ("spr", 8), ("reserved", 32)]
    fields, offset = {}, 0
    for name, width in widths:
        fields[name] = [text[offset + i * width: offset + (i + 1) * width].strip() for i in range(ns)]
        offset += width * ns
    return {
        "variant": "bdf" if version[0] == 0xFF else "edf",
        "reserved": raw[192:236].decode("latin-1").strip(),
        "num_records": int(raw[236:244].decode("ascii")),
        "record_duration": float(raw[244:252].decode("ascii")),
        "ns": ns,
        "labels": fields["label"],
        "physical_dimension": fields["dimension"],
        "physical_minimum": [float(v) for v in fields["pmin"]],
        "physical_maximum": [float(v) for v in fields["pmax"]],
        "digital_minimum": [int(v) for v in fields["dmin"]],
        "digital_maximum": [int(v) for v in fields["dmax"]],
        "samples_per_record": [int(v) for v in fields["spr"]],
    }


def decode(raw, width):
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.int64)
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
    value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(value >= 2 ** 23, value - 2 ** 24, value)


def edf_entry(path):
    raw = path.read_bytes()
    h = edf_header(raw)
    width = 3 if h["variant"] == "bdf" else 2
    plus = h["reserved"].startswith(("EDF+", "BDF+"))
    record = sum(h["samples_per_record"]) * width
    data = np.frombuffer(raw, dtype=np.uint8, offset=256 * (h["ns"] + 1),
                         count=record * h["num_records"]).reshape(h["num_records"], record)
    signals, annotations, start = [], [], 0
    for i in range(h["ns"]):
        size = h["samples_per_record"][i] * width
        chunk = data[:, start:start + size]
        start += size
        if plus and h["labels"][i] in ("EDF Annotations", "BDF Annotations"):
            for r in range(h["num_records"]):
                for tal in bytes(chunk[r]).split(b"\x00"):
                    if not tal:
                        continue
                    parts = tal.split(b"\x14")
                    timing = parts[0].split(b"\x15")
                    for text in parts[1:]:
                        if text:
                            annotations.append({
                                "onset": float(timing[0]),
                                "duration": float(timing[1]) if len(timing) > 1 else None,
                                "text": text.decode("utf-8")})
            continue
        digital = decode(chunk.tobytes(), width)
        pmin, pmax = h["physical_minimum"][i], h["physical_maximum"][i]
        dmin, dmax = h["digital_minimum"][i], h["digital_maximum"][i]
        gain = (pmax - pmin) / (dmax - dmin)
        offset = pmax / gain - dmax
        physical = (digital + offset) * gain
        signals.append({
            "index": i, "label": h["labels"][i], "sample_rate": h["samples_per_record"][i] / h["record_duration"],
            "count": int(physical.size), "first": physical[:6].tolist(), "last": physical[-6:].tolist(),
            "min": float(physical.min()), "max": float(physical.max()), "mean": float(physical.mean()),
            "digital_out_of_range": int(((digital < dmin) | (digital > dmax)).sum())})
    h.update({"plus": plus, "signals": signals, "annotations": annotations})
    return h


def eeglab_entry(directory):
    mat = scipy.io.loadmat(directory / "eeglab_data.set", squeeze_me=True, struct_as_record=False)
    eeg = mat["EEG"]
    channels = int(eeg.nbchan)
    data = np.fromfile(directory / eeg.data, dtype="<f4").reshape(-1, channels).T.astype(np.float64)
    locs = [line.split()[-1] for line in (directory / "eeglab_chan32.locs").read_text().splitlines() if line.strip()]
    return {
        "nbchan": channels, "pnts": int(eeg.pnts), "srate": float(eeg.srate), "trials": int(eeg.trials),
        "data_file": str(eeg.data), "labels": [str(c.labels) for c in eeg.chanlocs], "locs_labels": locs,
        "samples": int(data.shape[1]),
        "channels": [{"index": c, "first": data[c, :8].tolist(), "last": data[c, -8:].tolist(),
                      "mean": float(data[c].mean())} for c in (0, 1, 5, 31)],
    }


def test_signal(n, fs):
    """A fixed test input: two tones, a slow drift and an offset (no randomness)."""
    t = np.arange(n) / fs
    return 3.0 + 0.8 * t + np.sin(2 * np.pi * 2.5 * t) + 0.5 * np.sin(2 * np.pi * 31.0 * t + 0.3) \
        + 0.25 * np.cos(2 * np.pi * 55.0 * t)


def signal_reference():
    designs = []
    for order, band, cutoffs, fs in [(5, "bandpass", [0.5, 45.0], 128.0), (4, "lowpass", [30.0], 256.0),
                                     (3, "highpass", [1.0], 128.0), (2, "bandpass", [1.0, 40.0], 256.0),
                                     (1, "bandpass", [4.0, 8.0], 100.0), (6, "highpass", [0.5], 512.0)]:
        wn = cutoffs[0] if len(cutoffs) == 1 else cutoffs
        sos = signal.butter(order, wn, btype=band, fs=fs, output="sos")
        designs.append({"order": order, "band": band, "cutoffs": cutoffs, "fs": fs, "sos": sos.tolist(),
                        "sosfilt_zi": signal.sosfilt_zi(sos).tolist()})
    x = test_signal(300, 128.0)
    sos = signal.butter(5, [0.5, 45.0], btype="bandpass", fs=128.0, output="sos")
    filtfilt = {"input": x.tolist(), "output": signal.sosfiltfilt(sos, x).tolist(),
                "output_padlen_10": signal.sosfiltfilt(sos, x, padlen=10).tolist()}
    short = test_signal(34, 128.0)  # one sample longer than the default padlen of 33
    filtfilt["short_input"] = short.tolist()
    filtfilt["short_output"] = signal.sosfiltfilt(sos, short).tolist()

    r = test_signal(203, 256.0)
    resample = {"input": r.tolist(), "cases": []}
    for up, down in [(1, 2), (1, 4), (3, 2), (2, 3), (1, 16), (4, 4)]:
        resample["cases"].append({"up": up, "down": down, "output": signal.resample_poly(r, up, down).tolist()})

    w = test_signal(128, 128.0)
    welch = {"input": w.tolist(), "fs": 128.0, "cases": []}
    for nperseg in [None, 64, 50]:
        f, p = signal.welch(w, fs=128.0, nperseg=nperseg)
        welch["cases"].append({"nperseg": 0 if nperseg is None else nperseg, "frequencies": f.tolist(), "psd": p.tolist()})
    return {"scipy_version": __import__("scipy").__version__, "designs": designs, "sosfiltfilt": filtfilt,
            "resample_poly": resample, "welch": welch}


def main():
    data_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "examples" / "data" / "eeg"
    out_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "tests" / "fixtures" / "eeg"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: edf_entry(data_dir / name) for name in ("eeglab_test.edf", "mne_test.edf", "mne_test.bdf")}
    reference = {"numpy_version": np.__version__, "edf": files, "eeglab": eeglab_entry(data_dir)}
    (out_dir / "edf_reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    (out_dir / "signal_reference.json").write_text(json.dumps(signal_reference(), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
