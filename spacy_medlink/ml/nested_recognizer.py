"""medlink.NestedRecognizer.v1: MRC-style nested NER, a CRF main head and a
Biaffine auxiliary head over a type-conditioned encoder.

The method of "MRC-based medical NER with multi-task learning and
multi-strategies" (CCL 2022, MRC-MTL-MS). Each entity type has a natural
language query ("在文本中找出疾病，例如癌症、病变、炎症、增生、肿瘤"); the model
answers every (sentence, type) pair: which tokens of the sentence are
entities of that type. Types are tagged independently, so entities of
different types may nest.

Encoding the pair, here with a spaCy tok2vec (CPU):

* the sentence and every query go through the *same* tok2vec and the same
  BiLSTM encoder, in one batch, and each sentence is encoded once, whatever
  the number of types (the paper runs one BERT pass per pair);
* each query is mean-pooled to one vector q_k and, concatenated with a
  learned type embedding e_k, is the condition of a conditional LayerNorm
  (`ConditionalLayerNorm`) over the sentence's encoding:
  ``h_{k,t} = (1 + W_g[e_k; q_k]) ⊙ LN(h_t) + W_b[e_k; q_k]``.

How this differs from the paper's transformer input ``[CLS] context [SEP]
query [SEP]``: there, every context token attends to every query token in
every layer (token-level cross-attention), so the query can change *which*
features are computed. Here the query enters once, after encoding, as one
pooled vector that rescales and shifts the sentence's features per type (a
feature-wise affine modulation); no context token sees individual query
words, and the sentence encoding itself is type-independent. Since q_k is
the same for every sentence, the query text acts as a prior on the type's
condition that the type embedding refines.

Heads, for every (sentence, type):

* main: emissions over the queried type's tags (BIO, or BIOES as the CRF's
  BILUO), scored by a linear-chain CRF with transition constraints
  (`ml/crf.py`), one CRF shared by all types;
* auxiliary: a BiLSTM over the conditioned encoding, separate start and end
  MLPs and a `Biaffine` classifier over (start, end) pairs up to
  ``max_span_length`` tokens: ``r = h_sᵀ U h_e + W(h_s ⊕ h_e) + b``, two
  classes (entity of the queried type or not), softmax cross-entropy over
  the valid spans (end ≥ start, within the cap).

The loss ``α·L_CRF + β·L_Biaffine`` is combined by `LossWeights` (the
paper's softmax-normalized learnable α, β; homoscedastic uncertainty
weighting; or fixed) in the pipe, on leaf copies of the model's outputs as
in `ml/joint_tagger.py`: the torch module returns scores (emissions, band
of biaffine logits, CRF start/transition/end scores and the raw loss
weights), the pipe computes the loss in torch and hands back gradients.
The torch modules, the loss and decoding are in `ml/nested_module.py`, the
scores in `ml/scores.py`; this module holds the builder, the label set-up and
the thinc glue, and imports torch only inside the functions that use it
(`torch_utils`).
"""
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..torch_utils import require_torch
from .scores import NestedInput, NestedScores

if TYPE_CHECKING:
    from .crf import Constraints
    from .nested_module import TypeConditionedHeads

TAG_SCHEMES = {"BIO": ("BIO", ("O", "B-ENT", "I-ENT")), "BIOES": ("BILUO", ("O", "B-ENT", "I-ENT", "L-ENT", "U-ENT"))}
"""Our tag scheme -> (the CRF's scheme name, tag names). BIOES is BILUO: E = L, S = U."""

OBJECTIVES = ("mtl", "crf", "biaffine")
DECODERS = ("crf", "biaffine")
# the name of `medlink.NestedEnsemble.v1` models (ml/nested_ensemble.py): k nested recognizers in one
ENSEMBLE_NAME = "medlink_nested_ensemble"


@registry.architectures("medlink.NestedRecognizer.v1")
def build_nested_recognizer(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 256,
    lstm_depth: int = 1,
    type_width: int = 64,
    aux_lstm_width: int = 128,
    biaffine_width: int = 128,
    max_span_length: int = 30,
    dropout: float = 0.2,
) -> Model[NestedInput, NestedScores]:
    """Type-conditioned encoder, CRF main head and Biaffine auxiliary head.

    tok2vec: token vectors, run on the sentences and the queries alike (an
        inline Tok2Vec, not a listener: the queries are not in a listener's batch).
    hidden_width (int): encoder width: a BiLSTM (both directions) over the
        tok2vec output, or a linear projection with lstm_depth 0.
    lstm_depth (int): BiLSTM layers of the shared encoder; 0 = none.
    type_width (int): width of the learned type embeddings.
    aux_lstm_width (int): the auxiliary head's BiLSTM width (both directions).
    biaffine_width (int): width of the start and end MLPs.
    max_span_length (int): longest span (tokens) the Biaffine head scores.
    dropout (float): on the encoder's input and output and in the MLPs.

    Input: (sentences, query docs, one per type in label order). The pipe
    sets the label space (`set_nested_labels`) before initialization or
    deserialization; the torch module is built then.
    """
    from spacy.pipeline.tok2vec import Tok2VecListener

    require_torch("medlink.NestedRecognizer.v1")

    if isinstance(tok2vec, Tok2VecListener) or tok2vec.name.endswith("listener"):
        raise ValueError(
            "medlink.NestedRecognizer.v1 needs its own tok2vec: the queries are encoded by it too, "
            "and a listener only sees the sentences of the upstream component's batch"
        )
    for name, value in (("hidden_width", hidden_width), ("aux_lstm_width", aux_lstm_width)):
        if value % 2 and (name != "hidden_width" or lstm_depth):
            raise ValueError(f"{name} must be even (two LSTM directions), not {value}")
    if max_span_length < 1:
        raise ValueError(f"max_span_length must be at least 1, not {max_span_length}")
    heads: Model = Model(
        "medlink_nested_heads",
        _heads_forward,
        init=_heads_init,
        dims={"nI": tok2vec.maybe_get_dim("nO")},
        attrs={
            "hidden_width": hidden_width,
            "lstm_depth": lstm_depth,
            "type_width": type_width,
            "aux_lstm_width": aux_lstm_width,
            "biaffine_width": biaffine_width,
            "max_span_length": max_span_length,
            "dropout": dropout,
            # set by set_nested_labels
            "n_types": None,
            "tag_scheme": None,
            "loss_weighting": None,
            "alpha": 0.5,
            "beta": 0.5,
            # which heads to run: set by the pipe from its objective and decoder
            "biaffine_train": True,
            "biaffine_predict": False,
            # builds the torch module once the labels are known (not serialized)
            "build_module": build_module,
        },
    )
    model: Model = Model(
        "medlink_nested_recognizer", _forward, init=_init, layers=[tok2vec, heads],
        refs={"tok2vec": tok2vec, "heads": heads},
    )
    return model


def set_nested_labels(
    model: Model, n_types: int, tag_scheme: str, loss_weighting: str, alpha: float, beta: float
) -> None:
    """Give the heads their label space and loss weighting; (re)build the torch module
    (each encoder's builder gives its heads the `build_module` that does it)."""
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"tag_scheme must be one of {tuple(TAG_SCHEMES)}, not {tag_scheme!r}")
    if model.name == ENSEMBLE_NAME:
        for member in model.layers:
            set_nested_labels(member, n_types, tag_scheme, loss_weighting, alpha, beta)
        return
    heads = model.get_ref("heads")
    heads.attrs.update(
        {"n_types": int(n_types), "tag_scheme": tag_scheme, "loss_weighting": loss_weighting,
         "alpha": float(alpha), "beta": float(beta)}
    )
    if heads.has_dim("nI"):
        heads.attrs["build_module"](heads)


def ensemble_members(model: Model) -> List[Model]:
    """The members of an ensemble, or [model] for a single recognizer."""
    return list(model.layers) if model.name == ENSEMBLE_NAME else [model]


def type_tags(tag_scheme: str) -> Tuple[str, ...]:
    return TAG_SCHEMES[tag_scheme][1]


def type_constraints(tag_scheme: str) -> "Constraints":
    from .crf import transition_constraints

    scheme, tags = TAG_SCHEMES[tag_scheme]
    return transition_constraints(tags, scheme)


def torch_module(model: Model) -> "TypeConditionedHeads":
    heads = model.get_ref("heads")
    if not heads.layers:
        raise ValueError("medlink_nested_heads: not built yet (set_nested_labels, then initialize)")
    return heads.layers[0].shims[0]._model


# -- thinc side ------------------------------------------------------------------
def _forward(model: Model, X: NestedInput, is_train: bool) -> Tuple[NestedScores, Callable]:
    docs, queries = X
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    vectors, bp_vectors = tok2vec(list(docs) + list(queries), is_train)
    n = len(docs)
    scores, bp_heads = heads((vectors[:n], vectors[n:]), is_train)

    def backprop(d_scores: NestedScores) -> NestedInput:
        d_docs, d_queries = bp_heads(d_scores)
        bp_vectors(list(d_docs) + list(d_queries))
        return X

    return scores, backprop


def _init(model: Model, X: Optional[NestedInput] = None, Y: Any = None) -> None:
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    if X is None:
        tok2vec.initialize()
        heads.initialize()
        return
    docs, queries = X
    tok2vec.initialize(X=list(docs) + list(queries))
    if not heads.has_dim("nI"):
        heads.set_dim("nI", tok2vec.predict(list(docs[:1]) or list(queries[:1]))[0].shape[1])
    heads.initialize()


def _heads_init(model: Model, X: Any = None, Y: Any = None) -> None:
    if not model.layers:
        build_module(model)


def _heads_forward(model: Model, X: Tuple[List[Floats2d], List[Floats2d]], is_train: bool):
    if not model.layers:
        raise ValueError("medlink_nested_heads: no labels yet; the pipe calls set_nested_labels first")
    return model.layers[0](X, is_train)


def build_module(heads: Model) -> None:
    """The tok2vec encoder's torch module for the heads' label space, wrapped as their one layer."""
    from .nested_module import NestedRecognizerModule
    from .torch_wrapper import wrap_torch_module

    attrs = heads.attrs
    if attrs["n_types"] is None:
        raise ValueError("medlink_nested_heads: set_nested_labels must be called before initialization")
    module = NestedRecognizerModule(
        heads.get_dim("nI"),
        n_types=attrs["n_types"],
        constraints=type_constraints(attrs["tag_scheme"]),
        hidden_width=attrs["hidden_width"],
        lstm_depth=attrs["lstm_depth"],
        type_width=attrs["type_width"],
        aux_lstm_width=attrs["aux_lstm_width"],
        biaffine_width=attrs["biaffine_width"],
        dropout=attrs["dropout"],
        loss_weighting=attrs["loss_weighting"],
        alpha=attrs["alpha"],
        beta=attrs["beta"],
    )
    wrapped = wrap_torch_module(module, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs)
    wrapped.attrs["heads"] = heads  # read by the converters, for the run switches
    heads.layers[:] = [wrapped]


def _convert_inputs(model: Model, X, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """(sentence arrays, query arrays) -> padded tensors, lengths and run switches."""
    import torch

    heads = model.attrs["heads"]
    width = heads.get_dim("nI")
    tensors, lengths_all = [], []
    for arrays in X:
        lengths = [len(x) for x in arrays]
        padded = model.ops.alloc3f(len(arrays), max(lengths, default=0), width)
        for i, x in enumerate(arrays):
            padded[i, : len(x)] = x
        tensors.append(xp2torch(padded, requires_grad=is_train, device=model.shims[0].device))
        tensors.append(torch.tensor(lengths, dtype=torch.long))
        lengths_all.append(lengths)
    biaffine = heads.attrs["biaffine_train"] if is_train else heads.attrs["biaffine_predict"]
    kwargs = {"max_span_length": heads.attrs["max_span_length"], "biaffine": biaffine}

    def reverse(dXt: ArgsKwargs) -> Tuple[List[Floats2d], List[Floats2d]]:
        out = []
        for grad, lengths in ((dXt.args[0], lengths_all[0]), (dXt.args[2], lengths_all[1])):
            if grad is None:
                out.append([model.ops.alloc2f(n, width) for n in lengths])
            else:
                dX = torch2xp(grad, ops=model.ops)
                out.append([dX[i, :n] for i, n in enumerate(lengths)])
        return out[0], out[1]

    return ArgsKwargs(args=tuple(tensors), kwargs=kwargs), reverse


def _convert_outputs(model: Model, X_Yt, is_train: bool) -> Tuple[NestedScores, Callable]:
    from .nested_module import torch_gradients

    X, outputs = X_Yt
    lengths = model.ops.asarray1i([len(x) for x in X[0]])
    arrays = [None if t is None else torch2xp(t, ops=model.ops) for t in outputs]
    scores = NestedScores(*arrays, lengths=lengths)
    return scores, lambda d_scores: torch_gradients(outputs, d_scores)


def tag_path_spans(path: Sequence[int], tag_scheme: str) -> List[Tuple[int, int]]:
    """(start, end) token spans, end exclusive, of one valid tag path."""
    tags = type_tags(tag_scheme)
    spans, open_at = [], None
    for i, t in enumerate(path):
        move = tags[t][0]
        if move in ("B", "U", "O") and open_at is not None and tag_scheme == "BIO":
            spans.append((open_at, i))
            open_at = None
        if move == "B":
            open_at = i
        elif move == "U":
            spans.append((i, i + 1))
        elif move == "L":
            spans.append((open_at, i + 1))
            open_at = None
    if open_at is not None:
        spans.append((open_at, len(path)))
    return spans
