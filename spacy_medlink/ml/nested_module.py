"""The torch side of medlink.NestedRecognizer (`ml/nested_recognizer.py` has the
method, the builder and the thinc glue): the modules of both encoders (a tok2vec's
vectors, `NestedRecognizerModule`; a transformer over (sentence, query) pairs,
`TransformerNestedModule`, built by `ml/nested_recognizer_trf.py`) over the heads they
share, the loss the pipe computes on their scores (`ml/scores.py`), and decoding.

Shapes: B sentences padded to T tokens, K entity types, L the longest span scored.
"""
from typing import Any, List, Optional, Sequence, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, xp2torch

from .crf import CRF, Constraints, partial_nll, viterbi
from .layers import Biaffine, BiLSTM, ConditionalLayerNorm, LossWeights, length_mask, pooled_mean
from .scores import NestedScores
from .torch_wrapper import backward_args, loss_on_leaves

# the fields that get gradients, in the modules' return order
DIFFERENTIABLE = ("emissions", "biaffine", "start", "transitions", "end", "loss_w")


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
        self.set_transformer(AutoModel.from_pretrained(name))

    def set_transformer(self, transformer: torch.nn.Module) -> None:
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


def torch_gradients(outputs: Sequence[Optional[torch.Tensor]], d_scores: NestedScores) -> ArgsKwargs:
    """The backward call for the module's outputs, given the gradients of their scores."""
    return backward_args(outputs, d_scores, DIFFERENTIABLE)


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

    (total, l_crf, l_biaffine), grads = loss_on_leaves(scores, DIFFERENTIABLE, loss_fn)
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
