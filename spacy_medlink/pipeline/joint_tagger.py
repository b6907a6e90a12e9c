"""medlink_joint_tagger: joint NER and normalization by two tagging heads with feedback.

The method of Zhao et al. (AAAI 2019); the model is `medlink.JointTagger.v1`
(spacy_medlink/ml/joint_tagger.py, where the feedback, the cycle-breaking and
the loss are documented). This module turns Docs into tag targets and tag
scores back into ``doc.ents``:

* MER tags (BIO or BILUO over the entity labels) are decoded to the best
  *valid* sequence (Viterbi with the CRF, or constrained Viterbi over the
  softmax), so spans never need repair;
* each span's concept is the argmax of the MEN distribution averaged over its
  tokens, nil excluded, among the concepts seen with the span's label in
  training (``restrict_concepts``);
* the MEN head only knows concepts seen in training. Where its pooled
  probability is below ``men_threshold`` and a KB was given at initialize,
  the span gets the KB candidate generator's top-1 instead (typed by label,
  document-defined abbreviations looked up by their long form), like
  ``medlink_kb_linker``; with ``rerank_weight`` > 0 the KB's top-k are
  re-ranked by KB score + rerank_weight · MEN probability, so the MEN head's
  doubt still counts among the names the KB found. The KB ships inside the
  pipeline.

``span._.medlink_score`` is the pooled MEN probability, or the KB score where
the KB decided; ``span._.medlink_candidates`` the ranked list from the same
source.
"""
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate

from ..ml.joint_tagger import decode_mer, joint_loss_and_gradient, joint_members, mer_constraints, set_joint_labels
from ..ml.scores import JointScores
from ..scoring import NER_NEN_SCORE_WEIGHTS
from ._kb_pipe import DEFAULT_TOK2VEC_CONFIG, NIL, ConceptPipe
from .extensions import install_span_extensions

if TYPE_CHECKING:
    # Imported lazily: spaCy imports every factory module on each spacy.blank.
    from ..kb.candidates import CandidateGenerator

default_model_config = """
[model]
@architectures = "medlink.JointTagger.v1"
lstm_width = 256
lstm_depth = 1
dropout = 0.2
feedback = "both"
feedback_init = "uniform"
use_crf = true
""" + DEFAULT_TOK2VEC_CONFIG
DEFAULT_JOINT_MODEL = Config().from_str(default_model_config)["model"]
DEFAULT_JOINT_SCORER = {"@scorers": "medlink.ner_nen_scorer.v1"}


@Language.factory(
    "medlink_joint_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "span._.medlink_score", "span._.medlink_candidates"],
    default_config={
        "model": DEFAULT_JOINT_MODEL,
        "tag_scheme": "BIO",
        "men_weight": 1.0,
        "aux_weight": 1.0,
        "men_threshold": 0.5,
        "rerank_weight": 0.0,
        "kb_threshold": 0.0,
        "restrict_concepts": True,
        "k": 10,
        "use_abbreviations": True,
        "type_map": {},
        "scorer": DEFAULT_JOINT_SCORER,
    },
    default_score_weights=NER_NEN_SCORE_WEIGHTS,
)
def make_joint_tagger(
    nlp: Language,
    name: str,
    model: Model[List[Doc], JointScores],
    tag_scheme: str,
    men_weight: float,
    aux_weight: float,
    men_threshold: float,
    rerank_weight: float,
    kb_threshold: float,
    restrict_concepts: bool,
    k: int,
    use_abbreviations: bool,
    type_map: Dict[str, str],
    scorer: Optional[Callable],
) -> "JointTagger":
    """Find, type and ground entities in one model (Zhao et al., 2019).

    model: a `medlink.JointTagger.v1` (encoder, MER/MEN heads, feedback, CRF).
    tag_scheme (str): MER tags, "BIO" or "BILUO".
    men_weight (float): weight of the MEN loss against the MER loss.
    aux_weight (float): weight of the first-guess heads of the feedback cycle.
    men_threshold (float): pooled MEN probability under which the KB decides
        (if a KB was given at initialize).
    rerank_weight (float): where the KB decides, its candidates are ranked by
        KB score + rerank_weight · the span's pooled MEN probability of the
        candidate (0 for concepts unseen in training), over 1 + rerank_weight
        so that the score stays in [0, 1]; 0 = the KB's top-1.
    kb_threshold (float): where the KB decides, a top-1 score below this
        leaves the concept empty (with the KB's trained ranker the score is a
        probability; tuned on dev by `tune threshold --kb-thresholds`).
    restrict_concepts (bool): a span's concept is chosen among those seen with
        its label in training.
    k (int): candidates kept in ``span._.medlink_candidates``.
    use_abbreviations (bool): KB lookups use a short form's long form.
    type_map (Dict[str, str]): entity label -> KB type, where they differ.
    """
    return JointTagger(
        nlp.vocab,
        model,
        name,
        tag_scheme=tag_scheme,
        men_weight=men_weight,
        aux_weight=aux_weight,
        men_threshold=men_threshold,
        rerank_weight=rerank_weight,
        kb_threshold=kb_threshold,
        restrict_concepts=restrict_concepts,
        k=k,
        use_abbreviations=use_abbreviations,
        type_map=type_map,
        scorer=scorer,
    )


class JointTagger(ConceptPipe):
    """Joint MER + MEN tagger. Labels: entity types and concept IDs (with the
    types each was seen with), inferred from the training data."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "medlink_joint_tagger",
        *,
        tag_scheme: str = "BIO",
        men_weight: float = 1.0,
        aux_weight: float = 1.0,
        men_threshold: float = 0.5,
        rerank_weight: float = 0.0,
        kb_threshold: float = 0.0,
        restrict_concepts: bool = True,
        k: int = 10,
        use_abbreviations: bool = True,
        type_map: Optional[Dict[str, str]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        if tag_scheme not in ("BIO", "BILUO"):
            raise ValueError(f"[{name}] tag_scheme must be 'BIO' or 'BILUO', not {tag_scheme!r}")
        install_span_extensions()
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "concepts": {},  # concept ID -> entity labels it was seen with
            "tag_scheme": tag_scheme,
            "men_weight": men_weight,
            "aux_weight": aux_weight,
            "men_threshold": men_threshold,
            "rerank_weight": rerank_weight,
            "kb_threshold": kb_threshold,
            "restrict_concepts": restrict_concepts,
            "k": k,
            "use_abbreviations": use_abbreviations,
            "type_map": dict(type_map or {}),
            "nI": None,
        }
        self.scorer = scorer
        self.generator: Optional["CandidateGenerator"] = None
        self._cache: Dict[str, Any] = {}

    # -- labels -------------------------------------------------------------------
    def _set_model_labels(self) -> None:
        for member in joint_members(self.model):  # an ensemble's members, or the model
            heads = member.get_ref("heads")
            if self.cfg.get("nI") and not heads.has_dim("nI"):
                heads.set_dim("nI", self.cfg["nI"])
        set_joint_labels(self.model, self.entity_tags, self.cfg["tag_scheme"], len(self.concepts))
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
        """Infer the labels (or take them from `labels`, as `spacy init labels`
        writes `label_data`), size the heads and load the optional KB.

        labels (dict): {"entities": [...], "concepts": {concept_id: [labels]}}.
        kb_path (Path): a `spacy_medlink kb build` folder, for the fallback.
        """
        validate_get_examples(get_examples, "JointTagger.initialize")
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
        validate_examples(examples, "JointTagger.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: JointScores) -> Tuple[float, JointScores]:
        """Joint loss (ml.joint_tagger.joint_loss, in torch) and its gradient w.r.t. the scores."""
        examples = list(examples)
        validate_examples(examples, "JointTagger.get_loss")
        mer_gold, men_gold = self._targets(examples, scores.mer.shape[1])
        mer_gold, candidates = self._partial_targets(examples, mer_gold)
        men_gold = numpy.where(mer_gold < 0, -1, men_gold)  # a token that may be a mention of an unannotated type
        return joint_loss_and_gradient(
            scores, mer_gold, men_gold, men_weight=self.cfg["men_weight"], aux_weight=self.cfg["aux_weight"],
            mer_candidates=candidates,
        )

    def _targets(self, examples: Sequence[Example], n_positions: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Gold MER and MEN tag indices (B, T), -1 where unknown.

        Unknown: padding, tokens that do not align with the reference, missing
        annotation; for MEN also the tokens of a mention without a concept ID,
        or with one not among the concept tags. MEN's nil is MER's outside.
        """
        mer = self._entity_targets(examples, n_positions)
        men = numpy.where(mer == self.entity_tags.index(NIL), 0, -1).astype(numpy.int64)
        concept_index = self._concept_index()
        for b, eg in enumerate(examples):
            x_ents = eg.get_aligned_ents_and_ner()[0]
            ids = {(e.start_char, e.end_char, e.label_): e.kb_id_ for e in eg.reference.ents}
            for ent in x_ents:
                index = concept_index.get(ids.get((ent.start_char, ent.end_char, ent.label_), ""))
                if index is not None:
                    men[b, ent.start : ent.end] = index
        return mer, men

    # -- prediction ---------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> Optional[JointScores]:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return None
        return self.model.predict(docs)

    def set_annotations(self, docs: Iterable[Doc], scores: Optional[JointScores]) -> None:
        docs = list(docs)
        if scores is None:
            for doc in docs:
                doc.ents = []
            return
        paths = decode_mer(scores, self._constraints())
        ops = self.model.ops
        doc_spans, doc_pooled = [], []
        for d, (doc, path) in enumerate(zip(docs, paths)):
            spans = self._spans_from_tags(doc, path)
            rows = ops.to_numpy(scores.men_rows[d, : len(doc)]) if spans else None
            # a span's concept probabilities: the mean over its tokens, nil
            # excluded and not renormalized (the nil mass is doubt)
            doc_pooled.append([ops.to_numpy(scores.men_probs[rows[s.start : s.end]]).mean(axis=0)[1:] for s in spans])
            doc_spans.append(spans)
        self._link(docs, doc_spans, doc_pooled)

    def _constraints(self):
        if "constraints" not in self._cache:
            self._cache["constraints"] = mer_constraints(self.model)
        return self._cache["constraints"]

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self._set_model_labels()
