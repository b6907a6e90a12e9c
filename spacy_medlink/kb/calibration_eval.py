"""Scoring a calibrated ranker on real mentions: the check beside `kb.calibration`'s
held-out estimate on pseudo-mentions (`kb calibrate --eval`)."""
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Sequence, Union

import numpy
import spacy
from spacy.tokens import DocBin

from .calibration import reliability
from .mention_stats import gold_atoms
from .span_lookup import span_candidates

if TYPE_CHECKING:
    from .candidates import CandidateGenerator
    from .ranker import CandidateRanker


def evaluate_calibration(generator: "CandidateGenerator", ranker: "CandidateRanker", corpus: Union[str, Path],
                         thresholds: Sequence[float] = (0.5, 0.7, 0.9)) -> Dict[str, Any]:
    """The top-1 of each single-concept gold mention of `corpus` (looked up as a pipeline
    does: typed by its label, short forms by their long form; no composites), its raw and
    calibrated score and whether it is the gold concept: reliability of both scores and, per
    threshold, the share of mentions linked and the precision of those links.

    The held-out ECE of `fit_calibration` is measured on pseudo-mentions of the KB's own
    names; only a corpus shows how the map fares on real mentions (unseen spellings,
    abbreviations, concepts the KB lacks). It lives apart from `kb.calibration` (which `kb.ranker` imports: the span lookup
    here would close an import cycle) and from `kb calibrate`, so that
    anything holding a generator and a calibrated ranker can score it the same way.
    `ranker` is set on `generator` only for the lookup; the generator's own is restored.
    """

    docs = list(DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab))
    resolve = generator.kb.resolve
    spans, gold = [], []
    for doc in docs:
        for ent in doc.ents:
            atoms = gold_atoms(ent.kb_id_, resolve)
            if len(atoms) == 1:
                spans.append(ent)
                gold.append(atoms[0])
    saved, generator.ranker = generator.ranker, None
    try:
        raw = span_candidates(generator, spans, k=10, composites=False)
        generator.ranker = ranker
        calibrated = span_candidates(generator, spans, k=10, composites=False)
    finally:
        generator.ranker = saved
    rows = []
    for span, g, r, c in zip(spans, gold, raw, calibrated):
        rows.append((span.label_, r[0].score if r else 0.0, c[0].score if c else 0.0,
                     float(bool(c) and c[0].concept_id == g), bool(c)))
    out: Dict[str, Any] = {"by_label": {}}
    for key in ["all"] + sorted({row[0] for row in rows}):
        part = [row for row in rows if key == "all" or row[0] == key]
        raw_s = [row[1] for row in part]
        cal_s = numpy.asarray([row[2] for row in part])
        right = numpy.asarray([row[3] for row in part])
        cuts = {}
        for t in thresholds:
            linked = cal_s >= t
            cuts[str(t)] = {"linked": round(float(linked.mean()), 4) if len(part) else 0.0,
                            "precision": round(float(right[linked].mean()), 4) if linked.any() else None}
        out["by_label"][key] = {"mentions": len(part), "no_candidates": sum(1 for row in part if not row[4]),
                                "accuracy@1": round(float(right.mean()), 4) if len(part) else 0.0,
                                "raw_similarity": reliability(raw_s, right), "calibrated": reliability(cal_s, right),
                                "calibrated_thresholds": cuts}
    return out
