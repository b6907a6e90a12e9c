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
`gated_loss` in torch on leaf copies and hands the gradients back. Inference
runs the torch module directly in two stages (`encode_texts`, then
`score_pairs` for the candidates the NER output implies) so the text is
encoded once, and concept names only for the candidates of the batch.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats2d

from .crf import Constraints, log_partition, transition_constraints, viterbi
from .torch_wrapper import wrap_torch_module

FUSION = ("gate", "concat")
ATTENTION = ("attention", "mean")
HIGH_TAGS = ("O", "B", "I")  # B/I/O of "a mention of concept e"
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


class GatedScores(NamedTuple):
    """Model output (B docs, T = longest doc, P pairs); also carries gradients.

    ner: (B, T, n_tags) emissions; start, transitions, end: CRF scores (None
    without a CRF); mid: (P,) logits (None without the mid task); high:
    (P, T, 3) B/I/O logits (None without the high task); attention: (P, T)
    weights (not differentiated); lengths: (B,) ints; pair_doc: (P,) ints.
    """

    ner: Any
    start: Any = None
    transitions: Any = None
    end: Any = None
    mid: Any = None
    high: Any = None
    attention: Any = None
    lengths: Any = None
    pair_doc: Any = None


_OUTPUTS = ("ner", "start", "transitions", "end", "mid", "high", "attention")
_DIFFERENTIABLE = ("ner", "start", "transitions", "end", "mid", "high")


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
    heads = model.get_ref("heads")
    transition_constraints(ner_tags, tag_scheme)  # validates the tags
    heads.attrs["ner_tags"] = list(ner_tags)
    heads.attrs["tag_scheme"] = tag_scheme
    if heads.has_dim("nI"):
        _build(heads)


def ner_constraints(model: Model) -> Constraints:
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


def masked_mean(X: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over axis 1 of (N, T, D) where mask (N, T) is True; zeros for empty rows."""
    weights = mask.to(X.dtype)
    return (X * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True).clamp(min=1.0)


def segment_softmax(scores: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Softmax of scores (N,) within each segment (segments (N,): 0..n_segments-1)."""
    if not len(scores):
        return scores
    top = scores.new_full((n_segments,), float("-inf")).scatter_reduce(
        0, segments, scores.detach(), reduce="amax", include_self=True
    )
    weights = torch.exp(scores - top[segments])
    totals = weights.new_zeros(n_segments).index_add(0, segments, weights)
    return weights / totals[segments]


class GatedNormalizerModule(torch.nn.Module):
    """The torch part: shared BiLSTM, NER head (+ CRF), mid and high heads."""

    def __init__(
        self,
        nI: int,
        *,
        n_tags: int,
        lstm_width: int,
        lstm_depth: int,
        dropout: float,
        use_mid: bool,
        use_high: bool,
        fusion: str,
        attention: str,
        constraints: Optional[Constraints],
        match: bool = False,
    ) -> None:
        super().__init__()
        from .crf import CRF

        self.use_mid, self.use_high = use_mid, use_high
        self.fusion, self.attention = fusion, attention
        self.drop = torch.nn.Dropout(dropout)
        self.lstm = (
            torch.nn.LSTM(nI, lstm_width // 2, num_layers=lstm_depth, bidirectional=True, batch_first=True,
                          dropout=dropout if lstm_depth > 1 else 0.0)
            if lstm_depth
            else None
        )
        D = lstm_width if lstm_depth else nI
        self.width = D
        self.ner_out = torch.nn.Linear(D, n_tags)
        self.crf = CRF(n_tags, constraints) if constraints is not None else None
        needs_attention = use_mid or (use_high and fusion == "gate")
        self.att_in = torch.nn.Linear(2 * D, D) if needs_attention and attention == "attention" else None
        self.att_v = torch.nn.Linear(D, 1, bias=False) if self.att_in is not None else None
        self.mid_out = torch.nn.Linear(2 * D, 1) if use_mid else None
        self.gate = torch.nn.Linear(2 * D, D) if use_high and fusion == "gate" else None
        self.high_out = torch.nn.Linear(D if fusion == "gate" else 2 * D, len(HIGH_TAGS)) if use_high else None
        # v2: weights of the matching features, apart so that v1's parameters keep their shapes
        self.mid_match = torch.nn.Linear(D, 1, bias=False) if match and use_mid else None
        self.high_match = torch.nn.Linear(D, len(HIGH_TAGS), bias=False) if match and use_high else None

    # -- the stages ------------------------------------------------------------------
    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, nI) token vectors -> (B, T, D) features H (zeros at padding)."""
        X = self.drop(X)
        if self.lstm is not None:
            if not X.shape[1]:
                return X.new_zeros(X.shape[0], 0, self.width)
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                X, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
            )
            out, _ = self.lstm(packed)
            X, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])
            X = self.drop(X)
        return X * _mask(lengths, X.shape[1]).unsqueeze(-1).to(X.dtype)

    def encode_concepts(
        self, names: torch.Tensor, name_lengths: torch.Tensor, name_concept: torch.Tensor, n_concepts: int
    ) -> torch.Tensor:
        """h_e (n_concepts, D): each name encoded like a text and mean-pooled
        over its tokens, then a concept's names averaged."""
        pooled = masked_mean(self.encode(names, name_lengths), _mask(name_lengths, names.shape[1]))
        sums = pooled.new_zeros(n_concepts, pooled.shape[1]).index_add(0, name_concept, pooled)
        counts = torch.bincount(name_concept, minlength=n_concepts).clamp(min=1).to(pooled.dtype)
        return sums / counts.unsqueeze(-1)

    def ner(self, H: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """NER emissions and the CRF's (start, transitions, end), None without a CRF."""
        emissions = self.ner_out(H)
        if self.crf is None:
            return emissions, None, None, None
        return (emissions, *self.crf())

    def score_pairs(
        self, H: torch.Tensor, lengths: torch.Tensor, h_e: torch.Tensor, pair_doc: torch.Tensor,
        pair_concept: torch.Tensor, pair_start: Optional[torch.Tensor] = None,
        pair_end: Optional[torch.Tensor] = None,
    ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], torch.Tensor]:
        """(mid logits (P,), high B/I/O logits (P, T, 3), attention α (P, T))
        for texts H (B, T, D) and concepts h_e (C, D), paired by pair_doc, pair_concept.
        pair_start, pair_end (P,): each pair's text is tokens [start, end) of
        its doc (a sentence); None = the whole doc. H comes from the whole doc
        either way, so a sentence's tokens keep their context.

        Two things keep a pair cheap. Linear maps of concatenations are split
        into their token part, computed once per doc, and their concept part,
        once per pair, so the per-pair work is elementwise, O(T·D) not O(T·D²).
        And that work runs on the real (pair, token) positions only, flattened,
        not on every doc padded to the longest one. Padding gets α = 0 and
        high logits 0 (and no loss).
        """
        P, (B, T, D) = len(pair_doc), H.shape
        pair_mask = _mask(lengths[pair_doc], T)
        if pair_start is not None and pair_end is not None:
            positions = torch.arange(T, device=H.device)[None, :]
            pair_mask = pair_mask & (positions >= pair_start[:, None]) & (positions < pair_end[:, None])
        pair_pos, tok_pos = pair_mask.nonzero(as_tuple=True)  # (N,) real positions
        doc_pos = pair_doc[pair_pos]
        Hf = H[doc_pos, tok_pos]  # (N, D): x_i of each pair's text
        he = h_e[pair_concept]  # (P, D)
        if self.att_in is not None:
            # α_i ∝ exp(v·tanh(W_a[x_i; h_e] + b_a)), W_a[x_i; h_e] = W_x·x_i + W_e·h_e
            tokens = torch.nn.functional.linear(H, self.att_in.weight[:, :D], self.att_in.bias)[doc_pos, tok_pos]
            concept = torch.nn.functional.linear(he, self.att_in.weight[:, D:])[pair_pos]
            scores = self.att_v(torch.tanh(tokens + concept)).squeeze(-1)
        else:
            scores = Hf.new_zeros(len(pair_pos))  # "mean": uniform weights
        alpha_f = segment_softmax(scores, pair_pos, P)
        h_a = Hf.new_zeros(P, D).index_add(0, pair_pos, alpha_f.unsqueeze(-1) * Hf)  # Σ α_i x_i
        alpha = alpha_f.new_zeros(P, T).index_put((pair_pos, tok_pos), alpha_f)
        mid = high = None
        if self.mid_out is not None:
            mid = self.mid_out(torch.cat([he, h_a], dim=-1)).squeeze(-1)  # W_m[h_e; h_a] + b_m
            if self.mid_match is not None:
                mid = mid + self.mid_match(he * h_a).squeeze(-1)
        if self.high_out is not None:
            if self.gate is not None:
                # G = σ(W_g[H; H_a] + b_g), H_f = H ⊙ (1 − G) + H_e ⊙ G
                gate_tokens = torch.nn.functional.linear(H, self.gate.weight[:, :D], self.gate.bias)[doc_pos, tok_pos]
                gate_summary = torch.nn.functional.linear(h_a, self.gate.weight[:, D:])[pair_pos]
                G = torch.sigmoid(gate_tokens + gate_summary)
                logits = self.high_out(Hf + G * (he[pair_pos] - Hf))
            else:
                # W_h[H; H_e] + b_h, split the same way
                tokens = torch.nn.functional.linear(H, self.high_out.weight[:, :D], self.high_out.bias)
                logits = tokens[doc_pos, tok_pos] + torch.nn.functional.linear(he, self.high_out.weight[:, D:])[pair_pos]
            if self.high_match is not None:
                logits = logits + self.high_match(Hf * he[pair_pos])
            high = logits.new_zeros(P, T, logits.shape[-1]).index_put((pair_pos, tok_pos), logits)
        return mid, high, alpha

    def forward(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        names: torch.Tensor,
        name_lengths: torch.Tensor,
        name_concept: torch.Tensor,
        n_concepts: int,
        pair_doc: torch.Tensor,
        pair_concept: torch.Tensor,
        pair_start: Optional[torch.Tensor] = None,
        pair_end: Optional[torch.Tensor] = None,
    ) -> Tuple[Optional[torch.Tensor], ...]:
        H = self.encode(X, lengths)
        ner, start, transitions, end = self.ner(H)
        mid = high = attention = None
        if len(pair_doc):
            h_e = self.encode_concepts(names, name_lengths, name_concept, n_concepts)
            mid, high, attention = self.score_pairs(H, lengths, h_e, pair_doc, pair_concept, pair_start, pair_end)
        return ner, start, transitions, end, mid, high, attention


def _mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


# -- thinc <-> torch ------------------------------------------------------------
def _pad(ops, X: Sequence[Floats2d], width: int) -> Tuple[Any, List[int]]:
    lengths = [len(x) for x in X]
    padded = ops.alloc3f(len(X), max(lengths, default=0), width)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    return padded, lengths


def _convert_inputs(model: Model, X: Any, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """(text feats, name feats, name_concept, n_concepts, pair_doc, pair_concept[, pair_start, pair_end]) -> tensors."""
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

    def unpad(grad: Optional[torch.Tensor], lengths: List[int]) -> List[Floats2d]:
        if grad is None:
            return [model.ops.alloc2f(n, width) for n in lengths]
        dX = torch2xp(grad, ops=model.ops)
        return [dX[i, :n] for i, n in enumerate(lengths)]

    def reverse(dXt: ArgsKwargs) -> Tuple[List[Floats2d], List[Floats2d]]:
        return unpad(dXt.args[0], text_lengths), unpad(dXt.args[2], name_lengths)

    return ArgsKwargs(args=args, kwargs={}), reverse


def _long_or_none(values: Optional[Sequence[int]], device: Any) -> Optional[torch.Tensor]:
    return None if values is None else torch.as_tensor(numpy.asarray(values, dtype=numpy.int64), device=device)


def _convert_outputs(model: Model, X_Yt: Tuple[Any, tuple], is_train: bool) -> Tuple[GatedScores, Callable]:
    X, outputs = X_Yt
    text, pair_doc = X[0], X[4]
    arrays = [None if t is None else torch2xp(t.detach(), ops=model.ops) for t in outputs]
    scores = GatedScores(
        *arrays,
        lengths=model.ops.asarray1i([len(x) for x in text]),
        pair_doc=model.ops.asarray1i(numpy.asarray(pair_doc, dtype="int32")),
    )

    def backprop(d_scores: GatedScores) -> ArgsKwargs:
        tensors, grads = [], []
        for t, name in zip(outputs, _OUTPUTS):
            g = getattr(d_scores, name) if name in _DIFFERENTIABLE else None
            if t is not None and g is not None and t.requires_grad:
                tensors.append(t)
                grads.append(xp2torch(g, device=t.device))
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grads})

    return scores, backprop


# -- loss (run by the pipe on GatedScores) ----------------------------------------
def gated_loss(
    scores: GatedScores,
    ner_gold: torch.Tensor,
    mid_gold: Optional[torch.Tensor],
    high_gold: Optional[torch.Tensor],
    *,
    mid_weight: float = 0.125,
    high_weight: float = 0.1,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """L_low + λ·L_mid + µ·L_high, and the three parts (floats, for logging).

    L_low: CRF NLL (partial-label: a -1 gold tag is summed over) or softmax CE,
    per token. L_mid: binary CE per pair. L_high: B/I/O CE per pair token.
    ner_gold (B, T), mid_gold (P,) in {0, 1}, high_gold (P, T): -1 = unknown.
    """
    lengths = scores.lengths
    B, T, n_tags = scores.ner.shape
    mask = _mask(lengths, T)
    if scores.transitions is not None:
        known = ner_gold >= 0
        allowed = torch.nn.functional.one_hot(ner_gold.clamp(min=0), n_tags).bool() | ~known[..., None]
        z = log_partition(scores.ner, mask, scores.start, scores.transitions, scores.end)
        z_gold = log_partition(scores.ner, mask, scores.start, scores.transitions, scores.end, allowed)
        low = (z - z_gold).sum() / mask.sum().clamp(min=1)
    else:
        low = _mean_ce(scores.ner, ner_gold)
    total = low
    parts = {"low": float(low.detach()), "mid": 0.0, "high": 0.0}
    if scores.mid is not None and mid_gold is not None and mid_gold.numel():
        mid = torch.nn.functional.binary_cross_entropy_with_logits(scores.mid, mid_gold.to(scores.mid.dtype))
        total = total + mid_weight * mid
        parts["mid"] = float(mid.detach())
    if scores.high is not None and high_gold is not None and high_gold.numel():
        high = _mean_ce(scores.high, high_gold)
        total = total + high_weight * high
        parts["high"] = float(high.detach())
    return total, parts


def _mean_ce(logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    n = (gold >= 0).sum().clamp(min=1)
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=-1, reduction="sum"
    ) / n


def gated_loss_and_gradient(
    scores: GatedScores,
    ner_gold: numpy.ndarray,
    mid_gold: numpy.ndarray,
    high_gold: numpy.ndarray,
    *,
    mid_weight: float,
    high_weight: float,
) -> Tuple[float, Dict[str, float], GatedScores]:
    """`gated_loss` on leaf copies of the model's outputs, and their gradients."""
    leaves = {
        name: xp2torch(getattr(scores, name), requires_grad=True)
        for name in _DIFFERENTIABLE
        if getattr(scores, name) is not None
    }
    t_scores = GatedScores(**leaves, lengths=xp2torch(scores.lengths).long())
    device = t_scores.ner.device

    def as_long(a: numpy.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.long, device=device)

    loss, parts = gated_loss(
        t_scores, as_long(ner_gold), as_long(mid_gold), as_long(high_gold),
        mid_weight=mid_weight, high_weight=high_weight,
    )
    loss.backward()
    grads = {name: torch2xp(t.grad) if t.grad is not None else None for name, t in leaves.items()}
    return float(loss.item()), parts, GatedScores(**grads, lengths=scores.lengths, pair_doc=scores.pair_doc)


# -- inference: two stages, text encoded once --------------------------------------
class EncodedTexts(NamedTuple):
    H: torch.Tensor  # (B, T, D)
    lengths: torch.Tensor  # (B,)
    paths: List[List[int]]  # best valid NER tag path per doc


def encode_texts(model: Model, docs: Sequence[Doc]) -> EncodedTexts:
    """Stage 1: text features and the decoded NER tags (no gradient)."""
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
        mask = _mask(L, H.shape[1])
        if start is None:
            emissions = torch.log_softmax(emissions, dim=-1)
            n = emissions.shape[-1]
            start, transitions, end = emissions.new_zeros(n), emissions.new_zeros(n, n), emissions.new_zeros(n)
        paths = viterbi(emissions, mask, start, transitions, end, constraints=ner_constraints(model))
    return EncodedTexts(H, L, paths)


def encode_concepts(model: Model, name_docs: Sequence[Doc], name_concept: numpy.ndarray, n_concepts: int) -> torch.Tensor:
    """h_e for n_concepts concepts from their tokenized names (no gradient)."""
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
    model: Model, texts: EncodedTexts, h_e: torch.Tensor, pair_doc: numpy.ndarray, pair_concept: numpy.ndarray,
    *, chunk_size: int = 256, pair_start: Optional[numpy.ndarray] = None, pair_end: Optional[numpy.ndarray] = None,
) -> Tuple[Optional[numpy.ndarray], Optional[numpy.ndarray]]:
    """Stage 2: mid probabilities (P,) and high B/I/O probabilities (P, T, 3),
    in chunks of pairs (a pair costs its text's tokens × width floats per layer).
    pair_start, pair_end: each pair's token range (a sentence); None = whole doc."""
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
