"""medlink_hier_linker: mention recognition, entity typing and entity linking
as a task hierarchy (Wiatrak & Iso-Sipilä, LOUHI 2020).

The model is `medlink.HierLinker.v1` (spacy_medlink/ml/hier_linker.py, where
the architectures, the PT/PE set-ups, the batch softmax and the context are
documented). This module turns Docs into the three tasks' targets and the
model's decoded tags and probabilities back into Docs:

* MR's mentions (untyped) go to ``doc.spans[mentions_key]``, so that MR is
  scored on its own (``mr_p/r/f``) beside the typed entities;
* ``doc.ents``: PT, the spans of ET's tags (EL alone: the runs of tokens
  with the same concept); PE, MR's spans with ET's type;
* each entity's concept is EL's best among the concepts seen with its type
  in training (PT: EL's distribution averaged over the span's tokens; PE:
  the span's), or, where EL's probability is below ``men_threshold`` and a
  KB was given at initialize, the KB candidate generator's, re-ranked by
  ``rerank_weight`` · EL's probability: the linking `ConceptPipe` shares
  with the joint tagger.

Nil is a class of EL (concept tag 0): tokens outside mentions (PT) and
mentions without a concept ID; its weight in the loss is ``nil_weight``.
"""
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from ..ml.hier_linker import MENTION, HierInput, model_tasks, set_hier_labels
from ..ml.scores import HierScores
from ..scoring import HIER_SCORE_WEIGHTS
from ._kb_pipe import DEFAULT_TOK2VEC_CONFIG, NIL, ConceptPipe
from .extensions import install_span_extensions

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator

default_model_config = """
[model]
@architectures = "medlink.HierLinker.v1"
architecture = "hierarchical"
setup = "PE"
task = "EL"
lstm_width = 256
lstm_depth = 1
task_width = 256
task_depth = 1
dropout = 0.2
shared_loss = "all"
use_crf = true
""" + DEFAULT_TOK2VEC_CONFIG
DEFAULT_HIER_MODEL = Config().from_str(default_model_config)["model"]
DEFAULT_MENTIONS_KEY = "medlink_mentions"


@Language.factory(
    "medlink_hier_linker",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type", "span._.medlink_score",
             "span._.medlink_candidates"],
    default_config={
        "model": DEFAULT_HIER_MODEL,
        "tag_scheme": "BILUO",
        "nil_weight": 0.125,
        "el_softmax": "batch",
        "el_negatives": 0,
        "task_weights": {"MR": 1.0, "ET": 1.0, "EL": 1.0},
        "men_threshold": 0.5,
        "rerank_weight": 0.0,
        "kb_threshold": 0.0,
        "restrict_concepts": True,
        "k": 10,
        "use_abbreviations": True,
        "type_map": {},
        "mentions_key": DEFAULT_MENTIONS_KEY,
        "scorer": {"@scorers": "medlink.hier_scorer.v1", "mentions_key": DEFAULT_MENTIONS_KEY},
    },
    default_score_weights=HIER_SCORE_WEIGHTS,
)
def make_hier_linker(
    nlp: Language,
    name: str,
    model: Model[HierInput, HierScores],
    tag_scheme: str,
    nil_weight: float,
    el_softmax: str,
    el_negatives: int,
    task_weights: Dict[str, float],
    men_threshold: float,
    rerank_weight: float,
    kb_threshold: float,
    restrict_concepts: bool,
    k: int,
    use_abbreviations: bool,
    type_map: Dict[str, str],
    mentions_key: str,
    scorer: Optional[Callable],
) -> "HierLinker":
    """Find, type and link entities with a hierarchy of tasks.

    model: a `medlink.HierLinker.v1` (architecture, PT/PE set-up, encoders).
    tag_scheme (str): "BILUO" (the paper's BILOU) or "BIO", for MR and PT's ET.
    nil_weight (float): weight of EL's nil class in the loss (the paper: 0.125).
    el_softmax (str): EL's training softmax: "batch" (the paper: over nil and
        the concepts of the batch) or "full" (over every concept).
    el_negatives (int): with "batch", this many more concepts drawn at random
        from the rest of the vocabulary for each batch (a sampled softmax).
    task_weights (Dict[str, float]): weight of each task's loss in the sum.
    men_threshold (float): EL probability under which the KB decides (with a
        KB given at initialize; the name `tune threshold` sets).
    rerank_weight (float): where the KB decides, its candidates are ranked by
        KB score + rerank_weight · EL's probability of the candidate (0 for
        concepts unseen in training), over 1 + rerank_weight so that the score
        stays in [0, 1]; 0 = the KB's top-1.
    kb_threshold (float): where the KB decides, a top-1 score below this
        leaves the concept empty (with the KB's trained ranker the score is a
        probability; tuned on dev by `tune threshold --kb-thresholds`).
    restrict_concepts (bool): an entity's concept is chosen among those seen
        with its type in training.
    k (int): candidates kept in ``span._.medlink_candidates``.
    use_abbreviations (bool): KB lookups use a short form's long form.
    type_map (Dict[str, str]): entity label -> KB type, where they differ.
    mentions_key (str): the span group of MR's (untyped) mentions.
    """
    return HierLinker(
        nlp.vocab,
        model,
        name,
        tag_scheme=tag_scheme,
        nil_weight=nil_weight,
        el_softmax=el_softmax,
        el_negatives=el_negatives,
        task_weights=task_weights,
        men_threshold=men_threshold,
        rerank_weight=rerank_weight,
        kb_threshold=kb_threshold,
        restrict_concepts=restrict_concepts,
        k=k,
        use_abbreviations=use_abbreviations,
        type_map=type_map,
        mentions_key=mentions_key,
        scorer=scorer,
    )


class HierLinker(ConceptPipe):
    """MR + ET + EL, single-task, flat or hierarchical, per token or per
    entity. Labels: entity types and concept IDs (with the types each was
    seen with), inferred from the training data."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "medlink_hier_linker",
        *,
        tag_scheme: str = "BILUO",
        nil_weight: float = 0.125,
        el_softmax: str = "batch",
        el_negatives: int = 0,
        task_weights: Optional[Dict[str, float]] = None,
        men_threshold: float = 0.5,
        rerank_weight: float = 0.0,
        kb_threshold: float = 0.0,
        restrict_concepts: bool = True,
        k: int = 10,
        use_abbreviations: bool = True,
        type_map: Optional[Dict[str, str]] = None,
        mentions_key: str = DEFAULT_MENTIONS_KEY,
        scorer: Optional[Callable] = None,
    ) -> None:
        if tag_scheme not in ("BIO", "BILUO"):
            raise ValueError(f"[{name}] tag_scheme must be 'BIO' or 'BILUO', not {tag_scheme!r}")
        if el_softmax not in ("batch", "full"):
            raise ValueError(f"[{name}] el_softmax must be 'batch' or 'full', not {el_softmax!r}")
        if el_negatives < 0:
            raise ValueError(f"[{name}] el_negatives must be >= 0, not {el_negatives}")
        unknown = set(task_weights or {}) - {"MR", "ET", "EL"}
        if unknown:
            raise ValueError(f"[{name}] task_weights: unknown tasks {sorted(unknown)} (expected MR, ET, EL)")
        install_span_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "concepts": {},  # concept ID -> entity labels it was seen with
            "tag_scheme": tag_scheme,
            "nil_weight": nil_weight,
            "el_softmax": el_softmax,
            "el_negatives": el_negatives,
            "task_weights": dict(task_weights or {}),
            "men_threshold": men_threshold,
            "rerank_weight": rerank_weight,
            "kb_threshold": kb_threshold,
            "restrict_concepts": restrict_concepts,
            "k": k,
            "use_abbreviations": use_abbreviations,
            "type_map": dict(type_map or {}),
            "mentions_key": mentions_key,
            "nI": None,
        }
        self.scorer = scorer
        self.generator: Optional["CandidateGenerator"] = None
        self._cache: Dict[str, Any] = {}

    # -- labels -------------------------------------------------------------------
    @property
    def tasks(self) -> Tuple[str, ...]:
        return model_tasks(self.model)

    @property
    def setup(self) -> str:
        return self.model.get_ref("heads").attrs["setup"]

    @property
    def mention_tags(self) -> Tuple[str, ...]:
        """MR's tags: NIL, then the BIO or BILUO moves of one label."""
        moves = "BI" if self.cfg["tag_scheme"] == "BIO" else "BILU"
        return (NIL,) + tuple(f"{m}-{MENTION}" for m in moves)

    def _set_model_labels(self) -> None:
        heads = self.model.get_ref("heads")
        if self.cfg.get("nI") and not heads.has_dim("nI"):
            heads.set_dim("nI", self.cfg["nI"])
        set_hier_labels(self.model, self.mention_tags, self.entity_tags, self.labels, self.cfg["tag_scheme"],
                        len(self.concepts))
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
        """Infer the labels (or take them from `labels`), size the heads and
        load the optional KB.

        labels (dict): {"entities": [...], "concepts": {concept_id: [labels]}}.
        kb_path (Path): a `spacy_medlink kb build` folder, for concepts unseen
            in training.
        """
        validate_get_examples(get_examples, "HierLinker.initialize")
        self._initialize_labels(get_examples, labels, kb_path)
        self._initialize_model(get_examples)

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
        validate_examples(examples, "HierLinker.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        gold, spans, columns = self._targets(examples)
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update(HierInput([eg.predicted for eg in examples], spans, columns))
        (loss, parts), d_scores = self._loss_and_gradient(scores, gold)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        for task, value in parts.items():
            losses[f"{self.name}_{task}"] = losses.get(f"{self.name}_{task}", 0.0) + value
        return losses

    def get_loss(self, examples: Iterable[Example], scores: HierScores) -> Tuple[float, HierScores]:
        """The summed task losses and their gradient w.r.t. the scores (of a
        forward pass over the same examples; EL's targets follow its columns)."""
        examples = list(examples)
        validate_examples(examples, "HierLinker.get_loss")
        gold, _, _ = self._targets(examples, columns=scores.columns)
        (loss, _), d_scores = self._loss_and_gradient(scores, gold)
        return loss, d_scores

    def _loss_and_gradient(self, scores: HierScores, gold: Dict[str, numpy.ndarray]):
        from ..ml.hier_module import hier_loss_and_gradient

        return hier_loss_and_gradient(
            scores, gold, nil_weight=self.cfg["nil_weight"], task_weights=self.cfg["task_weights"]
        )

    def _targets(
        self, examples: Sequence[Example], columns: Optional[numpy.ndarray] = None
    ) -> Tuple[Dict[str, numpy.ndarray], Optional[numpy.ndarray], Optional[numpy.ndarray]]:
        """(gold per task, PE's gold spans (S, 3), EL's columns).

        Tags are -1 where unknown (padding, tokens that do not align with
        the reference, missing annotation). EL's targets are concept tags
        (0 = nil) mapped to their index among the columns: nil and the
        concepts of the batch (plus ``el_negatives`` drawn from the rest),
        sorted, so column 0 is nil; every concept with "full". Given
        `columns` (those of a forward pass) are used as they are.
        """
        tasks = self.tasks
        T = max(len(eg.predicted) for eg in examples)
        ent_gold = self._entity_targets(examples, T)
        concept_gold = self._concept_targets(examples)
        gold: Dict[str, numpy.ndarray] = {}
        spans = None
        if "MR" in tasks:
            to_mention = numpy.asarray([self.mention_tags.index(self._mention_tag(t)) for t in self.entity_tags])
            gold["mr"] = numpy.where(ent_gold >= 0, to_mention[ent_gold.clip(min=0)], -1)
        if self.setup == "PT":
            if "ET" in tasks:
                gold["et"] = ent_gold
            if "EL" in tasks:
                el = numpy.where(ent_gold == self.entity_tags.index(NIL), 0, -1)
                for b, ents in enumerate(concept_gold):
                    for ent, tag in ents:
                        el[b, ent.start : ent.end] = tag
                gold["el"] = el
        else:
            flat = [(b, ent, tag) for b, ents in enumerate(concept_gold) for ent, tag in ents]
            spans = numpy.asarray([(b, ent.start, ent.end) for b, ent, _ in flat], dtype="int64").reshape(-1, 3)
            if "ET" in tasks:
                label_index = {label: i for i, label in enumerate(self.labels)}
                gold["et"] = numpy.asarray([label_index.get(ent.label_, -1) for _, ent, _ in flat], dtype="int64")
            if "EL" in tasks:
                gold["el"] = numpy.asarray([tag for _, _, tag in flat], dtype="int64")
        if "EL" in tasks and self.cfg["el_softmax"] == "batch":
            el = gold["el"]
            if columns is None:
                columns = numpy.unique(numpy.concatenate([[0], el[el >= 0]])).astype("int64")
                columns = self._with_negatives(columns)
            columns = numpy.asarray(columns, dtype="int64")
            gold["el"] = numpy.where(el >= 0, numpy.searchsorted(columns, el.clip(min=0)), -1)
        else:
            columns = None
        return gold, spans, columns

    def _with_negatives(self, columns: numpy.ndarray) -> numpy.ndarray:
        """`columns` plus el_negatives other concept tags, drawn uniformly
        (numpy's global generator, which spaCy's training seed fixes)."""
        n_tags = len(self.concepts) + 1
        n = min(self.cfg["el_negatives"], n_tags - len(columns))
        if n <= 0:
            return columns
        rest = numpy.setdiff1d(numpy.arange(n_tags), columns, assume_unique=True)
        return numpy.union1d(columns, numpy.random.choice(rest, n, replace=False)).astype("int64")

    @staticmethod
    def _mention_tag(entity_tag: str) -> str:
        return entity_tag if entity_tag == NIL else f"{entity_tag.split('-', 1)[0]}-{MENTION}"

    # -- prediction ---------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> Optional[HierScores]:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return None
        return self.model.predict(HierInput(docs))

    def set_annotations(self, docs: Iterable[Doc], scores: Optional[HierScores]) -> None:
        from ..ml.hier_module import path_spans

        docs = list(docs)
        key = self.cfg["mentions_key"]
        if scores is None:
            for doc in docs:
                doc.ents = []
                if "MR" in self.tasks:
                    doc.spans[key] = []
            return
        ops = self.model.ops
        np_scores = HierScores(*(ops.to_numpy(a) if a is not None else None for a in scores))
        doc_spans, doc_pooled = [], []
        for d, doc in enumerate(docs):
            if np_scores.mr_paths is not None:
                path = np_scores.mr_paths[d, : len(doc)]
                doc.spans[key] = [Span(doc, s, e, label=MENTION)
                                  for s, e in path_spans(path, self.mention_tags, self.cfg["tag_scheme"])]
            spans, pooled = self._pe_entities(doc, d, np_scores) if self.setup == "PE" else self._pt_entities(doc, d, np_scores)
            doc_spans.append(spans)
            doc_pooled.append(pooled)
        self._link(docs, doc_spans, doc_pooled)

    def _pe_entities(self, doc: Doc, d: int, scores: HierScores) -> Tuple[List[Span], List[Optional[numpy.ndarray]]]:
        """MR's spans typed by ET, with EL's concept probabilities (nil excluded)."""
        rows = numpy.flatnonzero(scores.spans[:, 0] == d) if scores.spans is not None else []
        spans, pooled = [], []
        for r in rows:
            _, start, end = (int(x) for x in scores.spans[r])
            label = self.labels[int(scores.et_probs[r].argmax())] if scores.et_probs is not None else MENTION
            spans.append(Span(doc, start, end, label=label))
            pooled.append(scores.el_probs[r, 1:] if scores.el_probs is not None else None)
        return spans, pooled

    def _pt_entities(self, doc: Doc, d: int, scores: HierScores) -> Tuple[List[Span], List[Optional[numpy.ndarray]]]:
        """ET's spans (EL alone: runs of one concept), with EL's concept
        probabilities averaged over their tokens, nil excluded and not
        renormalized (the nil mass is doubt)."""
        n = len(doc)
        if scores.et_paths is not None:
            spans = self._spans_from_tags(doc, scores.et_paths[d, :n])
        elif scores.el_rows is not None:
            spans = self._concept_runs(doc, scores.el_probs[scores.el_rows[d, :n]])
        else:
            return [], []
        if scores.el_rows is None:
            return spans, [None] * len(spans)
        rows = scores.el_rows[d, :n]
        return spans, [scores.el_probs[rows[s.start : s.end]].mean(axis=0)[1:] for s in spans]

    def _concept_runs(self, doc: Doc, probs: numpy.ndarray) -> List[Span]:
        """EL alone (single-task PT): maximal runs of tokens whose best tag
        is the same concept; the type is the first seen with it."""
        best = probs.argmax(axis=1)
        concepts = self._concept_ids()
        spans, start = [], None
        for i in range(len(best) + 1):
            if start is not None and (i == len(best) or best[i] != best[start]):
                labels = self.cfg["concepts"][concepts[best[start] - 1]]
                spans.append(Span(doc, start, i, label=labels[0] if labels else MENTION))
                start = None
            if i < len(best) and best[i] != 0 and start is None:
                start = i
        return spans

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self._set_model_labels()
