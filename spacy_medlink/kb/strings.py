"""StringTable: many strings as two numpy arrays, with a lookup that builds no dict.

The KB's concept IDs, names and the index's distinct names are hundreds of
thousands of short strings. As Python objects (a `str` each, in lists and
dicts) they cost three to four times their UTF-8 size, and every process that
loads a pipeline holds its own copy: a forked worker copies the pages whose
reference counts it touches, and a Ray actor loads its own. A StringTable
keeps the UTF-8 bytes in one uint8 array and the end offsets in another, so
the arrays can be saved with numpy (no pickle) and memory-mapped, and worker
processes share one copy through the page cache. Strings are decoded on access.

The lookup (`index`) is a sorted array of 64-bit hashes (spaCy's own murmurhash
of the UTF-8 string) with the row of each; a hit is checked against the stored string, so hash
collisions cost a comparison, never a wrong answer. The lookup is built on first use and not
saved: 620,000 names take about half a second, where saving it would add 10 MB that do not
compress to a pipeline's wheel.
"""
import os
from codecs import utf_8_decode as _decode
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union, overload

import numpy
from spacy.strings import hash_string

_ARRAYS = ("data", "ends")


def string_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same in every process (Python's `hash` is salted)."""
    return hash_string(text)


class StringTable(Sequence[str]):
    """An immutable sequence of strings, stored as UTF-8 bytes and end offsets."""

    def __init__(self, data: numpy.ndarray, ends: numpy.ndarray, hashes: Optional[numpy.ndarray] = None,
                 order: Optional[numpy.ndarray] = None) -> None:
        """data: uint8 UTF-8 bytes of all strings; ends: int32 (or int64) end offset of each.
        hashes, order: the lookup (`string_hash` of each string, sorted, and the row
        of each sorted hash); built on first `index` when not given."""
        self.data = data
        self.ends = ends
        self.hashes = hashes
        self.order = order
        # memoryviews: indexing them is several times faster than numpy scalars (and memmaps)
        self._buffer = memoryview(numpy.asarray(data)) if len(data) else b""
        self._ends = memoryview(numpy.ascontiguousarray(ends))
        self._lookup = (memoryview(hashes), memoryview(order)) if hashes is not None and order is not None else None

    @classmethod
    def from_strings(cls, strings: Iterable[str], *, index: bool = True) -> "StringTable":
        strings = list(strings)
        joined = "".join(strings).encode("utf8")
        lengths = numpy.fromiter(map(len, strings), dtype=numpy.int64, count=len(strings))
        if lengths.sum() != len(joined):  # not all ASCII: lengths in bytes, string by string
            lengths = numpy.fromiter((len(s.encode("utf8")) for s in strings), dtype=numpy.int64, count=len(strings))
        ends = numpy.cumsum(lengths)
        if not len(ends) or ends[-1] < 2**31:
            ends = ends.astype(numpy.int32)
        data = numpy.frombuffer(joined, dtype=numpy.uint8).copy()
        table = cls(data, ends)
        if index:
            table.build_index(strings)
        return table

    def build_index(self, strings: Optional[Sequence[str]] = None) -> None:
        """The lookup's arrays; `strings`: this table's strings, if at hand (saves decoding them)."""
        strings = self if strings is None else strings
        hashes = numpy.fromiter(map(string_hash, strings), dtype=numpy.uint64, count=len(self))
        self.order = numpy.argsort(hashes, kind="stable").astype(numpy.int32 if len(self) < 2**31 else numpy.int64)
        self.hashes = hashes[self.order]
        self._lookup = (memoryview(self.hashes), memoryview(self.order))

    # -- access -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ends)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> List[str]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[str, List[str]]:
        if i.__class__ is not int:
            if isinstance(i, slice):
                return [self[j] for j in range(*i.indices(len(self)))]
            i = int(i)
        ends = self._ends
        if i < 0:
            i += len(ends)
        if not 0 <= i < len(ends):
            raise IndexError(f"StringTable index {i} out of range ({len(ends)} strings)")
        return _decode(self._buffer[ends[i - 1] if i else 0 : ends[i]])[0]

    def __iter__(self) -> Iterator[str]:
        buffer, start = self._buffer, 0
        for end in self.ends.tolist():
            yield _decode(buffer[start:end])[0]
            start = end

    def index(self, text: str, default: int = -1) -> int:  # type: ignore[override]
        """The row of `text`, or `default` when it is not in the table (the first row of a duplicate)."""
        if self.hashes is None:
            self.build_index()
        h = string_hash(text)
        pos = int(self.hashes.searchsorted(numpy.uint64(h)))
        hashes, order = self._lookup
        while pos < len(hashes) and hashes[pos] == h:
            row = order[pos]
            if self[row] == text:
                return row
            pos += 1
        return default

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.index(text) >= 0

    def tolist(self) -> List[str]:
        return list(self)

    # -- serialization -------------------------------------------------------------
    def to_arrays(self) -> Dict[str, numpy.ndarray]:
        """What is saved: the bytes and the end offsets (the lookup is built again on first use)."""
        return {"data": self.data, "ends": self.ends}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, numpy.ndarray]) -> "StringTable":
        return cls(arrays["data"], arrays["ends"])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StringTable):
            return numpy.array_equal(self.ends, other.ends) and numpy.array_equal(self.data, other.data)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"<StringTable: {len(self)} strings, {len(self.data)} bytes>"


def table_arrays(prefix: str, table: StringTable) -> Dict[str, numpy.ndarray]:
    """The arrays of `table` under names `prefix_data`, `prefix_ends`, ... (for one folder of .npy files)."""
    return {f"{prefix}_{name}": array for name, array in table.to_arrays().items()}


def table_from(prefix: str, arrays: Dict[str, numpy.ndarray]) -> StringTable:
    return StringTable.from_arrays({name: arrays[f"{prefix}_{name}"] for name in _ARRAYS if f"{prefix}_{name}" in arrays})


def table_names(prefix: str) -> Sequence[str]:
    return [f"{prefix}_{name}" for name in _ARRAYS]


def save_array(path: Path, array: numpy.ndarray) -> None:
    """numpy.save without pickle, written then renamed: the array being saved may be
    memory-mapped from the file it replaces (a loaded KB saved in place)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file_:
        numpy.save(file_, numpy.ascontiguousarray(array), allow_pickle=False)
    os.replace(tmp, path)
