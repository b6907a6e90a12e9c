"""A plain concept file: the user's own vocabulary as JSON lines or a TSV.

JSON lines is scispacy's KB format, so that its users bring their files as
they are: one object per line with ``concept_id``, ``canonical_name``,
``aliases`` (a list), ``types`` (a list) and an optional ``definition``. The
TSV has a header naming its columns: ``concept_id`` and ``canonical_name``
are required; ``aliases`` and ``types`` ('|'-separated) and ``definition``
are optional. The format follows the suffix: ``.jsonl`` or ``.json`` (JSON
lines), ``.tsv``, either gzipped (``.gz``). Definitions are read and counted,
not stored (the KB keeps names only). IDs are normalized as corpora's are
(``MESH:D003920`` -> ``D003920``); a concept ID given twice merges.
"""
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ...corpora.report import CorpusFormatError, open_text
from ...ids import normalize_kb_id, split_kb_id
from ..concept_kb import Concept, ConceptKB

PathLike = Union[str, Path]
COLUMNS = ("concept_id", "canonical_name", "aliases", "types", "definition")
REQUIRED = ("concept_id", "canonical_name")
JSONL_SUFFIXES = (".jsonl", ".json")


def concept_file_format(path: PathLike) -> str:
    """"jsonl" or "tsv", from the file's suffix (under a .gz)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    raise ValueError(f"{path}: a concept file is .jsonl/.json (JSON lines) or .tsv, optionally .gz")


def _jsonl_records(path: PathLike) -> Iterator[Tuple[int, Dict[str, Any]]]:
    with open_text(path) as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.lstrip("\ufeff") if line_no == 1 else line)
            except ValueError as err:
                raise CorpusFormatError(path, line_no, f"not a JSON object ({err}); the file is one object per line")
            if not isinstance(record, dict):
                raise CorpusFormatError(path, line_no, "not a JSON object; the file is one object per line")
            yield line_no, record


def _tsv_records(path: PathLike) -> Iterator[Tuple[int, Dict[str, Any]]]:
    with open_text(path) as lines:
        columns: List[str] = []
        for line_no, line in enumerate(lines, start=1):
            line = line.rstrip("\r\n")
            if not columns:
                columns = [c.strip() for c in line.lstrip("\ufeff").split("\t")]  # a spreadsheet's byte order mark
                unknown = [c for c in columns if c not in COLUMNS]
                missing = [c for c in REQUIRED if c not in columns]
                if unknown or missing or len(set(columns)) != len(columns):
                    raise CorpusFormatError(path, line_no, f"the header names columns {columns}: it needs "
                                            f"{', '.join(REQUIRED)}, may add {', '.join(COLUMNS[2:])}, each once")
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) != len(columns):
                raise CorpusFormatError(path, line_no, f"expected {len(columns)} TAB-separated columns, "
                                        f"found {len(cells)}")
            record: Dict[str, Any] = dict(zip(columns, cells))
            for key in ("aliases", "types"):
                if key in record:
                    record[key] = [v.strip() for v in record[key].split("|") if v.strip()]
            yield line_no, record


def _strings(record: Dict[str, Any], key: str, path: PathLike, line_no: int) -> Tuple[str, ...]:
    values = record.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise CorpusFormatError(path, line_no, f"{key} must be a list of strings, found {values!r}")
    return tuple(v.strip() for v in values if v.strip())


def read_concept_file(
    path: PathLike, kb: Optional[ConceptKB] = None, source: Optional[str] = None
) -> Tuple[ConceptKB, Counter]:
    """Add the concepts of a JSON lines or TSV concept file to `kb`; `source` defaults to the file's name."""
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    fmt = concept_file_format(path)
    source = source or _stem(path)
    records = _jsonl_records(path) if fmt == "jsonl" else _tsv_records(path)
    for line_no, record in records:
        raw_id, name = record.get("concept_id"), record.get("canonical_name")
        if not isinstance(raw_id, str) or not isinstance(name, str) or not name.strip():
            raise CorpusFormatError(path, line_no, f"concept_id and canonical_name must be non-empty strings, "
                                    f"found {raw_id!r} {name!r}")
        cid, _ = normalize_kb_id(raw_id)
        if len(split_kb_id(cid)) != 1:
            raise CorpusFormatError(path, line_no, f"bad concept_id {raw_id!r} (one ID, without '|', '+', ',' or ';')")
        aliases = _strings(record, "aliases", path, line_no)
        types = _strings(record, "types", path, line_no)
        stats["records"] += 1
        stats["concepts merged (ID given before)" if cid in kb else "concepts"] += 1
        stats["aliases"] += len(aliases)
        if record.get("definition"):
            stats["definitions (not stored)"] += 1
        kb.add(Concept(cid, name.strip(), aliases, types, (), (source,)))
    return kb, stats


def _stem(path: PathLike) -> str:
    name = Path(path).name
    for suffix in (".gz",) + JSONL_SUFFIXES + (".tsv",):
        name = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    return name
