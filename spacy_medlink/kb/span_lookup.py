"""KB candidates for entity spans: the lookup every linking component shares."""
from itertools import islice
from typing import Dict, List, Optional, Sequence

from spacy.tokens import Span

from .abbreviations import abbreviation_map
from .candidates import Candidate, CandidateGenerator


def span_candidates(
    generator: CandidateGenerator,
    spans: Sequence[Span],
    *,
    k: int = 10,
    type_map: Optional[Dict[str, str]] = None,
    use_abbreviations: bool = True,
) -> List[List[Candidate]]:
    """Candidates for each span, in one batched generator call (per-call
    overhead dominates small batches).

    The span's label, through `type_map`, restricts concept types. A short form
    defined in its document ("FMF" after "familial Mediterranean fever (FMF)")
    is looked up by its long form and by itself; each concept keeps its best
    score over the two queries.
    """
    type_map = type_map or {}
    long_forms: Dict[int, Dict[str, str]] = {}
    queries: List[str] = []
    types: List[Optional[str]] = []
    counts: List[int] = []
    for span in spans:
        texts = [span.text]
        if use_abbreviations:
            doc_key = id(span.doc)
            if doc_key not in long_forms:
                long_forms[doc_key] = abbreviation_map(span.doc)
            long_form = long_forms[doc_key].get(span.text)
            if long_form and long_form != span.text:
                texts.insert(0, long_form)
        counts.append(len(texts))
        queries.extend(texts)
        types.extend([type_map.get(span.label_, span.label_)] * len(texts))
    if not queries:
        return []
    found = iter(generator(queries, k=k, types=types))
    return [_best_per_concept(list(islice(found, n)), k) for n in counts]


def _best_per_concept(lists: List[List[Candidate]], k: int) -> List[Candidate]:
    if len(lists) == 1:
        return lists[0]
    best: Dict[str, Candidate] = {}
    for cands in lists:
        for cand in cands:
            if cand.concept_id not in best or cand.score > best[cand.concept_id].score:
                best[cand.concept_id] = cand
    return sorted(best.values(), key=lambda c: -c.score)[:k]
