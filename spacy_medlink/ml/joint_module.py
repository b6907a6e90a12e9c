"""The joint tagger's torch side (`medlink.JointTagger.v1`, ml/joint_tagger.py):
the module (BiLSTM encoder, MER and MEN heads with feedback, CRF scores) and
its inference, which an ensemble of modules shares (ml/joint_ensemble.py)."""
from typing import Callable, Optional, Sequence, Tuple

import torch

from .crf import Constraints, viterbi
from .layers import PackedBiLSTM


class JointTaggerModule(torch.nn.Module):
    """The torch part: BiLSTM encoder, MER/MEN heads with feedback, CRF scores."""

    def __init__(
        self,
        nI: int,
        *,
        n_tags: int,
        n_concepts: int,
        lstm_width: int,
        lstm_depth: int,
        dropout: float,
        feedback: str,
        feedback_init: str,
        constraints: Constraints,
        use_crf: bool,
        outside: int,
    ) -> None:
        super().__init__()
        from .crf import CRF

        self.constraints = constraints
        self.outside = outside
        self.feedback = feedback
        self.feedback_init = feedback_init
        self.drop = torch.nn.Dropout(dropout)
        self.lstm = PackedBiLSTM(nI, lstm_width, lstm_depth, dropout) if lstm_depth else None
        H = lstm_width if lstm_depth else nI
        into_mer = feedback in ("men", "both")  # MER reads y_MEN
        into_men = feedback in ("mer", "both")  # MEN reads y_MER
        self.mer_out = torch.nn.Linear(2 * H if into_mer else H, n_tags)
        self.men_out = torch.nn.Linear(2 * H if into_men else H, n_concepts)
        self.U = torch.nn.Linear(n_concepts, H, bias=False) if into_mer else None
        self.V = torch.nn.Linear(n_tags, H, bias=False) if into_men else None
        first_pass = feedback == "both" and feedback_init == "first_pass"
        self.mer_first = torch.nn.Linear(H, n_tags) if first_pass else None
        self.men_first = torch.nn.Linear(H, n_concepts) if first_pass else None
        self.crf = CRF(n_tags, constraints) if use_crf else None

    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        X = self.drop(X)
        if self.lstm is not None:
            X = self.drop(self.lstm(X, lengths))
        return X

    @staticmethod
    def _feed(v: torch.Tensor, logits: Optional[torch.Tensor], proj: torch.nn.Linear) -> torch.Tensor:
        """v ∘ (v + y·W), y = softmax(logits), or uniform when logits is None."""
        if logits is None:
            fed = proj.weight.mean(dim=1)  # uniform y: the mean row of W
        else:
            fed = proj(torch.softmax(logits, dim=-1))
        return torch.cat([v, v + fed], dim=-1)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        padded = self.encode(X, lengths)
        # The heads run on the real tokens only, not on the batch's padding: in
        # a batch of abstracts padded to the longest, most positions can be
        # padding, and the MEN head (thousands of concepts) dominates the cost.
        mask, unpad = token_mask(padded, lengths)
        v = padded[mask]  # (n_tokens, H)
        if not self.training:
            return infer_joint([self], [v], mask, unpad)
        start = transitions = end = None
        if self.crf is not None:
            start, transitions, end = self.crf()
        mer, men, mer_aux, men_aux = self._heads(v)
        return unpad(mer), unpad(men), unpad(mer_aux), unpad(men_aux), start, transitions, end, None, None, None

    def _first_guess(self, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """y⁰ of the "both" cycle: (mer_aux, men_aux) logits."""
        if self.mer_first is not None:
            return self.mer_first(v), self.men_first(v)
        return self.mer_out(self._feed(v, None, self.U)), self.men_out(self._feed(v, None, self.V))

    def _heads(self, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(mer, men, mer_aux, men_aux) logits for token vectors v (..., H)."""
        mer, men_direct, mer_aux, men_aux = self._mer_head(v)
        return mer, self._men_head(v, mer, men_direct, mer_aux), mer_aux, men_aux

    def _mer_head(self, v: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """(mer, men_direct, mer_aux, men_aux): MER logits and what it took to
        get them: the MEN logits with feedback "men" (MER reads them), the
        first guesses with "both"."""
        if self.feedback in ("none", "mer"):
            return self.mer_out(v), None, None, None
        if self.feedback == "men":
            men = self.men_out(v)
            return self.mer_out(self._feed(v, men, self.U)), men, None, None
        mer_aux, men_aux = self._first_guess(v)
        return self.mer_out(self._feed(v, men_aux, self.U)), None, mer_aux, men_aux

    def _men_head(self, v: torch.Tensor, mer: torch.Tensor, men_direct: Optional[torch.Tensor],
                  mer_aux: Optional[torch.Tensor]) -> torch.Tensor:
        """Final MEN logits for the rows of v (the other arguments: the same rows)."""
        if self.feedback == "none":
            return self.men_out(v)
        if self.feedback == "mer":
            return self.men_out(self._feed(v, mer, self.V))
        if self.feedback == "men":
            return men_direct
        return self.men_out(self._feed(v, mer_aux, self.V))


def token_mask(padded: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, Callable]:
    """(B, T) mask of the real tokens of a padded batch, and the function that
    puts (n_tokens, ...) rows back in (B, T, ...) shape (`fill` elsewhere)."""
    B, T = padded.shape[:2]
    mask = torch.arange(T, device=padded.device)[None, :] < lengths.to(padded.device)[:, None]

    def unpad(flat: Optional[torch.Tensor], fill: float = 0) -> Optional[torch.Tensor]:
        if flat is None:
            return None
        out = flat.new_full((B, T) + flat.shape[1:], fill)
        out[mask] = flat
        return out

    return mask, unpad


def infer_joint(modules: Sequence[JointTaggerModule], vs: Sequence[torch.Tensor], mask: torch.Tensor,
                unpad: Callable) -> Tuple[Optional[torch.Tensor], ...]:
    """Inference of one joint tagger, or of an ensemble's members (their encoded
    tokens `vs`, same docs): MER is decoded first, from the members' mean
    emissions and mean CRF scores (without a CRF, from the mean tag
    probabilities), then each member's final MEN head runs on the tokens of the
    predicted spans only (about one token in seven in abstracts; the largest
    layer) and their probabilities are averaged. The same predictions as scoring
    every token; first guesses are computed only where MER needs them."""
    first = modules[0]
    mer_heads = [m._mer_head(v) for m, v in zip(modules, vs)]
    mers = [unpad(h[0]) for h in mer_heads]
    if first.crf is None:
        if len(modules) == 1:
            emissions = torch.log_softmax(mers[0], dim=-1)
        else:
            emissions = torch.log(_mean([torch.softmax(m, dim=-1) for m in mers]))
        n = emissions.shape[-1]
        start, transitions, end = emissions.new_zeros(n), emissions.new_zeros(n, n), emissions.new_zeros(n)
    else:
        crfs = [m.crf() for m in modules]
        start, transitions, end = (_mean([c[i] for c in crfs]) for i in range(3))
        emissions = _mean(mers)
    paths = viterbi(emissions, mask, start, transitions, end, constraints=first.constraints)
    flat = torch.as_tensor([t for path in paths for t in path], dtype=torch.long, device=vs[0].device)
    inside = flat != first.outside
    rows_of = lambda t: None if t is None else t[inside]  # noqa: E731
    men_probs = _mean([torch.softmax(m._men_head(v[inside], rows_of(h[0]), rows_of(h[1]), rows_of(h[2])), dim=-1)
                       for m, v, h in zip(modules, vs, mer_heads)])
    rows = torch.full_like(flat, -1)
    rows[inside] = torch.arange(int(inside.sum()), device=vs[0].device)
    return (_mean(mers), None, None, None, start, transitions, end, unpad(flat, -1), men_probs, unpad(rows, -1))


def _mean(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The elementwise mean; one tensor is returned as it is (bit for bit)."""
    return tensors[0] if len(tensors) == 1 else torch.stack(list(tensors)).mean(dim=0)
