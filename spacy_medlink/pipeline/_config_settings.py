"""Inference settings at load: the pipeline's config (with any override given to
spacy.load) decides them, not the cfg saved beside the weights, so that
`spacy.load(path, config={"components": {name: {"threshold": 0.7}}})` moves a
trained pipeline's threshold. Where the two differ, a warning says which won."""
import math
import warnings
from typing import Any, Dict, Iterable


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
