#!/usr/bin/env python3
"""Reference GPT-2 byte-level BPE tokenizer (the algorithm of openai/gpt-2 src/encoder.py).

Importable: ``Encoder.from_dir(path)`` reads ``vocab.json`` + ``merges.txt`` (Hugging Face
names) or ``encoder.json`` + ``vocab.bpe`` (OpenAI names); ``enc.encode(text) -> list[int]``,
``enc.decode(ids) -> str`` (errors='replace'), ``enc.decode_bytes(ids) -> bytes``,
``enc.eot_id`` (the id of ``<|endoftext|>``, 50256 for GPT-2).

``<|endoftext|>`` in the text is encoded as ordinary text (like tiktoken without
``allowed_special``); ``encode(text, allow_special=True)`` maps it to ``eot_id``.

Bytes that are not valid UTF-8 (``encode_bytes``): the bytes are decoded with
``surrogateescape``, so each invalid byte becomes a lone surrogate U+DC80..U+DCFF. Such a
code point is neither a letter, a number nor whitespace, so the pre-tokeniser groups it
with punctuation (``[^\\s\\p{L}\\p{N}]``); encoding the pre-token back with
``surrogateescape`` restores the original byte. This is the rule that
include/sae/models/bpe_tokenizer.hpp implements.

Needs the ``regex`` module (Debian python3-regex), run with /usr/bin/python3.

Command line:
    /usr/bin/python3 tools/reference/gpt2_bpe.py DIR              # encode stdin, print ids
    /usr/bin/python3 tools/reference/gpt2_bpe.py DIR --fixtures OUT.json
        # regenerate tests/fixtures/bpe/gpt2_cases.json (DIR = examples/data/gpt2-tokenizer)
"""
import json
import os
import random
import sys

import regex

PRETOKEN_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """The GPT-2 reversible byte -> printable character map.

    Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space,
    0x7F-0xA0, 0xAD) map to U+0100, U+0101, ... in increasing byte order.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1))
                 + list(range(0xAE, 0xFF + 1)))
    mapping = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


def pretokenize(text):
    """Split a str into GPT-2 pre-tokens (list of str)."""
    return PRETOKEN_PATTERN.findall(text)


class Encoder:
    def __init__(self, vocab, merges):
        """vocab: dict token-string -> id; merges: list of (first, second) in rank order."""
        self.encoder = dict(vocab)
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.eot_id = self.encoder[END_OF_TEXT]
        self.cache = {}

    @classmethod
    def from_dir(cls, path):
        path = os.fspath(path)
        for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            vocab_path = os.path.join(path, vocab_name)
            merges_path = os.path.join(path, merges_name)
            if os.path.exists(vocab_path) and os.path.exists(merges_path):
                return cls.from_files(vocab_path, merges_path)
        raise FileNotFoundError(f"{path}: neither vocab.json+merges.txt nor encoder.json+vocab.bpe")

    @classmethod
    def from_files(cls, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                line = line.rstrip("\n")
                if line_no == 1 and line.startswith("#version"):
                    continue
                if not line.strip():
                    continue
                first, second = line.split()
                merges.append((first, second))
        return cls(vocab, merges)

    def bpe(self, token):
        """Merge the characters of one byte-mapped pre-token; returns a list of token strings."""
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[token] = word
        return word

    def _encode_piece(self, text):
        ids = []
        for piece in pretokenize(text):
            raw = piece.encode("utf-8", "surrogateescape")
            mapped = "".join(self.byte_encoder[b] for b in raw)
            ids.extend(self.encoder[t] for t in self.bpe(mapped))
        return ids

    def encode(self, text, allow_special=False):
        if not allow_special:
            return self._encode_piece(text)
        ids = []
        parts = text.split(END_OF_TEXT)
        for index, part in enumerate(parts):
            if index > 0:
                ids.append(self.eot_id)
            ids.extend(self._encode_piece(part))
        return ids

    def encode_bytes(self, data, allow_special=False):
        """Encode arbitrary bytes (invalid UTF-8 allowed, see the module docstring)."""
        return self.encode(data.decode("utf-8", "surrogateescape"), allow_special)

    def decode_bytes(self, ids):
        return bytes(self.byte_decoder[c] for i in ids for c in self.decoder[i])

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")


def fixture_texts():
    """A few hundred varied strings for tests/fixtures/bpe/gpt2_cases.json."""
    texts = [
        "", "a", " ", "  ", "\n", "\n\n", "\t", "hello world", "Hello world", " Hello world",
        "Hello, world!", "I'm here, you're there, we've been, he'll go, she'd say, it's, don't",
        "I'M LOUD, YOU'RE LOUD, DON'T", "'s 't 're 've 'm 'll 'd", "''s '''t ' s", "rock'n'roll",
        "’s curly apostrophe’s", "x's", "\"'s\"", "12345 678901 3.14159 -42 1e10 0x1F",
        "1,000,000 and 2 000 000", "½ ¾ ² ³ ① Ⅻ ٣ ७", "a  b   c    d", "a\tb\t\tc",
        "line1\nline2\n\nline3\n\n\n", "  leading", "trailing  ", "mixed \t\n spaces \n\t x",
        "\r\n windows \r\n", "end with newline\n", "\n\n\nstart", " \n \n ", "!!!???...",
        "hello!!! world??? ...", "--- *** ___ === +++", "(parens) [brackets] {braces} <angles>",
        "email@example.com https://example.com/path?q=1&r=2#frag", "C++ is not C#; $100 & 50%",
        "日本語のテキスト", "中文 文本 测试", "한국어 텍스트", "Ελληνικά κείμενα", "Русский текст",
        "עברית", "العربية ١٢٣", "हिन्दी पाठ", "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷", "café naïve résumé façade",
        "Zürich Straße Ærøskøbing", "e\u0301 combining acute", "ﬁ ligature", "\u00a0nbsp\u00a0here",
        "\u2003em\u2003space", "\u3000ideographic\u3000space", "zero\u200bwidth\u200bspace",
        "<|endoftext|>", "before<|endoftext|>after", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
        "<|endoftext", "|endoftext|>", "The quick brown fox jumps over the lazy dog.",
        "    def f(x):\n        return x + 1\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "\x00\x01\x02 control \x7f chars", "\x1c\x1d\x1e\x1f separators", "\x0b\x0c vertical tab form feed",
        "\u0085next line\u2028line sep\u2029para sep", "tab\t\tthen word", "a\n\nb", "a \n b",
        "   !", " 's", "  's", "\t's", "1's 2'd", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "\U0010fffd private", "\ufeffBOM",
        "ZWJ\u200dtest", "Ω Å K", "ǅungla", "x" * 300, "ab" * 120, " " * 40 + "x", "\n" * 25,
        "a" + "!" * 100, "9" * 60,
    ]
    rng = random.Random(12345)
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                + list(" \t\n\r.,;:!?'\"-()[]{}<>/\\@#$%^&*_+=|~`") + ["'s", "'ll", "'re", "  ", "\u00a0",
                "é", "ß", "ñ", "日", "本", "😀", "٣", "½", "\u3000", "\u2028", "<|endoftext|>", "Ġ", "Ċ"])
    while len(texts) < 300:
        length = rng.randint(1, 40)
        texts.append("".join(rng.choice(alphabet) for _ in range(length)))
    # Long single pre-tokens (> 32 bytes) take the heap-based merge path of the C++ code.
    long_alphabets = ["abcdeinorst", "ehlnost", "日本語中文字", "!?.,;:-*", "0123456789", "éèàüößñ"]
    for index in range(24):
        letters = long_alphabets[index % len(long_alphabets)]
        length = rng.randint(33, 160)
        texts.append(" " * (index % 2) + "".join(rng.choice(letters) for _ in range(length)))
    return texts


def fixture_byte_strings():
    """Byte strings with invalid UTF-8, as hex, for the invalid-byte rule."""
    cases = [
        b"\xff", b"\x80", b"abc\xffdef", b" \xfe\xfd x", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(",
        b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong", b"\xf4\x90\x80\x80 too big", b"\xf0\x9f\x98",
        b"it\xe2\x80s", b"'\xffs", b"\xff's", b"1\xff2", b"\xff\xff\xff", b" \xff", b"a \xffb",
        b"\xf8\x88\x80\x80\x80", b"caf\xe9", b"\xc3\xa9\xa9",
    ]
    rng = random.Random(777)
    while len(cases) < 60:
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))))
    return cases


def write_fixtures(enc, out_path):
    text_cases = [{"text": t, "ids": enc.encode(t)} for t in fixture_texts()]
    special_cases = [{"text": t, "ids": enc.encode(t, allow_special=True)}
                     for t in fixture_texts() if END_OF_TEXT in t]
    byte_cases = [{"hex": b.hex(), "ids": enc.encode_bytes(b)} for b in fixture_byte_strings()]
    for case in byte_cases:
        assert enc.decode_bytes(case["ids"]) == bytes.fromhex(case["hex"])
    document = {
        "generator": "/usr/bin/python3 tools/reference/gpt2_bpe.py examples/data/gpt2-tokenizer "
                     "--fixtures tests/fixtures/bpe/gpt2_cases.json",
        "regex_module_version": regex.__version__,
        "text": text_cases,
        "allow_special": special_cases,
        "bytes": byte_cases,
    }
    # One case per line keeps the file small and its diffs readable.
    lines = ["{"]
    keys = list(document)
    for index, key in enumerate(keys):
        comma = "," if index + 1 < len(keys) else ""
        value = document[key]
        if isinstance(value, list):
            body = ",\n".join(json.dumps(case, ensure_ascii=True) for case in value)
            lines.append(f"{json.dumps(key)}: [\n{body}\n]{comma}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    enc = Encoder.from_dir(argv[1])
    if len(argv) >= 4 and argv[2] == "--fixtures":
        write_fixtures(enc, argv[3])
        return 0
    data = sys.stdin.buffer.read()
    print(" ".join(str(i) for i in enc.encode_bytes(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
