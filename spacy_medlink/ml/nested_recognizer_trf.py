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
"""
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import srsly
import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp

from .crf import Constraints
from .nested_recognizer import NestedInput, NestedScores, TypeConditionedHeads, torch_gradients, type_constraints
from .torch_wrapper import AveragingPyTorchShim


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
        _build(model)
    module = model.layers[0].shims[0]._model
    if not model.attrs["pretrained"]:
        module.load_pretrained(model.attrs["name"])
        model.attrs["pretrained"] = True


def _forward(model: Model, X: NestedInput, is_train: bool):
    if not model.layers:
        raise ValueError("medlink_nested_trf_heads: no labels yet; the pipe calls set_nested_labels first")
    return model.layers[0](X, is_train)


def _build(heads: Model) -> None:
    """The torch module with an empty transformer slot, wrapped; called by
    `set_nested_labels` (through the tok2vec model's builder hook)."""
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


class TransformerNestedModule(TypeConditionedHeads):
    """A Hugging Face encoder over (context, query) pairs, then the shared heads."""

    def __init__(self, *, n_types: int, constraints: Constraints, type_width: int, aux_lstm_width: int,
                 biaffine_width: int, dropout: float, loss_weighting: str, alpha: float, beta: float,
                 window: int, pairs_per_batch: int) -> None:
        super().__init__()
        self.head_args = dict(n_types=n_types, constraints=constraints, type_width=type_width, cond_width=0,
                              aux_lstm_width=aux_lstm_width, biaffine_width=biaffine_width, dropout=dropout,
                              loss_weighting=loss_weighting, alpha=alpha, beta=beta)
        self.window = window
        self.pairs_per_batch = pairs_per_batch
        self.transformer: Optional[torch.nn.Module] = None
        self.tokenizer: Any = None

    def load_pretrained(self, name: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True)
        self._set_transformer(AutoModel.from_pretrained(name))

    def _set_transformer(self, transformer: torch.nn.Module) -> None:
        self.transformer = transformer
        self._init_heads(transformer.config.hidden_size, **self.head_args)

    def fgm_parameter(self) -> torch.nn.Parameter:
        """The word-embedding matrix, which FGM perturbs (as in the paper)."""
        return self.transformer.get_input_embeddings().weight

    def encode(self, words: Sequence[List[str]], queries: Sequence[List[str]]) -> torch.Tensor:
        """(B, K, T, H): each token's first-wordpiece vector in its (sentence, type) pair."""
        if self.transformer is None:
            raise ValueError("the transformer is not loaded: initialize the pipeline first")
        B, K, T = len(words), len(queries), max((len(w) for w in words), default=0)
        H = self.transformer.config.hidden_size
        device = next(self.transformer.parameters()).device
        pairs = []  # (b, k, first token, words of the window)
        for b, doc_words in enumerate(words):
            for start in range(0, len(doc_words), self.window):
                for k in range(K):
                    pairs.append((b, k, start, doc_words[start : start + self.window]))
        out = torch.zeros(B, K, T, H, device=device)
        for i in range(0, len(pairs), self.pairs_per_batch):
            chunk = pairs[i : i + self.pairs_per_batch]
            # whitespace tokens have no wordpiece: a placeholder keeps the word indices aligned
            contexts = [[w if w.strip() else "," for w in p[3]] for p in chunk]
            enc = self.tokenizer(contexts, [queries[p[1]] for p in chunk], is_split_into_words=True,
                                 truncation=True, max_length=self._max_length(), padding=True,
                                 return_tensors="pt")
            hidden = self.transformer(**{k: v.to(device) for k, v in enc.items()}).last_hidden_state
            rows, cols, pair_idx, positions = [], [], [], []
            for j, (b, k, start, ctx) in enumerate(chunk):
                seen = set()
                for pos, (word, seq) in enumerate(zip(enc.word_ids(j), enc.sequence_ids(j))):
                    if seq == 0 and word is not None and word not in seen:
                        seen.add(word)
                        pair_idx.append(j)
                        positions.append(pos)
                        rows.append((b, k))
                        cols.append(start + word)
            if pair_idx:
                vectors = hidden[torch.tensor(pair_idx, device=device), torch.tensor(positions, device=device)]
                b_idx = torch.tensor([r[0] for r in rows], device=device)
                k_idx = torch.tensor([r[1] for r in rows], device=device)
                out = out.index_put((b_idx, k_idx, torch.tensor(cols, device=device)), vectors)
        return out

    def _max_length(self) -> int:
        """Wordpieces per input: the model's limit (a tokenizer without one says 1e30)."""
        limits = [getattr(self.transformer.config, "max_position_embeddings", 512), self.tokenizer.model_max_length]
        return int(min(limit for limit in limits if limit and limit < 100_000))

    def forward(self, words: Sequence[List[str]], queries: Sequence[List[str]], max_span_length: int = 30,
                biaffine: bool = True) -> Tuple[Optional[torch.Tensor], ...]:
        h = self.drop(self.encode(words, queries))
        lengths = torch.tensor([len(w) for w in words], dtype=torch.long, device=h.device)
        return self.heads(h, lengths, None, max_span_length, biaffine)


def _serialize(module: TransformerNestedModule) -> bytes:
    """msgpack: the transformer's config, the tokenizer's files and every weight."""
    from .torch_wrapper import serialize_torch_module

    if module.transformer is None:
        return srsly.msgpack_dumps({"config": None})
    with tempfile.TemporaryDirectory() as tmp:
        module.tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    return srsly.msgpack_dumps({"config": module.transformer.config.to_dict(), "tokenizer": files,
                                "weights": serialize_torch_module(module)})


def _deserialize(module: TransformerNestedModule, data: bytes, device) -> TransformerNestedModule:
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
    module._set_transformer(AutoModel.from_config(config))
    return deserialize_torch_module(module, msg["weights"], device)
