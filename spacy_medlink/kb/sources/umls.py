"""UMLS from a Metathesaurus release: `MRCONSO.RRF` (names) and `MRSTY.RRF`
(semantic types), pipe-separated, no header, each row ending in '|'.

A concept is a CUI, with the ID ``UMLS:C0011849``: the Doc contract keeps
every non-MeSH prefix, and MedMentions' mentions carry exactly these IDs. Its
names are the English strings (LAT=ENG) that are not suppressible (SUPPRESS
O, E and Y are left out, counted), of the kept source vocabularies (`sabs`).
Its preferred name is the UMLS one, the string with TS=P, STT=PF and ISPREF=Y;
where the kept rows hold none (a SAB filter can leave it out), the first of
the best by TS=P, then STT=PF, then ISPREF=Y.

Types are semantic type IDs (T047) from MRSTY, read first into a dict CUI ->
TUIs. With `semantic_types`, a TUI is kept as the most specific requested
type that is it or its ancestor in the Semantic Network (by MRSTY's tree
numbers, STN): with MedMentions' 21 st21pv types, "Disease or Syndrome"
(T047, B2.2.1.2.1) becomes "Biologic Function" (T038, B2.2.1), as its
annotators did. A CUI with no kept type is skipped, counted.

MRCONSO is read row by row and its rows are grouped by CUI, which MRCONSO is
sorted by; should a CUI come back after others, its names merge into the
concept read before (the first block's preferred name stays), counted.
The candidate index holds at most 32 entity types, and UMLS has 127: without
`semantic_types`, `max_types` stops the read before MRCONSO, with advice.
"""
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ...corpora.report import CorpusFormatError, open_text
from ..concept_kb import Concept, ConceptKB

PathLike = Union[str, Path]
PREFIX = "UMLS:"
MRCONSO_FIELDS = 18
MRSTY_FIELDS = 6
SUPPRESSED = frozenset({"O", "E", "Y"})
# MedMentions' st21pv subset: the 21 semantic types its mentions are typed with.
ST21PV = ("T005", "T007", "T017", "T022", "T031", "T033", "T037", "T038", "T058", "T062", "T074",
          "T082", "T091", "T092", "T097", "T098", "T103", "T168", "T170", "T201", "T204")
TYPE_SETS = {"st21pv": ST21PV}
# the candidate index keeps a concept's types as bits of a uint32 (kb/candidates.py)
INDEX_MAX_TYPES = 32


def umls_files(meta: PathLike, mrsty: Optional[PathLike] = None) -> Tuple[Path, Path]:
    """(MRCONSO, MRSTY) from a META folder (or its parent release folder) or a MRCONSO path."""
    meta = Path(meta)
    if meta.is_dir():
        folder = meta / "META" if (meta / "META").is_dir() else meta
        mrconso = _find(folder, "MRCONSO.RRF")
    else:
        mrconso, folder = meta, meta.parent
    if not mrconso.exists():
        raise FileNotFoundError(f"No MRCONSO.RRF at {meta}")
    sty = Path(mrsty) if mrsty is not None else _find(folder, "MRSTY.RRF")
    if not sty.exists():
        raise FileNotFoundError(f"No MRSTY.RRF beside {mrconso}: the concepts' semantic types are read from it")
    return mrconso, sty


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return folder / name


def _fields(line: str, n: int, path: PathLike, line_no: int) -> List[str]:
    cols = line.rstrip("\r\n").split("|")
    if len(cols) == n + 1 and not cols[-1]:
        cols.pop()
    if len(cols) != n:
        raise CorpusFormatError(path, line_no, f"expected {n} '|'-terminated fields, found {len(cols)}")
    return cols


def expand_types(semantic_types: Optional[Sequence[str]]) -> Optional[Tuple[str, ...]]:
    """TUIs, with the names of TYPE_SETS ("st21pv") replaced by their members."""
    if semantic_types is None:
        return None
    out: List[str] = []
    for t in semantic_types:
        for tui in TYPE_SETS.get(t.strip().lower(), (t.strip(),)):
            if tui and tui not in out:
                out.append(tui)
    return tuple(out)


def read_mrsty(
    path: PathLike, semantic_types: Optional[Sequence[str]] = None, stats: Optional[Counter] = None
) -> Dict[str, Tuple[str, ...]]:
    """CUI -> semantic types (MRSTY order), mapped to `semantic_types` when given."""
    stats = stats if stats is not None else Counter()
    by_cui: Dict[str, Tuple[str, ...]] = {}
    shared: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
    tree: Dict[str, str] = {}
    with open_text(path) as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            cui, tui, stn = _fields(line, MRSTY_FIELDS, path, line_no)[:3]
            if not cui or not tui:
                raise CorpusFormatError(path, line_no, f"empty CUI or TUI: {cui!r} {tui!r}")
            stats["MRSTY rows"] += 1
            tree.setdefault(tui, stn)
            old = by_cui.get(cui, ())
            if tui not in old:
                new = old + (tui,)
                by_cui[cui] = shared.setdefault(new, new)  # one tuple object per distinct type set
    wanted = expand_types(semantic_types)
    if wanted is None:
        return by_cui
    absent = [tui for tui in wanted if tui not in tree]
    if absent:  # no CUI has them, and without their tree number no descendant maps to them
        stats["requested semantic types not in MRSTY"] += len(absent)
    mapped: Dict[str, Tuple[str, ...]] = {}
    kept_of: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
    for cui, tuis in by_cui.items():
        kept = kept_of.get(tuis)
        if kept is None:
            kept = kept_of[tuis] = _map_types(tuis, wanted, tree)
        if kept:
            mapped[cui] = kept
        else:
            stats["MRSTY CUIs without a kept semantic type"] += 1
    return mapped


def _map_types(tuis: Tuple[str, ...], wanted: Sequence[str], tree: Dict[str, str]) -> Tuple[str, ...]:
    """Each TUI as the most specific wanted type that is it or its Semantic Network ancestor."""
    out: List[str] = []
    for tui in tuis:
        stn = tree.get(tui, "")
        best, depth = "", -1
        for w in wanted:
            wstn = tree.get(w)
            if w == tui or (wstn and stn and (stn == wstn or stn.startswith(wstn + "."))):
                d = len(wstn or stn)
                if d > depth:
                    best, depth = w, d
        if best and best not in out:
            out.append(best)
    return tuple(out)


def read_umls(
    meta_dir_or_mrconso: PathLike,
    kb: Optional[ConceptKB] = None,
    mrsty: Optional[PathLike] = None,
    sabs: Optional[Sequence[str]] = None,
    semantic_types: Optional[Sequence[str]] = None,
    source: str = "UMLS",
    max_types: Optional[int] = None,
) -> Tuple[ConceptKB, Counter]:
    """Add UMLS concepts (``UMLS:<CUI>``) from MRCONSO and MRSTY to `kb`.

    `sabs` keeps the strings of these source vocabularies only (MSH,
    SNOMEDCT_US...); `semantic_types` the concepts of these TUIs (or
    "st21pv"), typed as described above; `max_types` raises before MRCONSO is
    read when the kept types are more than that.
    """
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    mrconso, mrsty_path = umls_files(meta_dir_or_mrconso, mrsty)
    types = read_mrsty(mrsty_path, semantic_types, stats)
    n_types = len({t for tuis in set(types.values()) for t in tuis})
    if max_types is not None and n_types > max_types:
        raise ValueError(f"{mrsty_path} gives {n_types} semantic types, but the candidate index holds at most "
                         f"{max_types}: keep fewer with semantic_types (--umls-types), e.g. 'st21pv' "
                         "(MedMentions' 21 types) or the TUIs you link to")
    sab_set = set(sabs) if sabs else None
    rows = not_english = suppressed = other_sab = untyped_rows = kept_rows = 0
    current = ""
    names: List[Tuple[int, str]] = []
    out_of_order = False
    with open_text(mrconso) as lines:
        for line_no, line in enumerate(lines, start=1):
            cols = line.split("|")
            if len(cols) != MRCONSO_FIELDS + 1:  # the usual row ends in '|' and its last piece is the line end
                if not line.strip():
                    continue
                cols = _fields(line, MRCONSO_FIELDS, mrconso, line_no)
            cui, lat, ts, stt, ispref, sab, string, suppress = (
                cols[0], cols[1], cols[2], cols[4], cols[6], cols[11], cols[14].strip(), cols[16])
            if not cui or not string:
                raise CorpusFormatError(mrconso, line_no, f"empty CUI or STR: {cui!r} {cols[14]!r}")
            rows += 1
            if lat != "ENG":
                not_english += 1
                continue
            if suppress in SUPPRESSED:
                suppressed += 1
                continue
            if sab_set is not None and sab not in sab_set:
                other_sab += 1
                continue
            if cui != current:
                _flush(kb, current, names, types, source, stats, out_of_order)
                out_of_order = cui < current
                if out_of_order:
                    stats["CUI blocks out of order"] += 1
                current, names = cui, []
            if semantic_types is not None and cui not in types:
                untyped_rows += 1
                continue
            kept_rows += 1
            names.append(((ts == "P") * 4 + (stt == "PF") * 2 + (ispref == "Y"), string))
    _flush(kb, current, names, types, source, stats, out_of_order)
    stats.update({"rows": rows, "rows added": kept_rows, "skipped: not English": not_english,
                  "skipped: suppressible (SUPPRESS O/E/Y)": suppressed, "skipped: SAB not kept": other_sab,
                  "skipped: CUI without a kept semantic type": untyped_rows})
    return kb, +stats


def _flush(kb: ConceptKB, cui: str, names: List[Tuple[int, str]], types: Dict[str, Tuple[str, ...]],
           source: str, stats: Counter, out_of_order: bool) -> None:
    """Add one CUI's block of names: the best-ranked first (the first among equals), then the others in file order.
    Only a block out of CUI order can meet its concept again (looking it up for every block would cost)."""
    if not names:
        return
    best, best_rank = 0, -1
    for i, (rank, _) in enumerate(names):
        if rank > best_rank:
            best, best_rank = i, rank
    name = names[best][1]
    synonyms = tuple(dict.fromkeys(s for i, (_, s) in enumerate(names) if i != best and s != name))
    cid = PREFIX + cui
    stats["concepts merged" if out_of_order and cid in kb else "concepts"] += 1
    stats["synonyms"] += len(synonyms)
    concept_types = types.get(cui, ())
    if not concept_types:
        stats["concepts without a semantic type in MRSTY"] += 1
    kb.add(Concept(cid, name, synonyms, concept_types, (), (source,)))
