"""The torch side of medlink.GatedNormalizer (`ml/gated_normalizer.py` has
the method, the builders and the thinc glue): the module with its three heads
and the loss the pipe computes on the scores it returns (`ml/scores.py`).

Shapes: B texts padded to T tokens (``lengths`` (B,)), P (text, concept)
pairs, C concepts, D the encoder width.
"""
from typing import Any, Dict, Optional, Tuple

import numpy
import torch

from .crf import CRF, Constraints, partial_nll
from .layers import PackedBiLSTM, length_mask, pooled_mean, segment_softmax
from .scores import GatedScores
from .torch_wrapper import loss_on_leaves

HIGH_TAGS = ("O", "B", "I")  # B/I/O of "a mention of concept e"

# the module's outputs, in its return order, that get gradients (attention does not)
DIFFERENTIABLE = ("ner", "start", "transitions", "end", "mid", "high")


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
        self.use_mid, self.use_high = use_mid, use_high
        self.fusion, self.attention = fusion, attention
        self.drop = torch.nn.Dropout(dropout)
        self.lstm = PackedBiLSTM(nI, lstm_width, lstm_depth, dropout) if lstm_depth else None
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
            X = self.drop(self.lstm(X, lengths))
        return X * length_mask(lengths, X.shape[1]).unsqueeze(-1).to(X.dtype)

    def encode_concepts(
        self, names: torch.Tensor, name_lengths: torch.Tensor, name_concept: torch.Tensor, n_concepts: int
    ) -> torch.Tensor:
        """h_e (n_concepts, D): each name encoded like a text and mean-pooled
        over its tokens, then a concept's names averaged."""
        pooled = pooled_mean(self.encode(names, name_lengths), name_lengths)
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
        P, (_, T, D) = len(pair_doc), H.shape
        pair_mask = length_mask(lengths[pair_doc], T)
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
    T = scores.ner.shape[1]
    mask = length_mask(lengths, T)
    if scores.transitions is not None:
        nll = partial_nll(scores.ner, mask, scores.start, scores.transitions, scores.end, ner_gold)
        low = nll.sum() / mask.sum().clamp(min=1)
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

    def loss_fn(t_scores: GatedScores) -> Tuple[torch.Tensor, Dict[str, float]]:
        device = t_scores.ner.device

        def as_long(a: numpy.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.long, device=device)

        return gated_loss(
            t_scores, as_long(ner_gold), as_long(mid_gold), as_long(high_gold),
            mid_weight=mid_weight, high_weight=high_weight,
        )

    (loss, parts), grads = loss_on_leaves(scores, DIFFERENTIABLE, loss_fn)
    return float(loss.item()), parts, grads
