"""medlink.GatedNormalizer.v1: progressive multi-task NER + normalization (E2EMERN).

Zhou et al. (ACL 2021), "An end-to-end progressive multi-task learning
framework for medical named entity recognition and normalization". One encoder
(a spaCy tok2vec, then an optional BiLSTM) gives token features H = {h_i} for
a text X *and* for the names of KB concepts; three tasks of growing difficulty
sit on top:

* low: NER tags (BIO/BILUO over the entity labels) from H, softmax or the
  constrained CRF of `ml/crf.py`;
* mid: does X mention concept e? The concept vector h_e is the encoder's
  output over e's name (and, optionally, synonyms), average-pooled over tokens
  and names, so any KB concept has one, seen in training or not. Attention of
  e over the tokens gives h_a = Σ α_i h_i and ŷ_m = σ(W_m[h_e; h_a] + b_m);
* high: which tokens of X are mentions of e? A gate
  G = σ(W_g[H; H_a] + b_g) mixes each token with the concept,
  H_f = H ⊙ (1 − G) + H_e ⊙ G, and a softmax tags B/I/O of "mention of e".

Design choices, and why:

* Attention. The literal score W_a[x_i; h_e] + b_a is linear, so the h_e part
  is the same for every token and cancels in the softmax: the weights would
  not depend on the concept. We use the additive form
  α_i ∝ exp(v·tanh(W_a[x_i; h_e] + b_a)), which keeps the paper's inputs and
  makes "where does the text talk about e" depend on e. ``attention="mean"``
  (α uniform over the real tokens) is the ablation.
* Gate input. H_a is h_a broadcast over the tokens (our reading of the
  paper's [H; H_a]): each token decides how much of the concept to let in from
  itself and from the concept-aware summary of the whole text. H_e is h_e
  broadcast. ``fusion="concat"`` (H_f = [H; H_e]) is the ablation.
* Masks and cost. Pair-level work runs on the real (pair, token) positions
  only (flattened; a softmax per pair segment), so padding gets α = 0 and no
  loss, an empty text an all-zero row rather than NaN, and a batch of short
  and long docs costs its tokens, not docs × the longest. Linear maps of
  concatenations are split into a per-doc and a per-pair part, which makes
  the per-pair work elementwise (see `GatedNormalizerModule.score_pairs`).
* Matching features (``medlink.GatedNormalizer.v2``, ``match=True``; not in
  the paper). The paper's heads are linear in [h_e; h_a] and in H_f, so
  "is this token (or summary) like the concept?" has to come from the gate
  alone. v2 adds the elementwise products h_e ⊙ h_a to the mid head and
  x_i ⊙ h_e to the high head (the matching features of ESIM-style text
  matchers): a similarity the linear heads can read off directly. v1 is the
  paper's model, unchanged.
* One encoder, really shared. Concept names go through the *same* tok2vec and
  BiLSTM as the text in the same forward pass, and both get gradients. A
  ``Tok2VecListener`` cannot encode anything but the upstream component's
  docs, so the tok2vec must be inline (the builder refuses a listener).

How thinc and torch meet (as in ``medlink.JointTagger.v1``): the model maps a
`GatedBatch` (docs, tokenized concept names, (doc, concept) pairs) to
`GatedScores`: NER emissions (+ CRF scores), one mid logit per pair, B/I/O
logits per pair and token, attention weights. The pipe computes
`gated_loss` in torch on leaf copies and hands the gradients back. The torch
module, its scores and its loss are in `ml/gated_module.py`; this module holds
the builders, the thinc glue and the two inference stages. Inference
runs the torch module directly in two stages (`encode_texts`, then
`score_pairs` for the candidates the NER output implies) so the text is
encoded once, and concept names only for the candidates of the batch.
This module imports torch only inside the functions that use it (`torch_utils`).
"""
from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..torch_utils import require_torch
from .scores import GatedScores

if TYPE_CHECKING:
    import torch

    from .crf import Constraints
    from .gated_module import GatedNormalizerModule

FUSION = ("gate", "concat")
ATTENTION = ("attention", "mean")
_LISTENERS = ("tok2vec-listener", "transformer-listener")


class GatedBatch(NamedTuple):
    """Model input: texts, concept names and the (text, concept) pairs to score.

    docs: the texts. name_docs: tokenized concept names; name_concept (N,)
    says which concept (0..n_concepts-1) each name belongs to (a concept's
    names are averaged). pair_doc, pair_concept (P,): the pairs.
    pair_start, pair_end (P,): the token range of the pair's text within its
    doc (a sentence, as in the paper); None = the whole doc.
    """

    docs: List[Doc]
    name_docs: List[Doc]
    name_concept: numpy.ndarray
    n_concepts: int
    pair_doc: numpy.ndarray
    pair_concept: numpy.ndarray
    pair_start: Optional[numpy.ndarray] = None
    pair_end: Optional[numpy.ndarray] = None


@registry.architectures("medlink.GatedNormalizer.v1")
def build_gated_normalizer(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int = 256,
    lstm_depth: int = 1,
    dropout: float = 0.2,
    use_crf: bool = True,
    use_mid: bool = True,
    use_high: bool = True,
    fusion: str = "gate",
    attention: str = "attention",
) -> Model[GatedBatch, GatedScores]:
    """The paper's model: `build_gated_normalizer_v2` without matching features."""
    return build_gated_normalizer_v2(tok2vec, lstm_width, lstm_depth, dropout, use_crf, use_mid, use_high,
                                     fusion, attention, match=False)


@registry.architectures("medlink.GatedNormalizer.v2")
def build_gated_normalizer_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int = 256,
    lstm_depth: int = 1,
    dropout: float = 0.2,
    use_crf: bool = True,
    use_mid: bool = True,
    use_high: bool = True,
    fusion: str = "gate",
    attention: str = "attention",
    match: bool = True,
) -> Model[GatedBatch, GatedScores]:
    """Shared encoder for texts and concept names; low/mid/high heads.

    tok2vec: token vectors; an inline Tok2Vec (or transformer), not a listener:
        concept names go through it too.
    lstm_width (int): BiLSTM output width (both directions; even).
    lstm_depth (int): BiLSTM layers over the tok2vec output; 0 = none.
    dropout (float): on the BiLSTM's input and output.
    use_crf (bool): a linear-chain CRF over the NER tags (else softmax).
    use_mid (bool): the mid task (does the text mention e?); false = ablation.
    use_high (bool): the high task (tag the mentions of e); false = ablation.
    fusion (str): "gate" (the paper) or "concat" ([H; H_e]).
    attention (str): "attention" (the paper) or "mean" (uniform weights).
    match (bool): add the products h_e ⊙ h_a (mid) and x_i ⊙ h_e (high) to
        the heads' inputs (v2); false = the paper's heads.

    The NER label space is set by the pipe (`set_gated_labels`) before
    initialization or deserialization: the torch module is built then.
    """
    require_torch("medlink.GatedNormalizer")
    if fusion not in FUSION:
        raise ValueError(f"fusion must be one of {FUSION}, not {fusion!r}")
    if attention not in ATTENTION:
        raise ValueError(f"attention must be one of {ATTENTION}, not {attention!r}")
    if not (use_mid or use_high):
        raise ValueError("at least one of use_mid and use_high must be true: they link mentions to concepts")
    if lstm_depth < 0 or (lstm_depth and (lstm_width <= 0 or lstm_width % 2)):
        raise ValueError(f"lstm_width must be positive and even (two directions), not {lstm_width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {dropout}")
    if tok2vec.name in _LISTENERS:
        raise ValueError(
            "medlink.GatedNormalizer.v1 encodes concept names with its own tok2vec, so it cannot be a "
            f"listener ({tok2vec.name}): give the component an inline spacy.Tok2Vec.v2 (or transformer)"
        )
    heads: Model = Model(
        "medlink_gated_heads",
        _heads_forward,
        init=_heads_init,
        dims={"nI": tok2vec.maybe_get_dim("nO")},
        attrs={
            "lstm_width": lstm_width,
            "lstm_depth": lstm_depth,
            "dropout": dropout,
            "use_crf": use_crf,
            "use_mid": use_mid,
            "use_high": use_high,
            "fusion": fusion,
            "attention": attention,
            "match": match,
            # set by set_gated_labels
            "ner_tags": None,
            "tag_scheme": None,
        },
    )
    model: Model = Model(
        "medlink_gated_normalizer",
        _forward,
        init=_init,
        layers=[tok2vec, heads],
        refs={"tok2vec": tok2vec, "heads": heads},
    )
    return model


def set_gated_labels(model: Model, ner_tags: Sequence[str], tag_scheme: str) -> None:
    """Give the NER head its tags ("O", "B-Disease", ...) and (re)build the torch module."""
    from .crf import transition_constraints

    heads = model.get_ref("heads")
    transition_constraints(ner_tags, tag_scheme)  # validates the tags
    heads.attrs["ner_tags"] = list(ner_tags)
    heads.attrs["tag_scheme"] = tag_scheme
    if heads.has_dim("nI"):
        _build(heads)


def ner_constraints(model: Model) -> "Constraints":
    from .crf import transition_constraints

    heads = model.get_ref("heads")
    return transition_constraints(heads.attrs["ner_tags"], heads.attrs["tag_scheme"])


def torch_module(model: Model) -> "GatedNormalizerModule":
    heads = model.get_ref("heads")
    if not heads.layers:
        raise ValueError("medlink_gated_heads: no labels yet; the pipe calls set_gated_labels first")
    return heads.layers[0].shims[0]._model


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    docs = list(X.docs) + list(X.name_docs) if isinstance(X, GatedBatch) else X
    tok2vec.initialize(X=docs)
    if not heads.has_dim("nI"):
        if tok2vec.has_dim("nO"):
            heads.set_dim("nI", tok2vec.get_dim("nO"))
        elif docs:
            heads.set_dim("nI", tok2vec.predict(docs[:1])[0].shape[1])
    heads.initialize()


def _forward(model: Model, batch: GatedBatch, is_train: bool) -> Tuple[GatedScores, Callable]:
    """Texts and concept names go through the encoder in two calls: in one, a
    transformer pads each few-wordpiece name to the texts' window length (on
    NCBI with MiniLM that made most of an update's cost)."""
    tok2vec, heads = model.get_ref("tok2vec"), model.get_ref("heads")
    text_feats, bp_text = tok2vec(list(batch.docs), is_train)
    name_feats, bp_names = tok2vec(list(batch.name_docs), is_train) if batch.name_docs else ([], None)
    inputs = (text_feats, name_feats, batch.name_concept, batch.n_concepts, batch.pair_doc, batch.pair_concept,
              batch.pair_start, batch.pair_end)
    scores, bp_scores = heads(inputs, is_train)

    def backprop(d_scores: GatedScores) -> GatedBatch:
        d_text, d_names = bp_scores(d_scores)
        bp_text(list(d_text))
        if bp_names is not None:
            bp_names(list(d_names))
        return batch

    return scores, backprop


def _heads_init(model: Model, X: Any = None, Y: Any = None) -> None:
    if not model.has_dim("nI") and X:
        model.set_dim("nI", X[0][0].shape[1])
    if not model.layers:
        _build(model)


def _heads_forward(model: Model, X: Any, is_train: bool) -> Tuple[GatedScores, Callable]:
    if not model.layers:
        raise ValueError("medlink_gated_heads: no labels yet; the pipe calls set_gated_labels first")
    return model.layers[0](X, is_train)


def _build(heads: Model) -> None:
    from .crf import transition_constraints
    from .gated_module import GatedNormalizerModule
    from .torch_wrapper import wrap_torch_module

    attrs = heads.attrs
    if attrs["ner_tags"] is None:
        raise ValueError("medlink_gated_heads: set_gated_labels must be called before initialization")
    module = GatedNormalizerModule(
        heads.get_dim("nI"),
        n_tags=len(attrs["ner_tags"]),
        lstm_width=attrs["lstm_width"],
        lstm_depth=attrs["lstm_depth"],
        dropout=attrs["dropout"],
        use_mid=attrs["use_mid"],
        use_high=attrs["use_high"],
        fusion=attrs["fusion"],
        attention=attrs["attention"],
        match=attrs.get("match", False),
        constraints=transition_constraints(attrs["ner_tags"], attrs["tag_scheme"]) if attrs["use_crf"] else None,
    )
    wrapped = wrap_torch_module(module, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs)
    heads.layers[:] = [wrapped]


# -- thinc <-> torch ------------------------------------------------------------
def _pad(ops, X: Sequence[Floats2d], width: int) -> Tuple[Any, List[int]]:
    lengths = [len(x) for x in X]
    padded = ops.alloc3f(len(X), max(lengths, default=0), width)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    return padded, lengths


def _convert_inputs(model: Model, X: Any, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """(text feats, name feats, name_concept, n_concepts, pair_doc, pair_concept[, pair_start, pair_end]) -> tensors."""
    import torch

    text, names, name_concept, n_concepts, pair_doc, pair_concept, *ranges = X
    pair_start, pair_end = ranges if ranges else (None, None)
    width = model.get_dim("nI") if model.has_dim("nI") else next(iter(list(text) + list(names))).shape[1]
    device = model.shims[0].device
    text_pad, text_lengths = _pad(model.ops, text, width)
    name_pad, name_lengths = _pad(model.ops, names, width)
    args = (
        xp2torch(text_pad, requires_grad=is_train, device=device),
        torch.tensor(text_lengths, dtype=torch.long, device=device),
        xp2torch(name_pad, requires_grad=is_train and len(names) > 0, device=device),
        torch.tensor(name_lengths, dtype=torch.long, device=device),
        torch.as_tensor(numpy.asarray(name_concept, dtype=numpy.int64), device=device),
        int(n_concepts),
        torch.as_tensor(numpy.asarray(pair_doc, dtype=numpy.int64), device=device),
        torch.as_tensor(numpy.asarray(pair_concept, dtype=numpy.int64), device=device),
        _long_or_none(pair_start, device),
        _long_or_none(pair_end, device),
    )

    def unpad(grad: Optional["torch.Tensor"], lengths: List[int]) -> List[Floats2d]:
        if grad is None:
            return [model.ops.alloc2f(n, width) for n in lengths]
        dX = torch2xp(grad, ops=model.ops)
        return [dX[i, :n] for i, n in enumerate(lengths)]

    def reverse(dXt: ArgsKwargs) -> Tuple[List[Floats2d], List[Floats2d]]:
        return unpad(dXt.args[0], text_lengths), unpad(dXt.args[2], name_lengths)

    return ArgsKwargs(args=args, kwargs={}), reverse


def _long_or_none(values: Optional[Sequence[int]], device: Any) -> Optional["torch.Tensor"]:
    import torch

    return None if values is None else torch.as_tensor(numpy.asarray(values, dtype=numpy.int64), device=device)


def _convert_outputs(model: Model, X_Yt: Tuple[Any, tuple], is_train: bool) -> Tuple[GatedScores, Callable]:
    from .gated_module import DIFFERENTIABLE
    from .torch_wrapper import backward_args

    X, outputs = X_Yt
    text, pair_doc = X[0], X[4]
    arrays = [None if t is None else torch2xp(t.detach(), ops=model.ops) for t in outputs]
    scores = GatedScores(
        *arrays,
        lengths=model.ops.asarray1i([len(x) for x in text]),
        pair_doc=model.ops.asarray1i(numpy.asarray(pair_doc, dtype="int32")),
    )

    return scores, lambda d_scores: backward_args(outputs[: len(DIFFERENTIABLE)], d_scores, DIFFERENTIABLE)


# -- inference: two stages, text encoded once --------------------------------------
class EncodedTexts(NamedTuple):
    H: "torch.Tensor"  # (B, T, D)
    lengths: "torch.Tensor"  # (B,)
    paths: List[List[int]]  # best valid NER tag path per doc


def encode_texts(model: Model, docs: Sequence[Doc]) -> EncodedTexts:
    """Stage 1: text features and the decoded NER tags (no gradient)."""
    import torch

    from .crf import viterbi
    from .layers import length_mask

    module = torch_module(model)
    feats = model.get_ref("tok2vec").predict(list(docs))
    device = model.get_ref("heads").layers[0].shims[0].device
    width = model.get_ref("heads").get_dim("nI")
    padded, lengths = _pad(model.ops, feats, width)
    module.eval()
    with torch.no_grad():
        L = torch.tensor(lengths, dtype=torch.long, device=device)
        H = module.encode(xp2torch(padded, device=device), L)
        emissions, start, transitions, end = module.ner(H)
        mask = length_mask(L, H.shape[1])
        if start is None:
            emissions = torch.log_softmax(emissions, dim=-1)
            n = emissions.shape[-1]
            start, transitions, end = emissions.new_zeros(n), emissions.new_zeros(n, n), emissions.new_zeros(n)
        paths = viterbi(emissions, mask, start, transitions, end, constraints=ner_constraints(model))
    return EncodedTexts(H, L, paths)


def encode_concepts(model: Model, name_docs: Sequence[Doc], name_concept: numpy.ndarray,
                    n_concepts: int) -> "torch.Tensor":
    """h_e for n_concepts concepts from their tokenized names (no gradient)."""
    import torch

    module = torch_module(model)
    device = model.get_ref("heads").layers[0].shims[0].device
    width = model.get_ref("heads").get_dim("nI")
    if not n_concepts:
        return torch.zeros(0, module.width, device=device)
    feats = model.get_ref("tok2vec").predict(list(name_docs))
    padded, lengths = _pad(model.ops, feats, width)
    module.eval()
    with torch.no_grad():
        return module.encode_concepts(
            xp2torch(padded, device=device),
            torch.tensor(lengths, dtype=torch.long, device=device),
            torch.as_tensor(numpy.asarray(name_concept, dtype=numpy.int64), device=device),
            n_concepts,
        )


def score_pairs(
    model: Model, texts: EncodedTexts, h_e: "torch.Tensor", pair_doc: numpy.ndarray, pair_concept: numpy.ndarray,
    *, chunk_size: int = 256, pair_start: Optional[numpy.ndarray] = None, pair_end: Optional[numpy.ndarray] = None,
) -> Tuple[Optional[numpy.ndarray], Optional[numpy.ndarray]]:
    """Stage 2: mid probabilities (P,) and high B/I/O probabilities (P, T, 3),
    in chunks of pairs (a pair costs its text's tokens × width floats per layer).
    pair_start, pair_end: each pair's token range (a sentence); None = whole doc."""
    import torch

    module = torch_module(model)
    device = texts.H.device
    mids: List[numpy.ndarray] = []
    highs: List[numpy.ndarray] = []
    module.eval()
    with torch.no_grad():
        for i in range(0, len(pair_doc), chunk_size):
            pd = torch.as_tensor(numpy.asarray(pair_doc[i : i + chunk_size], dtype=numpy.int64), device=device)
            pc = torch.as_tensor(numpy.asarray(pair_concept[i : i + chunk_size], dtype=numpy.int64), device=device)
            ps = None if pair_start is None else _long_or_none(pair_start[i : i + chunk_size], device)
            pe = None if pair_end is None else _long_or_none(pair_end[i : i + chunk_size], device)
            mid, high, _ = module.score_pairs(texts.H, texts.lengths, h_e, pd, pc, ps, pe)
            if mid is not None:
                mids.append(torch.sigmoid(mid).cpu().numpy())
            if high is not None:
                highs.append(torch.softmax(high, dim=-1).cpu().numpy())
    T = texts.H.shape[1]
    mid_out = numpy.concatenate(mids) if mids else (numpy.zeros(0, "f") if module.use_mid else None)
    high_out = (numpy.concatenate(highs) if highs else numpy.zeros((0, T, 3), "f")) if module.use_high else None
    return mid_out, high_out
