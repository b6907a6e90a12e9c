"""Longest-match tags of KB names over a Doc's tokens: the dictionary feature of NER.

For each entity type, every KB name of that type (preferred names, and
synonyms unless left out) is tokenized by the pipeline's tokenizer, lowercased
(one-token short forms with capitals, "IS" or "CO", keep their case, so that
"is" and "co" never match them) and hashed (spaCy's 64-bit `hash_string`, stable across processes). A Doc is
tagged per type by greedy longest match, left to right: B, I, L or U on the
tokens of a matched name, O elsewhere. Types are matched separately, so a
token can be inside a Chemical name and a Disease name at once.

Only hashes are kept: one sorted uint64 array per type, looked up with
`numpy.searchsorted`; 800k names take 6 MB. Build it from the vocabularies
alone (the KB built without `--train-corpus`): a dictionary that holds the
training mentions tells the model the answer on its training data, and it
learns to trust the feature blindly.
"""
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Optional, Sequence, Union

from collections import Counter

import numpy
import srsly
from spacy.strings import hash_string

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from .concept_kb import ConceptKB

O, B, I, L, U = 0, 1, 2, 3, 4
N_TAGS = 5
FORMAT_VERSION = 1


SHORT = 5  # a one-token name this short with capitals ("IS", "CO") matches in its own case only


def _key(words: Sequence[str]) -> int:
    return hash_string(" ".join(words))


def _case_key(word: str) -> int:
    return hash_string("\x01" + word)


def _is_short_form(word: str) -> bool:
    return len(word) <= SHORT and any(ch.isupper() for ch in word)


class NameMatcher:
    def __init__(self, types: Sequence[str], hashes: Dict[str, numpy.ndarray], max_len: int) -> None:
        self.types = list(types)
        self.hashes = {t: numpy.unique(numpy.asarray(hashes[t], dtype=numpy.uint64)) for t in self.types}
        self.max_len = max_len
        self.left_out: Dict[str, int] = {}  # names `build` did not hash, by reason

    @classmethod
    def build(cls, kb: "ConceptKB", tokenize: Callable[[str], Iterable], *, types: Optional[Sequence[str]] = None,
              synonyms: bool = True, max_len: int = 8, min_chars: int = 2) -> "NameMatcher":
        """Hash the names of `kb` (tokenized by `tokenize`, e.g. `nlp.tokenizer`)
        for each type; names longer than `max_len` tokens or shorter than
        `min_chars` characters are left out."""
        found: Dict[str, set] = {}
        left_out: Counter = Counter()
        for concept in kb:
            ctypes = [t for t in concept.types if types is None or t in types]
            if not ctypes:
                continue
            names = (concept.name,) + (concept.synonyms if synonyms else ())
            for name in names:
                if len(name.strip()) < min_chars:
                    left_out[f"shorter than {min_chars} characters"] += 1
                    continue
                tokens = [t.text for t in tokenize(name) if not t.is_space]
                if not tokens or len(tokens) > max_len:
                    left_out[f"longer than {max_len} tokens"] += 1
                    continue
                if len(tokens) == 1 and _is_short_form(tokens[0]):
                    key = _case_key(tokens[0])
                else:
                    key = _key([t.lower() for t in tokens])
                for t in ctypes:
                    found.setdefault(t, set()).add(key)
        kept = sorted(found) if types is None else [t for t in types if t in found]
        matcher = cls(kept, {t: numpy.fromiter(found[t], dtype=numpy.uint64, count=len(found[t])) for t in kept}, max_len)
        matcher.left_out = dict(left_out)
        return matcher

    def __len__(self) -> int:
        return sum(len(h) for h in self.hashes.values())

    def tags(self, doc: "Doc", types: Optional[Sequence[str]] = None) -> numpy.ndarray:
        """(len(doc), len(types)) BILUO tags (O=0, B, I, L, U), one column per type."""
        types = self.types if types is None else list(types)
        words = [t.lower_ for t in doc]
        n = len(words)
        out = numpy.zeros((n, len(types)), dtype=numpy.int32)
        if not n or not types:
            return out
        # every n-gram's hash once (one-token short forms in their own case), then one searchsorted per type
        spans = [(i, length) for length in range(1, self.max_len + 1) for i in range(n - length + 1)]
        hashes = [_key(words[i : i + length]) for i, length in spans]
        for i, token in enumerate(doc):
            if _is_short_form(token.text):
                spans.append((i, 1))
                hashes.append(_case_key(token.text))
        keys = numpy.asarray(hashes, dtype=numpy.uint64)
        starts = numpy.fromiter((i for i, _ in spans), dtype=numpy.int64, count=len(spans))
        lengths = numpy.fromiter((length for _, length in spans), dtype=numpy.int64, count=len(spans))
        for col, type_ in enumerate(types):
            table = self.hashes.get(type_)
            if table is None or not len(table):
                continue
            pos = numpy.searchsorted(table, keys)
            hit = table[numpy.minimum(pos, len(table) - 1)] == keys
            longest = numpy.zeros(n, dtype=numpy.int64)
            numpy.maximum.at(longest, starts[hit], lengths[hit])
            i = 0
            while i < n:
                length = int(longest[i])
                if not length:
                    i += 1
                    continue
                if length == 1:
                    out[i, col] = U
                else:
                    out[i, col] = B
                    out[i + 1 : i + length - 1, col] = I
                    out[i + length - 1, col] = L
                i += length
        return out

    # -- serialization (no pickle) ---------------------------------------------------------
    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps({"format": FORMAT_VERSION, "types": self.types, "max_len": self.max_len,
                                    "hashes": {t: self.hashes[t].tobytes() for t in self.types}})

    @classmethod
    def from_bytes(cls, data: bytes) -> "NameMatcher":
        msg = srsly.msgpack_loads(data)
        if msg.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported name matcher format {msg.get('format')!r}")
        hashes = {t: numpy.frombuffer(msg["hashes"][t], dtype=numpy.uint64) for t in msg["types"]}
        return cls(msg["types"], hashes, msg["max_len"])

    def to_disk(self, path: Union[str, Path]) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "NameMatcher":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No name matcher at {path} (build it with `python -m spacy_medlink kb names`)")
        return cls.from_bytes(path.read_bytes())

