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
"""
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from .crf import CRF, Constraints, partial_nll, transition_constraints, viterbi
from .layers import Biaffine, BiLSTM, ConditionalLayerNorm, LossWeights, length_mask, pooled_mean
from .torch_wrapper import backward_args, loss_on_leaves, wrap_torch_module

TAG_SCHEMES = {"BIO": ("BIO", ("O", "B-ENT", "I-ENT")), "BIOES": ("BILUO", ("O", "B-ENT", "I-ENT", "L-ENT", "U-ENT"))}
"""Our tag scheme -> (the CRF's scheme name, tag names). BIOES is BILUO: E = L, S = U."""

OBJECTIVES = ("mtl", "crf", "biaffine")
DECODERS = ("crf", "biaffine")


class NestedScores(NamedTuple):
    """Padded scores for B sentences, K types, T = longest sentence.

    emissions (B, K, T, n_tags); biaffine (B, K, T, L, 2) logits of the span
    from token t to t + l (None when not computed); start, transitions, end:
    CRF scores with forbidden moves at NEG; loss_w (2,): the raw loss
    weights; lengths (B,) ints. The same structure carries the gradients in
    backprop (None = no gradient).
    """

    emissions: Any
    biaffine: Any = None
    start: Any = None
    transitions: Any = None
    end: Any = None
    loss_w: Any = None
    lengths: Any = None


_DIFFERENTIABLE = ("emissions", "biaffine", "start", "transitions", "end", "loss_w")
NestedInput = Tuple[List[Doc], List[Doc]]


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
    """Give the heads their label space and loss weighting; (re)build the torch module."""
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"tag_scheme must be one of {tuple(TAG_SCHEMES)}, not {tag_scheme!r}")
    from .nested_ensemble import ENSEMBLE_NAME

    if model.name == ENSEMBLE_NAME:
        for member in model.layers:
            set_nested_labels(member, n_types, tag_scheme, loss_weighting, alpha, beta)
        return
    heads = model.get_ref("heads")
    heads.attrs.update(
        {"n_types": int(n_types), "tag_scheme": tag_scheme, "loss_weighting": loss_weighting,
         "alpha": float(alpha), "beta": float(beta)}
    )
    if heads.name == "medlink_nested_trf_heads":
        from .nested_recognizer_trf import _build as build_trf

        build_trf(heads)
    elif heads.has_dim("nI"):
        _build(heads)


def type_tags(tag_scheme: str) -> Tuple[str, ...]:
    return TAG_SCHEMES[tag_scheme][1]


def type_constraints(tag_scheme: str) -> Constraints:
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
        _build(model)


def _heads_forward(model: Model, X: Tuple[List[Floats2d], List[Floats2d]], is_train: bool):
    if not model.layers:
        raise ValueError("medlink_nested_heads: no labels yet; the pipe calls set_nested_labels first")
    return model.layers[0](X, is_train)


def _build(heads: Model) -> None:
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


# -- torch side ------------------------------------------------------------------
class TypeConditionedHeads(torch.nn.Module):
    """What every encoder of the MRC recognizer shares: type embeddings, the
    conditional LayerNorm, the CRF emissions and scores, the Biaffine head
    and the loss weights. Subclasses encode; `heads` takes it from there.

    cond_width: width of what joins the type embedding in the condition
    (the pooled query with a tok2vec; 0 when the query is in the input).
    """

    def _init_heads(
        self, H: int, *, n_types: int, constraints: Constraints, type_width: int, cond_width: int,
        aux_lstm_width: int, biaffine_width: int, dropout: float, loss_weighting: str, alpha: float, beta: float,
    ) -> None:
        # Subnormal floats (tiny LSTM gradients and Adam moments) run on a
        # slow path of the CPU: CCKS2019 updates slowed from 0.8 s to 5.7 s
        # within five steps without this. Process-wide, as torch sets it.
        torch.set_flush_denormal(True)
        n_tags = len(constraints[0])
        self.drop = torch.nn.Dropout(dropout)
        self.types = torch.nn.Embedding(n_types, type_width)
        self.cln = ConditionalLayerNorm(H, type_width + cond_width)
        self.emit = torch.nn.Linear(H, n_tags)
        self.crf = CRF(n_tags, constraints)
        self.aux = BiLSTM(H, aux_lstm_width)
        self.start_mlp = torch.nn.Sequential(
            torch.nn.Linear(aux_lstm_width, biaffine_width), torch.nn.GELU(), torch.nn.Dropout(dropout)
        )
        self.end_mlp = torch.nn.Sequential(
            torch.nn.Linear(aux_lstm_width, biaffine_width), torch.nn.GELU(), torch.nn.Dropout(dropout)
        )
        self.biaffine = Biaffine(biaffine_width, 2)
        self.loss_weights = LossWeights(loss_weighting, alpha, beta)

    def heads(
        self, h: torch.Tensor, lengths: torch.Tensor, cond: torch.Tensor, max_span_length: int, biaffine: bool
    ) -> Tuple[Optional[torch.Tensor], ...]:
        """h (B, T, H) shared by all types, or (B, K, T, H) one per pair;
        cond (K, cond_width) or None -> the scores `NestedScores` carries."""
        K = self.types.num_embeddings
        condition = self.types.weight if cond is None else torch.cat([self.types.weight, cond], dim=-1)
        h = self.cln(h, condition)  # (B, K, T, H)
        B, _, T, H = h.shape
        emissions = self.emit(h)
        start, transitions, end = self.crf()
        spans = None
        if biaffine:
            flat = h.reshape(B * K, T, H)
            aux = self.drop(self.aux(flat, lengths.repeat_interleave(K)))
            spans = self.biaffine(self.start_mlp(aux), self.end_mlp(aux), max_span_length)
            spans = spans.reshape(B, K, T, spans.shape[2], 2)
        return emissions, spans, start, transitions, end, self.loss_weights.w * 1.0


class NestedRecognizerModule(TypeConditionedHeads):
    """tok2vec input: the shared encoder, the pooled-query condition, the heads."""

    def __init__(
        self,
        nI: int,
        *,
        n_types: int,
        constraints: Constraints,
        hidden_width: int,
        lstm_depth: int,
        type_width: int,
        aux_lstm_width: int,
        biaffine_width: int,
        dropout: float,
        loss_weighting: str,
        alpha: float,
        beta: float,
    ) -> None:
        super().__init__()
        self.encoder = BiLSTM(nI, hidden_width, lstm_depth, dropout) if lstm_depth else None
        self.project = None if lstm_depth else torch.nn.Linear(nI, hidden_width)
        self._init_heads(
            hidden_width, n_types=n_types, constraints=constraints, type_width=type_width, cond_width=hidden_width,
            aux_lstm_width=aux_lstm_width, biaffine_width=biaffine_width, dropout=dropout,
            loss_weighting=loss_weighting, alpha=alpha, beta=beta,
        )

    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        X = self.drop(X)
        X = self.encoder(X, lengths) if self.encoder is not None else self.project(X)
        return self.drop(X)

    def forward(
        self, X: torch.Tensor, lengths: torch.Tensor, Q: torch.Tensor, q_lengths: torch.Tensor,
        max_span_length: int = 30, biaffine: bool = True,
    ) -> Tuple[Optional[torch.Tensor], ...]:
        pooled = pooled_mean(self.encode(Q, q_lengths), q_lengths)  # (K, H): the encoded queries
        return self.heads(self.encode(X, lengths), lengths, pooled, max_span_length, biaffine)


def _convert_inputs(model: Model, X, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """(sentence arrays, query arrays) -> padded tensors, lengths and run switches."""
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
    X, outputs = X_Yt
    lengths = model.ops.asarray1i([len(x) for x in X[0]])
    arrays = [None if t is None else torch2xp(t, ops=model.ops) for t in outputs]
    scores = NestedScores(*arrays, lengths=lengths)
    return scores, lambda d_scores: torch_gradients(outputs, d_scores)


def torch_gradients(outputs: Sequence[Optional[torch.Tensor]], d_scores: NestedScores) -> ArgsKwargs:
    """The backward call for the module's outputs, given the gradients of their scores."""
    return backward_args(outputs, d_scores, _DIFFERENTIABLE)


# -- loss and decoding (run by the pipe on NestedScores) ---------------------------
def nested_loss(
    scores: NestedScores,
    tag_gold: torch.Tensor,
    span_gold: Optional[torch.Tensor],
    loss_weights: LossWeights,
    objective: str = "mtl",
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, L_CRF, L_Biaffine) on torch tensors.

    tag_gold (B, K, T): gold tag per (sentence, type, token), -1 where
    unknown (padding; summed over by the partial-label CRF). L_CRF is the CRF
    NLL per token and type. span_gold (B, K, T, L): 1 for a gold span of the
    type, 0 for another valid span, -1 outside the band; L_Biaffine is the
    mean cross-entropy over the valid spans.
    """
    B, K, T, n = scores.emissions.shape
    zero = scores.emissions.new_zeros(())
    l_crf = l_biaffine = zero
    if objective in ("mtl", "crf"):
        em = scores.emissions.reshape(B * K, T, n)
        gold = tag_gold.reshape(B * K, T)
        mask = length_mask(scores.lengths.repeat_interleave(K), T)
        l_crf = partial_nll(em, mask, scores.start, scores.transitions, scores.end, gold).sum() / mask.sum().clamp(min=1)
    if objective in ("mtl", "biaffine"):
        if scores.biaffine is None or span_gold is None:
            raise ValueError("the Biaffine objective needs the Biaffine scores and span targets")
        logits = scores.biaffine.reshape(-1, 2)
        l_biaffine = torch.nn.functional.cross_entropy(logits, span_gold.reshape(-1), ignore_index=-1)
        if not torch.isfinite(l_biaffine):  # no valid span in the batch
            l_biaffine = zero
    if objective == "mtl":
        total = loss_weights.combine(scores.loss_w, l_crf, l_biaffine)
    else:
        total = l_crf if objective == "crf" else l_biaffine
    return total, l_crf, l_biaffine


def nested_loss_and_gradient(
    scores: NestedScores, tag_gold: numpy.ndarray, span_gold: Optional[numpy.ndarray],
    loss_weights: LossWeights, objective: str,
) -> Tuple[Tuple[float, float, float], NestedScores]:
    """`nested_loss` on leaf copies of the model's outputs, and their gradients."""

    def loss_fn(t_scores: NestedScores):
        device = t_scores.emissions.device
        return nested_loss(
            t_scores._replace(lengths=t_scores.lengths.long()),
            torch.as_tensor(tag_gold, dtype=torch.long, device=device),
            None if span_gold is None else torch.as_tensor(span_gold, dtype=torch.long, device=device),
            loss_weights,
            objective,
        )

    (total, l_crf, l_biaffine), grads = loss_on_leaves(scores, _DIFFERENTIABLE, loss_fn)
    values = (float(total.detach()), float(l_crf.detach()), float(l_biaffine.detach()))
    return values, grads


def decode_crf(scores: NestedScores, constraints: Constraints) -> List[List[List[int]]]:
    """Best valid tag path per (sentence, type): [b][k] -> tag indices."""
    em = xp2torch(scores.emissions)
    B, K, T, n = em.shape
    lengths = xp2torch(scores.lengths).long()
    mask = length_mask(lengths.repeat_interleave(K), T)
    start, transitions, end = (xp2torch(a) for a in (scores.start, scores.transitions, scores.end))
    paths = viterbi(em.reshape(B * K, T, n), mask, start, transitions, end, constraints=constraints)
    return [paths[b * K : (b + 1) * K] for b in range(B)]


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


def decode_biaffine(scores: NestedScores, threshold: float = 0.5) -> List[List[List[Tuple[int, int]]]]:
    """Spans per (sentence, type) from the Biaffine probabilities: every span
    above `threshold`, most probable first, skipping those that cross an
    accepted one (nesting is allowed, crossing is not; Yu et al., 2020)."""
    if scores.biaffine is None:
        raise ValueError("no Biaffine scores: the Biaffine decoder needs biaffine_predict")
    probs = torch.softmax(xp2torch(scores.biaffine), dim=-1)[..., 1].cpu().numpy()  # (B, K, T, L)
    lengths = [int(n) for n in scores.lengths.tolist()]
    out = []
    for b, n in enumerate(lengths):
        per_type = []
        for k in range(probs.shape[1]):
            starts, offsets = numpy.nonzero(probs[b, k, :n] > threshold)
            cands = [(float(probs[b, k, i, l]), int(i), int(i + l + 1)) for i, l in zip(starts, offsets) if i + l < n]
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))
            kept: List[Tuple[int, int]] = []
            for _, s, e in cands:
                if all(e <= ks or s >= ke or (s <= ks and ke <= e) or (ks <= s and e <= ke) for ks, ke in kept):
                    kept.append((s, e))
            per_type.append(sorted(kept))
        out.append(per_type)
    return out
