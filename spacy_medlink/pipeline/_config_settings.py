"""The cfg of a trained component, and the serialization that loads it first.
Inference settings at load: the pipeline's config (with any override given to
spacy.load) decides them, not the cfg saved beside the weights, so that
`spacy.load(path, config={"components": {name: {"threshold": 0.7}}})` moves a
trained pipeline's threshold. Where the two differ, a warning says which won."""
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Tuple

import srsly
from spacy import util
from spacy.pipeline import TrainablePipe

BytesParts = Tuple[Dict[str, Callable[[], bytes]], Dict[str, Callable[[bytes], Any]]]
DiskParts = Tuple[Dict[str, Callable[[Path], Any]], Dict[str, Callable[[Path], Any]]]


def trained_cfg(name: str, current: Dict[str, Any], saved: Dict[str, Any], inference: Iterable[str]) -> Dict[str, Any]:
    """The saved cfg without the inference settings, which `current` (the cfg the
    config built) keeps. Where the config's value differs from the saved one (an
    override given to spacy.load, or a pipe.cfg edited before saving without the
    config, which `tune` keeps in step), a warning says the config won."""
    inference = list(inference)
    for key in inference:
        if key in saved and key in current and not _same(current[key], saved[key]):
            warnings.warn(f"[{name}] {key} = {current[key]!r} from the config, not the {saved[key]!r} saved with "
                          "the pipeline: the config decides inference settings at load")
    return {k: v for k, v in saved.items() if k not in inference}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


class CfgPipe(TrainablePipe):
    """A trainable pipe whose ``cfg`` (labels, switches) must load before its
    weights, because it sizes the heads: the serialization every medlink
    component shares. Subclasses define ``_load_cfg`` (update cfg, rebuild
    the heads) and may add parts after the model (``_bytes_parts``,
    ``_disk_parts``, e.g. the KB) and a hook run once everything has loaded
    (``_after_load``)."""

    cfg: Dict[str, Any]
    # cfg keys that only change prediction: at load the pipeline's config (with any
    # override given to spacy.load) decides them, not the cfg saved beside the
    # weights, so `spacy.load(..., config=...)` can move a threshold
    inference_settings: Tuple[str, ...] = ()

    def _trained_cfg(self, saved: Dict[str, Any]) -> Dict[str, Any]:
        return trained_cfg(self.name, self.cfg, saved, self.inference_settings)

    def _load_cfg(self, cfg: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _bytes_parts(self) -> BytesParts:
        """(writers, readers) of the parts beyond cfg, vocab and model."""
        return {}, {}

    def _disk_parts(self) -> DiskParts:
        """(writers, readers) of the parts beyond cfg, vocab and model; a reader
        gets its path whether or not the part was written."""
        return {}, {}

    def _after_load(self) -> None:
        pass

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            **self._bytes_parts()[0],
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "CfgPipe":
        deserialize = {
            "cfg": lambda b: self._load_cfg(self._trained_cfg(srsly.json_loads(b))),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: self.model.from_bytes(b),
            **self._bytes_parts()[1],
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        self._after_load()
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: self.model.to_disk(p),
            **self._disk_parts()[0],
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "CfgPipe":
        def load_model(p: Path) -> None:
            with open(p, "rb") as file_:
                self.model.from_bytes(file_.read())

        deserialize = {
            "cfg": lambda p: self._load_cfg(self._trained_cfg(srsly.read_json(p))),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
            **self._disk_parts()[1],
        }
        util.from_disk(path, deserialize, exclude)
        self._after_load()
        return self
