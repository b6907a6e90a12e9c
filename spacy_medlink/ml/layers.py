"""Torch layers that any medlink model can use: BiLSTM over padded batches
(and `PackedBiLSTM`, the torch-LSTM layout of the joint and gated models),
a task-specific BiLSTM with a shortcut (task hierarchies), span and masked
mean pooling, attention weights within segments (``segment_softmax``),
conditional LayerNorm, a banded Biaffine span scorer and learnable loss
weights. Each is a plain ``torch.nn.Module``; model builders in this package
put them together and wrap the result with `wrap_torch_module`.

Shapes: a batch is padded to (N, T, width) with a ``lengths`` (N,) tensor;
positions past a row's length are padding.
"""
from typing import Dict, Optional, Tuple

import torch

LOSS_WEIGHTINGS = ("paper", "uncertainty", "fixed")


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(N, T) bool, True on the first ``lengths[n]`` positions of row n."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths.to(torch.long)[:, None]


def reverse_padded(X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's first ``lengths[n]`` vectors in reverse order; padding stays put."""
    N, T = X.shape[:2]
    t = torch.arange(T, device=X.device)[None, :]
    n = lengths.to(X.device, torch.long)[:, None]
    index = torch.where(t < n, n - 1 - t, t)
    return X.gather(1, index[..., None].expand_as(X))


class BiLSTM(torch.nn.Module):
    """A bidirectional LSTM over a padded batch, padding ignored.

    width is the output width (both directions together), so it must be even.

    Why not ``pack_padded_sequence``: on CPU, torch runs a packed LSTM step by
    step with a slice of the packed input per step, and the backward pass of
    every slice allocates a gradient the size of the whole input: quadratic
    in the sequence length (a 580-token record spent most of its update
    there). Unpacked, the forward direction runs on the padded batch (padding
    comes after every real token, so it changes none of their states), and
    the backward direction runs forward over each row reversed within its
    length.
    """

    def __init__(self, nI: int, width: int, depth: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"BiLSTM width must be even (two directions), not {width}")
        self.nO = width
        self.dropout = torch.nn.Dropout(dropout)
        self.forward_layers = torch.nn.ModuleList()
        self.backward_layers = torch.nn.ModuleList()
        for i in range(depth):
            n_in = nI if i == 0 else width
            self.forward_layers.append(torch.nn.LSTM(n_in, width // 2, batch_first=True))
            self.backward_layers.append(torch.nn.LSTM(n_in, width // 2, batch_first=True))

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0 or X.shape[1] == 0:
            return X.new_zeros(X.shape[:2] + (self.nO,))
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                X = self.dropout(X)
            ahead, _ = fwd(X)
            behind, _ = bwd(reverse_padded(X, lengths))
            X = torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)
        return X


class PackedBiLSTM(torch.nn.LSTM):
    """torch's bidirectional LSTM run on a padded batch through
    ``pack_padded_sequence`` (padding ignored, zeros out).

    The encoder of the joint tagger and the gated normalizer: their saved
    pipelines (en_medlink among them) hold torch LSTM parameters, so they keep
    this layout. New models use `BiLSTM`, which trains faster on long docs
    (see there). width is both directions together, so it must be even.
    """

    def __init__(self, nI: int, width: int, depth: int = 1, dropout: float = 0.0) -> None:
        if width % 2:
            raise ValueError(f"BiLSTM width must be even (two directions), not {width}")
        super().__init__(nI, width // 2, num_layers=depth, bidirectional=True, batch_first=True,
                         dropout=dropout if depth > 1 else 0.0)
        self.nO = width

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if not X.shape[1]:
            return X.new_zeros(X.shape[0], 0, self.nO)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            X, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = super().forward(packed)
        return torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])[0]


class ShortcutBiLSTM(torch.nn.Module):
    """A task-specific BiLSTM in a hierarchy of tasks (Sanh et al., 2019,
    "A hierarchical multi-task approach"): it reads the shared encoding
    concatenated with the output of the task below (the shortcut), so a
    higher task sees both the raw shared features and what the lower task
    made of them. With ``n_lower = 0`` it is the lowest task's encoder.
    """

    def __init__(self, nI: int, n_lower: int, width: int, depth: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_lower = n_lower
        self.nO = width
        self.lstm = BiLSTM(nI + n_lower, width, depth, dropout)

    def forward(self, shared: torch.Tensor, lower: Optional[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        if (lower is None) != (self.n_lower == 0):
            raise ValueError(f"ShortcutBiLSTM built for n_lower={self.n_lower}, called with lower={lower is not None}")
        X = shared if lower is None else torch.cat([shared, lower], dim=-1)
        return self.lstm(X, lengths)


def span_mean(X: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors of each span: X (N, T, H), spans (S, 3) rows
    of (row, start, end) with end exclusive -> (S, H). One cumulative sum, so
    the cost does not grow with the span lengths."""
    if spans.shape[0] == 0:
        return X.new_zeros((0, X.shape[-1]))
    csum = torch.nn.functional.pad(X.cumsum(dim=1), (0, 0, 1, 0))  # (N, T + 1, H)
    row, start, end = spans[:, 0], spans[:, 1], spans[:, 2]
    total = csum[row, end] - csum[row, start]
    return total / (end - start).clamp(min=1).to(X.dtype)[:, None]


class ConditionalLayerNorm(torch.nn.Module):
    """LayerNorm whose gain and bias are functions of a condition vector.

    ``y = (1 + W_g c) ⊙ (x - μ)/σ + W_b c``, with W_g and W_b zero at the
    start, so an untrained layer is a plain LayerNorm (the construction of
    Su, 2019, used for type-conditioned encoders: one set of encoder
    features, modulated per condition). x (N, T, H) and c (K, C) give
    (N, K, T, H): every row of x under every condition.
    """

    def __init__(self, width: int, cond_width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gain = torch.nn.Linear(cond_width, width, bias=False)
        self.bias = torch.nn.Linear(cond_width, width, bias=False)
        torch.nn.init.zeros_(self.gain.weight)
        torch.nn.init.zeros_(self.bias.weight)

    def forward(self, X: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mean = X.mean(dim=-1, keepdim=True)
        var = X.var(dim=-1, keepdim=True, unbiased=False)
        normed = (X - mean) / torch.sqrt(var + self.eps)
        if normed.dim() == 3:
            normed = normed[:, None]  # (N, 1, T, H): one encoding for every condition
        gain = 1.0 + self.gain(cond)  # (K, H)
        bias = self.bias(cond)
        return normed * gain[None, :, None, :] + bias[None, :, None, :]


class Biaffine(torch.nn.Module):
    """Scores of (start, end) token pairs, ``r = h_sᵀ U h_e + W(h_s ⊕ h_e) + b``
    (Dozat & Manning, 2017; Yu et al., 2020 for NER), one score per class.

    Only spans of at most ``max_length`` tokens are scored, as a band:
    ``scores[n, i, l]`` is the span from token i to token i + l (inclusive),
    so memory is (N, T, max_length, C) rather than (N, T, T, C). Band cells
    past the end of the row are left for the caller to mask.
    """

    def __init__(self, width: int, n_classes: int) -> None:
        super().__init__()
        self.U = torch.nn.Parameter(torch.empty(n_classes, width, width))
        torch.nn.init.xavier_uniform_(self.U)
        self.W = torch.nn.Linear(2 * width, n_classes)

    def forward(
        self, starts: torch.Tensor, ends: torch.Tensor, max_length: int, block: int = 128
    ) -> torch.Tensor:
        N, T, D = starts.shape
        C = self.U.shape[0]
        L = max(1, min(max_length, T))
        R = max(1, min(block, T))  # rows per block
        n_blocks = -(-T // R)
        W = R + L - 1  # the ends one block of starts can reach
        w_start, w_end = self.W.weight[:, :D], self.W.weight[:, D:]
        # Starts in blocks of R rows, each against its window of W ends, all
        # blocks in one einsum: memory (N, T, C, W) instead of (N, T, C, T),
        # and one strided view each (no per-block slicing: the backward of
        # every slice of a big tensor would allocate the whole tensor again).
        pad_rows = n_blocks * R - T
        sU = starts @ self.U.permute(1, 0, 2).reshape(D, C * D)  # (N, T, C·D)
        sU = torch.nn.functional.pad(sU, (0, 0, 0, pad_rows)).view(N, n_blocks, R, C, D)
        lin_start = torch.nn.functional.pad(starts @ w_start.T + self.W.bias, (0, 0, 0, pad_rows))
        ends = torch.nn.functional.pad(ends, (0, 0, 0, pad_rows + L - 1))  # zero rows past the end
        ends_win = ends.unfold(1, W, R)  # (N, n_blocks, D, W)
        lin_end_win = (ends @ w_end.T).unfold(1, W, R)  # (N, n_blocks, C, W)
        scores = torch.einsum("nbrcd,nbdw->nbrcw", sU, ends_win) + lin_end_win[:, :, None]
        scores = scores.contiguous()
        sN, sB, sR, sC, sW = scores.stride()
        # band[n, b, i, c, l] = scores[n, b, i, c, i + l]
        band = scores.as_strided((N, n_blocks, R, C, L), (sN, sB, sR + sW, sC, sW))
        band = band.reshape(N, n_blocks * R, C, L) + lin_start[..., None]
        return band[:, :T].permute(0, 1, 3, 2)  # (N, T, L, C)


class LossWeights(torch.nn.Module):
    """How two task losses are combined, with two learnable numbers.

    * "paper" (MRC-MTL-MS): ``α·L1 + β·L2`` with ``(α, β) = softmax(w)``,
      so both are positive and sum to 1, 0.5 each at the start. The
      gradient of w is ``α(L1 - total)`` for w₁: it moves weight onto the
      *smaller* loss, so with nothing to hold it, one task's weight tends
      to 1 and the other's to 0.
    * "uncertainty" (Kendall et al., 2018, homoscedastic uncertainty):
      ``Σᵢ exp(-sᵢ)·Lᵢ + sᵢ``, sᵢ = log σᵢ² learned. The regularizer sᵢ
      stops a weight from vanishing: the optimum is exp(-sᵢ) = 1/Lᵢ, so
      each task is scaled by its own loss level, not zeroed.
    * "fixed": ``α·L1 + β·L2`` with α and β from the config.

    `weights` returns the effective (α, β) of the current parameters.
    """

    def __init__(self, mode: str = "paper", alpha: float = 0.5, beta: float = 0.5) -> None:
        super().__init__()
        if mode not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, not {mode!r}")
        if alpha < 0 or beta < 0 or alpha + beta <= 0:
            raise ValueError(f"alpha and beta must be >= 0 with a positive sum, not {alpha}, {beta}")
        self.mode = mode
        self.fixed = (float(alpha), float(beta))
        self.w = torch.nn.Parameter(torch.zeros(2))

    def combine(self, w: torch.Tensor, loss1: torch.Tensor, loss2: torch.Tensor) -> torch.Tensor:
        """The combined loss, from the parameter values `w` (the module's own,
        or a leaf copy that a pipe differentiates)."""
        if self.mode == "fixed":
            return self.fixed[0] * loss1 + self.fixed[1] * loss2
        if self.mode == "paper":
            a, b = torch.softmax(w, dim=0)
            return a * loss1 + b * loss2
        return torch.exp(-w[0]) * loss1 + w[0] + torch.exp(-w[1]) * loss2 + w[1]

    def weights(self, w: torch.Tensor) -> Tuple[float, float]:
        if self.mode == "fixed":
            return self.fixed
        if self.mode == "paper":
            a, b = torch.softmax(w.detach(), dim=0).tolist()
            return a, b
        a, b = torch.exp(-w.detach()).tolist()
        return a, b

    def describe(self, w: torch.Tensor) -> Dict[str, float]:
        alpha, beta = self.weights(w)
        out = {"alpha": alpha, "beta": beta}
        if self.mode == "uncertainty":
            out.update({"log_var_crf": float(w[0]), "log_var_biaffine": float(w[1])})
        return out


def pooled_mean(X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of each row's first ``lengths`` vectors: (N, T, H) -> (N, H)."""
    mask = length_mask(lengths, X.shape[1]).to(X.dtype)[..., None]
    return (X * mask).sum(1) / mask.sum(1).clamp(min=1.0)


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
