"""ConceptKB: the concepts every component links to, with their names and types.

One KB is shared by the candidate generator and the linkers, so it holds only
what they all need: the primary ID in the Doc-contract form (bare MeSH
``D009369``, prefixed otherwise ``OMIM:123456``), a preferred name, synonyms,
entity types ("Disease", "Chemical") and the alternative IDs that corpora use
for the same concept (MEDIC maps ``OMIM:…`` and ``DO:…`` onto MeSH IDs).

On disk it is one msgpack file of parallel columns (no pickle), so a KB of
360k concepts loads in well under a second; `Concept` objects are made on
access only.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import srsly

from .ids import normalize_kb_id

KB_FILE = "concepts.msgpack"
FORMAT_VERSION = 1
_COLUMNS = ("names", "synonyms", "types", "alt_ids", "sources")


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

    # -- building --------------------------------------------------------
    def add(self, concept: Concept) -> None:
        """Add a concept; if its ID exists, merge names, types, alt IDs and sources.

        The first source to add a concept keeps its preferred name; a different
        name from a later source becomes a synonym.
        """
        cid = concept.concept_id
        if not cid:
            raise ValueError(f"Concept without ID: {concept!r}")
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
        cid = self.resolve(concept_id)
        old = self._get(cid)
        if old is None:
            raise KeyError(concept_id)
        self._put(Concept(cid, old.name, _union(old.synonyms, (name.strip(),), exclude=old.name), old.types,
                          old.alt_ids, _union(old.sources, (source,))))
        return cid

    def _get(self, cid: str) -> Optional[Concept]:
        row = self._rows.get(cid)
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
        if cid in self._rows:
            return cid
        return self._alt.get(cid, cid)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, concept_id: object) -> bool:
        if not isinstance(concept_id, str):
            return False
        return self.resolve(concept_id) in self._rows

    def __getitem__(self, concept_id: str) -> Concept:
        concept = self._get(self.resolve(concept_id))
        if concept is None:
            raise KeyError(concept_id)
        return concept

    def __iter__(self) -> Iterator[Concept]:
        for cid in self._rows:
            yield self._get(cid)  # type: ignore[misc]

    @property
    def concept_ids(self) -> List[str]:
        return list(self._rows)

    def alt_ids(self) -> Dict[str, str]:
        """Alternative ID → primary ID (a copy)."""
        return dict(self._alt)

    def names(self) -> Iterator[Tuple[str, str]]:
        """(name, concept_id) over every preferred name and synonym."""
        for cid, (name, synonyms, *_rest) in self._rows.items():
            yield name, cid
            for syn in _split(synonyms):
                yield syn, cid

    def name_of(self, concept_id: str) -> Optional[str]:
        """The preferred name, or None for an unknown ID (no Concept built: rankers call this per candidate)."""
        row = self._rows.get(concept_id) or self._rows.get(self.resolve(concept_id))
        return row[0] if row else None

    def name_at(self, concept_id: str, position: int) -> str:
        """The concept's `position`-th name: 0 is the preferred name, then the synonyms in order."""
        name, synonyms = self._rows[concept_id][:2]
        return name if position == 0 else synonyms.split(_SEP)[position - 1]

    def types_of(self, concept_id: str) -> Tuple[str, ...]:
        return _split(self._rows[self.resolve(concept_id)][2])

    def stats(self) -> Dict[str, Dict[str, int]]:
        """Concept and synonym counts per type and per source (for reports and tests)."""
        by_type: Dict[str, Dict[str, int]] = {}
        by_source: Dict[str, Dict[str, int]] = {}
        n_synonyms = 0
        for _, syn, typ, _, src in self._rows.values():
            n_syn = len(_split(syn))
            n_synonyms += n_syn
            keys = [(t, by_type) for t in (_split(typ) or ("(untyped)",))] + [(s, by_source) for s in _split(src)]
            for key, table in keys:
                entry = table.setdefault(key, {"concepts": 0, "synonyms": 0})
                entry["concepts"] += 1
                entry["synonyms"] += n_syn
        return {
            "total": {"concepts": len(self), "synonyms": n_synonyms, "alt_ids": len(self._alt)},
            "types": dict(sorted(by_type.items())),
            "sources": dict(sorted(by_source.items())),
        }

    # -- serialization ------------------------------------------------------
    def to_bytes(self) -> bytes:
        ids = list(self._rows)
        cols = list(zip(*self._rows.values())) or [(), (), (), (), ()]
        alt_keys = list(self._alt)
        msg = {
            "format": FORMAT_VERSION,
            "ids": ids,
            **{key: list(col) for key, col in zip(_COLUMNS, cols)},
            "alt_keys": alt_keys,
            "alt_values": [self._alt[k] for k in alt_keys],
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, data: bytes) -> "ConceptKB":
        msg = srsly.msgpack_loads(data)
        if msg.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported ConceptKB format {msg.get('format')!r} (expected {FORMAT_VERSION})")
        self._rows = dict(zip(msg["ids"], zip(*(msg[key] for key in _COLUMNS))))
        self._alt = dict(zip(msg["alt_keys"], msg["alt_values"]))
        return self

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the KB into the folder `path` (created if needed)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / KB_FILE).write_bytes(self.to_bytes())

    def from_disk(self, path: Union[str, Path]) -> "ConceptKB":
        path = Path(path)
        file = path / KB_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"No ConceptKB at {path} (expected {KB_FILE})")
        return self.from_bytes(file.read_bytes())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ConceptKB":
        return cls().from_disk(path)

    def __repr__(self) -> str:
        return f"<ConceptKB: {len(self)} concepts, {len(self._alt)} alt IDs>"
