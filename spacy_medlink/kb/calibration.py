"""A calibrated score for a KB without a trained ranker, fit on the KB itself.

The candidate generator's similarity (1.0 for an exact normalized name, else a
character n-gram cosine) ranks candidates but is no probability: 0.8 means
different things in a KB of 5,000 disease names and one of 3 million UMLS
strings, and a threshold on it does not transfer. Without a corpus annotated
with the KB's IDs there is nothing to fit a ranker on, but the KB itself holds
labelled examples: its synonyms. `fit_calibration` turns some of them into
pseudo-mentions and fits a monotone map from the generator's top-1 similarity
to the probability that the top-1 is the right concept:

* a *held-out* pseudo-mention is a name of a concept with at least two distinct
  normalized names, queried as if the KB lacked that name (the concept is
  scored by its other names; every other concept keeps all of its names), with
  one perturbation in half of them (a dropped or swapped token, a typo, a
  plural), as a mention that no KB name spells out;
* an *exact* pseudo-mention (`exact_share` of them) is a name queried against
  the whole KB: it scores 1.0, and is right unless other concepts of its type
  share the name (an ambiguous name counts as right 1/m of the time among m
  concepts tied at the top).

Each entity type gets the same number of pseudo-mentions (a small vocabulary's
concepts drawn again, with other names and perturbations), each queried with
its concept's type, as a mention of that label is. The map is isotonic (scikit-learn's `IsotonicRegression`),
fit per type where a type has `min_per_type` pseudo-mentions and over all of
them; it is kept as breakpoints, interpolated linearly, bounded away from 0 and
1 by 1/(n+1), and saved as JSON-compatible lists (no pickle). What it
estimates is P(top-1 correct | similarity) for a mention of a concept the KB
holds, spelled as the KB's own names vary; it knows nothing of mentions of
concepts the KB lacks or of recognizer errors, which only a corpus can show:
`kb.calibration_eval.evaluate_calibration` scores a map on a corpus's gold mentions (`kb calibrate --eval`).
"""
import json
import random
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy

from .names import normalize_name

if TYPE_CHECKING:
    from .candidates import CandidateGenerator

FORMAT_VERSION = 1
ALL = ""  # the key of the map fit on every pseudo-mention
PERTURBATIONS = ("drop_token", "swap_tokens", "typo", "plural")


class ScoreCalibration:
    """Monotone maps from the generator's similarity to P(top-1 correct), one over
    all mentions (key "") and one per entity type that had enough pseudo-mentions.

    maps: key -> (x, y) breakpoints, x increasing, y non-decreasing in [0, 1].
    info: how the maps were fit (counts, settings, held-out quality), kept with them.
    """

    def __init__(self, maps: Dict[str, Tuple[Sequence[float], Sequence[float]]],
                 info: Optional[Dict[str, Any]] = None) -> None:
        if ALL not in maps:
            raise ValueError("A score calibration needs a map over all mentions (key '')")
        self.maps: Dict[str, Tuple[numpy.ndarray, numpy.ndarray]] = {}
        for key, (x, y) in maps.items():
            xs, ys = numpy.asarray(x, dtype=numpy.float64), numpy.asarray(y, dtype=numpy.float64)
            if xs.ndim != 1 or xs.shape != ys.shape or not len(xs):
                raise ValueError(f"Calibration map {key!r}: x and y must be equal-length, non-empty lists")
            if numpy.any(numpy.diff(xs) < 0) or numpy.any(numpy.diff(ys) < 0):
                raise ValueError(f"Calibration map {key!r} is not monotone")
            if ys.min() < 0.0 or ys.max() > 1.0:
                raise ValueError(f"Calibration map {key!r} leaves [0, 1]")
            self.maps[key] = (xs, ys)
        self.info: Dict[str, Any] = dict(info or {})

    def __call__(self, scores: Union[Sequence[float], numpy.ndarray], label: Optional[str] = None) -> numpy.ndarray:
        """P(top-1 correct) for generator similarities, by the map of `label` where there is one."""
        x, y = self.maps.get(label or ALL, self.maps[ALL])
        return numpy.interp(numpy.asarray(scores, dtype=numpy.float64), x, y)

    def to_dict(self) -> Dict[str, Any]:
        return {"format": FORMAT_VERSION,
                "maps": {key: {"x": x.tolist(), "y": y.tolist()} for key, (x, y) in self.maps.items()},
                "info": self.info}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ScoreCalibration":
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported score calibration format {data.get('format')!r}")
        return cls({key: (m["x"], m["y"]) for key, m in data["maps"].items()}, data.get("info"))

    def to_disk(self, path: Union[str, Path]) -> None:
        """JSON, written by the standard library (shortest round-tripping floats), so the map
        read back is the same map."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1), encoding="utf8")

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "ScoreCalibration":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf8")))


def fit_monotone(scores: Sequence[float], targets: Sequence[float]) -> Tuple[List[float], List[float]]:
    """Isotonic breakpoints from (score, P(correct)) pairs, bounded to [1/(n+1), n/(n+1)]:
    a few hundred pseudo-mentions never justify a certainty."""
    from sklearn.isotonic import IsotonicRegression

    n = len(scores)
    if n == 0:
        raise ValueError("No pseudo-mentions to fit a calibration on")
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(numpy.asarray(scores, dtype=numpy.float64), numpy.asarray(targets, dtype=numpy.float64))
    x = numpy.asarray(iso.X_thresholds_, dtype=numpy.float64)
    y = numpy.clip(numpy.asarray(iso.y_thresholds_, dtype=numpy.float64), 1.0 / (n + 1), n / (n + 1))
    y = numpy.maximum.accumulate(y)  # exactly monotone after rounding
    return [round(float(v), 6) for v in x], [round(float(v), 6) for v in y]


def reliability(probs: Sequence[float], targets: Sequence[float], bins: int = 10) -> Dict[str, Any]:
    """Expected calibration error (equal-width bins, weighted by their share), Brier score,
    and each non-empty bin's mean probability and mean outcome."""
    p = numpy.asarray(probs, dtype=numpy.float64)
    t = numpy.asarray(targets, dtype=numpy.float64)
    if not len(p):
        return {"n": 0}
    which = numpy.minimum((p * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = which == b
        if mask.any():
            conf, acc = float(p[mask].mean()), float(t[mask].mean())
            ece += mask.mean() * abs(conf - acc)
            table.append({"bin": [b / bins, (b + 1) / bins], "n": int(mask.sum()), "mean_score": round(conf, 4),
                          "accuracy": round(acc, 4)})
    return {"n": int(len(p)), "ece": round(float(ece), 4), "brier": round(float(numpy.mean((p - t) ** 2)), 4),
            "mean_score": round(float(p.mean()), 4), "accuracy": round(float(t.mean()), 4), "bins": table}


class PseudoMention(NamedTuple):
    text: str
    concept_id: str
    type_: str
    held_key: Optional[str]  # the normalized name the query must not find the concept by (None: exact)
    perturbation: str


def perturb(text: str, rng: random.Random) -> Tuple[str, str]:
    """`text` with one of PERTURBATIONS that applies to it, and its name ("" where none applies)."""
    tokens = text.split()
    options = []
    if len(tokens) >= 2:
        options += ["drop_token", "swap_tokens"]
    if any(len(t) >= 4 and t.isalpha() for t in tokens):
        options.append("typo")
    if tokens and tokens[-1].isalpha() and len(tokens[-1]) >= 3:
        options.append("plural")
    if not options:
        return text, ""
    kind = rng.choice(options)
    if kind == "drop_token":
        del tokens[rng.randrange(len(tokens))]
    elif kind == "swap_tokens":
        i = rng.randrange(len(tokens) - 1)
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    elif kind == "typo":
        i = rng.choice([j for j, t in enumerate(tokens) if len(t) >= 4 and t.isalpha()])
        word = tokens[i]
        pos = rng.randrange(1, len(word) - 1)
        edit = rng.randrange(3)
        if edit == 0:  # delete a letter
            word = word[:pos] + word[pos + 1:]
        elif edit == 1:  # swap two letters
            word = word[:pos - 1] + word[pos] + word[pos - 1] + word[pos + 1:]
        else:  # double a letter
            word = word[:pos] + word[pos] + word[pos:]
        tokens[i] = word
    else:
        last = tokens[-1]
        tokens[-1] = last[:-1] if last.endswith("s") else last + "s"
    return " ".join(tokens), kind


def pseudo_mentions(generator: "CandidateGenerator", *, n: int = 4000, exact_share: float = 0.3,
                    perturb_share: float = 0.5, seed: int = 0, max_rounds: int = 10) -> List[PseudoMention]:
    """Up to `n` pseudo-mentions, the same number per entity type of the KB. A concept
    qualifies for a held-out pseudo-mention when it keeps another distinct normalized name
    once one is held out. A type with fewer concepts than it needs is drawn again (another
    name, another perturbation), `max_rounds` times at most, so that a small vocabulary
    still gives a map with more than a few points."""
    rng = random.Random(seed)
    mode = generator.cfg["normalize"]
    kb = generator.kb
    ids = generator.concept_ids
    types = list(generator.types)
    out: List[PseudoMention] = []
    if not types:
        return out
    per_type = max(1, n // len(types))
    n_exact = round(per_type * exact_share)
    n_held = per_type - n_exact
    for bit_pos, type_ in enumerate(types):
        members = numpy.flatnonzero(numpy.asarray(generator.concept_types) & (1 << bit_pos)).tolist()
        exact_taken = held_taken = 0
        for _ in range(max_rounds):
            rng.shuffle(members)
            before = exact_taken + held_taken
            for ci in members:
                if exact_taken >= n_exact and held_taken >= n_held:
                    break
                concept = kb[ids[ci]]
                names = [name for name in (concept.name,) + concept.synonyms if normalize_name(name, mode)]
                if not names:
                    continue
                holdable = len({normalize_name(name, mode) for name in names}) >= 2
                if held_taken < n_held and holdable and (exact_taken >= n_exact or rng.random() >= exact_share):
                    name = rng.choice(names)
                    text, kind = perturb(name, rng) if rng.random() < perturb_share else (name, "")
                    out.append(PseudoMention(text, concept.concept_id, type_, normalize_name(name, mode),
                                             kind or "none"))
                    held_taken += 1
                elif exact_taken < n_exact:
                    out.append(PseudoMention(rng.choice(names), concept.concept_id, type_, None, "exact"))
                    exact_taken += 1
            if exact_taken + held_taken in (before, per_type):
                break
    return out


def pseudo_outcomes(generator: "CandidateGenerator", mentions: Sequence[PseudoMention],
                    k: int = 10) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each pseudo-mention, the generator's top-1 similarity and whether (the share
    of ties in which) the top-1 is its concept, with a held-out name unknown to the KB.

    The index is not rebuilt without the held-out names: the generator's candidates
    for the query keep every other concept's score, and the mention's own concept is
    rescored by its other names (1.0 for an exact one, else the TF-IDF cosine the
    generator computes), which is what an index without the held-out name would give,
    up to that name's share of the n-gram statistics.
    """
    mode = generator.cfg["normalize"]
    found = generator([m.text for m in mentions], k=k, types=[m.type_ for m in mentions])
    scores = numpy.zeros(len(mentions), dtype=numpy.float64)
    correct = numpy.zeros(len(mentions), dtype=numpy.float64)
    held = [i for i, m in enumerate(mentions) if m.held_key is not None]
    own: Dict[int, float] = {}
    if held:
        queries = generator.vectorizer.transform([normalize_name(mentions[i].text, mode) for i in held])
        queries = queries.astype(numpy.float32).tocsr()
        for row, i in enumerate(held):
            m = mentions[i]
            concept = generator.kb[m.concept_id]
            keys = {normalize_name(name, mode) for name in (concept.name,) + concept.synonyms} - {m.held_key, ""}
            query_key = normalize_name(m.text, mode)
            if query_key in keys:
                own[i] = 1.0
                continue
            rows = [r for r in (generator.keys.index(key) for key in keys) if r >= 0]
            if not rows:
                own[i] = 0.0
                continue
            cos = generator.names_matrix[rows] @ queries[row].T
            own[i] = min(float(cos.max()) if cos.nnz else 0.0, 1.0)
    for i, (m, cands) in enumerate(zip(mentions, found)):
        others = [c.score for c in cands if c.concept_id != m.concept_id]
        mine = own[i] if i in own else next((c.score for c in cands if c.concept_id == m.concept_id), None)
        top_other = max(others, default=0.0)
        if mine is None or mine < top_other or (mine == 0.0 and not others):
            scores[i], correct[i] = top_other, 0.0
        else:
            tied = sum(1 for s in others if s == mine)
            scores[i], correct[i] = mine, 1.0 / (1 + tied)
    return scores, correct


def fit_calibration(generator: "CandidateGenerator", *, n_mentions: int = 4000, exact_share: float = 0.3,
                    perturb_share: float = 0.5, min_per_type: int = 200, k: int = 10,
                    seed: int = 0) -> ScoreCalibration:
    """A `ScoreCalibration` fit on pseudo-mentions of the generator's own KB (see the module
    docstring); its `info` reports the pseudo-mentions and, fit on one half and scored on the
    other, the expected calibration error of the raw similarity and of the map."""
    mentions = pseudo_mentions(generator, n=n_mentions, exact_share=exact_share, perturb_share=perturb_share,
                               seed=seed)
    if not mentions:
        raise ValueError("The KB has no typed concept with a name to draw pseudo-mentions from")
    scores, correct = pseudo_outcomes(generator, mentions, k=k)
    type_of = numpy.asarray([m.type_ for m in mentions])
    keys = [ALL] + [t for t in generator.types if int((type_of == t).sum()) >= min_per_type]

    def fit(mask: numpy.ndarray) -> Dict[str, Tuple[List[float], List[float]]]:
        maps = {ALL: fit_monotone(scores[mask], correct[mask])}
        for key in keys[1:]:
            sub = mask & (type_of == key)
            if sub.sum() >= 2:
                maps[key] = fit_monotone(scores[sub], correct[sub])
        return maps

    # held-out quality: fit on one half, score the other, both ways round
    halves = numpy.random.default_rng(seed).permutation(len(mentions)) % 2 == 0
    raw, calibrated, outcome = [], [], []
    for train in (halves, ~halves):
        if not train.any() or train.all():
            continue
        half = ScoreCalibration(fit(train))
        for i in numpy.flatnonzero(~train):
            raw.append(scores[i])
            calibrated.append(float(half([scores[i]], mentions[i].type_)[0]))
            outcome.append(correct[i])
    info = {
        "pseudo_mentions": len(mentions),
        "per_type": dict(Counter(m.type_ for m in mentions)),
        "kinds": dict(Counter(m.perturbation for m in mentions)),
        "settings": {"n_mentions": n_mentions, "exact_share": exact_share, "perturb_share": perturb_share,
                     "min_per_type": min_per_type, "k": k, "seed": seed},
        "accuracy@1": round(float(correct.mean()), 4),
        "held_out": {"raw_similarity": reliability(raw, outcome), "calibrated": reliability(calibrated, outcome)},
    }
    return ScoreCalibration(fit(numpy.ones(len(mentions), dtype=bool)), info)
