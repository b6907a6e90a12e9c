"""One scorer for NER and concept normalization, shared by every component.

NER is spaCy's strict mention-level P/R/F (``ents_*``). Normalization is
scored twice, the way the biomedical literature does:

* mention level (``nen_p/r/f``, ``nen_per_type``): a predicted mention is right
  when its character span, its label and its *set* of concept IDs all equal a
  gold mention's. Composite IDs compare as sets (``D1|D2`` == ``D2|D1``).
* document level (``nen_doc_p/r/f``, ``nen_doc_per_type``), as in the
  BioCreative V CDR task: the set of (label, concept ID) pairs of a document,
  composite IDs split into their atoms, against the gold set.

Gold mentions without a concept (``kb_id_ == ""``) count for NER and are left
out of normalization; a predicted ID on such a span is neither right nor
wrong, as spaCy does for unannotated tokens. A predicted mention with no ID
makes no normalization claim: it can only cost recall.

An optional ``id_resolver`` maps every atomic ID (gold and predicted) before
comparison, so a pipeline can score against the KB it links to, where corpus
IDs have since been merged into another concept (``OMIM:…`` → ``D…``).
"""
from collections import defaultdict
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Set, Tuple

from spacy.scorer import PRFScore, get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .ids import split_kb_id

IdResolver = Callable[[str], str]
_Mention = Tuple[int, int, str, FrozenSet[str]]


def _ids(kb_id: str, resolver: Optional[IdResolver]) -> FrozenSet[str]:
    atoms = split_kb_id(kb_id)
    return frozenset(resolver(a) for a in atoms) if resolver else atoms


def _mentions(doc: Doc, resolver: Optional[IdResolver]) -> Tuple[Set[_Mention], Set[Tuple[int, int, str]]]:
    """(mentions with IDs, spans of mentions without an ID)."""
    linked: Set[_Mention] = set()
    nil: Set[Tuple[int, int, str]] = set()
    for ent in doc.ents:
        ids = _ids(ent.kb_id_, resolver)
        if ids:
            linked.add((ent.start_char, ent.end_char, ent.label_, ids))
        else:
            nil.add((ent.start_char, ent.end_char, ent.label_))
    return linked, nil


def _prf_dict(totals: PRFScore, per_type: Dict[str, PRFScore], prefix: str) -> Dict[str, Any]:
    empty = len(totals) == 0
    return {
        f"{prefix}_p": None if empty else totals.precision,
        f"{prefix}_r": None if empty else totals.recall,
        f"{prefix}_f": None if empty else totals.fscore,
        f"{prefix}_per_type": {k: v.to_dict() for k, v in sorted(per_type.items())},
    }


def score_nen(
    examples: Iterable[Example], *, id_resolver: Optional[IdResolver] = None, **kwargs
) -> Dict[str, Any]:
    """Mention- and document-level normalization P/R/F, overall and per label."""
    mention = defaultdict(PRFScore)
    document = defaultdict(PRFScore)
    for eg in examples:
        gold, gold_nil = _mentions(eg.reference, id_resolver)
        pred, _ = _mentions(eg.predicted, id_resolver)
        pred = {m for m in pred if m[:3] not in gold_nil}
        for label in {m[2] for m in gold | pred}:
            mention[label].score_set({m for m in pred if m[2] == label}, {m for m in gold if m[2] == label})
        gold_doc = {(m[2], i) for m in gold for i in m[3]}
        pred_doc = {(m[2], i) for m in pred for i in m[3]}
        for label in {label for label, _ in gold_doc | pred_doc}:
            document[label].score_set({p for p in pred_doc if p[0] == label}, {g for g in gold_doc if g[0] == label})
    out = _prf_dict(sum(mention.values(), PRFScore()), mention, "nen")
    out.update(_prf_dict(sum(document.values(), PRFScore()), document, "nen_doc"))
    return out


def score_ner_nen(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
    """spaCy's strict NER scores plus normalization, for joint components."""
    examples = list(examples)
    scores = get_ner_prf(examples)
    scores.update(score_nen(examples, **kwargs))
    return scores


def score_nen_seen_unseen(
    examples: Iterable[Example], seen: Set[str], *, id_resolver: Optional[IdResolver] = None
) -> Dict[str, Dict[str, Any]]:
    """Normalization recall on gold mentions split by whether their concept
    occurs in training (`seen`: atomic IDs, resolved like the rest).

    A gold mention is *unseen* when none of its concept IDs is in `seen` (the
    zero-shot case: no classifier over training concepts can output it),
    *seen* otherwise. Recall = the share of those gold mentions that a
    prediction matches exactly (span, label and ID set), as in `score_nen`.
    Precision has no meaning here: a prediction does not know its split.
    """
    counts = {"seen": [0, 0], "unseen": [0, 0]}
    for eg in examples:
        gold, _ = _mentions(eg.reference, id_resolver)
        pred, _ = _mentions(eg.predicted, id_resolver)
        for mention in gold:
            split = "seen" if mention[3] & seen else "unseen"
            counts[split][0] += 1
            counts[split][1] += mention in pred
    return {
        split: {"mentions": n, "correct": k, "recall": (k / n) if n else None} for split, (n, k) in counts.items()
    }


@registry.scorers("medlink.nen_scorer.v1")
def make_nen_scorer() -> Callable[..., Dict[str, Any]]:
    """For linkers that put IDs on entities found by another component."""
    return score_nen


@registry.scorers("medlink.ner_nen_scorer.v1")
def make_ner_nen_scorer() -> Callable[..., Dict[str, Any]]:
    """For components that find and link entities in one go."""
    return score_ner_nen


NEN_SCORE_WEIGHTS = {"nen_f": 1.0, "nen_p": 0.0, "nen_r": 0.0, "nen_doc_f": 0.0, "nen_doc_p": 0.0, "nen_doc_r": 0.0}
# components that find and link: entity F and mention-level normalization F count alike
NER_NEN_SCORE_WEIGHTS = {"ents_f": 0.5, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None, **NEN_SCORE_WEIGHTS, "nen_f": 0.5}


def score_mentions(examples: Iterable[Example], *, mentions_key: str, **kwargs) -> Dict[str, Any]:
    """Untyped mention recognition P/R/F (``mr_p/r/f``): the predicted span
    group `mentions_key` against the gold entities' character offsets, labels
    ignored. Empty when no prediction carries the group."""
    score = PRFScore()
    seen = False
    for eg in examples:
        if mentions_key not in eg.predicted.spans:
            continue
        seen = True
        pred = {(s.start_char, s.end_char) for s in eg.predicted.spans[mentions_key]}
        gold = {(e.start_char, e.end_char) for e in eg.reference.ents}
        score.score_set(pred, gold)
    if not seen:
        return {}
    return {"mr_p": score.precision, "mr_r": score.recall, "mr_f": score.fscore}


@registry.scorers("medlink.hier_scorer.v1")
def make_hier_scorer(mentions_key: str = "medlink_mentions") -> Callable[..., Dict[str, Any]]:
    """NER (= entity typing) and normalization (= linking) as
    `medlink.ner_nen_scorer.v1`, plus mention recognition on its own."""

    def score(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        examples = list(examples)
        scores = score_ner_nen(examples, **kwargs)
        scores.update(score_mentions(examples, mentions_key=mentions_key))
        return scores

    return score


HIER_SCORE_WEIGHTS = {**NER_NEN_SCORE_WEIGHTS, "mr_f": 0.0, "mr_p": 0.0, "mr_r": 0.0}


# -- nested (span) recognition -----------------------------------------------------
_Span = Tuple[int, int, str]


def _overlapping(spans: Set[_Span]) -> Set[_Span]:
    """The spans that share a character with another span of the set (nested or crossing)."""
    ordered = sorted(spans)
    out: Set[_Span] = set()
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b[0] >= a[1]:
                break
            out.update((a, b))
    return out


def score_nested_spans(examples: Iterable[Example], *, spans_key: str = "nested", **kwargs) -> Dict[str, Any]:
    """Exact-match P/R/F over every span of ``doc.spans[spans_key]`` (start,
    end, label), overall and per label, as spaCy's ``score_spans`` with
    overlaps allowed (same keys: ``spans_{key}_p/r/f/per_type``), plus the
    breakdown into flat and nested spans: a span is *nested* when it shares a
    character with another span of the same doc (gold with gold, predicted
    with predicted; any labels), *flat* otherwise. ``spans_{key}_nested_r``
    is the recall on nested gold spans, the number nested-NER papers report.
    A reference without the key has no annotation and is skipped."""
    totals = defaultdict(PRFScore)  # "all", "flat", "nested"
    per_type = defaultdict(PRFScore)
    for eg in examples:
        if spans_key not in eg.reference.spans:
            continue
        gold = {(s.start_char, s.end_char, s.label_) for s in eg.reference.spans[spans_key]}
        pred = {(s.start_char, s.end_char, s.label_) for s in eg.predicted.spans.get(spans_key, [])}
        totals["all"].score_set(pred, gold)
        for label in {s[2] for s in gold | pred}:
            per_type[label].score_set({s for s in pred if s[2] == label}, {s for s in gold if s[2] == label})
        gold_nested, pred_nested = _overlapping(gold), _overlapping(pred)
        totals["nested"].score_set(pred_nested, gold_nested)
        totals["flat"].score_set(pred - pred_nested, gold - gold_nested)
    prefix = f"spans_{spans_key}"
    out = _prf_dict(totals["all"], per_type, prefix)
    for part in ("flat", "nested"):
        score = totals[part]
        out[f"{prefix}_{part}_p"] = score.precision if len(totals["all"]) else None
        out[f"{prefix}_{part}_r"] = score.recall if len(totals["all"]) else None
        out[f"{prefix}_{part}_f"] = score.fscore if len(totals["all"]) else None
        out[f"{prefix}_{part}_gold"] = score.tp + score.fn
    return out


@registry.scorers("medlink.nested_spans_scorer.v1")
def make_nested_spans_scorer(spans_key: str = "nested") -> Callable[..., Dict[str, Any]]:
    """For nested recognizers (and spaCy's spancat, for a like-for-like peer):
    span P/R/F with the flat/nested breakdown. A `spans_key` given by the
    calling component (spancat passes its own) wins over this default."""

    def scorer(examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        kwargs.setdefault("spans_key", spans_key)
        return score_nested_spans(examples, **kwargs)

    return scorer


NESTED_SCORE_WEIGHTS = {
    "spans_nested_f": 1.0, "spans_nested_p": 0.0, "spans_nested_r": 0.0, "spans_nested_per_type": None,
}
