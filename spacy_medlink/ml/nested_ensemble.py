"""medlink.NestedEnsemble.v1: k nested recognizers in one component, their
scores averaged before decoding (the paper's k-fold cross-validation
stacking: k models trained on folds of train, combined at prediction).

The members share one architecture (the `member` config, copied k times) and
one label set; each is trained on its own (`spacy train` on a fold) and the
ensemble is assembled from the trained pipelines by
``python -m spacy_medlink ensemble``. At prediction every member scores the
batch; the CRF emissions and the CRF's start/transition/end scores are
averaged (one CRF decodes the mean), and the Biaffine probabilities are
averaged (returned as their logs, so that a softmax gives the mean back).
An ensemble is not trained as a whole: its forward pass refuses training.
"""
from typing import Any, Callable, List, Tuple

import numpy
from spacy.util import registry
from thinc.api import Model

from .nested_recognizer import ENSEMBLE_NAME
from .scores import NestedInput, NestedScores


@registry.architectures("medlink.NestedEnsemble.v1")
def build_nested_ensemble(member: Model[NestedInput, NestedScores], n_members: int) -> Model[NestedInput, NestedScores]:
    """member: a `medlink.NestedRecognizer.v1` (or its transformer variant),
    built n_members times. n_members (int): at least 2."""
    if n_members < 2:
        raise ValueError(f"an ensemble needs at least 2 members, not {n_members}")
    members = [member] + [copy_member(member) for _ in range(n_members - 1)]
    return Model(ENSEMBLE_NAME, _forward, init=_init, layers=members, attrs={"n_members": n_members})


def copy_member(member: Model) -> Model:
    """A deep copy with its refs pointing into the copy (thinc's copy drops refs)."""
    copied = member.copy()
    for name in member.ref_names:
        copied.set_ref(name, copied.layers[member.layers.index(member.get_ref(name))])
    return copied


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    raise ValueError(
        "a medlink.NestedEnsemble.v1 is assembled from trained members (python -m spacy_medlink ensemble), "
        "not initialized or trained as a whole"
    )


def _forward(model: Model, X: NestedInput, is_train: bool) -> Tuple[NestedScores, Callable]:
    if is_train:
        _init(model)
    return average_scores([member.predict(X) for member in model.layers], model.ops), _no_backprop


def _no_backprop(d_scores: Any) -> Any:
    raise ValueError("an ensemble has no backward pass")


def average_scores(all_scores: List[NestedScores], ops) -> NestedScores:
    def mean(name: str):
        arrays = [getattr(s, name) for s in all_scores]
        if any(a is None for a in arrays):
            return None
        return sum(ops.asarray(a) for a in arrays) / len(arrays)

    biaffine = None
    if all(s.biaffine is not None for s in all_scores):
        probs = []
        for s in all_scores:
            logits = ops.to_numpy(s.biaffine)
            e = numpy.exp(logits - logits.max(axis=-1, keepdims=True))
            probs.append(e / e.sum(axis=-1, keepdims=True))
        biaffine = ops.asarray(numpy.log(numpy.maximum(sum(probs) / len(probs), 1e-12)).astype("float32"))
    return NestedScores(
        emissions=mean("emissions"), biaffine=biaffine, start=mean("start"), transitions=mean("transitions"),
        end=mean("end"), loss_w=all_scores[0].loss_w, lengths=all_scores[0].lengths,
    )
