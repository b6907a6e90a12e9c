"""medlink_nested_recognizer: nested NER by machine reading comprehension,
a CRF main head and a Biaffine auxiliary head (MRC-MTL-MS, CCL 2022).

The model is `medlink.NestedRecognizer.v1` (spacy_medlink/ml/nested_recognizer.py,
where the encoding of the (sentence, query) pair, the heads and the loss are
documented). This module turns Docs into per-type targets and per-type
decodes back into spans:

* one query per entity type (``queries``, label -> text), tokenized by the
  pipeline's own tokenizer and encoded with the sentences;
* the CRF target of type k tags the outermost spans of type k (a BIO
  sequence cannot hold a span of type k inside another of type k; the
  Biaffine target keeps every span up to ``max_span_length``);
* decoding: Viterbi per (sentence, type), so entities of different types
  may nest, or (``decoder = "biaffine"``) the Biaffine head's spans;
* every entity goes to ``doc.spans[spans_key]`` (the key the corpus readers
  use), and with ``set_ents`` the outermost non-overlapping ones to
  ``doc.ents``.

FGM (``fgm_epsilon`` > 0; Miyato et al., 2017, as in the paper): after the
clean forward/backward pass, the encoder's input is moved by ε·g/‖g‖ (g its
gradient) and a second pass adds its gradients. The paper perturbs BERT's
word embeddings; with a tok2vec the perturbed vectors are the tok2vec's
output, the input of our encoder (the hash embeddings are summed inside
spaCy's tok2vec before the window encoder, so there is no separate
embedding output to perturb). With `medlink.NestedRecognizerTransformer.v1`
the word-embedding matrix itself is perturbed, as in the paper.
"""
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.errors import Errors
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model, set_dropout_rate, xp2torch

from ..ml.nested_recognizer import (
    DECODERS,
    OBJECTIVES,
    TAG_SCHEMES,
    ensemble_members,
    set_nested_labels,
    tag_path_spans,
    torch_module,
    type_constraints,
)
from ..ml.scores import NestedScores
from ..scoring import NESTED_SCORE_WEIGHTS
from ._config_settings import CfgPipe
from ._kb_pipe import DEFAULT_TOK2VEC_CONFIG
from ._nested_targets import nested_targets

PREDICT_PADDED = 4096
"""Padded tokens (docs × longest doc) per chunk at prediction."""

default_model_config = """
[model]
@architectures = "medlink.NestedRecognizer.v1"
hidden_width = 256
lstm_depth = 1
type_width = 64
aux_lstm_width = 128
biaffine_width = 128
max_span_length = 30
dropout = 0.2
""" + DEFAULT_TOK2VEC_CONFIG
DEFAULT_NESTED_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "medlink_nested_recognizer",
    assigns=["doc.spans", "doc.ents"],
    default_config={
        "model": DEFAULT_NESTED_MODEL,
        "spans_key": "nested",
        "queries": {},
        "tag_scheme": "BIO",
        "objective": "mtl",
        "loss_weighting": "paper",
        "alpha": 0.5,
        "beta": 0.5,
        "decoder": "crf",
        "biaffine_threshold": 0.5,
        "fgm_epsilon": 0.0,
        "set_ents": True,
        "scorer": {"@scorers": "medlink.nested_spans_scorer.v1"},
    },
    default_score_weights=NESTED_SCORE_WEIGHTS,
)
def make_nested_recognizer(
    nlp: Language,
    name: str,
    model: Model[Tuple[List[Doc], List[Doc]], NestedScores],
    spans_key: str,
    queries: Dict[str, str],
    tag_scheme: str,
    objective: str,
    loss_weighting: str,
    alpha: float,
    beta: float,
    decoder: str,
    biaffine_threshold: float,
    fgm_epsilon: float,
    set_ents: bool,
    scorer: Optional[Callable],
) -> "NestedRecognizer":
    """Find nested entities, one MRC query per type (MRC-MTL-MS, CCL 2022).

    model: a `medlink.NestedRecognizer.v1`.
    spans_key (str): doc.spans key for all predicted entities (and the gold).
    queries (Dict[str, str]): entity label -> query text; a label without
        one is an error at initialize (`medlink.mrc_queries.v1` has presets).
    tag_scheme (str): the CRF's tags per type, "BIO" or "BIOES".
    objective (str): "mtl" (CRF + Biaffine), "crf" or "biaffine" alone.
    loss_weighting (str): "paper" (learned α, β > 0, α + β = 1),
        "uncertainty" (Kendall et al., 2018) or "fixed" (alpha, beta).
    alpha, beta (float): the fixed weights of the CRF and Biaffine losses.
    decoder (str): "crf" (Viterbi per type) or "biaffine".
    biaffine_threshold (float): span probability the Biaffine decoder keeps.
    fgm_epsilon (float): FGM adversarial step on the encoder input; 0 = off.
    set_ents (bool): also write the outermost non-overlapping spans to doc.ents.
    """
    return NestedRecognizer(
        nlp.vocab, model, name, make_doc=nlp.make_doc, spans_key=spans_key, queries=queries,
        tag_scheme=tag_scheme, objective=objective, loss_weighting=loss_weighting, alpha=alpha,
        beta=beta, decoder=decoder, biaffine_threshold=biaffine_threshold,
        fgm_epsilon=fgm_epsilon, set_ents=set_ents, scorer=scorer,
    )


class NestedRecognizer(CfgPipe):
    """MRC nested recognizer. Labels: the entity types of doc.spans[spans_key]
    in the training data, each with its query."""

    # how to decode is the loader's choice: a trained model decodes either way
    inference_settings = ("decoder", "biaffine_threshold", "set_ents")

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "medlink_nested_recognizer",
        *,
        make_doc: Callable[[str], Doc],
        spans_key: str = "nested",
        queries: Optional[Dict[str, str]] = None,
        tag_scheme: str = "BIO",
        objective: str = "mtl",
        loss_weighting: str = "paper",
        alpha: float = 0.5,
        beta: float = 0.5,
        decoder: str = "crf",
        biaffine_threshold: float = 0.5,
        fgm_epsilon: float = 0.0,
        set_ents: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        from ..ml.layers import LOSS_WEIGHTINGS

        for option, value, allowed in (
            ("tag_scheme", tag_scheme, tuple(TAG_SCHEMES)),
            ("objective", objective, OBJECTIVES),
            ("loss_weighting", loss_weighting, LOSS_WEIGHTINGS),
            ("decoder", decoder, DECODERS),
        ):
            if value not in allowed:
                raise ValueError(f"[{name}] {option} must be one of {allowed}, not {value!r}")
        if (objective, decoder) in (("crf", "biaffine"), ("biaffine", "crf")):
            raise ValueError(f"[{name}] decoder {decoder!r} is not trained by objective {objective!r}")
        if fgm_epsilon < 0:
            raise ValueError(f"[{name}] fgm_epsilon must be >= 0, not {fgm_epsilon}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.make_doc = make_doc
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "spans_key": spans_key,
            "queries": dict(queries or {}),
            "tag_scheme": tag_scheme,
            "objective": objective,
            "loss_weighting": loss_weighting,
            "alpha": alpha,
            "beta": beta,
            "decoder": decoder,
            "biaffine_threshold": biaffine_threshold,
            "fgm_epsilon": fgm_epsilon,
            "set_ents": set_ents,
            "nI": None,
        }
        self.scorer = scorer
        self._query_docs: Optional[List[Doc]] = None

    # -- labels -------------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def key(self) -> str:
        return str(self.cfg["spans_key"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        """Add an entity type (before initialization: the heads are sized then)."""
        if not isinstance(label, str):
            raise ValueError(Errors.E187)
        if label in self.labels:
            return 0
        if any(m.get_ref("heads").layers for m in ensemble_members(self.model)):
            raise ValueError(f"[{self.name}] cannot add label {label!r} after initialization")
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def query_docs(self) -> List[Doc]:
        """The queries, one Doc per label in label order, made once."""
        if self._query_docs is None:
            missing = [label for label in self.labels if not self.cfg["queries"].get(label, "").strip()]
            if missing:
                raise ValueError(
                    f"[{self.name}] no query for label(s) {missing}: give `queries` (label -> text) "
                    f"in the config, e.g. queries = {{\"@misc\": \"medlink.mrc_queries.v1\", \"corpus\": ...}}"
                )
            self._query_docs = [self.make_doc(self.cfg["queries"][label]) for label in self.labels]
        return self._query_docs

    def _set_run_switches(self) -> None:
        """Which heads run in training and in prediction (model attrs, which the model's
        own bytes restore too: set again after loading them)."""
        for member in ensemble_members(self.model):
            heads = member.get_ref("heads")
            heads.attrs["biaffine_train"] = self.cfg["objective"] != "crf"
            heads.attrs["biaffine_predict"] = self.cfg["decoder"] == "biaffine"

    def _set_model_labels(self) -> None:
        for member in ensemble_members(self.model):
            heads = member.get_ref("heads")
            if self.cfg.get("nI") and not heads.has_dim("nI"):
                heads.set_dim("nI", self.cfg["nI"])
        self._set_run_switches()
        set_nested_labels(
            self.model, len(self.labels), self.cfg["tag_scheme"], self.cfg["loss_weighting"],
            self.cfg["alpha"], self.cfg["beta"],
        )
        self._query_docs = None

    # -- training -----------------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Infer the types from doc.spans[spans_key] (or take `labels`, as
        `spacy init labels` writes `label_data`) and size the heads."""
        validate_get_examples(get_examples, "NestedRecognizer.initialize")
        if len(ensemble_members(self.model)) > 1:
            raise ValueError(f"[{self.name}] an ensemble is assembled from trained members "
                             "(python -m spacy_medlink ensemble), not initialized")
        if labels is None:
            found = set()
            for eg in get_examples():
                found.update(span.label_ for span in eg.reference.spans.get(self.key, []))
            labels = sorted(found)
        self.cfg["labels"] = []
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(Errors.E143.format(name=self.name))
        self.query_docs()  # fail early on a label without a query
        doc_sample = [eg.x for eg in islice(get_examples(), 10)]
        if not doc_sample:
            raise ValueError(Errors.E923.format(name=self.name))
        heads = self.model.get_ref("heads")
        heads.layers[:] = []
        if not heads.has_dim("nI"):
            tok2vec = self.model.get_ref("tok2vec")
            tok2vec.initialize(X=doc_sample)
            heads.set_dim("nI", tok2vec.predict(doc_sample[:1])[0].shape[1])
        self.cfg["nI"] = heads.get_dim("nI")
        self._set_model_labels()
        self.model.initialize(X=(doc_sample, self.query_docs()))

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """One step; with FGM a second, adversarial pass (see the module docstring).

        Besides the loss, ``losses`` gets this step's CRF and Biaffine losses
        and the current α and β (overwritten, not summed: spaCy's loggers
        then show their latest values).
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "NestedRecognizer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        if len(ensemble_members(self.model)) > 1:
            raise ValueError(f"[{self.name}] an ensemble is not trained: train its members, then assemble them")
        set_dropout_rate(self.model, drop)
        if self.model.has_ref("tok2vec"):
            scores, loss, l_crf, l_biaffine = self._update_tok2vec(examples, losses)
        else:
            scores, loss, l_crf, l_biaffine = self._update_transformer(examples, losses)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        weights = torch_module(self.model).loss_weights.describe(xp2torch(scores.loss_w))
        losses[f"{self.name}_crf"] = l_crf
        losses[f"{self.name}_biaffine"] = l_biaffine
        for k, v in weights.items():
            losses[f"{self.name}_{k}"] = v
        return losses

    def _update_tok2vec(self, examples: List[Example], losses: Dict[str, float]):
        """tok2vec and heads driven apart, so that FGM can move the heads'
        input (the tok2vec output) without running the tok2vec twice."""
        tok2vec, heads = self.model.get_ref("tok2vec"), self.model.get_ref("heads")
        docs, queries = [eg.predicted for eg in examples], self.query_docs()
        vectors, bp_vectors = tok2vec.begin_update(docs + queries)
        inputs = (vectors[: len(docs)], vectors[len(docs):])
        scores, bp_heads = heads.begin_update(inputs)
        (loss, l_crf, l_biaffine), d_scores = self._loss(examples, scores)
        d_inputs = [list(d) for d in bp_heads(d_scores)]
        eps = self.cfg["fgm_epsilon"]
        if eps > 0:
            ops = self.model.ops
            norm = float(numpy.sqrt(sum(float((ops.to_numpy(d) ** 2).sum()) for part in d_inputs for d in part)))
            if norm > 0:
                adversarial = tuple(
                    [x + (eps / norm) * d for x, d in zip(xs, ds)] for xs, ds in zip(inputs, d_inputs)
                )
                scores_adv, bp_adv = heads.begin_update(adversarial)
                (loss_adv, _, _), d_adv = self._loss(examples, scores_adv)
                for part, extra in zip(d_inputs, bp_adv(d_adv)):
                    for i, d in enumerate(extra):
                        part[i] = part[i] + d
                losses[f"{self.name}_fgm"] = loss_adv
        bp_vectors(d_inputs[0] + d_inputs[1])
        return scores, loss, l_crf, l_biaffine

    def _update_transformer(self, examples: List[Example], losses: Dict[str, float]):
        """One pass; with FGM, the word-embedding matrix moves by ε·g/‖g‖ for
        a second pass and back (the paper's FGM)."""
        inputs = ([eg.predicted for eg in examples], self.query_docs())
        scores, backprop = self.model.begin_update(inputs)
        (loss, l_crf, l_biaffine), d_scores = self._loss(examples, scores)
        backprop(d_scores)
        eps = self.cfg["fgm_epsilon"]
        if eps > 0:
            embeddings = torch_module(self.model).fgm_parameter()
            if embeddings.grad is not None and float(embeddings.grad.norm()) > 0:
                backup = embeddings.data.clone()
                embeddings.data.add_(eps * embeddings.grad / embeddings.grad.norm())
                scores_adv, backprop_adv = self.model.begin_update(inputs)
                (loss_adv, _, _), d_adv = self._loss(examples, scores_adv)
                backprop_adv(d_adv)
                embeddings.data.copy_(backup)
                losses[f"{self.name}_fgm"] = loss_adv
        return scores, loss, l_crf, l_biaffine

    def get_loss(self, examples: Iterable[Example], scores: NestedScores) -> Tuple[float, NestedScores]:
        """The objective's loss (ml.nested_module.nested_loss, in torch) and its gradient."""
        (loss, _, _), d_scores = self._loss(list(examples), scores)
        return loss, d_scores

    def _loss(self, examples: Sequence[Example], scores: NestedScores):
        from ..ml.nested_module import nested_loss_and_gradient

        validate_examples(examples, "NestedRecognizer.get_loss")
        T = scores.emissions.shape[2]
        L = scores.biaffine.shape[3] if scores.biaffine is not None else None
        tag_gold, span_gold = nested_targets(examples, self.key, self.labels, self.cfg["tag_scheme"], T, L)
        return nested_loss_and_gradient(
            scores, tag_gold, span_gold, torch_module(self.model).loss_weights, self.cfg["objective"]
        )

    # -- prediction ---------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[Tuple[List[int], NestedScores]]:
        """Scores in chunks of similar-length docs: (doc indices, scores).

        Every (sentence, type) pair is padded to its chunk's longest
        sentence, so a batch of short sentences with one long one would cost
        as if all were long; sorted chunks of at most ``PREDICT_PADDED``
        padded tokens keep the cost near the real token count.
        """
        docs = list(docs)
        order = sorted((i for i, doc in enumerate(docs) if len(doc)), key=lambda i: len(docs[i]))
        chunks: List[Tuple[List[int], NestedScores]] = []
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * len(docs[order[end]]) <= PREDICT_PADDED:
                end += 1
            indices = order[start:end]
            chunks.append((indices, self.model.predict(([docs[i] for i in indices], self.query_docs()))))
            start = end
        return chunks

    def set_annotations(self, docs: Iterable[Doc], chunks: List[Tuple[List[int], NestedScores]]) -> None:
        from ..ml.nested_module import decode_biaffine, decode_crf

        docs = list(docs)
        per_doc: List[List[List[Tuple[int, int]]]] = [[[] for _ in self.labels] for _ in docs]
        for indices, scores in chunks:
            if self.cfg["decoder"] == "biaffine":
                found = decode_biaffine(scores, self.cfg["biaffine_threshold"])
            else:
                paths = decode_crf(scores, self._constraints())
                found = [[tag_path_spans(path, self.cfg["tag_scheme"]) for path in doc_paths] for doc_paths in paths]
            for i, per_type in zip(indices, found):
                per_doc[i] = per_type
        for doc, per_type in zip(docs, per_doc):
            spans = [
                Span(doc, s, e, label=label)
                for label, found_k in zip(self.labels, per_type)
                for s, e in found_k
            ]
            spans.sort(key=lambda s: (s.start, -s.end, s.label_))
            doc.spans[self.key] = spans
            if self.cfg["set_ents"]:
                doc.ents = filter_spans(spans)

    def _constraints(self):
        if getattr(self, "_constraints_cache", None) is None:
            self._constraints_cache = type_constraints(self.cfg["tag_scheme"])
        return self._constraints_cache

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        if self.scorer is None:
            return {}
        kwargs.setdefault("spans_key", self.key)
        return self.scorer(examples, **kwargs)

    # -- serialization (CfgPipe: cfg first, then the model) -----------------------
    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        self.cfg.update(cfg)
        self._constraints_cache = None
        self._set_model_labels()

    def _after_load(self) -> None:
        self._set_run_switches()
