"""ConceptKB: the concepts every component links to, with their names and types.

One KB is shared by the candidate generator and the linkers, so it holds only
what they all need: the primary ID in the Doc-contract form (bare MeSH
``D009369``, prefixed otherwise ``OMIM:123456``), a preferred name, synonyms,
entity types ("Disease", "Chemical") and the alternative IDs that corpora use
for the same concept (MEDIC maps ``OMIM:…`` and ``DO:…`` onto MeSH IDs).

A KB being built keeps its concepts in a dict. A loaded KB is read-only
until something adds to it: its columns are `StringTable`s (kb/strings.py),
UTF-8 bytes and offsets in numpy arrays, memory-mapped from the KB folder
(format 2: one .npy per array under `concepts/`), so that the processes that
load one pipeline share a single copy and no process holds hundreds of
thousands of `str` objects. `Concept` objects are made on access only.
Format 1 (one msgpack file of parallel string columns) still loads.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy
import srsly

from ..ids import normalize_kb_id
from .strings import StringTable, save_array, table_arrays, table_from, table_names

KB_FILE = "concepts.msgpack"  # format 1
KB_DIR = "concepts"  # format 2
FORMAT_VERSION = 2
_COLUMNS = ("names", "synonyms", "types", "alt_ids", "sources")
_TABLES = ("ids",) + _COLUMNS + ("alt_keys", "alt_values")


@dataclass(frozen=True)
class Concept:
    concept_id: str
    name: str
    synonyms: Tuple[str, ...] = ()
    types: Tuple[str, ...] = ()
    alt_ids: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()


# A concept without its ID, as stored: name, then synonyms, types, alt_ids and
# sources each as one string joined by U+001F. Kept joined in memory too, so
# that loading is one msgpack decode and one dict build; split on access.
_Row = Tuple[str, str, str, str, str]
_SEP = "\x1f"


def _split(joined: str) -> Tuple[str, ...]:
    return tuple(joined.split(_SEP)) if joined else ()


def _join(values: Iterable[str], cid: str) -> str:
    values = list(values)
    for v in values:
        if _SEP in v:
            raise ValueError(f"{cid}: value {v!r} contains the separator U+001F")
    return _SEP.join(values)


def _union(old: Tuple[str, ...], new: Iterable[str], exclude: str = "") -> Tuple[str, ...]:
    """Ordered union: keeps the first-seen order, which decides preferred names."""
    seen = set(old)
    out = list(old)
    for item in new:
        if item and item != exclude and item not in seen:
            seen.add(item)
            out.append(item)
    return tuple(out)


class ConceptKB:
    """Concepts by primary ID, plus an index from alternative IDs to primary IDs."""

    def __init__(self) -> None:
        self._rows: Dict[str, _Row] = {}
        self._alt: Dict[str, str] = {}
        # a loaded KB: its columns as StringTables (None while building or once thawed)
        self._frozen: Optional[Dict[str, StringTable]] = None

    def _thaw(self) -> None:
        """Back to dicts, before the first change to a loaded KB."""
        if self._frozen is not None:
            t = self._frozen
            self._rows = dict(zip(t["ids"], zip(*(t[key] for key in _COLUMNS))))
            self._alt = dict(zip(t["alt_keys"], t["alt_values"]))
            self._frozen = None

    def _row(self, cid: str) -> Optional[_Row]:
        if self._frozen is None:
            return self._rows.get(cid)
        i = self._frozen["ids"].index(cid)
        return None if i < 0 else tuple(self._frozen[key][i] for key in _COLUMNS)  # type: ignore[return-value]

    def _has(self, cid: str) -> bool:
        return cid in self._rows if self._frozen is None else self._frozen["ids"].index(cid) >= 0

    def _alt_of(self, cid: str) -> Optional[str]:
        if self._frozen is None:
            return self._alt.get(cid)
        i = self._frozen["alt_keys"].index(cid)
        return None if i < 0 else self._frozen["alt_values"][i]

    # -- building --------------------------------------------------------
    def add(self, concept: Concept) -> None:
        """Add a concept; if its ID exists, merge names, types, alt IDs and sources.

        The first source to add a concept keeps its preferred name; a different
        name from a later source becomes a synonym.
        """
        cid = concept.concept_id
        if not cid:
            raise ValueError(f"Concept without ID: {concept!r}")
        self._thaw()
        old = self._get(cid)
        if old is None:
            name = concept.name
            merged = Concept(cid, name, _union((), concept.synonyms, exclude=name), _union((), concept.types),
                             (), _union((), concept.sources))
        else:
            merged = Concept(
                cid,
                old.name,
                _union(old.synonyms, (concept.name,) + tuple(concept.synonyms), exclude=old.name),
                _union(old.types, concept.types),
                old.alt_ids,
                _union(old.sources, concept.sources),
            )
        new_alts = []
        for alt in concept.alt_ids:
            alt = alt.strip()
            if not alt or alt == cid:
                continue
            # An alt ID that is itself a primary concept stays that concept;
            # an alt ID shared by several concepts resolves to the first.
            if alt not in self._rows:
                self._alt.setdefault(alt, cid)
            new_alts.append(alt)
        self._put(Concept(merged.concept_id, merged.name, merged.synonyms, merged.types,
                          _union(merged.alt_ids, new_alts), merged.sources))

    def add_synonym(self, concept_id: str, name: str, source: str) -> str:
        """Add a name to a known concept (alt IDs resolve); returns the primary ID.

        Raises KeyError for an unknown concept, so that callers count them.
        """
        self._thaw()
        cid = self.resolve(concept_id)
        old = self._get(cid)
        if old is None:
            raise KeyError(concept_id)
        self._put(Concept(cid, old.name, _union(old.synonyms, (name.strip(),), exclude=old.name), old.types,
                          old.alt_ids, _union(old.sources, (source,))))
        return cid

    def _get(self, cid: str) -> Optional[Concept]:
        row = self._row(cid)
        if row is None:
            return None
        name, syn, typ, alt, src = row
        return Concept(cid, name, _split(syn), _split(typ), _split(alt), _split(src))

    def _put(self, c: Concept) -> None:
        cid = c.concept_id
        self._rows[cid] = (c.name, _join(c.synonyms, cid), _join(c.types, cid), _join(c.alt_ids, cid),
                           _join(c.sources, cid))

    # -- lookup -----------------------------------------------------------
    def resolve(self, concept_id: str) -> str:
        """Primary ID for a primary or alternative ID; unknown IDs come back normalized."""
        cid, _ = normalize_kb_id(concept_id)
        if self._has(cid):
            return cid
        return self._alt_of(cid) or cid

    def __len__(self) -> int:
        return len(self._rows) if self._frozen is None else len(self._frozen["ids"])

    def __contains__(self, concept_id: object) -> bool:
        if not isinstance(concept_id, str):
            return False
        return self._has(self.resolve(concept_id))

    def __getitem__(self, concept_id: str) -> Concept:
        concept = self._get(self.resolve(concept_id))
        if concept is None:
            raise KeyError(concept_id)
        return concept

    def _items(self) -> Iterator[Tuple[str, _Row]]:
        if self._frozen is None:
            yield from self._rows.items()
        else:
            t = self._frozen
            yield from zip(t["ids"], zip(*(t[key] for key in _COLUMNS)))  # type: ignore[misc]

    def __iter__(self) -> Iterator[Concept]:
        for cid, (name, syn, typ, alt, src) in self._items():
            yield Concept(cid, name, _split(syn), _split(typ), _split(alt), _split(src))

    @property
    def concept_ids(self) -> Sequence[str]:
        """The primary IDs in KB order: a list while building, the loaded StringTable after loading."""
        return list(self._rows) if self._frozen is None else self._frozen["ids"]

    def alt_ids(self) -> Dict[str, str]:
        """Alternative ID → primary ID (a copy)."""
        if self._frozen is not None:
            return dict(zip(self._frozen["alt_keys"], self._frozen["alt_values"]))
        return dict(self._alt)

    def names(self) -> Iterator[Tuple[str, str]]:
        """(name, concept_id) over every preferred name and synonym."""
        for cid, (name, synonyms, *_rest) in self._items():
            yield name, cid
            for syn in _split(synonyms):
                yield syn, cid

    def _column(self, concept_id: str, column: int) -> Optional[str]:
        """One stored column of a primary ID's row, without building the others."""
        if self._frozen is None:
            row = self._rows.get(concept_id)
            return None if row is None else row[column]
        i = self._frozen["ids"].index(concept_id)
        return None if i < 0 else self._frozen[_COLUMNS[column]][i]

    def name_of(self, concept_id: str) -> Optional[str]:
        """The preferred name, or None for an unknown ID (no Concept built: rankers call this per candidate)."""
        name = self._column(concept_id, 0)
        return name if name is not None else self._column(self.resolve(concept_id), 0)

    def name_at(self, concept_id: str, position: int) -> str:
        """The concept's `position`-th name: 0 is the preferred name, then the synonyms in order."""
        if position == 0:
            name = self._column(concept_id, 0)
        else:
            synonyms = self._column(concept_id, 1)
            name = None if synonyms is None else synonyms.split(_SEP)[position - 1]
        if name is None:
            raise KeyError(concept_id)
        return name

    def name_at_row(self, row: int, position: int) -> str:
        """`name_at` by the concept's position in `concept_ids` (no ID lookup; the index calls this per candidate)."""
        if self._frozen is None:
            return self.name_at(self.concept_ids[row], position)
        if position == 0:
            return self._frozen["names"][row]
        return self._frozen["synonyms"][row].split(_SEP)[position - 1]

    def types_of(self, concept_id: str) -> Tuple[str, ...]:
        types = self._column(self.resolve(concept_id), 2)
        if types is None:
            raise KeyError(concept_id)
        return _split(types)

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Concept and synonym counts per type and per source (for reports and tests)."""
        by_type: Dict[str, Dict[str, int]] = {}
        by_source: Dict[str, Dict[str, int]] = {}
        n_synonyms = 0
        for _cid, (_, syn, typ, _, src) in self._items():
            n_syn = len(_split(syn))
            n_synonyms += n_syn
            keys = [(t, by_type) for t in (_split(typ) or ("(untyped)",))] + [(s, by_source) for s in _split(src)]
            for key, table in keys:
                entry = table.setdefault(key, {"concepts": 0, "synonyms": 0})
                entry["concepts"] += 1
                entry["synonyms"] += n_syn
        return {
            "total": {"concepts": len(self), "synonyms": n_synonyms, "alt_ids": self._n_alt()},
            "types": dict(sorted(by_type.items())),
            "sources": dict(sorted(by_source.items())),
        }

    def _n_alt(self) -> int:
        return len(self._alt) if self._frozen is None else len(self._frozen["alt_keys"])

    # -- serialization ------------------------------------------------------
    def _tables(self) -> Dict[str, StringTable]:
        """The KB as StringTables (a loaded KB's own; built from the dicts otherwise)."""
        if self._frozen is not None:
            return self._frozen
        cols = list(zip(*self._rows.values())) or [(), (), (), (), ()]
        tables = {"ids": StringTable.from_strings(self._rows)}
        tables.update((key, StringTable.from_strings(col, index=False)) for key, col in zip(_COLUMNS, cols))
        tables["alt_keys"] = StringTable.from_strings(self._alt)
        tables["alt_values"] = StringTable.from_strings(self._alt.values(), index=False)
        return tables

    def _arrays(self) -> Dict[str, numpy.ndarray]:
        arrays: Dict[str, numpy.ndarray] = {}
        for key, table in self._tables().items():
            arrays.update(table_arrays(key, table))
        return arrays

    def _load_arrays(self, arrays: Dict[str, numpy.ndarray]) -> "ConceptKB":
        self._rows, self._alt = {}, {}
        self._frozen = {key: table_from(key, arrays) for key in _TABLES}
        return self

    def to_bytes(self) -> bytes:
        arrays = {name: (a.dtype.str, list(a.shape), numpy.ascontiguousarray(a).tobytes())
                  for name, a in self._arrays().items()}
        return srsly.msgpack_dumps({"format": FORMAT_VERSION, "arrays": arrays})

    def from_bytes(self, data: bytes) -> "ConceptKB":
        msg = srsly.msgpack_loads(data)
        if msg.get("format") == 1:  # string columns; loaded KBs are kept as tables, whatever their format
            self._rows, self._alt = {}, {}
            self._frozen = {key: StringTable.from_strings(msg[key], index=key in ("ids", "alt_keys"))
                            for key in _TABLES}
            return self
        if msg.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported ConceptKB format {msg.get('format')!r} (expected {FORMAT_VERSION})")
        arrays = {name: numpy.frombuffer(buf, dtype=numpy.dtype(dtype)).reshape(shape)
                  for name, (dtype, shape, buf) in msg["arrays"].items()}
        return self._load_arrays(arrays)

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the KB into the folder `path` (created if needed): `concepts/*.npy` (format 2)."""
        folder = Path(path) / KB_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in self._arrays().items():
            save_array(folder / f"{name}.npy", array)
        srsly.write_json(folder / "cfg.json", {"format": FORMAT_VERSION})
        stale = Path(path) / KB_FILE
        if stale.exists():
            stale.unlink()  # a format-1 KB rewritten in place

    def from_disk(self, path: Union[str, Path], *, mmap: bool = True) -> "ConceptKB":
        """Load a KB folder (format 2 memory-mapped unless `mmap` is false; format 1 decoded)."""
        path = Path(path)
        folder = path / KB_DIR
        if path.is_dir() and (folder / "cfg.json").exists():
            cfg = srsly.read_json(folder / "cfg.json")
            if cfg.get("format") != FORMAT_VERSION:
                raise ValueError(f"{folder}: unsupported ConceptKB format {cfg.get('format')!r}")
            arrays = {}
            for name in (n for key in _TABLES for n in table_names(key)):
                file = folder / f"{name}.npy"
                if file.exists():
                    # a plain array over the mapping (numpy.memmap objects are slow to index)
                    arrays[name] = numpy.asarray(numpy.load(file, allow_pickle=False, mmap_mode="r" if mmap else None))
            return self._load_arrays(arrays)
        file = path / KB_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"No ConceptKB at {path} (expected {KB_DIR}/ or {KB_FILE})")
        return self.from_bytes(file.read_bytes())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ConceptKB":
        return cls().from_disk(path)

    def __repr__(self) -> str:
        return f"<ConceptKB: {len(self)} concepts, {self._n_alt()} alt IDs>"
