"""The training samples of medlink_gated_normalizer (its module docstring has
the recipe): the (text, concept) pairs of one update, drawn afresh each time,
and their targets y_m (the text mentions e) and y_h (B/I/O of e's mentions).

A text is a doc or, with ``pair_context = "sentence"``, one of its sentences
(`text_segments`, which inference uses too). Everything here reads the gold
side of `Example`s through the token alignment, so a mention that does not
align to the predicted tokens is never tagged, and the KB only through the
candidate generator (`kb/span_lookup.py`).
"""
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..ids import split_kb_id

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator

HIGH_O, HIGH_B, HIGH_I = 0, 1, 2  # y_h: B/I/O of "a mention of concept e"

Mention = Tuple[int, int, List[str]]  # token start, end, gold concept IDs


class TrainingPairs(NamedTuple):
    """One update's pairs: pair p is (text of doc pair_doc[p], tokens
    [starts[p], ends[p])) with concept pair_ids[p]."""

    pair_doc: List[int]
    pair_ids: List[str]
    starts: List[int]
    ends: List[int]


def draw_pairs(
    examples: Sequence[Example],
    cfg: Dict[str, Any],
    generator: Optional["CandidateGenerator"],
    hard_cache: Dict[Tuple[str, str], List[str]],
    has_names: Callable[[str], bool],
) -> TrainingPairs:
    """Each text's positives, hard and random negatives (`sample_concepts`).

    cfg: the pipe's settings (pair_context, the negative counts, k, type_map,
    concepts). hard_cache: KB candidates per (mention text, label), kept by the
    pipe across updates. has_names: whether a concept can be encoded.
    """
    by_sentence = cfg["pair_context"] == "sentence"
    out = TrainingPairs([], [], [], [])
    for d, eg in enumerate(examples):
        concepts = doc_concepts(eg, generator)
        hard = (
            hard_candidates(eg, generator, hard_cache, k=cfg["k"], type_map=cfg["type_map"])
            if cfg["n_hard_negatives"] and generator is not None
            else []
        )
        if not by_sentence:
            texts = [(0, len(eg.predicted), concepts, concepts, hard)]
        else:
            mentions = aligned_mentions(eg, eg.get_aligned_ents_and_ner()[0], generator)
            # a concept whose mention did not align to the tokens has no sentence:
            # never a negative of one either
            unaligned = set(concepts).difference(c for _, _, cids in mentions for c in cids)
            texts = []
            for s, e in text_segments(eg.predicted, [(m[0], m[1]) for m in mentions]):
                here = list(dict.fromkeys(c for ms, me, cids in mentions if s <= ms < e for c in cids))
                # the doc's other concepts are the hardest negatives of a sentence
                texts.append((s, e, here, [*here, *unaligned], [c for c in concepts if c not in here] + hard))
        for s, e, positives, excluded, hard_pool in texts:
            for cid in sample_concepts(positives, excluded, hard_pool, cfg, generator, has_names):
                out.pair_doc.append(d)
                out.pair_ids.append(cid)
                out.starts.append(s)
                out.ends.append(e)
    return out


def sample_concepts(
    concepts: List[str],
    excluded: List[str],
    hard_pool: List[str],
    cfg: Dict[str, Any],
    generator: Optional["CandidateGenerator"],
    has_names: Callable[[str], bool],
) -> List[str]:
    """One text's concepts: its own (a random subset when there are too many),
    then hard negatives from hard_pool and random ones (half from the training
    concepts, half from the whole KB), none in excluded."""
    rng = numpy.random
    n_neg, n_hard = cfg["n_negatives"], cfg["n_hard_negatives"]
    max_pos = max(1, cfg["max_concepts_per_doc"] - n_neg - n_hard)
    kb_ids = generator.concept_ids if generator is not None else []
    pool = cfg["concepts"]
    positives = [c for c in concepts if has_names(c)]
    if len(positives) > max_pos:
        positives = [positives[i] for i in sorted(rng.choice(len(positives), max_pos, replace=False))]
    taken = set(excluded) | set(concepts)
    negatives: List[str] = []
    if n_hard:
        hard = [c for c in dict.fromkeys(hard_pool) if c not in taken]
        for i in rng.permutation(len(hard))[:n_hard]:
            negatives.append(hard[i])
            taken.add(hard[i])
    for attempt in range(4 * n_neg):
        if len(negatives) >= n_hard + n_neg or (not pool and not kb_ids):
            break
        source = pool if (attempt % 2 == 0 and pool) or not kb_ids else kb_ids
        cid = source[rng.randint(len(source))]
        if cid not in taken and has_names(cid):
            negatives.append(cid)
            taken.add(cid)
    return positives + negatives


def pair_targets(
    examples: Sequence[Example],
    pair_doc: Sequence[int],
    pair_ids: Sequence[str],
    n_positions: int,
    generator: Optional["CandidateGenerator"],
    pair_start: Optional[numpy.ndarray] = None,
    pair_end: Optional[numpy.ndarray] = None,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """y_m (P,) and y_h (P, T): B/I/O of the mentions of each pair's concept
    within the pair's text (the doc, or tokens [pair_start, pair_end));
    -1 (no loss) at padding and at tokens the gold does not align to."""
    mid = numpy.zeros(len(pair_ids), dtype=numpy.int64)
    high = numpy.full((len(pair_ids), n_positions), -1, dtype=numpy.int64)
    aligned: Dict[int, Tuple[numpy.ndarray, List[Mention], List[str]]] = {}
    for p, (d, cid) in enumerate(zip(pair_doc, pair_ids)):
        if d not in aligned:
            eg = examples[d]
            x_ents, tags = eg.get_aligned_ents_and_ner()
            known = numpy.asarray([t is not None for t in tags], dtype=bool)
            aligned[d] = (known, aligned_mentions(eg, x_ents, generator), doc_concepts(eg, generator))
        known, spans, concepts = aligned[d]
        s = 0 if pair_start is None else int(pair_start[p])
        e = len(known) if pair_end is None else int(pair_end[p])
        high[p, s:e] = numpy.where(known[s:e], HIGH_O, -1)
        for start, end, cids in spans:
            if cid in cids and s <= start and end <= e:
                mid[p] = 1
                high[p, start] = HIGH_B
                high[p, start + 1 : end] = HIGH_I
        if not mid[p] and pair_start is None and cid in concepts:
            mid[p] = 1  # a mention that did not align still says the doc mentions e
    return mid, high


def gold_ids(kb_id: str, generator: Optional["CandidateGenerator"]) -> List[str]:
    """Atomic concept IDs of a gold kb_id (composites split), resolved to KB primary IDs."""
    atoms = sorted(split_kb_id(kb_id))
    if generator is not None:
        atoms = [generator.kb.resolve(a) for a in atoms]
    return list(dict.fromkeys(a for a in atoms if a))


def doc_concepts(eg: Example, generator: Optional["CandidateGenerator"]) -> List[str]:
    """The gold concepts of the doc's mentions, in order of first mention."""
    out: Dict[str, None] = {}
    for ent in eg.reference.ents:
        for cid in gold_ids(ent.kb_id_, generator):
            out[cid] = None
    return list(out)


def aligned_mentions(eg: Example, x_ents: Sequence[Span], generator: Optional["CandidateGenerator"]) -> List[Mention]:
    """The gold mentions aligned to the predicted doc's tokens (x_ents, from
    `Example.get_aligned_ents_and_ner`) as (start, end, concept IDs)."""
    ids = {(e.start_char, e.end_char, e.label_): e.kb_id_ for e in eg.reference.ents}
    return [
        (e.start, e.end, gold_ids(ids.get((e.start_char, e.end_char, e.label_), ""), generator)) for e in x_ents
    ]


def hard_candidates(
    eg: Example,
    generator: "CandidateGenerator",
    cache: Dict[Tuple[str, str], List[str]],
    *,
    k: int,
    type_map: Dict[str, str],
) -> List[str]:
    """KB candidates of the doc's gold mentions (cached per mention text and label)."""
    from ..kb.span_lookup import span_candidates

    todo = [ent for ent in eg.reference.ents if (ent.text, ent.label_) not in cache]
    if todo:
        found = span_candidates(generator, todo, k=k, type_map=type_map, use_abbreviations=False)
        for ent, cands in zip(todo, found):
            cache[(ent.text, ent.label_)] = [c.concept_id for c in cands]
    out: Dict[str, None] = {}
    for ent in eg.reference.ents:
        for cid in cache[(ent.text, ent.label_)]:
            out[cid] = None
    return list(out)


_SENTENCIZER = Sentencizer()


def text_segments(doc: Doc, spans: Sequence[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """The doc's sentences as token ranges [start, end), covering the doc: its
    own sentence boundaries where it has them, else those of spaCy's
    rule-based `Sentencizer`, minus any boundary inside one of the spans
    (a mention is never split between two texts)."""
    if not len(doc):
        return []
    if doc.has_annotation("SENT_START"):
        starts = [sent.start for sent in doc.sents]
    else:
        starts = [i for i, is_start in enumerate(_SENTENCIZER.predict([doc])[0]) if is_start]
    inside = {i for start, end in spans for i in range(start + 1, end)}
    starts = sorted({0} | {i for i in starts if i not in inside and 0 < i < len(doc)})
    return list(zip(starts, starts[1:] + [len(doc)]))
