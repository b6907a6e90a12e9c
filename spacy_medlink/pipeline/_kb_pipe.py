"""What the trainable medlink components with a KB share: scoring with IDs
resolved through the KB, and serialization that loads the cfg (labels) before
the model, so the heads exist before their weights load, and that carries the
optional KB (a `CandidateGenerator`) along."""
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

import srsly
from spacy import util
from spacy.pipeline import TrainablePipe
from spacy.training import Example

if TYPE_CHECKING:
    from ..kb.candidates import CandidateGenerator


class KBPipe(TrainablePipe):
    """Subclasses set ``generator`` (or None), ``cfg`` and ``scorer``, and
    define ``_load_cfg`` (update cfg, rebuild the heads for the labels)."""

    generator: Optional["CandidateGenerator"]
    cfg: Dict[str, Any]

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
