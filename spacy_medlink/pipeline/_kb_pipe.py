"""What the trainable medlink components with a KB share: entity labels and
their BIO/BILUO tags (targets, decoding to spans), sizing the heads at
initialize, scoring with IDs resolved through the KB, and serialization that
loads the cfg (labels) before the model, so the heads exist before their
weights load, and that carries the optional KB (a `CandidateGenerator`)
along. `ConceptPipe` adds the linking of components that classify over the
concepts seen in training, with the KB as fallback and re-ranker."""
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.errors import Errors
from spacy.tokens import Doc, Span
from spacy.training import Example, biluo_tags_to_spans, iob_to_biluo

from ..corpora.partial import ANNOTATED_KEY, OUTSIDE_KEY
from ._config_settings import BytesParts, CfgPipe, DiskParts

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator
    from ..kb.names import Candidate


NIL = "O"  # the outside tag: index 0 of `KBPipe.entity_tags`


# The encoder both components default to (spaCy's CPU tok2vec); each factory
# puts its own [model] section above it.
DEFAULT_TOK2VEC_CONFIG = """
[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""


class KBPipe(CfgPipe):
    """Subclasses set ``generator`` (or None), ``cfg`` (with "labels",
    "tag_scheme" and "nI") and ``scorer``, give their model a "heads" and a
    "tok2vec" ref, and define ``_set_model_labels`` (size the heads for
    `entity_tags`) and ``_load_cfg`` (update cfg, rebuild the heads)."""

    generator: Optional["CandidateGenerator"]

    # -- entity labels and tags ---------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def entity_tags(self) -> Tuple[str, ...]:
        """The entity tagger's outputs: NIL, then each label's BIO or BILUO moves."""
        moves = "BI" if self.cfg["tag_scheme"] == "BIO" else "BILU"
        return (NIL,) + tuple(f"{m}-{label}" for label in self.labels for m in moves)

    def add_label(self, label: str) -> int:
        """Add an entity label (before initialization only: the heads are sized then)."""
        if not isinstance(label, str):
            raise ValueError(Errors.E187)
        if label in self.labels:
            return 0
        if self.model.get_ref("heads").layers:
            raise ValueError(f"[{self.name}] cannot add label {label!r} after initialization")
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def _set_labels(self, labels: Iterable[str]) -> None:
        self.cfg["labels"] = []
        for label in labels:
            self.cfg["labels"].append(label)
            self.vocab.strings.add(label)
        if not self.labels:
            raise ValueError(Errors.E143.format(name=self.name))

    def _initialize_model(self, get_examples: Callable[[], Iterable[Example]]) -> None:
        """Fresh heads sized by the encoder's width and the labels, then the
        whole model initialized on a sample of docs."""
        doc_sample = [eg.x for eg in islice(get_examples(), 10)]
        if not doc_sample:
            raise ValueError(Errors.E923.format(name=self.name))
        heads = self.model.get_ref("heads")
        heads.layers[:] = []  # re-initialization starts from fresh heads
        if not heads.has_dim("nI"):
            tok2vec = self.model.get_ref("tok2vec")
            tok2vec.initialize(X=doc_sample)
            heads.set_dim("nI", tok2vec.predict(doc_sample[:1])[0].shape[1])
        self.cfg["nI"] = heads.get_dim("nI")
        self._set_model_labels()
        self.model.initialize(X=doc_sample)

    def _set_model_labels(self) -> None:
        raise NotImplementedError

    def _entity_targets(self, examples: Sequence[Example], n_positions: int) -> numpy.ndarray:
        """Gold `entity_tags` indices (B, T), -1 where unknown: padding, tokens
        that do not align with the reference, missing annotation."""
        gold = numpy.full((len(examples), n_positions), -1, dtype=numpy.int64)
        tag_index = {tag: i for i, tag in enumerate(self.entity_tags)}
        bio = self.cfg["tag_scheme"] == "BIO"
        for b, eg in enumerate(examples):
            _, tags = eg.get_aligned_ents_and_ner()
            for i, tag in enumerate(tags):
                if tag is None:
                    continue
                if bio:
                    tag = tag.replace("U-", "B-", 1).replace("L-", "I-", 1)
                gold[b, i] = tag_index.get(tag, -1)
        return gold

    def _partial_targets(self, examples: Sequence[Example], gold: numpy.ndarray
                         ) -> Tuple[numpy.ndarray, Optional[numpy.ndarray]]:
        """Gold tags for references that annotate only some labels.

        An outside token of a reference whose ``user_data[ANNOTATED_KEY]``
        lacks some labels may be any of their tags: it becomes unknown (-1),
        with candidates (B, T, n_tags) "outside or a tag of an unannotated
        label" for the partial-label CRF. Tokens of ``spans[OUTSIDE_KEY]`` are
        outside whatever the corpus annotates. Returns `gold` unchanged and
        None when no reference is partial.
        """
        n_tags = len(self.entity_tags)
        nil = self.entity_tags.index(NIL)
        candidates: Optional[numpy.ndarray] = None
        gold = gold.copy()
        for b, eg in enumerate(examples):
            annotated = eg.reference.user_data.get(ANNOTATED_KEY)
            outside = eg.reference.spans.get(OUTSIDE_KEY, [])
            if annotated is None and not len(outside):
                continue
            complete = set(self.labels if annotated is None else annotated)
            missing = [label for label in self.labels if label not in complete]
            if missing:
                if candidates is None:
                    candidates = numpy.zeros(gold.shape + (n_tags,), dtype=bool)
                row = numpy.zeros(n_tags, dtype=bool)
                row[nil] = True
                for i, tag in enumerate(self.entity_tags):
                    if tag != NIL and tag.split("-", 1)[1] in missing:
                        row[i] = True
                ambiguous = gold[b] == nil
                gold[b, ambiguous] = -1
                candidates[b, ambiguous] = row
            for span in outside:
                aligned = eg.predicted.char_span(span.start_char, span.end_char, alignment_mode="expand")
                if aligned is not None:
                    gold[b, aligned.start : aligned.end] = nil
                    if candidates is not None:
                        candidates[b, aligned.start : aligned.end] = False
        return gold, candidates

    def _spans_from_tags(self, doc: Doc, path: Iterable[int]) -> List[Span]:
        """Entity spans from a decoded (always valid) sequence of tag indices."""
        tags = self.entity_tags
        path_tags = [tags[i] for i in path]
        if self.cfg["tag_scheme"] == "BIO":
            path_tags = iob_to_biluo(path_tags)
        return biluo_tags_to_spans(doc, path_tags)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """NER + normalization scores; IDs resolved through the KB when there is one."""
        if self.scorer is None:
            return {}
        if self.generator is not None:
            kwargs.setdefault("id_resolver", self.generator.kb.resolve)
        return self.scorer(examples, **kwargs)

    def _bytes_parts(self) -> BytesParts:
        def load_kb(b: bytes) -> None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_bytes(b) if b else None

        return {"kb": lambda: self.generator.to_bytes() if self.generator is not None else b""}, {"kb": load_kb}

    def _disk_parts(self) -> DiskParts:
        def load_kb(p: Path) -> None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_disk(p) if p.exists() else None

        save = {"kb": lambda p: self.generator.to_disk(p)} if self.generator is not None else {}
        return save, {"kb": load_kb}


class ConceptPipe(KBPipe):
    """A KBPipe whose model scores the concept IDs seen in training (tag 0
    nil, tag i+1 ``concepts[i]``), with the KB as the fallback for the spans
    it is unsure of: the linking that the joint tagger and the hierarchical
    linker share.

    cfg adds "concepts" (concept ID -> the entity labels it was seen with),
    "men_threshold", "rerank_weight", "kb_threshold", "restrict_concepts", "k",
    "use_abbreviations" and "type_map" (the names `tune threshold` sets):
    linking settings, so the config decides them at load.
    Subclasses reset ``_cache`` whenever the labels change.
    """

    _cache: Dict[str, Any]
    inference_settings = ("men_threshold", "rerank_weight", "kb_threshold", "restrict_concepts", "k",
                          "use_abbreviations", "type_map")

    @property
    def concepts(self) -> Tuple[str, ...]:
        """Concept tags of the concept head; tag 0 is nil, tag i+1 is concepts[i]."""
        return tuple(self.cfg["concepts"])

    @property
    def label_data(self) -> Dict[str, Any]:
        return {"entities": list(self.labels), "concepts": {c: list(ls) for c, ls in self.cfg["concepts"].items()}}

    def _initialize_labels(
        self, get_examples: Callable[[], Iterable[Example]], labels: Optional[Dict[str, Any]], kb_path: Optional[Path]
    ) -> None:
        """Entity labels and concepts from the training data (or from
        `labels`, as `spacy init labels` writes `label_data`), and the KB."""
        if labels is None:
            entity_labels = set()
            concepts: Dict[str, set] = {}
            for eg in get_examples():
                for ent in eg.reference.ents:
                    entity_labels.add(ent.label_)
                    if ent.kb_id_:
                        concepts.setdefault(ent.kb_id_, set()).add(ent.label_)
            labels = {"entities": sorted(entity_labels), "concepts": {c: sorted(concepts[c]) for c in sorted(concepts)}}
        self.cfg["concepts"] = {c: list(ls) for c, ls in labels["concepts"].items()}
        self._set_labels(labels["entities"])
        self.generator = None
        if kb_path is not None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_disk(Path(kb_path))

    def _concept_targets(self, examples: Sequence[Example]) -> List[List[Tuple[Span, int]]]:
        """Each example's aligned gold entities with their concept tag: 0 for
        a mention without a concept ID, -1 for one with an ID outside the
        concept tags (a concept unseen when the labels were set)."""
        index = self._concept_index()
        out = []
        for eg in examples:
            ids = {(e.start_char, e.end_char, e.label_): e.kb_id_ for e in eg.reference.ents}
            doc_out = []
            for ent in eg.get_aligned_ents_and_ner()[0]:
                kb_id = ids.get((ent.start_char, ent.end_char, ent.label_), "")
                doc_out.append((ent, index.get(kb_id, -1) if kb_id else 0))
            out.append(doc_out)
        return out

    # -- linking ------------------------------------------------------------------
    def _link(self, docs: Sequence[Doc], doc_spans: Sequence[Sequence[Span]],
              doc_pooled: Sequence[Sequence[Optional[numpy.ndarray]]]) -> None:
        """Set ``doc.ents`` from each doc's spans and their pooled concept
        probabilities (nil excluded; None where the model has no concept
        head): the model's best concept, or, below ``men_threshold`` and with
        a KB, the KB's candidates (re-ranked by ``rerank_weight``), no
        concept where the KB's top-1 scores under ``kb_threshold``."""
        decided: List[List[Tuple[Span, str, Optional[float], List[List[Any]]]]] = []
        unsure: List[Tuple[int, int, Optional[numpy.ndarray]]] = []
        for d, (spans, pooled_list) in enumerate(zip(doc_spans, doc_pooled)):
            doc_out = []
            for span, pooled in zip(spans, pooled_list):
                if pooled is None:
                    cid, prob, ranked = "", 0.0, []
                else:
                    pooled = self._restricted(pooled, span.label_)
                    cid, prob, ranked = self._men_concept(pooled)
                if prob < self.cfg["men_threshold"] and self.generator is not None:
                    unsure.append((d, len(doc_out), pooled))
                doc_out.append((span, cid, prob, ranked))
            decided.append(doc_out)
        if unsure:
            found = self._kb_candidates([decided[d][s][0] for d, s, _ in unsure])
            kb_threshold = self.cfg.get("kb_threshold", 0.0)  # absent from pipelines saved before it
            for (d, s, pooled), cands in zip(unsure, found):
                if cands:
                    span = decided[d][s][0]
                    ranked = self._rerank(cands, pooled)
                    cid = ranked[0][0] if cands[0].score >= kb_threshold else ""
                    decided[d][s] = (span, cid, ranked[0][1], ranked)
        for doc, doc_out in zip(docs, decided):
            doc.ents = [Span(doc, s.start, s.end, label=s.label, kb_id=cid) for s, cid, _, _ in doc_out]
            for ent, (_, _, score, ranked) in zip(doc.ents, doc_out):
                ent._.medlink_score = score
                ent._.medlink_candidates = ranked

    def _restricted(self, pooled: numpy.ndarray, label: str) -> numpy.ndarray:
        """-1 for the concepts not seen with `label` in training (restrict_concepts)."""
        allowed = self._label_concepts(label)
        return pooled if allowed is None else numpy.where(allowed, pooled, -1.0)

    def _men_concept(self, pooled: numpy.ndarray) -> Tuple[str, float, List[List[Any]]]:
        """(concept, pooled probability, ranked [concept, probability]) for one span."""
        k = min(self.cfg["k"], len(pooled))
        top = numpy.sort(numpy.argpartition(-pooled, k - 1)[:k]) if 0 < k < len(pooled) else numpy.arange(k)
        order = top[numpy.argsort(-pooled[top], kind="stable")]
        concepts = self._concept_ids()
        ranked = [[concepts[i], float(pooled[i])] for i in order if pooled[i] >= 0]
        if not ranked:
            return "", 0.0, []
        return ranked[0][0], ranked[0][1], ranked

    def _rerank(self, cands: Sequence["Candidate"], pooled: Optional[numpy.ndarray]) -> List[List[Any]]:
        """KB candidates as [concept, score], best first: (KB score +
        rerank_weight · pooled probability (0 if unseen in training)) /
        (1 + rerank_weight), so the score stays in [0, 1] like both parts."""
        weight = self.cfg["rerank_weight"]
        if not weight or pooled is None:
            return [[c.concept_id, float(c.score)] for c in cands]
        index = self._concept_index()
        scored = []
        for c in cands:
            i = index.get(c.concept_id)
            prob = max(float(pooled[i - 1]), 0.0) if i is not None else 0.0
            scored.append([c.concept_id, (float(c.score) + weight * prob) / (1.0 + weight)])
        return sorted(scored, key=lambda x: -x[1])  # stable: KB order among equals

    def _concept_ids(self) -> Tuple[str, ...]:
        """`concepts`, built once per label set (decoding reads it for every span)."""
        if "concepts" not in self._cache:
            self._cache["concepts"] = self.concepts
        return self._cache["concepts"]

    def _concept_index(self) -> Dict[str, int]:
        """Concept ID -> its tag (i + 1)."""
        if "concept_index" not in self._cache:
            self._cache["concept_index"] = {c: i + 1 for i, c in enumerate(self._concept_ids())}
        return self._cache["concept_index"]

    def _label_concepts(self, label: str) -> Optional[numpy.ndarray]:
        if not self.cfg["restrict_concepts"]:
            return None
        masks = self._cache.setdefault("label_concepts", {})
        if label not in masks:
            masks[label] = numpy.asarray([label in ls for ls in self.cfg["concepts"].values()], dtype=bool)
        return masks[label]

    def _kb_candidates(self, spans: Sequence[Span]) -> List[List["Candidate"]]:
        """KB candidates for spans, in one batched lookup (as medlink_kb_linker)."""
        from ..kb.span_lookup import span_candidates

        assert self.generator is not None
        memo = self._cache.get("kb_memo")
        if memo is not None:  # `memoized_lookups`: the same spans, the same answer
            texts: Dict[int, str] = {}  # each doc's text built once, not once per span
            for span in spans:
                if id(span.doc) not in texts:
                    texts[id(span.doc)] = span.doc.text
            key = tuple((texts[id(span.doc)], span.start, span.end, span.label) for span in spans)
            if key in memo:
                return memo[key]
        found = span_candidates(
            self.generator,
            spans,
            k=self.cfg["k"],
            type_map=self.cfg["type_map"],
            use_abbreviations=self.cfg["use_abbreviations"],
        )
        if memo is not None:
            memo[key] = found
        return found

    @contextmanager
    def memoized_lookups(self) -> Iterator[None]:
        """Within the block, a batch of spans already looked up gets its earlier answer.

        For sweeps (`tune threshold`): settings that send the same spans to the KB
        (every rerank_weight and kb_threshold under one men_threshold) look them up
        once. The answer depends on the batch (the ranker reads the document's
        other mentions), so the key is the whole batch, not each span.
        """
        self._cache["kb_memo"] = {}
        try:
            yield
        finally:
            self._cache.pop("kb_memo", None)
