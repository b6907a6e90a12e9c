"""Linear-chain CRF over BIO/BILUO tags, with transition constraints, in torch.

Why our own: `pytorch-crf` (0.7.2, the maintained one on PyPI) has no way to
forbid transitions or start/end tags, rejects empty sequences, and needs a
complete gold sequence. Here:

* invalid moves (``O -> I-X``, ``B-X -> I-Y``, BILUO ``B-X -> O``, a sequence
  starting with ``I-X`` or ending with ``B-X``...) get a score of ``NEG``, so
  the CRF can neither learn nor output them; `viterbi` also takes the boolean
  constraints and decodes under ``-inf``, so its output is valid whatever the
  emission scores are;
* the NLL takes a per-token set of allowed gold tags rather than one tag, so a
  token without gold (misaligned tokenization, missing annotation) is
  marginalized over instead of dropped: ``NLL = log Z - log Z(allowed)``
  (partial-label CRF; with one allowed tag per token it is the usual NLL).

The scoring functions are plain functions of (emissions, start, transitions,
end) so that a pipe can run them on a model's outputs (see
``spacy_medlink.ml.joint_tagger``); `CRF` holds the learned scores and masks.
Shapes: emissions (B, T, n), mask (B, T) bool, a prefix of True per row.
"""
from typing import List, Optional, Sequence, Tuple

import numpy
import torch

NEG = -10000.0
"""Score of a forbidden move: finite, so log-sum-exp never sees all -inf."""

Constraints = Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]


def transition_constraints(tags: Sequence[str], scheme: str) -> Constraints:
    """Allowed (start, transitions, end) for tags named ``O`` and ``{B,I,L,U}-LABEL``.

    scheme: "BIO" (I-X after B-X or I-X only) or "BILUO" (B/I-X continue with
    I-X or L-X; O, L-X and U-X are followed by O, B-Y or U-Y; a sequence starts
    like after O and ends like before O).
    """
    if scheme not in ("BIO", "BILUO"):
        raise ValueError(f"Unknown tag scheme {scheme!r} (expected 'BIO' or 'BILUO')")
    parsed = []
    for tag in tags:
        if tag == "O":
            parsed.append(("O", ""))
            continue
        move, _, label = tag.partition("-")
        if not label or move not in ("BI" if scheme == "BIO" else "BILU"):
            raise ValueError(f"Tag {tag!r} is not a {scheme} tag")
        parsed.append((move, label))
    n = len(parsed)
    trans = numpy.zeros((n, n), dtype=bool)
    if scheme == "BIO":
        continues = [move == "I" for move, _ in parsed]  # needs an open entity
        for i, (m_i, l_i) in enumerate(parsed):
            for j, (m_j, l_j) in enumerate(parsed):
                trans[i, j] = not continues[j] or (m_i in ("B", "I") and l_i == l_j)
        start = ~numpy.asarray(continues, dtype=bool)
        end = numpy.ones(n, dtype=bool)
    else:
        inside = [move in ("B", "I") for move, _ in parsed]  # an entity is open after it
        continues = [move in ("I", "L") for move, _ in parsed]  # needs an open entity
        for i, (m_i, l_i) in enumerate(parsed):
            for j, (m_j, l_j) in enumerate(parsed):
                if inside[i]:
                    trans[i, j] = continues[j] and l_i == l_j
                else:
                    trans[i, j] = not continues[j]
        start = ~numpy.asarray(continues, dtype=bool)
        end = ~numpy.asarray(inside, dtype=bool)
    return start, trans, end


def is_valid(path: Sequence[int], constraints: Constraints) -> bool:
    start, trans, end = constraints
    if not len(path):
        return True
    if not start[path[0]] or not end[path[-1]]:
        return False
    return all(trans[a, b] for a, b in zip(path[:-1], path[1:]))


def log_partition(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
    allowed: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """log Z per sequence (B,), by the forward algorithm; 0 for empty sequences.

    allowed (B, T, n) bool: restrict the sum to paths through allowed tags.

    The forward recursion is a product of (n, n) matrices in the log semiring,
    ``alpha_T = alpha_0 ⊗ M_1 ⊗ … ⊗ M_{T-1}`` with ``M_t = transitions +
    emissions_t``, and that product is associative: we multiply neighbours
    pairwise, so a document of T tokens costs log2(T) batched steps instead of
    T small ones (a 300-token abstract: 9 instead of 299, for the loss and its
    backward pass alike). Padding positions are the semiring identity.
    """
    if allowed is not None:
        emissions = emissions.masked_fill(~allowed, NEG)
    B, T, n = emissions.shape
    if T == 0:
        return emissions.new_zeros(B)
    alpha = start.unsqueeze(0) + emissions[:, 0]  # (B, n)
    if T > 1:
        steps = transitions.view(1, 1, n, n) + emissions[:, 1:].unsqueeze(2)  # (B, T-1, n, n)
        eye = torch.full((n, n), NEG, dtype=emissions.dtype, device=emissions.device)
        eye.fill_diagonal_(0.0)
        steps = torch.where(mask[:, 1:, None, None], steps, eye)
        while steps.shape[1] > 1:
            if steps.shape[1] % 2:
                steps = torch.cat([steps, eye.expand(B, 1, n, n)], dim=1)
            left, right = steps[:, 0::2], steps[:, 1::2]
            steps = torch.logsumexp(left.unsqueeze(-1) + right.unsqueeze(-3), dim=-2)
        alpha = torch.logsumexp(alpha.unsqueeze(2) + steps[:, 0], dim=1)
    logz = torch.logsumexp(alpha + end.unsqueeze(0), dim=1)
    return torch.where(mask[:, 0], logz, torch.zeros_like(logz))


def nll(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
    allowed: torch.Tensor,
) -> torch.Tensor:
    """Negative log-likelihood per sequence (B,) of the paths through `allowed` tags."""
    return log_partition(emissions, mask, start, transitions, end) - log_partition(
        emissions, mask, start, transitions, end, allowed
    )


def partial_nll(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
    gold: torch.Tensor,
    candidates: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Negative log-likelihood per sequence (B,) of gold tags (B, T), where a
    -1 tag (unknown: a token the gold does not align to) is summed over, the
    partial-label CRF; padding is left out by `mask`.

    candidates (B, T, n) bool: for an unknown token, the tags it may have when
    the gold narrows them without fixing one (a corpus that annotates only
    diseases: "outside, or any chemical tag"); a row with none set means any.
    """
    known = gold >= 0
    free = ~known[..., None]
    if candidates is not None:
        free = free & torch.where(candidates.any(-1, keepdim=True), candidates, torch.ones_like(candidates))
    allowed = torch.nn.functional.one_hot(gold.clamp(min=0), emissions.shape[-1]).bool() | free
    return nll(emissions, mask, start, transitions, end, allowed)


def viterbi(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
    constraints: Optional[Constraints] = None,
) -> List[List[int]]:
    """Best tag path per sequence, of the length given by `mask`.

    With `constraints`, forbidden moves score -inf here (not NEG), so no
    emission score, however large, can make the path invalid.
    """
    with torch.no_grad():
        if constraints is not None:
            c_start, c_trans, c_end = (torch.as_tensor(c, device=emissions.device) for c in constraints)
            inf = float("-inf")
            start = start.masked_fill(~c_start, inf)
            transitions = transitions.masked_fill(~c_trans, inf)
            end = end.masked_fill(~c_end, inf)
        B, T, n = emissions.shape
        lengths = mask.sum(1).tolist()
        if T == 0:
            return [[] for _ in range(B)]
        score = start.unsqueeze(0) + emissions[:, 0]
        history = []
        for t in range(1, T):
            best, idx = (score.unsqueeze(2) + transitions.unsqueeze(0)).max(dim=1)
            history.append(idx)
            score = torch.where(mask[:, t : t + 1], best + emissions[:, t], score)
        score = score + end.unsqueeze(0)
        last = score.argmax(dim=1).tolist()
        back = torch.stack(history, dim=1).cpu().numpy() if history else numpy.zeros((B, 0, n), dtype=int)
    paths = []
    for b in range(B):
        length = int(lengths[b])
        if length == 0:
            paths.append([])
            continue
        path = [last[b]]
        for t in range(length - 2, -1, -1):
            path.append(int(back[b, t, path[-1]]))
        paths.append(path[::-1])
    return paths


class CRF(torch.nn.Module):
    """Learned start, transition and end scores; forbidden ones pinned to NEG."""

    def __init__(self, n_tags: int, constraints: Optional[Constraints] = None) -> None:
        super().__init__()
        self.start = torch.nn.Parameter(torch.zeros(n_tags))
        self.transitions = torch.nn.Parameter(torch.zeros(n_tags, n_tags))
        self.end = torch.nn.Parameter(torch.zeros(n_tags))
        if constraints is None:
            constraints = (numpy.ones(n_tags, bool), numpy.ones((n_tags, n_tags), bool), numpy.ones(n_tags, bool))
        # Buffers, so that they follow the module across devices; not saved
        # (persistent=False): they are a function of the tag names.
        self.register_buffer("start_ok", torch.as_tensor(constraints[0]), persistent=False)
        self.register_buffer("transitions_ok", torch.as_tensor(constraints[1]), persistent=False)
        self.register_buffer("end_ok", torch.as_tensor(constraints[2]), persistent=False)

    @property
    def constraints(self) -> Constraints:
        return tuple(b.cpu().numpy() for b in (self.start_ok, self.transitions_ok, self.end_ok))  # type: ignore[return-value]

    def forward(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(start, transitions, end) with forbidden moves at NEG."""
        return (
            self.start.masked_fill(~self.start_ok, NEG),
            self.transitions.masked_fill(~self.transitions_ok, NEG),
            self.end.masked_fill(~self.end_ok, NEG),
        )

    def nll(self, emissions: torch.Tensor, mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        return nll(emissions, mask, *self(), allowed)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> List[List[int]]:
        return viterbi(emissions, mask, *self(), constraints=self.constraints)
