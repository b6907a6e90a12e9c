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
only for the tokens or spans that need it. Measured on BC5CDR (metrics/
README.md): with batches of ~1,000 words (a few abstracts, a few dozen
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
torch on leaf copies (`hier_loss`) and hands the gradients back.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc
from spacy.training import iob_to_biluo
from spacy.training.iob_utils import tags_to_entities
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from .crf import CRF, Constraints, log_partition, transition_constraints, viterbi
from .layers import BiLSTM, ShortcutBiLSTM, length_mask, span_mean
from .torch_wrapper import backward_args, loss_on_leaves, wrap_torch_module

TASKS = ("MR", "ET", "EL")
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


class HierScores(NamedTuple):
    """Scores for B docs padded to T tokens.

    Training: mr (B, T, n_mr) MR emissions; et: PT (B, T, n_et) ET
    emissions, PE (S, n_types) logits of the given spans; el: PT (B, T, C)
    or PE (S, C) logits over the given columns; the CRF scores of MR and
    (PT) ET with forbidden moves at NEG. None where a task is absent.

    Inference: mr_paths, et_paths (B, T) best valid tag paths (-1 on
    padding); spans (S, 3) MR's spans (PE); et_probs (S, n_types) (PE);
    el_probs (n, n_concepts + 1) EL probabilities of the tokens inside
    predicted entities (PT: el_rows (B, T) gives each token's row, -1
    outside) or of the spans (PE).

    columns: the EL columns of the input (None: all concepts), so that a
    loss over these scores maps its targets the way the forward pass did.
    """

    mr: Any = None
    et: Any = None
    el: Any = None
    mr_start: Any = None
    mr_transitions: Any = None
    mr_end: Any = None
    et_start: Any = None
    et_transitions: Any = None
    et_end: Any = None
    lengths: Any = None
    mr_paths: Any = None
    et_paths: Any = None
    spans: Any = None
    et_probs: Any = None
    el_probs: Any = None
    el_rows: Any = None
    columns: Any = None


_DIFFERENTIABLE = ("mr", "et", "el", "mr_start", "mr_transitions", "mr_end", "et_start", "et_transitions", "et_end")


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
        learned slowly on BC5CDR (metrics/README.md).
    """
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
    heads = model.get_ref("heads")
    transition_constraints(mr_tags, tag_scheme)
    transition_constraints(et_tags, tag_scheme)
    heads.attrs.update({"mr_tags": list(mr_tags), "et_tags": list(et_tags), "types": list(types),
                        "tag_scheme": tag_scheme, "n_concepts": int(n_concepts)})
    if heads.has_dim("nI"):
        _build(heads)


def tag_constraints(model: Model) -> Tuple[Constraints, Constraints]:
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


# -- torch side ------------------------------------------------------------------
class HierLinkerModule(torch.nn.Module):
    """Shared BiLSTM, the task encoders (hierarchical), the three decoders, CRFs."""

    def __init__(
        self,
        nI: int,
        *,
        mr_tags: Sequence[str],
        et_tags: Sequence[str],
        n_types: int,
        n_concepts: int,
        tag_scheme: str,
        architecture: str,
        setup: str,
        task: str,
        lstm_width: int,
        lstm_depth: int,
        task_width: int,
        task_depth: int,
        dropout: float,
        shared_loss: str,
        use_crf: bool,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.setup = setup
        self.shared_loss = shared_loss
        self.tasks = (task,) if architecture == "single" else TASKS
        self.mr_tags, self.et_tags = list(mr_tags), list(et_tags)
        self.tag_scheme = tag_scheme
        self.mr_constraints = transition_constraints(mr_tags, tag_scheme)
        self.et_constraints = transition_constraints(et_tags, tag_scheme)
        self.drop = torch.nn.Dropout(dropout)
        self.shared = BiLSTM(nI, lstm_width, lstm_depth, dropout) if lstm_depth else None
        H = lstm_width if lstm_depth else nI
        self.encoders = torch.nn.ModuleDict()
        if architecture == "hierarchical":
            lower = 0
            for name in TASKS:
                self.encoders[name] = ShortcutBiLSTM(H, lower, task_width, task_depth, dropout)
                lower = task_width
            H = task_width
        n_et = len(et_tags) if setup == "PT" else n_types
        # one LayerNorm per task on the decoder input (identity without)
        self.norms = torch.nn.ModuleDict(
            {name: torch.nn.LayerNorm(H) if layer_norm else torch.nn.Identity() for name in self.tasks}
        )
        self.mr_out = torch.nn.Linear(H, len(mr_tags)) if "MR" in self.tasks else None
        self.et_out = torch.nn.Linear(H, n_et) if "ET" in self.tasks else None
        self.el_out = torch.nn.Linear(H, n_concepts) if "EL" in self.tasks else None
        self.mr_crf = CRF(len(mr_tags), self.mr_constraints) if use_crf and self.mr_out is not None else None
        pt_et = use_crf and setup == "PT" and self.et_out is not None
        self.et_crf = CRF(len(et_tags), self.et_constraints) if pt_et else None

    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Each task's decoder input (B, T, H): its encoding, layer-normalized."""
        shared = self.drop(X)
        if self.shared is not None:
            shared = self.drop(self.shared(shared, lengths))
        below_el = shared.detach() if self.shared_loss == "el" and self.training else shared
        inputs = {"MR": below_el, "ET": below_el, "EL": shared}
        out = dict(inputs)
        if self.encoders:
            lower = None
            for name in TASKS:
                lower = out[name] = self.drop(self.encoders[name](inputs[name], lower, lengths))
        return {name: self.norms[name](out[name]) for name in self.tasks}

    def el_logits(self, H: torch.Tensor, columns: Optional[torch.Tensor]) -> torch.Tensor:
        """EL logits over `columns` of the concept layer (all when None)."""
        assert self.el_out is not None
        if columns is None:
            return self.el_out(H)
        return torch.nn.functional.linear(H, self.el_out.weight[columns], self.el_out.bias[columns])

    def forward(
        self, X: torch.Tensor, lengths: torch.Tensor, spans: Optional[torch.Tensor] = None,
        columns: Optional[torch.Tensor] = None,
    ) -> Tuple[Optional[torch.Tensor], ...]:
        B, T = X.shape[:2]
        mask = length_mask(lengths, T)
        H = self.encode(X, lengths)
        crf_scores = tuple(crf() if crf is not None else (None, None, None) for crf in (self.mr_crf, self.et_crf))
        crf_flat = crf_scores[0] + crf_scores[1]
        if not self.training:
            return (None,) * 9 + self._infer(H, mask, lengths, crf_scores)
        mr = self.mr_out(H["MR"]) if self.mr_out is not None else None
        et = el = None
        if self.setup == "PT":
            if self.et_out is not None:
                et = self.et_out(H["ET"])
            if self.el_out is not None:
                flat = self.el_logits(H["EL"][mask], columns)  # real tokens only: EL is the widest layer
                el = flat.new_zeros((B, T, flat.shape[-1]))
                el[mask] = flat
        else:
            assert spans is not None, "PE training needs the gold spans"
            if self.et_out is not None:
                et = self.et_out(span_mean(H["ET"], spans))
            if self.el_out is not None:
                el = self.el_logits(span_mean(H["EL"], spans), columns)
        return (mr, et, el) + crf_flat + (None,) * 6

    def _infer(self, H, mask, lengths, crf_scores) -> Tuple[Optional[torch.Tensor], ...]:
        """(mr_paths, et_paths, spans, et_probs, el_probs, el_rows): decode the
        tags first, then run EL only where an entity was found."""
        B, T = mask.shape
        device = mask.device

        def decode(emissions: torch.Tensor, crf: Tuple, constraints: Constraints) -> List[List[int]]:
            if crf[0] is None:
                emissions = torch.log_softmax(emissions, dim=-1)
                n = emissions.shape[-1]
                crf = (emissions.new_zeros(n), emissions.new_zeros(n, n), emissions.new_zeros(n))
            return viterbi(emissions, mask, *crf, constraints=constraints)

        def padded(paths: List[List[int]]) -> torch.Tensor:
            out = torch.full((B, T), -1, dtype=torch.long, device=device)
            for b, path in enumerate(paths):
                out[b, : len(path)] = torch.as_tensor(path, dtype=torch.long)
            return out

        mr_paths = et_paths = spans = et_probs = el_probs = el_rows = None
        if self.mr_out is not None:
            mr_paths = decode(self.mr_out(H["MR"]), crf_scores[0], self.mr_constraints)
        if self.setup == "PE":
            rows = [(b, s, e) for b, path in enumerate(mr_paths or []) for s, e in path_spans(path, self.mr_tags, self.tag_scheme)]
            spans = torch.as_tensor(rows, dtype=torch.long, device=device).reshape(-1, 3)
            if self.et_out is not None:
                et_probs = torch.softmax(self.et_out(span_mean(H["ET"], spans)), dim=-1)
            if self.el_out is not None:
                el_probs = torch.softmax(self.el_out(span_mean(H["EL"], spans)), dim=-1)
        else:
            inside = None
            if self.et_out is not None:
                et_list = decode(self.et_out(H["ET"]), crf_scores[1], self.et_constraints)
                et_paths = padded(et_list)
                inside = (et_paths > 0) & mask  # tag 0 is "O"
            elif self.el_out is not None:
                inside = mask  # EL alone: every token, its runs are the mentions
            if self.el_out is not None and inside is not None:
                el_probs = torch.softmax(self.el_out(H["EL"][inside]), dim=-1)
                el_rows = torch.full((B, T), -1, dtype=torch.long, device=device)
                el_rows[inside] = torch.arange(int(inside.sum()), device=device)
        return (padded(mr_paths) if mr_paths is not None else None, et_paths, spans, et_probs, el_probs, el_rows)


def path_spans(path: Sequence[int], tags: Sequence[str], tag_scheme: str) -> List[Tuple[int, int]]:
    """(start, end) token spans, end exclusive, of a valid tag path."""
    names = [tags[t] for t in path]
    if tag_scheme == "BIO":
        names = iob_to_biluo(names)
    return [(start, end + 1) for _, start, end in tags_to_entities(names)]


def _convert_inputs(model: Model, X: Any, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
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
    X, outputs = X_Yt
    lengths = model.ops.asarray1i([len(x) for x in X[0]])
    arrays = [None if t is None else torch2xp(t, ops=model.ops) for t in outputs]
    scores = HierScores(*arrays[:9], lengths, *arrays[9:], columns=X[2])
    return scores, lambda d_scores: backward_args(outputs[:9], d_scores, _DIFFERENTIABLE)


# -- loss (run by the pipe on HierScores) ------------------------------------------
def hier_loss(
    scores: HierScores,
    gold: Dict[str, torch.Tensor],
    *,
    nil_weight: float = 0.125,
    task_weights: Optional[Dict[str, float]] = None,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """(summed loss, per-task values) on torch tensors.

    gold: "mr" and, PT, "et" (B, T) tag indices; "el" (B, T) (PT) or (S,)
    (PE) indices into the EL columns; PE's "et" (S,) type indices; -1 =
    unknown (padding, misaligned tokens: summed over by a partial-label CRF,
    ignored by cross-entropy). EL's column 0 is nil (the pipe's columns
    start with concept 0), with the class weight `nil_weight`.
    """
    weights = task_weights or {}
    zero = next(s for s in (scores.mr, scores.et, scores.el) if s is not None).new_zeros(())
    total, parts = zero, {}

    def tags_loss(emissions, tag_gold, start, transitions, end) -> torch.Tensor:
        mask = length_mask(scores.lengths, emissions.shape[1])
        if start is None:
            return _ce(emissions, tag_gold)
        n = emissions.shape[-1]
        known = tag_gold >= 0
        allowed = torch.nn.functional.one_hot(tag_gold.clamp(min=0), n).bool() | ~known[..., None]
        z = log_partition(emissions, mask, start, transitions, end)
        z_gold = log_partition(emissions, mask, start, transitions, end, allowed)
        return (z - z_gold).sum() / mask.sum().clamp(min=1)

    if scores.mr is not None:
        parts["MR"] = tags_loss(scores.mr, gold["mr"], scores.mr_start, scores.mr_transitions, scores.mr_end)
    if scores.et is not None:
        if scores.et.dim() == 3:
            parts["ET"] = tags_loss(scores.et, gold["et"], scores.et_start, scores.et_transitions, scores.et_end)
        else:
            parts["ET"] = _ce(scores.et, gold["et"])
    if scores.el is not None:
        class_weight = torch.ones(scores.el.shape[-1], dtype=scores.el.dtype, device=scores.el.device)
        class_weight[0] = nil_weight
        parts["EL"] = _ce(scores.el, gold["el"], class_weight)
    for name, value in parts.items():
        total = total + weights.get(name, 1.0) * value
    return total, {name: float(value.detach()) for name, value in parts.items()}


def _ce(logits: torch.Tensor, gold: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean (class-weighted) cross-entropy over the known targets; 0 if none."""
    gold = gold.reshape(-1)
    if logits.numel() == 0 or not bool((gold >= 0).any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold, weight=weight, ignore_index=-1)


def hier_loss_and_gradient(
    scores: HierScores, gold: Dict[str, numpy.ndarray], *, nil_weight: float, task_weights: Dict[str, float]
) -> Tuple[Tuple[float, Dict[str, float]], HierScores]:
    """`hier_loss` on leaf copies of the model's outputs, and their gradients."""

    def loss_fn(t_scores: HierScores):
        device = next(s for s in (t_scores.mr, t_scores.et, t_scores.el) if s is not None).device
        t_gold = {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in gold.items()}
        t_scores = t_scores._replace(lengths=t_scores.lengths.long())
        return hier_loss(t_scores, t_gold, nil_weight=nil_weight, task_weights=task_weights)

    (total, parts), grads = loss_on_leaves(scores, _DIFFERENTIABLE, loss_fn)
    return (float(total.detach()), parts), grads._replace(lengths=scores.lengths)
