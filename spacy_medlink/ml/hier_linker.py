"""medlink.HierLinker.v1: mention recognition, entity typing and entity
linking as a hierarchy of tasks over one shared encoder.

Wiatrak & Iso-Sipilä (LOUHI 2020), "Simple hierarchical multi-task neural
end-to-end entity linking for biomedical text". Three tasks:

* MR, mention recognition: BIO/BILUO tags of one label ("is part of a
  mention"), by a linear decoder (optionally scored by a CRF);
* ET, entity typing: the entity type;
* EL, entity linking: the concept, classified over the concept IDs seen in
  training plus nil (column 0).

``architecture`` picks how they share the encoder:

* "single": one task (``task``) and its linear decoder on the encoder;
* "flat": the three decoders on the shared encoder, losses summed;
* "hierarchical": MR lowest, ET in the middle, EL on top, each with its own
  BiLSTM (`ShortcutBiLSTM`) that reads the shared encoding concatenated with
  the output of the task below (the shortcut connections of Sanh et al.,
  2019); each decoder reads its task's BiLSTM.

``shared_loss = "el"`` tunes the shared encoder on the EL loss only (the
paper's set-up for the hierarchical model): MR and ET read a detached copy
of it, so their losses train their own layers (and, through the shortcuts,
nothing below EL's input is moved by them).

``setup`` picks what ET and EL classify:

* "PT", per token: ET tags every token with BIO/BILUO over the types, EL
  gives every token a concept (nil outside mentions); all three tasks are
  sequence labelling and a mention's concept is read from its tokens;
* "PE", per entity: MR finds the spans (gold spans in training, MR's own at
  inference); a span is the mean of its tokens' vectors (`span_mean`) in
  the ET and in the EL encoding; ET and EL classify the span.

EL's softmax in training runs over the concept columns the pipe passes in
(the concepts of the batch plus nil: the paper's memory trick for extreme
classification; only those rows of the output layer are multiplied), or
over all concepts when it passes none; at inference over all concepts, and
only for the tokens or spans that need it. Measured on BC5CDR
(docs/results.md#hier): with batches of ~1,000 words (a few abstracts, a few dozen
concepts) the batch softmax never contrasts a concept with the thousand
others it meets at inference, and EL stays near chance; the pipe's
``el_softmax = "full"`` (cheap for a few thousand concepts) or
``el_negatives`` (concepts sampled into every batch) fix that.

Context: the paper encodes each target sentence together with the sentences
before and after it and keeps only the target's outputs. Our docs are whole
abstracts, and every token is a target: the encoder reads the abstract as one
sequence (the tok2vec window and the BiLSTMs reach across sentence
boundaries), which is the paper's set-up with the context as wide as the
abstract. With a transformer, spacy-transformers' strided spans do the same
job: each window of ``window`` wordpieces overlaps the next by ``window -
stride``, so a sentence near a window edge is still encoded with the text
around it, and the overlapping outputs are averaged.

As in `ml/joint_tagger.py`, the torch module returns scores (emissions,
logits, CRF start/transition/end scores); the pipe computes the loss in
torch on leaf copies (`hier_loss`) and hands the gradients back. The module
and its loss are in `ml/hier_module.py`, its scores in `ml/scores.py`; this
module holds the builder, the label set-up and the thinc glue, and imports
torch only inside the functions that use it (`torch_utils`).
"""
from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..torch_utils import require_torch
from .scores import HierScores

if TYPE_CHECKING:
    from .crf import Constraints

ARCHITECTURES = ("single", "flat", "hierarchical")
SETUPS = ("PT", "PE")
SHARED_LOSSES = ("all", "el")
MENTION = "ENTITY"
"""The one label of MR's tags."""


class HierInput(NamedTuple):
    """What the model reads: the docs; (S, 3) int rows (doc, start, end) of
    the spans that PE classifies in training (None at inference: MR's own);
    the EL columns of the softmax in training (None: all)."""

    docs: List[Doc]
    spans: Optional[numpy.ndarray] = None
    columns: Optional[numpy.ndarray] = None


@registry.architectures("medlink.HierLinker.v1")
def build_hier_linker(
    tok2vec: Model[List[Doc], List[Floats2d]],
    architecture: str = "hierarchical",
    setup: str = "PE",
    task: str = "EL",
    lstm_width: int = 256,
    lstm_depth: int = 1,
    task_width: int = 256,
    task_depth: int = 1,
    dropout: float = 0.2,
    shared_loss: str = "all",
    use_crf: bool = True,
    layer_norm: bool = True,
) -> Model[HierInput, HierScores]:
    """Shared encoder, MR/ET/EL decoders, single-task, flat or hierarchical.

    tok2vec: token vectors (a Tok2Vec, or a listener of a tok2vec/transformer).
    architecture (str): "single", "flat" or "hierarchical".
    setup (str): "PT" (per token) or "PE" (per entity: mean-pooled spans).
    task (str): the task of a "single" model: "MR", "ET" or "EL" (PE: "MR"
        only, since ET and EL classify MR's spans there).
    lstm_width, lstm_depth: the shared BiLSTM over the tok2vec output (depth
        0 = none; the paper's shared encoder is BERT alone).
    task_width, task_depth: each task's BiLSTM (hierarchical only).
    dropout (float): on every encoder's input and output.
    shared_loss (str): "all" (every task's loss trains the shared encoder)
        or "el" (only EL's).
    use_crf (bool): MR (and PT's ET) tags scored by a linear-chain CRF; else
        softmax, decoded to the best valid path all the same.
    layer_norm (bool): a LayerNorm on each decoder's input. The paper's
        decoders read BERT's (layer-normalized, wide) outputs; ours read
        tanh-bounded BiLSTM states, with which EL's thousand-way softmax
        learned slowly on BC5CDR (docs/results.md#hier).
    """
    require_torch("medlink.HierLinker.v1")
    from .hier_module import TASKS

    for name, value, allowed in (("architecture", architecture, ARCHITECTURES), ("setup", setup, SETUPS),
                                 ("task", task, TASKS), ("shared_loss", shared_loss, SHARED_LOSSES)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    if architecture == "single" and setup == "PE" and task != "MR":
        raise ValueError("a single-task PE model can only be MR: ET and EL classify the spans MR finds")
    if architecture == "single" and shared_loss == "el" and task != "EL":
        raise ValueError(f"shared_loss='el' with the single task {task!r} would leave the encoder untrained")
    for name, width in (("lstm_width", lstm_width), ("task_width", task_width)):
        if width % 2:
            raise ValueError(f"{name} must be even (two directions), not {width}")
    heads: Model = Model(
        "medlink_hier_heads",
        _heads_forward,
        init=_heads_init,
        dims={"nI": tok2vec.maybe_get_dim("nO")},
        attrs={
            "architecture": architecture,
            "setup": setup,
            "task": task,
            "lstm_width": lstm_width,
            "lstm_depth": lstm_depth,
            "task_width": task_width,
            "task_depth": task_depth,
            "dropout": dropout,
            "shared_loss": shared_loss,
            "use_crf": use_crf,
            "layer_norm": layer_norm,
            # set by set_hier_labels
            "mr_tags": None,
            "et_tags": None,
            "types": None,
            "tag_scheme": None,
            "n_concepts": None,
        },
    )
    model: Model = Model("medlink_hier_linker", _forward, init=_init, layers=[tok2vec, heads])
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("heads", heads)
    return model


def model_tasks(model: Model) -> Tuple[str, ...]:
    from .hier_module import TASKS

    attrs = model.get_ref("heads").attrs
    return (attrs["task"],) if attrs["architecture"] == "single" else TASKS


def set_hier_labels(
    model: Model, mr_tags: Sequence[str], et_tags: Sequence[str], types: Sequence[str], tag_scheme: str,
    n_concepts: int,
) -> None:
    """Give the heads their label spaces and (re)build the torch module.

    mr_tags: MR's tags ("O", "B-ENTITY", ...); et_tags: PT's ET tags ("O",
    "B-Chemical", ...); types: the entity types (PE's ET classes);
    n_concepts: EL's concepts, nil excluded (EL has n_concepts + 1 outputs).
    """
    from .crf import transition_constraints

    heads = model.get_ref("heads")
    transition_constraints(mr_tags, tag_scheme)
    transition_constraints(et_tags, tag_scheme)
    heads.attrs.update({"mr_tags": list(mr_tags), "et_tags": list(et_tags), "types": list(types),
                        "tag_scheme": tag_scheme, "n_concepts": int(n_concepts)})
    if heads.has_dim("nI"):
        _build(heads)


def tag_constraints(model: Model) -> Tuple["Constraints", "Constraints"]:
    from .crf import transition_constraints

    attrs = model.get_ref("heads").attrs
    scheme = attrs["tag_scheme"]
    return transition_constraints(attrs["mr_tags"], scheme), transition_constraints(attrs["et_tags"], scheme)


# -- thinc side ------------------------------------------------------------------
def _forward(model: Model, X: HierInput, is_train: bool) -> Tuple[HierScores, Callable]:
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    vectors, bp_vectors = tok2vec(X.docs, is_train)
    scores, bp_heads = heads((vectors, X.spans, X.columns), is_train)

    def backprop(d_scores: HierScores) -> HierInput:
        bp_vectors(bp_heads(d_scores))
        return X

    return scores, backprop


def _init(model: Model, X: Optional[HierInput] = None, Y: Any = None) -> None:
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    docs = (list(X.docs) if isinstance(X, HierInput) else list(X)) if X is not None else None
    tok2vec.initialize(X=docs)
    if not heads.has_dim("nI") and docs:
        heads.set_dim("nI", tok2vec.predict(docs[:1])[0].shape[1])
    heads.initialize()


def _heads_init(model: Model, X: Any = None, Y: Any = None) -> None:
    if not model.layers:
        _build(model)


def _heads_forward(model: Model, X: Any, is_train: bool) -> Tuple[HierScores, Callable]:
    if not model.layers:
        raise ValueError("medlink_hier_heads: no labels yet; the pipe calls set_hier_labels first")
    return model.layers[0](X, is_train)


def _build(heads: Model) -> None:
    from .hier_module import HierLinkerModule
    from .torch_wrapper import wrap_torch_module

    attrs = heads.attrs
    if attrs["mr_tags"] is None:
        raise ValueError("medlink_hier_heads: set_hier_labels must be called before initialization")
    scheme = attrs["tag_scheme"]
    module = HierLinkerModule(
        heads.get_dim("nI"),
        mr_tags=attrs["mr_tags"],
        et_tags=attrs["et_tags"],
        n_types=len(attrs["types"]),
        n_concepts=attrs["n_concepts"] + 1,
        tag_scheme=scheme,
        architecture=attrs["architecture"],
        setup=attrs["setup"],
        task=attrs["task"],
        lstm_width=attrs["lstm_width"],
        lstm_depth=attrs["lstm_depth"],
        task_width=attrs["task_width"],
        task_depth=attrs["task_depth"],
        dropout=attrs["dropout"],
        shared_loss=attrs["shared_loss"],
        use_crf=attrs["use_crf"],
        layer_norm=attrs["layer_norm"],
    )
    wrapped = wrap_torch_module(module, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs)
    wrapped.attrs["heads"] = heads
    heads.layers[:] = [wrapped]


def _convert_inputs(model: Model, X: Any, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    import torch

    vectors, spans, columns = X
    width = model.attrs["heads"].get_dim("nI")
    lengths = [len(x) for x in vectors]
    padded = model.ops.alloc3f(len(vectors), max(lengths, default=0), width)
    for i, x in enumerate(vectors):
        padded[i, : len(x)] = x
    device = model.shims[0].device
    Xt = xp2torch(padded, requires_grad=is_train, device=device)
    kwargs = {
        "spans": None if spans is None else torch.as_tensor(numpy.asarray(spans, dtype="int64").reshape(-1, 3), device=device),
        "columns": None if columns is None else torch.as_tensor(numpy.asarray(columns, dtype="int64"), device=device),
    }

    def reverse(dXt: ArgsKwargs) -> List[Floats2d]:
        grad = dXt.args[0]
        if grad is None:
            return [model.ops.alloc2f(n, width) for n in lengths]
        dX = torch2xp(grad, ops=model.ops)
        return [dX[i, :n] for i, n in enumerate(lengths)]

    return ArgsKwargs(args=(Xt, torch.tensor(lengths, dtype=torch.long)), kwargs=kwargs), reverse


def _convert_outputs(model: Model, X_Yt: Tuple[Any, tuple], is_train: bool) -> Tuple[HierScores, Callable]:
    from .hier_module import DIFFERENTIABLE
    from .torch_wrapper import backward_args

    X, outputs = X_Yt
    lengths = model.ops.asarray1i([len(x) for x in X[0]])
    arrays = [None if t is None else torch2xp(t, ops=model.ops) for t in outputs]
    scores = HierScores(*arrays[:9], lengths, *arrays[9:], columns=X[2])
    return scores, lambda d_scores: backward_args(outputs[: len(DIFFERENTIABLE)], d_scores, DIFFERENTIABLE)
