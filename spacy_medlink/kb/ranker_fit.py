"""Fitting the candidate ranker (`kb.ranker`) on a split's gold mentions.

The ranker's own module applies it; this one builds its training data (each
gold mention's expanded candidates, feature rows and labels) and fits it,
cross-fit against the KB without the training mentions so that its features
look on the training split as they will on new text (`fit_ranker`).
"""
from collections import Counter
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy

from .names import Candidate
from .mention_stats import MentionStats, gold_atoms, split_stats
from .ranker import GENERATED, CandidateRanker

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

    from .candidates import CandidateGenerator
    from .concept_kb import ConceptKB
    from .encoder import NameEncoder


class MentionRows:
    """A split's single-concept gold mentions with their expanded candidates,
    feature rows and labels (1 where the candidate is the gold concept)."""

    def __init__(self, spans: List["Span"], gold: List[str], expanded: List[List[Tuple[Candidate, int]]],
                 X: numpy.ndarray, left_out: Optional[Counter] = None) -> None:
        self.spans = spans
        self.left_out = left_out if left_out is not None else Counter()  # gold mentions not fit on, by reason
        self.gold = gold
        self.expanded = expanded
        self.X = X
        self.y = numpy.asarray([c.concept_id == g for g, cands in zip(gold, expanded) for c, _ in cands],
                               dtype=numpy.float32)


def mention_rows(
    ranker: CandidateRanker,
    generator: "CandidateGenerator",
    docs: Sequence["Doc"],
    *,
    type_map: Optional[Dict[str, str]] = None,
    use_abbreviations: bool = True,
    own: Optional[Sequence[MentionStats]] = None,
) -> MentionRows:
    """Feature rows for the single-concept gold mentions (`doc.ents`) of `docs`;
    `own[d]` (doc d's share of the ranker's statistics) is left out for its mentions."""
    from .span_lookup import generator_candidates, span_long_forms

    resolve = generator.kb.resolve
    spans: List["Span"] = []
    left_out: Counter = Counter()
    gold: List[str] = []
    owners: List[Optional[MentionStats]] = []
    for d, doc in enumerate(docs):
        for ent in doc.ents:
            atoms = gold_atoms(ent.kb_id_, resolve)
            if len(atoms) == 1:
                spans.append(ent)
                gold.append(atoms[0])
                owners.append(own[d] if own is not None else None)
            else:
                left_out["composite" if atoms else "no concept"] += 1
    long_forms = span_long_forms(spans) if use_abbreviations else [None] * len(spans)
    cands = generator_candidates(generator, spans, long_forms, k=ranker.cfg["k"], type_map=type_map,
                                 variants=ranker.wants_variants)
    cands = [[Candidate(resolve(c.concept_id), c.score, c.name) for c in cs] for cs in cands]
    expanded = ranker.expand(spans, long_forms, cands, own=owners if own is not None else None)
    X = ranker.features(spans, long_forms, expanded, generator, own=owners if own is not None else None)
    return MentionRows(spans, gold, expanded, X, left_out)


def fit_ranker(
    generator: "CandidateGenerator",
    train_docs: Sequence["Doc"],
    fit_docs: Optional[Sequence["Doc"]] = None,
    *,
    base_kb: Optional["ConceptKB"] = None,
    folds: int = 5,
    k: int = 20,
    doc_candidates: int = 3,
    train_candidates: int = 3,
    learner: str = "lightgbm",
    params: Optional[Dict[str, Any]] = None,
    type_map: Optional[Dict[str, str]] = None,
    use_abbreviations: bool = True,
    seed: int = 0,
    features: Optional[Sequence[str]] = None,
    encoder: Optional["NameEncoder"] = None,
) -> Tuple[CandidateRanker, Dict[str, Any]]:
    """A ranker with `train_docs`' statistics and its weights fit on gold
    mentions, with a report of accuracy@1 out of fold against the
    generator's own top-1.

    The KB of `generator` holds the training split's mention strings as
    synonyms, so on the training split every gold string is an exact KB name,
    which would teach the learner to trust exact matches more than new text
    deserves. Two ways out:

    * `base_kb` (the KB without training mentions): cross-fitting. For each
      of `folds` document folds of `train_docs`, a KB of `base_kb` plus the
      other folds' mentions and the statistics without the fold give the
      fold's candidates and features, exactly as new text meets the full KB.
    * `fit_docs`: fit on another split's gold mentions (dev) against the
      full KB; then that split no longer scores the ranker fairly.
    """
    if encoder is not None:  # fit on the float16 weights the saved ranker will carry
        from .encoder import NameEncoder

        encoder = NameEncoder.from_dict(encoder.to_dict())
    ranker = CandidateRanker(k=k, doc_candidates=doc_candidates, train_candidates=train_candidates,
                             learner=learner, params=params, features=features, encoder=encoder)
    ranker.stats, _ = split_stats(train_docs, generator.kb.resolve)
    docs = list(train_docs if fit_docs is None else fit_docs)
    n_parts = max(folds, 1)
    parts = [docs[i::n_parts] for i in range(n_parts)]
    rows: List[MentionRows] = []
    for i, part in enumerate(parts):
        fold_gen, own = generator, None
        if fit_docs is None:
            if base_kb is None:
                raise ValueError("Fitting on the training split needs the KB without its mentions (base_kb)")
            if n_parts < 2:
                raise ValueError("Cross-fitting on the training split needs at least 2 folds")
            fold_gen = _fold_generator(generator, base_kb, [d for j, p in enumerate(parts) if j != i for d in p])
            held, _ = split_stats(part, generator.kb.resolve)
            own = [held] * len(part)
        rows.append(mention_rows(ranker, fold_gen, part, type_map=type_map, use_abbreviations=use_abbreviations,
                                 own=own))
    left_out = sum((r.left_out for r in rows), Counter())
    report: Dict[str, Any] = {"fit": "cross-fit on train" if fit_docs is None else "fit split",
                              "mentions": sum(len(r.gold) for r in rows), "left_out": dict(left_out),
                              "folds": len(parts)}
    if len(parts) > 1:
        tallies: Dict[str, Dict[str, int]] = {}
        for i, held_rows in enumerate(rows):
            rest = [r for j, r in enumerate(rows) if j != i]
            ranker.fit(numpy.concatenate([r.X for r in rest]), numpy.concatenate([r.y for r in rest]), seed=seed)
            _tally(held_rows, ranker.predict(held_rows.X), tallies)
        report["out_of_fold"] = _accuracies(tallies)
    ranker.fit(numpy.concatenate([r.X for r in rows]), numpy.concatenate([r.y for r in rows]), seed=seed)
    gain = ranker.feature_gain()
    if gain is not None:
        report["feature_gain"] = gain
    return ranker, report


def _fold_generator(generator: "CandidateGenerator", base_kb: "ConceptKB", docs: Sequence["Doc"]) -> "CandidateGenerator":
    """`generator`'s index settings over `base_kb` plus the training mentions of `docs`."""
    from .builders import add_train_mentions
    from .concept_kb import ConceptKB

    kb = ConceptKB().from_bytes(base_kb.to_bytes())
    add_train_mentions(kb, docs, "fold")
    return generator.with_kb(kb)


def _tally(rows: MentionRows, probs: numpy.ndarray, tallies: Dict[str, Dict[str, int]]) -> None:
    pos = 0
    for gold, cands, span in zip(rows.gold, rows.expanded, rows.spans):
        p = probs[pos : pos + len(cands)]
        pos += len(cands)
        ids = [c.concept_id for c, _ in cands]
        generated = [c.concept_id for c, origin in cands if origin == GENERATED]
        for key in ("all", span.label_):
            t = tallies.setdefault(key, {"n": 0, "kb": 0, "ranker": 0, "in_candidates": 0})
            t["n"] += 1
            t["kb"] += bool(generated) and generated[0] == gold
            t["ranker"] += bool(ids) and ids[int(numpy.argmax(p))] == gold
            t["in_candidates"] += gold in ids


def _accuracies(tallies: Dict[str, Dict[str, int]]) -> Dict[str, Dict[str, float]]:
    return {key: {"n": t["n"], "kb_acc@1": round(t["kb"] / t["n"], 4), "ranker_acc@1": round(t["ranker"] / t["n"], 4),
                  "candidate_recall": round(t["in_candidates"] / t["n"], 4)} for key, t in sorted(tallies.items())}
