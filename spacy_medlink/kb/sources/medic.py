"""CTD MEDIC (`CTD_diseases.tsv[.gz]`), as shared/data/SOURCES.md section 3 describes it."""
from collections import Counter
from typing import Optional, Tuple

from ...corpora.report import CorpusFormatError
from ...ids import normalize_kb_id, split_kb_id
from ..concept_kb import Concept, ConceptKB
from .common import DISEASE, PathLike, open_lines, split_values

MEDIC_COLUMNS = 9

def read_medic(path: PathLike, kb: Optional[ConceptKB] = None, source: str = "MEDIC") -> Tuple[ConceptKB, Counter]:
    """Add CTD MEDIC diseases (`CTD_diseases.tsv[.gz]`) to `kb`.

    DiseaseIDs lose their ``MESH:`` prefix; AltDiseaseIDs (OMIM, DO) become
    alt IDs, so corpus IDs such as ``OMIM:…`` resolve to the MEDIC concept.
    """
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    for line_no, line in enumerate(open_lines(path), start=1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != MEDIC_COLUMNS:
            raise CorpusFormatError(path, line_no, f"expected {MEDIC_COLUMNS} TAB-separated columns, found {len(cols)}")
        name, raw_id, alt_field = cols[0].strip(), cols[1], cols[2]
        cid, _ = normalize_kb_id(raw_id)
        if not cid or not name or len(split_kb_id(cid)) != 1:
            raise CorpusFormatError(path, line_no, f"bad DiseaseName/DiseaseID: {name!r} {raw_id!r}")
        alt_ids = []
        for alt in split_values(alt_field):
            alt_ids.append(normalize_kb_id(alt)[0])
        synonyms = split_values(cols[7])
        kb.add(Concept(cid, name, tuple(synonyms), (DISEASE,), tuple(alt_ids), (source,)))
        stats["concepts"] += 1
        stats["synonyms"] += len(synonyms)
        stats["alt_ids"] += len(alt_ids)
    return kb, stats
