#!/usr/bin/env python3
"""Reference .npy files for tests/test_npy.cpp, written by NumPy itself.

Two modes (Debian's /usr/bin/python3 with python3-numpy):

    /usr/bin/python3 tools/reference/make_npy_fixtures.py [output_dir]
        Writes one small .npy file per case below (every supported dtype, 0-d to 3-d,
        Fortran order, format versions 1.0, 2.0 and 3.0) and manifest.json, which lists
        for each file its descr, shape, fortran_order, version, the name of the formula
        that generated it and the values in C order as NumPy reads them back
        (tests/fixtures/npy/ by default).

    /usr/bin/python3 tools/reference/make_npy_fixtures.py check FILE DESCR SHAPE SOURCE [...]
        Loads each FILE (written by libsae) with np.load and asserts that its dtype is
        DESCR, its shape is SHAPE ("2,3", "5," or "" for 0-d), it is C-ordered, and its
        values equal check_values(n) computed in the SOURCE precision ("f4" or "f8")
        and converted by NumPy to DESCR. Exit code 0 when every file matches.
"""
import json
import pathlib
import sys

import numpy as np


def c_index(shape):
    """0, 1, 2, ... in C order, as float64, reshaped."""
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)


# name -> (formula of the C-order flat index i, as written in test_npy.cpp)
FORMULAS = {
    "half_i_minus_3": lambda i: 0.5 * i - 3,
    "reciprocal_i_plus_1": lambda i: 1.0 / (i + 1),
    "i_minus_2_over_3": lambda i: (i - 2) / 3,
    "seven_i_minus_20": lambda i: 7 * i - 20,
    "i_minus_1_times_2p33_plus_i": lambda i: (i - 1) * 2.0**33 + i,
    "i_minus_10": lambda i: i - 10,
    "two_and_a_half": lambda i: 2.5 + 0 * i,
}

# (file stem, descr, shape, fortran_order, version, formula)
CASES = [
    ("f4_2d", "<f4", (3, 4), False, (1, 0), "half_i_minus_3"),
    ("f8_2d", "<f8", (2, 3), False, (1, 0), "reciprocal_i_plus_1"),
    ("f2_2d", "<f2", (2, 3), False, (1, 0), "i_minus_2_over_3"),
    ("i4_1d", "<i4", (5,), False, (1, 0), "seven_i_minus_20"),
    ("i8_1d", "<i8", (4,), False, (1, 0), "i_minus_1_times_2p33_plus_i"),
    ("f4_3d", "<f4", (2, 3, 4), False, (1, 0), "i_minus_10"),
    ("f8_0d", "<f8", (), False, (1, 0), "two_and_a_half"),
    ("f4_empty", "<f4", (0, 3), False, (1, 0), "half_i_minus_3"),
    ("f4_fortran_2d", "<f4", (3, 4), True, (1, 0), "half_i_minus_3"),
    ("f8_fortran_3d", "<f8", (2, 3, 4), True, (1, 0), "i_minus_10"),
    ("f4_v2", "<f4", (2, 3), False, (2, 0), "half_i_minus_3"),
    ("f4_v3", "<f4", (2, 3), False, (3, 0), "half_i_minus_3"),
]


def make_array(descr, shape, fortran_order, formula):
    values = FORMULAS[formula](c_index(shape)).astype(np.dtype(descr))
    if fortran_order:
        values = np.asfortranarray(values)
        assert values.flags.f_contiguous and not values.flags.c_contiguous
    return values


def write_fixtures(out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for stem, descr, shape, fortran_order, version, formula in CASES:
        array = make_array(descr, shape, fortran_order, formula)
        path = out_dir / (stem + ".npy")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, version=version, allow_pickle=False)
        # Read back through NumPy: the manifest holds what NumPy sees in the file.
        loaded = np.load(path, allow_pickle=False)
        assert loaded.dtype.str == descr and loaded.shape == shape
        assert bool(np.isfortran(loaded)) == fortran_order
        manifest.append({
            "file": path.name,
            "descr": descr,
            "shape": list(shape),
            "fortran_order": fortran_order,
            "version": list(version),
            "formula": formula,
            "values": [float(v) if descr[1] == "f" else int(v) for v in loaded.ravel(order="C")],
        })
        print(f"{path.name}: {descr} {shape} fortran={fortran_order} v{version[0]}.{version[1]} "
              f"{path.stat().st_size} bytes")
    header = json.dumps({"generator": "tools/reference/make_npy_fixtures.py", "numpy": np.__version__})
    entries = ",\n  ".join(json.dumps(entry) for entry in manifest)  # one line per file
    with open(out_dir / "manifest.json", "w") as f:
        f.write(header[:-1] + ', "files": [\n  ' + entries + "\n]}\n")


def check_values(n):
    """What test_npy.cpp writes: (i - 7) / 3 for the float types, 7 i - 20 for integers."""
    i = np.arange(n, dtype=np.float64)
    return (i - 7) / 3, 7 * i - 20


def check_file(path, descr, shape_text, source):
    shape = tuple(int(d) for d in shape_text.split(",") if d.strip())
    array = np.load(path, allow_pickle=False)
    assert array.dtype.str == descr, f"{path}: dtype {array.dtype.str} != {descr}"
    assert array.shape == shape, f"{path}: shape {array.shape} != {shape}"
    assert array.flags.c_contiguous, f"{path}: not C-ordered"
    floats, integers = check_values(int(np.prod(shape)))
    source_values = integers if descr[1] == "i" else floats
    expected = source_values.astype(np.dtype(source)).astype(np.dtype(descr)).reshape(shape)
    mismatch = array != expected
    assert not mismatch.any(), f"{path}: {array[mismatch][:5]} != expected {expected[mismatch][:5]}"


def main(argv):
    if len(argv) > 1 and argv[1] == "check":
        args = argv[2:]
        if not args or len(args) % 4:
            sys.exit("usage: make_npy_fixtures.py check FILE DESCR SHAPE SOURCE [...]")
        for k in range(0, len(args), 4):
            check_file(*args[k:k + 4])
        return
    default_dir = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "npy"
    write_fixtures(pathlib.Path(argv[1]) if len(argv) > 1 else default_dir)


if __name__ == "__main__":
    main(sys.argv)
