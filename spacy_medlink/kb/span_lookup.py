"""KB candidates for entity spans: the lookup every linking component shares."""
from itertools import islice
from typing import Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Span

from .abbreviations import abbreviation_maps, spell_out
from .candidates import CandidateGenerator
from .names import Candidate, normalize_name
from .variants import query_variants


def span_candidates(
    generator: CandidateGenerator,
    spans: Sequence[Span],
    *,
    k: int = 10,
    type_map: Optional[Dict[str, str]] = None,
    use_abbreviations: bool = True,
    rank: bool = True,
    composites: bool = True,
) -> List[List[Candidate]]:
    """Candidates for each span, in one batched generator call (per-call
    overhead dominates small batches).

    The span's label, through `type_map`, restricts concept types. A short form
    defined in its document ("FMF" after "familial Mediterranean fever (FMF)")
    is looked up by its long form and by itself; each concept keeps its best
    score over the two queries. Where the KB carries a trained ranker
    (`generator.ranker`) and `rank` is true, it reorders the candidates and
    their scores are its probabilities; with `composites`, a coordinated
    mention whose parts each link more surely than the whole gets the joined
    IDs as its first candidate (`kb.composite`).
    """
    long_forms = span_long_forms(spans) if use_abbreviations else [None] * len(spans)
    ranker = generator.ranker if rank else None
    n = max(k, ranker.cfg["k"]) if ranker is not None else k
    variants = ranker.wants_variants if ranker is not None else ()
    found = generator_candidates(generator, spans, long_forms, k=n, type_map=type_map, variants=variants)
    if ranker is None or not spans:
        return found
    ranked = ranker.rerank(spans, long_forms, found, generator, k)
    if composites:
        _add_composites(generator, spans, ranked, type_map)
    return ranked


def _add_composites(generator: CandidateGenerator, spans: Sequence[Span], ranked: List[List[Candidate]],
                    type_map: Optional[Dict[str, str]]) -> None:
    from .composite import choose_composite, composite_parts

    ranker = generator.ranker
    assert ranker is not None
    parts = composite_parts(spans)
    flat = [p for ps in parts for p in ps]
    if not flat:
        return
    none: List[Optional[str]] = [None] * len(flat)
    found = ranker.rerank(flat, none, generator_candidates(generator, flat, none, k=ranker.cfg["k"], type_map=type_map,
                                                           variants=ranker.wants_variants), generator, 1)
    pos = 0
    for i, ps in enumerate(parts):
        if not ps:
            continue
        vote = ranker.stats.composite_vote(normalize_name(spans[i].text))
        composite = choose_composite(ranked[i], found[pos : pos + len(ps)], vote)
        pos += len(ps)
        if composite is not None:
            ranked[i].insert(0, composite)


def span_long_forms(spans: Sequence[Span]) -> List[Optional[str]]:
    """The long form each span's text abbreviates in its document, else None; a
    span that holds a short form of its document has it spelled out
    ("isolated DMS" → "isolated diffuse mesangial sclerosis", `spell_out`)."""
    maps: Dict[int, Tuple[Dict[str, str], Dict[str, str]]] = {}
    out: List[Optional[str]] = []
    for span in spans:
        doc_key = id(span.doc)
        if doc_key not in maps:
            maps[doc_key] = abbreviation_maps(span.doc)
        abbrevs, spellable = maps[doc_key]
        long_form = abbrevs.get(span.text)
        if long_form is None and spellable:
            long_form = spell_out(span.text, spellable)
        out.append(long_form if long_form and long_form != span.text else None)
    return out


def generator_candidates(
    generator: CandidateGenerator,
    spans: Sequence[Span],
    long_forms: Sequence[Optional[str]],
    *,
    k: int,
    type_map: Optional[Dict[str, str]] = None,
    variants: Sequence[str] = (),
) -> List[List[Candidate]]:
    """The generator's own candidates: long form and text queried (and the
    text's variants under the rule sets `variants` names, `kb.variants`), best score per concept."""
    type_map = type_map or {}
    queries: List[str] = []
    types: List[Optional[str]] = []
    counts: List[int] = []
    for span, long_form in zip(spans, long_forms):
        texts = [long_form, span.text] if long_form else [span.text]
        if variants:
            texts.extend(query_variants(span.text, variants))
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
