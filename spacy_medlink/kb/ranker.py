"""A learned ranker over the candidate generator's top-k, with a calibrated "no concept".

The generator ranks by surface similarity alone (exact normalized match, then
character n-gram TF-IDF). The ranker rescores each (mention, candidate) pair
from features a CPU can afford: the generator's score and rank, exact and
token-level agreement of mention (and its defined long form) with the matched
name, how the training split linked the same string (p(concept | mention)),
how often the concept occurs there, and what the document's other mentions
link to. Concepts that other mentions of the document link to join the
candidates of a mention ("Pb" after "lead", "CTX" after "cyclophosphamide"),
first those of the mentions a short form abbreviates ("DEN" after
"diethylnitrosamine", `abbreviates`), which are also a feature: a short form
used without its definition in parentheses, which the abbreviation detector
needs, is most often the short form of a name the document spells out.

The learner is a binary classifier (LightGBM, or logistic regression), so its
output is the probability that a candidate is the mention's concept: the
top-1's probability is the confidence that linkers threshold for "no concept"
(`span._.medlink_score`).

Training data are the gold mentions of a training split with their
candidates (`kb.ranker_fit` builds them and fits the learner). The split's
own statistics are features, so for its mentions they are counted leaving
the mention's own document out: the learner then sees them as it will on
new text, where a string may never have been seen.

The ranker travels with the KB (`CandidateGenerator.ranker`, saved in the KB
folder's `ranker/`), so every component that looks up candidates through
`kb.span_lookup.span_candidates` uses it; nothing is pickled (LightGBM's text
model format, msgpack).

Where no corpus annotated with the KB's IDs exists, the "calibrated" learner
takes the ranker's place (`CandidateRanker.calibrated`): the generator's order
is kept and each similarity becomes a probability by a monotone map fit on the
KB's own synonyms (`kb.calibration`), so that the same thresholds apply.

A trained ranker belongs to the KB it was trained against: its statistics name
that KB's concept IDs (p(concept | string), the concepts it adds as candidates).
`kb_coverage` says how much of them another KB holds.
"""
import math
from functools import lru_cache
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import numpy
import srsly

from .abbreviations import abbreviates, is_short_form
from .calibration import ScoreCalibration
from .names import Candidate, normalize_name
from .encoder import NameEncoder, cosines, rank_within
from .mention_stats import MentionStats
from .variants import spelling_variants

if TYPE_CHECKING:
    from spacy.tokens import Span

    from .candidates import CandidateGenerator
    from .concept_kb import ConceptKB

FORMAT_VERSION = 1
GENERATED, TRAINING, DOCUMENT = 0, 1, 2  # where a candidate comes from
FEATURES = (
    "score", "rank_recip", "gap_top1", "exact", "exact_long", "exact_case", "token_jaccard", "head_match",
    "prior", "key_count", "prior_long", "concept_count", "has_long", "from_train", "from_doc", "doc_top1", "doc_exact",
    "mention_chars", "mention_tokens", "short_upper", "has_digit", "preferred", "n_exact",
    "doc_abbrev", "name_abbrev", "exact_variant", "exact_cancer", "dense_cos", "dense_rank",
)
# features a name encoder (`kb.encoder`) computes: a ranker uses them only when it has one
DENSE_FEATURES = ("dense_cos", "dense_rank")
# the variant rule set (`kb.variants`) each feature scores against; the generator is queried with those a ranker uses
VARIANT_FEATURES = {"exact_variant": "spelling", "exact_cancer": "cancer"}
_INDEX = {name: i for i, name in enumerate(FEATURES)}
LEARNERS = ("lightgbm", "logistic", "calibrated")


@lru_cache(maxsize=500_000)
def _norm(text: str) -> str:
    """normalize_name, remembered: candidate names recur across mentions."""
    return normalize_name(text)


@lru_cache(maxsize=500_000)
def _name_info(name: str) -> Tuple[str, FrozenSet[str], str]:
    """A candidate name's key, its tokens and its last token ("" for no name)."""
    key = _norm(name) if name else ""
    split = key.split()
    return key, frozenset(split), split[-1] if split else ""


class CandidateRanker:
    """Rescore candidates with a trained classifier; see the module docstring.

    k: generator candidates rescored per mention.
    doc_candidates: concepts of the document's other mentions added per mention.
    train_candidates: concepts the training split linked the mention's string to, added per mention.
    learner: "lightgbm" or "logistic"; "calibrated" for `calibrated` (no training).
    features: the features the learner sees, of FEATURES (default all it can compute;
        fewer for an ablation, and a ranker saved before a feature was added keeps loading).
    encoder: a name encoder (`kb.encoder`) for the DENSE_FEATURES, the cosine of
        mention and candidate name; saved with the ranker.
    """

    def __init__(self, *, k: int = 20, doc_candidates: int = 3, train_candidates: int = 3,
                 learner: str = "lightgbm", params: Optional[Dict[str, Any]] = None,
                 features: Optional[Sequence[str]] = None, encoder: Optional[NameEncoder] = None) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"Unknown ranker learner {learner!r} (expected one of {', '.join(LEARNERS)})")
        if features is None:
            features = [f for f in FEATURES if encoder is not None or f not in DENSE_FEATURES]
        features = list(features)
        unknown = [f for f in features if f not in _INDEX]
        if unknown:
            raise ValueError(f"Unknown ranker features {unknown}: this version computes {list(FEATURES)}")
        if encoder is None and any(f in DENSE_FEATURES for f in features):
            raise ValueError(f"Ranker features {list(DENSE_FEATURES)} need a name encoder "
                             "(`python -m spacy_medlink kb encoder`, then `kb ranker --encoder`)")
        self.encoder = encoder
        self.cfg: Dict[str, Any] = {"k": k, "doc_candidates": doc_candidates, "train_candidates": train_candidates,
                                    "learner": learner,
                                    "params": dict(params or {}), "features": features}
        self._columns = [_INDEX[f] for f in features]
        # rankers saved before the abbreviation features keep their candidates
        self._abbrev = "doc_abbrev" in features
        self.stats = MentionStats()
        self._booster = None
        self._linear: Optional[Dict[str, numpy.ndarray]] = None
        self.calibration: Optional[ScoreCalibration] = None

    @classmethod
    def calibrated(cls, calibration: ScoreCalibration, *, k: int = 10) -> "CandidateRanker":
        """The untrained ranking: the generator's own order over its top `k`, each score
        mapped to P(top-1 correct) by `calibration` (per entity label where it has a map).
        No statistics and no added candidates: nothing ties it to a corpus."""
        self = cls(k=k, doc_candidates=0, train_candidates=0, learner="calibrated", features=["score"])
        self.calibration = calibration
        return self

    def kb_coverage(self, kb: "ConceptKB") -> Optional[float]:
        """The share of the training split's single-concept mentions whose concept `kb` holds
        under the same primary ID: near 1 for the KB the ranker was trained against, near 0
        for another vocabulary, whose concepts its statistics cannot name. None without
        statistics (a calibrated ranker)."""
        total = sum(self.stats.concepts.values())
        if not total:
            return None
        held = sum(n for cid, n in self.stats.concepts.items() if cid in kb and kb.resolve(cid) == cid)
        return held / total

    @property
    def wants_variants(self) -> Tuple[str, ...]:
        """The variant rule sets (`kb.variants`) the generator is also queried with: those of the
        ranker's variant features (`exact_variant`, `exact_cancer`), so older rankers keep their candidates."""
        return tuple(rules for feature, rules in VARIANT_FEATURES.items() if feature in self.cfg["features"])

    # -- features -------------------------------------------------------------------
    def expand(self, spans: Sequence["Span"], long_forms: Sequence[Optional[str]],
               cand_lists: Sequence[List[Candidate]],
               own: Optional[Sequence[Optional[MentionStats]]] = None) -> List[List[Tuple[Candidate, int]]]:
        """Each span's candidates (origin GENERATED), plus the concepts the
        training split linked its string or long form to (TRAINING: these may
        be IDs the KB no longer holds, such as retired MeSH records), plus the
        top-1 concepts of its document's other mentions of the same label
        (DOCUMENT): of every mention it abbreviates, then of the first others
        up to `doc_candidates`. Added candidates have score 0 and no name."""
        out: List[List[Tuple[Candidate, int]]] = [[(c, GENERATED) for c in cands] for cands in cand_lists]
        haves = [{c.concept_id for c in cands} for cands in cand_lists]
        for i, (span, lf) in enumerate(zip(spans, long_forms)):
            mine = own[i] if own is not None else None
            for text in (span.text, lf):
                if not text:
                    continue
                key = _norm(text)
                for cid in self.stats.concepts_of(key, mine)[: self.cfg["train_candidates"]]:
                    if cid not in haves[i]:
                        haves[i].add(cid)
                        out[i].append((Candidate(cid, 0.0, ""), TRAINING))
        n_extra = self.cfg["doc_candidates"]
        if not n_extra:
            return out
        by_doc: Dict[int, List[int]] = defaultdict(list)
        for i, span in enumerate(spans):
            by_doc[id(span.doc)].append(i)
        for members in by_doc.values():
            for i in members:
                others = [j for j in members if j != i and spans[j].label_ == spans[i].label_ and cand_lists[j]]
                if self._abbrev and is_short_form(spans[i].text):
                    defined = [j for j in others if abbreviates(spans[i].text, spans[j].text)]
                    others = defined + [j for j in others if j not in defined]
                    n_defined = len(defined)
                else:
                    n_defined = 0
                added = 0
                for pos, j in enumerate(others):
                    if pos >= n_defined and added >= n_extra:
                        break
                    top = cand_lists[j][0]
                    if top.concept_id not in haves[i]:
                        haves[i].add(top.concept_id)
                        out[i].append((Candidate(top.concept_id, 0.0, ""), DOCUMENT))
                        if pos >= n_defined:
                            added += 1
        return out

    def features(
        self,
        spans: Sequence["Span"],
        long_forms: Sequence[Optional[str]],
        expanded: Sequence[List[Tuple[Candidate, int]]],
        generator: "CandidateGenerator",
        own: Optional[Sequence[Optional[MentionStats]]] = None,
    ) -> numpy.ndarray:
        """One row per (span, candidate), in order; `own[i]` is left out of the statistics (training).

        Built a column at a time: what depends on the mention alone is computed
        once per mention and repeated, what depends on a candidate's name once
        per distinct name; only the pairwise features loop over rows.
        """
        kb = generator.kb
        sizes = numpy.asarray([len(c) for c in expanded], dtype=numpy.int64)
        n_rows = int(sizes.sum())
        X = numpy.zeros((n_rows, len(FEATURES)), dtype=numpy.float32)
        if not n_rows:
            return X
        name_info = _name_info
        preferred: Dict[str, str] = {}
        texts = [span.text for span in spans]
        keys = [_norm(t) for t in texts]
        lkeys = [_norm(lf) if lf else None for lf in long_forms]
        # what each doc's other mentions link to: top-1 counts, exact hits
        doc_top1: Dict[int, Counter] = defaultdict(Counter)
        doc_exact: Dict[int, Counter] = defaultdict(Counter)
        exact_sets: List[set] = []
        for span, key, lkey, cands in zip(spans, keys, lkeys, expanded):
            exact = {c.concept_id for c, origin in cands
                     if origin == GENERATED and name_info(c.name)[0] in (key, lkey)}
            exact_sets.append(exact)
            if cands and cands[0][1] == GENERATED:
                doc_top1[id(span.doc)][cands[0][0].concept_id] += 1
            for cid in exact:
                doc_exact[id(span.doc)][cid] += 1
        # per mention, repeated over its candidates
        per_span = numpy.zeros((len(spans), 6), dtype=numpy.float64)
        for i, (span, text, lf) in enumerate(zip(spans, texts, long_forms)):
            alpha = sum(ch.isalpha() for ch in text)
            upper = sum(ch.isupper() for ch in text)
            per_span[i] = (lf is not None, len(text), len(span), len(text) <= 6 and alpha > 0 and upper * 2 >= alpha,
                           any(ch.isdigit() for ch in text), len(exact_sets[i]))
        for j, name in enumerate(("has_long", "mention_chars", "mention_tokens", "short_upper", "has_digit", "n_exact")):
            X[:, _INDEX[name]] = numpy.repeat(per_span[:, j], sizes)
        # a short form: the top-1 concepts of the same-label mentions of its doc that it abbreviates
        # (only for a ranker that uses these columns: the others leave them 0)
        short = [self._abbrev and is_short_form(t) for t in texts]
        defined: Dict[int, Counter] = {}
        if any(short):
            by_doc: Dict[int, List[int]] = defaultdict(list)
            for i, span in enumerate(spans):
                by_doc[id(span.doc)].append(i)
            for i in (i for i, is_short in enumerate(short) if is_short):
                defined[i] = Counter(
                    expanded[j][0][0].concept_id for j in by_doc[id(spans[i].doc)]
                    if j != i and expanded[j] and expanded[j][0][1] == GENERATED
                    and spans[j].label_ == spans[i].label_ and abbreviates(texts[i], texts[j]))
        # per row
        no_head = object()  # a long form without tokens matches no head
        stats = self.stats
        wanted = self.wants_variants
        pair_cols = ("score", "rank_recip", "gap_top1", "exact", "exact_long", "exact_case", "token_jaccard",
                     "head_match", "prior", "key_count", "prior_long", "concept_count", "from_train", "from_doc",
                     "doc_top1", "doc_exact", "preferred", "doc_abbrev", "name_abbrev", "exact_variant",
                     "exact_cancer")
        rows: List[Tuple[float, ...]] = []
        append = rows.append
        for i, (span, text, lf, key, lkey, cands) in enumerate(zip(spans, texts, long_forms, keys, lkeys, expanded)):
            tok_list = key.split()
            toks = set(tok_list)
            ltok_list = lkey.split() if lkey else []
            ltoks = set(ltok_list)
            head = tok_list[-1] if tok_list else ""
            lhead = (ltok_list[-1] if ltok_list else no_head) if lf else no_head
            mine = own[i] if own is not None else None
            top_score = cands[0][0].score if cands else 0.0
            exact = exact_sets[i]
            dt, de = doc_top1[id(span.doc)], doc_exact[id(span.doc)]
            top_id = cands[0][0].concept_id if cands and cands[0][1] == GENERATED else None
            mine_defined = defined.get(i)
            variant_keys = {_norm(v) for v in spelling_variants(text)} if "spelling" in wanted else ()
            cancer_keys = {_norm(v) for v in spelling_variants(text, "cancer")} if "cancer" in wanted else ()
            for rank, (cand, origin) in enumerate(cands):
                cid, name = cand.concept_id, cand.name
                name_key, ntoks, name_head = name_info(name)
                pair, total, ccount = stats.counts(key, cid, mine)
                if lkey:
                    lpair, ltotal, _ = stats.counts(lkey, cid, mine)
                    prior_long = lpair / ltotal if ltotal > 0 else 0.0
                else:
                    prior_long = 0.0
                if name or short[i]:
                    if cid not in preferred:
                        preferred[cid] = kb.name_of(cid) or ""
                is_preferred = bool(name) and preferred[cid] == name
                name_abbrev = short[i] and abbreviates(text, name or preferred[cid])
                append((
                    cand.score,
                    1.0 / (1 + rank) if origin == GENERATED else 0.0,
                    top_score - cand.score,
                    bool(name_key) and name_key == key,
                    bool(name_key) and name_key == lkey,
                    bool(name) and (name == text or name == lf),
                    max(_jaccard(toks, ntoks), _jaccard(ltoks, ntoks)),
                    bool(name_key) and (name_head == head or name_head == lhead),
                    pair / total if total > 0 else 0.0,
                    math.log1p(max(total, 0)),
                    prior_long,
                    math.log1p(max(ccount, 0)),
                    origin == TRAINING,
                    origin == DOCUMENT,
                    math.log1p(dt[cid] - (cid == top_id)),
                    math.log1p(de[cid] - (cid in exact)),
                    is_preferred,
                    math.log1p(mine_defined[cid]) if mine_defined else 0.0,
                    name_abbrev,
                    bool(name_key) and name_key in variant_keys,
                    bool(name_key) and name_key in cancer_keys,
                ))
        X[:, [_INDEX[c] for c in pair_cols]] = numpy.asarray(rows, dtype=numpy.float32)
        if self.encoder is not None and any(f in self.cfg["features"] for f in DENSE_FEATURES):
            # the mention as the generator was queried (its long form where the doc defines one)
            # against the matched name, or the preferred name of a candidate added without one
            queries = [lf or t for t, lf, cands in zip(texts, long_forms, expanded) for _ in cands]
            names = [c.name or kb.name_of(c.concept_id) or "" for cands in expanded for c, _ in cands]
            cos = cosines(self.encoder, queries, names)
            X[:, _INDEX["dense_cos"]] = cos
            X[:, _INDEX["dense_rank"]] = rank_within(cos, sizes.tolist())
        return X

    # -- learning -----------------------------------------------------------------------
    def fit(self, X: numpy.ndarray, y: numpy.ndarray, *, seed: int = 0) -> "CandidateRanker":
        if self.cfg["learner"] == "calibrated":
            raise ValueError("A calibrated ranker is fit on the KB (`kb.calibration.fit_calibration`), not on rows")
        if self.cfg["learner"] == "lightgbm":
            import lightgbm

            params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
                      "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "verbose": -1,
                      "seed": seed, "num_threads": 1, "deterministic": True, "force_row_wise": True}
            params.update({k: v for k, v in self.cfg["params"].items() if k != "num_boost_round"})
            rounds = int(self.cfg["params"].get("num_boost_round", 300))
            data = lightgbm.Dataset(X[:, self._columns], label=y, feature_name=list(self.cfg["features"]),
                                    free_raw_data=True)
            self._booster = lightgbm.train(params, data, num_boost_round=rounds)
        else:
            from sklearn.linear_model import LogisticRegression

            X = X[:, self._columns]
            mean, scale = X.mean(axis=0), X.std(axis=0)
            scale[scale == 0] = 1.0
            C = float(self.cfg["params"].get("C", 1.0))
            model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit((X - mean) / scale, y)
            self._linear = {"mean": mean.astype(numpy.float64), "scale": scale.astype(numpy.float64),
                            "coef": model.coef_[0].astype(numpy.float64),
                            "intercept": numpy.asarray(model.intercept_, dtype=numpy.float64)}
        return self

    @property
    def is_trained(self) -> bool:
        return self._booster is not None or self._linear is not None or self.calibration is not None

    def feature_gain(self) -> Optional[Dict[str, float]]:
        """LightGBM's total gain per feature, largest first (None for the logistic learner)."""
        if self._booster is None:
            return None
        gain = self._booster.feature_importance("gain")
        return {f: round(float(g), 1) for f, g in sorted(zip(self.cfg["features"], gain), key=lambda x: -x[1])}

    def predict(self, X: numpy.ndarray) -> numpy.ndarray:
        """P(candidate is the mention's concept) per row."""
        if not len(X):
            return numpy.zeros(0, dtype=numpy.float64)
        if self.calibration is not None:
            return self.calibration(X[:, _INDEX["score"]])
        X = X[:, self._columns]
        if self._booster is not None:
            return numpy.asarray(self._booster.predict(X, num_threads=1), dtype=numpy.float64)
        if self._linear is None:
            raise ValueError("The candidate ranker is not trained (`python -m spacy_medlink kb ranker`)")
        lin = self._linear
        z = ((X - lin["mean"]) / lin["scale"]) @ lin["coef"] + lin["intercept"][0]
        return 1.0 / (1.0 + numpy.exp(-z))

    # -- use ----------------------------------------------------------------------------
    def rerank(self, spans: Sequence["Span"], long_forms: Sequence[Optional[str]],
               cand_lists: Sequence[List[Candidate]], generator: "CandidateGenerator", k: int) -> List[List[Candidate]]:
        """Each span's candidates ordered by the ranker, scores its probabilities, top k."""
        if self.calibration is not None:
            return [[Candidate(c.concept_id, float(p), c.name) for c, p in
                     zip(cands[:k], self.calibration([c.score for c in cands[:k]], span.label_))]
                    for span, cands in zip(spans, cand_lists)]
        expanded = self.expand(spans, long_forms, cand_lists)
        probs = self.predict(self.features(spans, long_forms, expanded, generator))
        out = []
        pos = 0
        for cands in expanded:
            p = probs[pos : pos + len(cands)]
            pos += len(cands)
            order = numpy.argsort(-p, kind="stable")[:k]
            out.append([Candidate(cands[j][0].concept_id, float(p[j]), cands[j][0].name) for j in order.tolist()])
        return out

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        model: Dict[str, Any] = {}
        if self._booster is not None:
            model["lightgbm"] = self._booster.model_to_string()
        if self._linear is not None:
            model["linear"] = {k: v.tolist() for k, v in self._linear.items()}
        if self.calibration is not None:
            model["calibration"] = self.calibration.to_dict()
        out = {"format": FORMAT_VERSION, "cfg": self.cfg, "stats": self.stats.to_dict(), "model": model}
        if self.encoder is not None:
            out["encoder"] = self.encoder.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CandidateRanker":
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported candidate ranker format {data.get('format')!r}")
        cfg = data["cfg"]
        if any(f not in _INDEX for f in cfg["features"]):
            raise ValueError("The candidate ranker was trained on features this version does not compute; retrain it")
        encoder = NameEncoder.from_dict(data["encoder"]) if data.get("encoder") else None
        self = cls(k=cfg["k"], doc_candidates=cfg["doc_candidates"], train_candidates=cfg["train_candidates"],
                   learner=cfg["learner"], params=cfg["params"], features=cfg["features"], encoder=encoder)
        self.stats = MentionStats.from_dict(data["stats"])
        model = data["model"]
        if "lightgbm" in model:
            import lightgbm

            self._booster = lightgbm.Booster(model_str=model["lightgbm"])
        if "linear" in model:
            self._linear = {k: numpy.asarray(v, dtype=numpy.float64) for k, v in model["linear"].items()}
        if "calibration" in model:
            self.calibration = ScoreCalibration.from_dict(model["calibration"])
        return self

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> "CandidateRanker":
        return cls.from_dict(srsly.msgpack_loads(data))

    def to_disk(self, path: Union[str, Path]) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "ranker.msgpack").write_bytes(self.to_bytes())

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "CandidateRanker":
        return cls.from_bytes((Path(path) / "ranker.msgpack").read_bytes())


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
