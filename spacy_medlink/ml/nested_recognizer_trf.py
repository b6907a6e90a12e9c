"""medlink.NestedRecognizerTransformer.v1: the MRC recognizer with the paper's
sentence-pair input, ``[CLS] context [SEP] query [SEP]``.

Every (sentence, type) pair is one transformer input, context first and
query second (the order the paper found better), so context and query
tokens attend to each other in every layer. Each spaCy token takes the
vector of its first wordpiece in the context segment; query wordpieces
are dropped after encoding, so the loss only ever sees context tokens.
The type embedding conditions the LayerNorm on top (the query is already
in the input, so the condition is the type embedding alone), then the same
heads as the tok2vec model (`TypeConditionedHeads`).

Long sentences: a context of more than ``window`` tokens is cut into
consecutive windows of ``window`` tokens, each encoded with the query, so
no token is dropped; the windows do not overlap.

Weights come from a Hugging Face model name or local folder at initialize
(`from_pretrained`); afterwards the transformer's config, tokenizer and
weights are serialized with the pipeline (msgpack, no pickle), so a saved
or packaged pipeline loads without the hub. This architecture takes the
pipe's input as the tok2vec model does, (sentences, query docs), and the
pipe needs no other change; FGM perturbs the word-embedding matrix, as in
the paper (`fgm_parameter`).

The torch module, `TransformerNestedModule`, is in `ml/nested_module.py`; this
module imports torch and transformers only inside the functions that use them.
"""
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

import srsly
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp

from ..torch_utils import require_torch
from .nested_recognizer import type_constraints
from .scores import NestedInput, NestedScores

if TYPE_CHECKING:
    from .nested_module import TransformerNestedModule


@registry.architectures("medlink.NestedRecognizerTransformer.v1")
def build_nested_recognizer_trf(
    name: str,
    window: int = 256,
    pairs_per_batch: int = 32,
    type_width: int = 64,
    aux_lstm_width: int = 256,
    biaffine_width: int = 128,
    max_span_length: int = 30,
    dropout: float = 0.1,
) -> Model[NestedInput, NestedScores]:
    """MRC recognizer over a transformer encoding each (sentence, query) pair.

    name (str): Hugging Face model name or local folder (a fast tokenizer).
    window (int): context tokens per transformer input (longer sentences are
        cut into windows).
    pairs_per_batch (int): transformer inputs per forward call.
    type_width, aux_lstm_width, biaffine_width, max_span_length, dropout: as
        in `medlink.NestedRecognizer.v1`.
    """
    require_torch("medlink.NestedRecognizerTransformer.v1")
    heads: Model = Model(
        "medlink_nested_trf_heads",
        _forward,
        init=_init,
        attrs={
            "name": name, "window": window, "pairs_per_batch": pairs_per_batch, "type_width": type_width,
            "aux_lstm_width": aux_lstm_width, "biaffine_width": biaffine_width,
            "max_span_length": max_span_length, "dropout": dropout,
            "n_types": None, "tag_scheme": None, "loss_weighting": None, "alpha": 0.5, "beta": 0.5,
            "biaffine_train": True, "biaffine_predict": False, "pretrained": False,
            "build_module": build_module,  # called by set_nested_labels (not serialized)
        },
        dims={"nI": 0},  # no separate encoder input: set, so that the pipe builds at once
    )
    model: Model = Model("medlink_nested_recognizer_trf", _outer_forward, layers=[heads], refs={"heads": heads},
                         init=_outer_init)
    return model


def _outer_forward(model: Model, X: NestedInput, is_train: bool):
    return model.get_ref("heads")(X, is_train)


def _outer_init(model: Model, X: Any = None, Y: Any = None) -> None:
    model.get_ref("heads").initialize(X=X)


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    """Load the pretrained weights (training starts here; loading a saved
    pipeline deserializes them instead)."""
    if not model.layers:
        build_module(model)
    module = model.layers[0].shims[0]._model
    if not model.attrs["pretrained"]:
        module.load_pretrained(model.attrs["name"])
        model.attrs["pretrained"] = True


def _forward(model: Model, X: NestedInput, is_train: bool):
    if not model.layers:
        raise ValueError("medlink_nested_trf_heads: no labels yet; the pipe calls set_nested_labels first")
    return model.layers[0](X, is_train)


def build_module(heads: Model) -> None:
    """The torch module with an empty transformer slot, wrapped; called by
    `set_nested_labels` (the heads' ``build_module``)."""
    from .nested_module import TransformerNestedModule
    from .torch_wrapper import AveragingPyTorchShim

    attrs = heads.attrs
    module = TransformerNestedModule(
        n_types=attrs["n_types"], constraints=type_constraints(attrs["tag_scheme"]),
        type_width=attrs["type_width"], aux_lstm_width=attrs["aux_lstm_width"],
        biaffine_width=attrs["biaffine_width"], dropout=attrs["dropout"],
        loss_weighting=attrs["loss_weighting"], alpha=attrs["alpha"], beta=attrs["beta"],
        window=attrs["window"], pairs_per_batch=attrs["pairs_per_batch"],
    )
    wrapped = Model(
        "pytorch",
        _torch_forward,
        attrs={"heads": heads},
        shims=[AveragingPyTorchShim(module, serialize_model=_serialize, deserialize_model=_deserialize)],
    )
    heads.layers[:] = [wrapped]
    heads.attrs["pretrained"] = False


def _torch_forward(model: Model, X: NestedInput, is_train: bool):
    from .nested_module import torch_gradients

    heads = model.attrs["heads"]
    docs, queries = X
    kwargs = {
        "max_span_length": heads.attrs["max_span_length"],
        "biaffine": heads.attrs["biaffine_train"] if is_train else heads.attrs["biaffine_predict"],
    }
    args = ArgsKwargs(args=([[t.text for t in d] for d in docs], [[t.text for t in q] for q in queries]),
                      kwargs=kwargs)
    outputs, torch_backprop = model.shims[0](args, is_train)
    lengths = model.ops.asarray1i([len(d) for d in docs])
    scores = NestedScores(*[None if t is None else torch2xp(t, ops=model.ops) for t in outputs], lengths=lengths)

    def backprop(d_scores: NestedScores) -> NestedInput:
        torch_backprop(torch_gradients(outputs, d_scores))
        return X

    return scores, backprop


def _serialize(module: "TransformerNestedModule") -> bytes:
    """msgpack: the transformer's config, the tokenizer's files and every weight."""
    from .torch_wrapper import serialize_torch_module

    if module.transformer is None:
        return srsly.msgpack_dumps({"config": None})
    with tempfile.TemporaryDirectory() as tmp:
        module.tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    return srsly.msgpack_dumps({"config": module.transformer.config.to_dict(), "tokenizer": files,
                                "weights": serialize_torch_module(module)})


def _deserialize(module: "TransformerNestedModule", data: bytes, device) -> "TransformerNestedModule":
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from .torch_wrapper import deserialize_torch_module

    msg: Dict[str, Any] = srsly.msgpack_loads(data)
    if msg["config"] is None:
        return module
    config_dict = dict(msg["config"])
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in msg["tokenizer"].items():
            (Path(tmp) / name).write_bytes(content)
        module.tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True)
    module.set_transformer(AutoModel.from_config(config))
    return deserialize_torch_module(module, msg["weights"], device)
