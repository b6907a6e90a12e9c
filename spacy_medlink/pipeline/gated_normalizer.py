"""medlink_gated_normalizer: progressive multi-task NER + normalization (E2EMERN).

The method of Zhou et al. (ACL 2021); the model is `medlink.GatedNormalizer.v1`
(spacy_medlink/ml/gated_normalizer.py, where the encoder, attention, gate and
loss are documented). This module turns Docs into training samples (drawn in
`_gated_samples.py`) and model scores back into ``doc.ents``.

Training samples (X, y, e, y_m, y_h), drawn afresh on every update so that no
two epochs see the same negatives:

* positives: the gold concepts of the doc's mentions (composite IDs split,
  resolved to the KB's primary IDs), at most
  ``max_concepts_per_doc - n_negatives - n_hard_negatives`` of them (a random
  subset when there are more);
* random negatives (``n_negatives``): concepts not in the doc, drawn half from
  the concepts seen in training, half from the whole KB;
* hard negatives (``n_hard_negatives``): the KB candidates of the doc's gold
  mentions that are not the doc's concepts (the confusions inference faces);
* y_m = 1 for positives, 0 for negatives; y_h tags B/I/O the mentions of e.

Concept names (the KB's preferred name, plus up to ``max_names - 1``
synonyms) are tokenized with the pipeline's own tokenizer and encoded by the
component's encoder. A concept missing from the KB is named by the mention
texts it had in training.

Inference: NER tags (stage 1) → spans → KB candidates per span
(`span_candidates`: typed, abbreviation-aware, top-``k``) → the names of the
batch's distinct candidates only are encoded (once per predict call) → every
(doc, candidate) pair gets the mid probability m (the doc mentions e) and the
high B/I/O probabilities; a span's agreement with e is the mean over its
tokens of P(B) + P(I). Resolution rule, a weighted geometric mean::

    score(span, e) = (m^w_mid · a^w_high · kb^w_kb) ^ (1 / (w_mid + w_high + w_kb))

with ``kb`` the candidate generator's score (``kb_score_weight = 0`` is the
paper's model-only choice). The best candidate becomes ``ent.kb_id_`` if its
score reaches ``threshold``; ``span._.medlink_score`` is that score and
``span._.medlink_candidates`` the ranked [id, score] list. A span without a
candidate at or above ``threshold`` keeps ``kb_id_ == ""`` and a score of None.
Cost grows with the candidates, not with the KB. Without a KB the component
still finds entities, with no IDs.

``pair_context = "sentence"`` (the paper's X is a sentence) pairs concepts
with sentences instead of whole docs: the doc is still encoded once, but a
pair's attention, mid and high heads see only its sentence's tokens, a
sentence's positives are the concepts mentioned in it, its hard negatives
also the doc's other concepts, and at inference a span's candidates are
scored against the span's sentence. Sentences are the doc's own boundaries
when it has them, else spaCy's rule-based `Sentencizer`, merged wherever a
(gold or predicted) mention would cross one. ``"doc"`` pairs whole docs.

Composite mentions (``D1|D2``) train both concepts as positives; inference
gives one ID per span.
"""
from bisect import bisect_right
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from ..ml.gated_normalizer import GatedBatch, encode_concepts, encode_texts, score_pairs, set_gated_labels
from ..ml.scores import GatedScores
from ..scoring import NER_NEN_SCORE_WEIGHTS
from ._kb_pipe import DEFAULT_TOK2VEC_CONFIG, KBPipe
from ._gated_samples import HIGH_B, draw_pairs, gold_ids, pair_targets, text_segments
from .extensions import install_span_extensions

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator

PAIR_CONTEXTS = ("doc", "sentence")

default_model_config = """
[model]
@architectures = "medlink.GatedNormalizer.v1"
lstm_width = 256
lstm_depth = 1
dropout = 0.2
use_crf = true
use_mid = true
use_high = true
fusion = "gate"
attention = "attention"
""" + DEFAULT_TOK2VEC_CONFIG
DEFAULT_GATED_MODEL = Config().from_str(default_model_config)["model"]
DEFAULT_GATED_SCORER = {"@scorers": "medlink.ner_nen_scorer.v1"}


@Language.factory(
    "medlink_gated_normalizer",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "span._.medlink_score", "span._.medlink_candidates"],
    default_config={
        "model": DEFAULT_GATED_MODEL,
        "tag_scheme": "BIO",
        "mid_loss_weight": 0.125,
        "high_loss_weight": 0.1,
        "n_negatives": 4,
        "n_hard_negatives": 4,
        "max_concepts_per_doc": 24,
        "max_names": 1,
        "k": 10,
        "mid_score_weight": 1.0,
        "high_score_weight": 1.0,
        "kb_score_weight": 0.5,
        "threshold": 0.0,
        "use_abbreviations": True,
        "type_map": {},
        "pair_batch_size": 256,
        "pair_context": "doc",
        "scorer": DEFAULT_GATED_SCORER,
    },
    default_score_weights=NER_NEN_SCORE_WEIGHTS,
)
def make_gated_normalizer(
    nlp: Language,
    name: str,
    model: Model[GatedBatch, GatedScores],
    tag_scheme: str,
    mid_loss_weight: float,
    high_loss_weight: float,
    n_negatives: int,
    n_hard_negatives: int,
    max_concepts_per_doc: int,
    max_names: int,
    k: int,
    mid_score_weight: float,
    high_score_weight: float,
    kb_score_weight: float,
    threshold: float,
    use_abbreviations: bool,
    type_map: Dict[str, str],
    pair_batch_size: int,
    pair_context: str,
    scorer: Optional[Callable],
) -> "GatedNormalizer":
    """Find, type and ground entities by progressive multi-task learning (Zhou et al., 2021).

    model: a `medlink.GatedNormalizer.v1` (shared encoder, low/mid/high heads).
    tag_scheme (str): NER tags, "BIO" or "BILUO".
    mid_loss_weight (float): λ, weight of the mid (does X mention e?) loss.
    high_loss_weight (float): µ, weight of the high (tag the mentions of e) loss.
    n_negatives (int): random negative concepts per text (doc or sentence) and update.
    n_hard_negatives (int): KB-candidate negative concepts per text and update.
    max_concepts_per_doc (int): bound on the (text, concept) pairs per text and update.
    max_names (int): names per concept encoded and averaged (1 = the preferred name).
    k (int): KB candidates per predicted span.
    mid_score_weight, high_score_weight, kb_score_weight (float): exponents of
        the resolution rule (a weighted geometric mean, see the module docs).
    threshold (float): a best score below this leaves ``kb_id_`` empty.
    use_abbreviations (bool): KB lookups use a short form's long form.
    type_map (Dict[str, str]): entity label -> KB type, where they differ.
    pair_batch_size (int): (doc, concept) pairs scored at once at inference.
    pair_context (str): the text X of a (X, concept) pair: "doc" or "sentence"
        (the paper).
    """
    return GatedNormalizer(
        nlp.vocab,
        model,
        name,
        tag_scheme=tag_scheme,
        mid_loss_weight=mid_loss_weight,
        high_loss_weight=high_loss_weight,
        n_negatives=n_negatives,
        n_hard_negatives=n_hard_negatives,
        max_concepts_per_doc=max_concepts_per_doc,
        max_names=max_names,
        k=k,
        mid_score_weight=mid_score_weight,
        high_score_weight=high_score_weight,
        kb_score_weight=kb_score_weight,
        threshold=threshold,
        use_abbreviations=use_abbreviations,
        type_map=type_map,
        pair_batch_size=pair_batch_size,
        pair_context=pair_context,
        scorer=scorer,
        tokenizer_owner=nlp,
    )


class SpanCandidates(NamedTuple):
    """A predicted span and its candidates, each (concept_id, kb, mid, high):
    the KB score, the mid probability (None without the mid task) and the
    high agreement (None without the high task)."""

    start: int
    end: int
    label: str
    candidates: List[Tuple[str, float, Optional[float], Optional[float]]]


class GatedNormalizer(KBPipe):
    """Progressive multi-task NER + normalization. Labels: entity types, read
    from the training data; concepts: any in the KB given at initialize."""

    # the resolution rule (`tune resolution` sets them); k and type_map also
    # draw the hard negatives in training, so the saved cfg keeps them
    inference_settings = ("mid_score_weight", "high_score_weight", "kb_score_weight", "threshold",
                          "use_abbreviations", "pair_batch_size")

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "medlink_gated_normalizer",
        *,
        tag_scheme: str = "BIO",
        mid_loss_weight: float = 0.125,
        high_loss_weight: float = 0.1,
        n_negatives: int = 4,
        n_hard_negatives: int = 4,
        max_concepts_per_doc: int = 24,
        max_names: int = 1,
        k: int = 10,
        mid_score_weight: float = 1.0,
        high_score_weight: float = 1.0,
        kb_score_weight: float = 0.5,
        threshold: float = 0.0,
        use_abbreviations: bool = True,
        type_map: Optional[Dict[str, str]] = None,
        pair_batch_size: int = 256,
        pair_context: str = "doc",
        scorer: Optional[Callable] = None,
        tokenizer_owner: Optional[Language] = None,
    ) -> None:
        _validate_settings(
            name, tag_scheme=tag_scheme, mid_loss_weight=mid_loss_weight, high_loss_weight=high_loss_weight,
            n_negatives=n_negatives, n_hard_negatives=n_hard_negatives, max_concepts_per_doc=max_concepts_per_doc,
            max_names=max_names, k=k, mid_score_weight=mid_score_weight, high_score_weight=high_score_weight,
            kb_score_weight=kb_score_weight, pair_batch_size=pair_batch_size, pair_context=pair_context,
        )
        install_span_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "concepts": [],  # concept IDs seen in training (a negative pool)
            "mention_names": {},  # names for training concepts missing from the KB
            "tag_scheme": tag_scheme,
            "mid_loss_weight": mid_loss_weight,
            "high_loss_weight": high_loss_weight,
            "n_negatives": n_negatives,
            "n_hard_negatives": n_hard_negatives,
            "max_concepts_per_doc": max_concepts_per_doc,
            "max_names": max_names,
            "k": k,
            "mid_score_weight": mid_score_weight,
            "high_score_weight": high_score_weight,
            "kb_score_weight": kb_score_weight,
            "threshold": threshold,
            "use_abbreviations": use_abbreviations,
            "type_map": dict(type_map or {}),
            "pair_batch_size": pair_batch_size,
            "pair_context": pair_context,
            "nI": None,
        }
        self.scorer = scorer
        self.generator: Optional["CandidateGenerator"] = None
        self._tokenizer_owner = tokenizer_owner
        self._cache: Dict[str, Any] = {}
        self._name_docs_cache: Dict[str, List[Doc]] = {}
        self._hard_cache: Dict[Tuple[str, str], List[str]] = {}

    # -- labels -------------------------------------------------------------------
    @property
    def label_data(self) -> Dict[str, Any]:
        return {"entities": list(self.labels), "concepts": list(self.cfg["concepts"])}

    def _set_model_labels(self) -> None:
        heads = self.model.get_ref("heads")
        if self.cfg.get("nI") and not heads.has_dim("nI"):
            heads.set_dim("nI", self.cfg["nI"])
        set_gated_labels(self.model, self.entity_tags, self.cfg["tag_scheme"])
        self._cache = {}

    # -- training -----------------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Dict[str, Any]] = None,
        kb_path: Optional[Path] = None,
    ) -> None:
        """Infer the labels (or take `labels`, as `label_data` writes them),
        load the KB, size the NER head and initialize the model.

        labels (dict): {"entities": [...], "concepts": [...]}.
        kb_path (Path): a `spacy_medlink kb build` folder: the concepts to link to.
        """
        validate_get_examples(get_examples, "GatedNormalizer.initialize")
        if nlp is not None:
            self._tokenizer_owner = nlp
        self.generator = None
        if kb_path is not None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_disk(Path(kb_path))
        mention_names: Dict[str, Dict[str, int]] = {}
        if labels is None:
            entity_labels = set()
            for eg in get_examples():
                for ent in eg.reference.ents:
                    entity_labels.add(ent.label_)
                    for cid in gold_ids(ent.kb_id_, self.generator):
                        counts = mention_names.setdefault(cid, {})
                        counts[ent.text] = counts.get(ent.text, 0) + 1
            labels = {"entities": sorted(entity_labels), "concepts": sorted(mention_names)}
        self.cfg["concepts"] = list(labels["concepts"])
        kb = self.generator.kb if self.generator is not None else None
        self.cfg["mention_names"] = {
            cid: [t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[: self.cfg["max_names"]]]
            for cid, counts in sorted(mention_names.items())
            if kb is None or cid not in kb
        }
        self._set_labels(labels["entities"])
        self._initialize_model(get_examples)
        self._name_docs_cache = {}
        self._hard_cache = {}

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "GatedNormalizer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        batch, pair_ids = self._training_batch(examples)
        scores, backprop = self.model.begin_update(batch)
        loss, d_scores = self._loss(examples, scores, pair_ids, batch.pair_start, batch.pair_end)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: GatedScores) -> Tuple[float, GatedScores]:
        """The NER part only: pair targets depend on the samples drawn in
        `update`, which owns the full loss (`_loss`)."""
        examples = list(examples)
        validate_examples(examples, "GatedNormalizer.get_loss")
        return self._loss(examples, scores._replace(mid=None, high=None), [])

    def _loss(
        self, examples: Sequence[Example], scores: GatedScores, pair_ids: Sequence[str],
        pair_start: Optional[numpy.ndarray] = None, pair_end: Optional[numpy.ndarray] = None,
    ) -> Tuple[float, GatedScores]:
        from ..ml.gated_module import gated_loss_and_gradient

        T = scores.ner.shape[1]
        ner_gold = self._entity_targets(examples, T)
        pair_doc = self.model.ops.to_numpy(scores.pair_doc) if scores.pair_doc is not None else []
        mid_gold, high_gold = pair_targets(examples, list(pair_doc), pair_ids, T, self.generator, pair_start, pair_end)
        loss, parts, grads = gated_loss_and_gradient(
            scores, ner_gold, mid_gold, high_gold,
            mid_weight=self.cfg["mid_loss_weight"], high_weight=self.cfg["high_loss_weight"],
        )
        self._cache["last_loss_parts"] = parts
        return loss, grads

    def _training_batch(self, examples: Sequence[Example]) -> Tuple[GatedBatch, List[str]]:
        """Draw the (text, concept) pairs of one update (`_gated_samples.draw_pairs`)
        and build the model input. A text is a doc, or with
        ``pair_context = "sentence"`` each sentence of it."""
        pairs = draw_pairs(examples, self.cfg, self.generator, self._hard_cache, self._has_names)
        by_sentence = self.cfg["pair_context"] == "sentence"
        concept_ids = list(dict.fromkeys(pairs.pair_ids))
        index = {c: i for i, c in enumerate(concept_ids)}
        name_docs, name_concept = self._name_batch(concept_ids)
        batch = GatedBatch(
            docs=[eg.predicted for eg in examples],
            name_docs=name_docs,
            name_concept=name_concept,
            n_concepts=len(concept_ids),
            pair_doc=numpy.asarray(pairs.pair_doc, dtype=numpy.int64),
            pair_concept=numpy.asarray([index[c] for c in pairs.pair_ids], dtype=numpy.int64),
            pair_start=numpy.asarray(pairs.starts, dtype=numpy.int64) if by_sentence else None,
            pair_end=numpy.asarray(pairs.ends, dtype=numpy.int64) if by_sentence else None,
        )
        return batch, pairs.pair_ids

    # -- concept names ------------------------------------------------------------
    def concept_names(self, concept_id: str) -> List[str]:
        """The names encoded for a concept: KB name (+ synonyms), else training mentions."""
        n = self.cfg["max_names"]
        if self.generator is not None and concept_id in self.generator.kb:
            concept = self.generator.kb[concept_id]
            return [concept.name, *concept.synonyms][:n]
        return list(self.cfg["mention_names"].get(concept_id, []))[:n]

    def _has_names(self, concept_id: str) -> bool:
        return bool(self.concept_names(concept_id))

    def _tokenize(self, text: str) -> Doc:
        owner = self._tokenizer_owner
        if owner is not None:
            return owner.tokenizer(text)
        return Doc(self.vocab, words=text.split())

    def _name_batch(self, concept_ids: Sequence[str]) -> Tuple[List[Doc], numpy.ndarray]:
        """Tokenized names of the given concepts, and the concept index of each name."""
        if len(self._name_docs_cache) > 100_000:
            self._name_docs_cache = {}
        docs: List[Doc] = []
        owner: List[int] = []
        for i, cid in enumerate(concept_ids):
            if cid not in self._name_docs_cache:
                name_docs = [self._tokenize(name) for name in self.concept_names(cid)]
                self._name_docs_cache[cid] = [d for d in name_docs if len(d)] or [self._tokenize(cid)]
            for doc in self._name_docs_cache[cid]:
                docs.append(doc)
                owner.append(i)
        return docs, numpy.asarray(owner, dtype=numpy.int64)

    # -- prediction ---------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[List[SpanCandidates]]:
        """NER spans, their KB candidates and each candidate's mid/high evidence."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        texts = encode_texts(self.model, docs)
        spans_per_doc = [self._spans_from_tags(doc, path) for doc, path in zip(docs, texts.paths)]
        all_spans = [s for spans in spans_per_doc for s in spans]
        if self.generator is None or not all_spans:
            return [[SpanCandidates(s.start, s.end, s.label_, []) for s in spans] for spans in spans_per_doc]
        from ..kb.span_lookup import span_candidates

        found = iter(span_candidates(self.generator, all_spans, k=self.cfg["k"], type_map=self.cfg["type_map"],
                                     use_abbreviations=self.cfg["use_abbreviations"]))
        kb_cands = [[next(found) for _ in spans] for spans in spans_per_doc]
        # the distinct candidates of the batch, each encoded once
        concept_ids = list(dict.fromkeys(c.concept_id for doc_c in kb_cands for cands in doc_c for c in cands))
        index = {c: i for i, c in enumerate(concept_ids)}
        name_docs, name_concept = self._name_batch(concept_ids)
        h_e = encode_concepts(self.model, name_docs, name_concept, len(concept_ids))
        # a span's text: its doc, or its sentence (never cut by a predicted span)
        if self.cfg["pair_context"] == "sentence":
            segments = [text_segments(doc, [(s.start, s.end) for s in spans]) for doc, spans in zip(docs, spans_per_doc)]
        else:
            segments = [[(0, len(doc))] for doc in docs]
        seg_starts = [[s for s, _ in segs] for segs in segments]
        pairs: Dict[Tuple[int, int, str], int] = {}
        span_segment: List[List[int]] = []
        for d, (spans, doc_c) in enumerate(zip(spans_per_doc, kb_cands)):
            span_segment.append([bisect_right(seg_starts[d], span.start) - 1 for span in spans])
            for g, cands in zip(span_segment[d], doc_c):
                for c in cands:
                    pairs.setdefault((d, g, c.concept_id), len(pairs))
        pair_doc = numpy.asarray([d for d, _, _ in pairs], dtype=numpy.int64)
        pair_concept = numpy.asarray([index[c] for _, _, c in pairs], dtype=numpy.int64)
        ranges = None, None
        if self.cfg["pair_context"] == "sentence":
            ranges = (numpy.asarray([segments[d][g][0] for d, g, _ in pairs], dtype=numpy.int64),
                      numpy.asarray([segments[d][g][1] for d, g, _ in pairs], dtype=numpy.int64))
        mid, high = score_pairs(self.model, texts, h_e, pair_doc, pair_concept, chunk_size=self.cfg["pair_batch_size"],
                                pair_start=ranges[0], pair_end=ranges[1])
        out: List[List[SpanCandidates]] = []
        for d, (spans, doc_c) in enumerate(zip(spans_per_doc, kb_cands)):
            doc_out = []
            for span, g, cands in zip(spans, span_segment[d], doc_c):
                scored = []
                for c in cands:
                    p = pairs[(d, g, c.concept_id)]
                    m = float(mid[p]) if mid is not None else None
                    a = float(high[p, span.start : span.end, HIGH_B:].sum(-1).mean()) if high is not None else None
                    scored.append((c.concept_id, float(c.score), m, a))
                doc_out.append(SpanCandidates(span.start, span.end, span.label_, scored))
            out.append(doc_out)
        return out

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[SpanCandidates]]) -> None:
        for doc, doc_spans in zip(docs, predictions):
            ents, extras = [], []
            for sc in doc_spans:
                ranked = sorted(((cid, self.resolution_score(kb, m, a)) for cid, kb, m, a in sc.candidates),
                                key=lambda x: -x[1])
                best = ranked[0] if ranked and ranked[0][1] >= self.cfg["threshold"] else None
                ents.append(Span(doc, sc.start, sc.end, label=sc.label, kb_id=best[0] if best else ""))
                extras.append((best[1] if best else None, [[cid, score] for cid, score in ranked]))
            doc.ents = ents
            for ent, (score, ranked) in zip(doc.ents, extras):
                ent._.medlink_score = score
                ent._.medlink_candidates = ranked

    def resolution_score(self, kb: float, mid: Optional[float], high: Optional[float]) -> float:
        """(m^w_mid · a^w_high · kb^w_kb) ^ (1 / Σw): a weighted geometric mean in [0, 1];
        a head the model does not have (ablation) drops out of the mean."""
        terms = [(mid, self.cfg["mid_score_weight"]), (high, self.cfg["high_score_weight"]),
                 (kb, self.cfg["kb_score_weight"])]
        terms = [(min(max(v, 1e-12), 1.0), w) for v, w in terms if v is not None and w > 0]
        if not terms:
            return 0.0
        total = sum(w for _, w in terms)
        return float(numpy.exp(sum(w * numpy.log(v) for v, w in terms) / total))

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self._name_docs_cache = {}
        self._hard_cache = {}
        self._set_model_labels()


def _validate_settings(name: str, **settings: Any) -> None:
    """Clear errors for settings the pipe cannot work with."""
    if settings["tag_scheme"] not in ("BIO", "BILUO"):
        raise ValueError(f"[{name}] tag_scheme must be 'BIO' or 'BILUO', not {settings['tag_scheme']!r}")
    if settings["pair_context"] not in PAIR_CONTEXTS:
        raise ValueError(f"[{name}] pair_context must be one of {PAIR_CONTEXTS}, not {settings['pair_context']!r}")
    for key in ("mid_loss_weight", "high_loss_weight", "mid_score_weight", "high_score_weight", "kb_score_weight"):
        if settings[key] < 0:
            raise ValueError(f"[{name}] {key} must be >= 0, not {settings[key]}")
    for key in ("n_negatives", "n_hard_negatives"):
        if settings[key] < 0:
            raise ValueError(f"[{name}] {key} must be >= 0, not {settings[key]}")
    for key in ("max_names", "k", "pair_batch_size"):
        if settings[key] < 1:
            raise ValueError(f"[{name}] {key} must be >= 1, not {settings[key]}")
    negatives = settings["n_negatives"] + settings["n_hard_negatives"]
    if settings["max_concepts_per_doc"] <= negatives:
        raise ValueError(
            f"[{name}] max_concepts_per_doc ({settings['max_concepts_per_doc']}) must exceed "
            f"n_negatives + n_hard_negatives ({negatives}), leaving room for the doc's own concepts"
        )
