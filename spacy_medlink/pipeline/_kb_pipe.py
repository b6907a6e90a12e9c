"""What the trainable medlink components with a KB share: entity labels and
their BIO/BILUO tags (targets, decoding to spans), sizing the heads at
initialize, scoring with IDs resolved through the KB, and serialization that
loads the cfg (labels) before the model, so the heads exist before their
weights load, and that carries the optional KB (a `CandidateGenerator`)
along."""
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy import util
from spacy.errors import Errors
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, biluo_tags_to_spans, iob_to_biluo

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator


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


class KBPipe(TrainablePipe):
    """Subclasses set ``generator`` (or None), ``cfg`` (with "labels",
    "tag_scheme" and "nI") and ``scorer``, give their model a "heads" and a
    "tok2vec" ref, and define ``_set_model_labels`` (size the heads for
    `entity_tags`) and ``_load_cfg`` (update cfg, rebuild the heads)."""

    generator: Optional["CandidateGenerator"]
    cfg: Dict[str, Any]

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

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            "kb": lambda: self.generator.to_bytes() if self.generator is not None else b"",
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "KBPipe":
        def load_kb(b: bytes) -> None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_bytes(b) if b else None

        deserialize = {
            "cfg": lambda b: self._load_cfg(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: self.model.from_bytes(b),
            "kb": load_kb,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: self.model.to_disk(p),
        }
        if self.generator is not None:
            serialize["kb"] = lambda p: self.generator.to_disk(p)
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "KBPipe":
        def load_model(p: Path) -> None:
            with open(p, "rb") as file_:
                self.model.from_bytes(file_.read())

        def load_kb(p: Path) -> None:
            from ..kb.candidates import CandidateGenerator

            self.generator = CandidateGenerator.from_disk(p) if p.exists() else None

        deserialize = {
            "cfg": lambda p: self._load_cfg(srsly.read_json(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
            "kb": load_kb,
        }
        util.from_disk(path, deserialize, exclude)
        return self

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        raise NotImplementedError
