"""medlink.nested_loss_weights_trace.v1: a training callback that records the
nested recognizer's learned loss weights (α, β) as training goes. spaCy's
training loop calls it, not the pipe, so it lives apart from the component."""
from pathlib import Path
from typing import Any, Callable, Dict

import srsly
from spacy.language import Language
from spacy.util import registry

from ..ml.nested_recognizer import torch_module
from .nested_recognizer import NestedRecognizer


@registry.callbacks("medlink.nested_loss_weights_trace.v1")
def create_loss_weights_trace(path: str, every: int = 100) -> Callable[[Language, Dict[str, Any]], None]:
    """A ``[training.before_update]`` callback: every `every` steps, append the
    current α and β (and, with uncertainty weighting, the log variances) of
    each nested recognizer to the JSON-lines file `path`, to see what the
    learned weights do during training."""
    trace = Path(path)

    def before_update(nlp: Language, info: Dict[str, Any]) -> None:
        step = info.get("step", 0)
        if step % every:
            return
        rows = []
        for name, pipe in nlp.pipeline:
            if isinstance(pipe, NestedRecognizer) and pipe.model.has_ref("heads") and pipe.model.get_ref("heads").layers:
                module = torch_module(pipe.model)
                rows.append({"step": step, "epoch": info.get("epoch"), "component": name,
                             "loss_weighting": module.loss_weights.mode,
                             **module.loss_weights.describe(module.loss_weights.w)})
        if rows:
            trace.parent.mkdir(parents=True, exist_ok=True)
            with trace.open("a", encoding="utf8") as file_:
                file_.writelines(srsly.json_dumps(row) + "\n" for row in rows)

    return before_update
