"""The torch side of medlink.HierLinker (`ml/hier_linker.py` has the method,
the builder and the thinc glue): the module with its task encoders and
decoders, and the loss the pipe computes on the scores it returns (`ml/scores.py`).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.training import iob_to_biluo
from spacy.training.iob_utils import tags_to_entities

from .crf import CRF, Constraints, partial_nll, transition_constraints, viterbi
from .layers import BiLSTM, ShortcutBiLSTM, length_mask, span_mean
from .scores import HierScores
from .torch_wrapper import loss_on_leaves

TASKS = ("MR", "ET", "EL")

# the fields that get gradients, in the module's return order
DIFFERENTIABLE = ("mr", "et", "el", "mr_start", "mr_transitions", "mr_end", "et_start", "et_transitions", "et_end")


class HierLinkerModule(torch.nn.Module):
    """Shared BiLSTM, the task encoders (hierarchical), the three decoders, CRFs."""

    def __init__(
        self,
        nI: int,
        *,
        mr_tags: Sequence[str],
        et_tags: Sequence[str],
        n_types: int,
        n_concepts: int,
        tag_scheme: str,
        architecture: str,
        setup: str,
        task: str,
        lstm_width: int,
        lstm_depth: int,
        task_width: int,
        task_depth: int,
        dropout: float,
        shared_loss: str,
        use_crf: bool,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.setup = setup
        self.shared_loss = shared_loss
        self.tasks = (task,) if architecture == "single" else TASKS
        self.mr_tags, self.et_tags = list(mr_tags), list(et_tags)
        self.tag_scheme = tag_scheme
        self.mr_constraints = transition_constraints(mr_tags, tag_scheme)
        self.et_constraints = transition_constraints(et_tags, tag_scheme)
        self.drop = torch.nn.Dropout(dropout)
        self.shared = BiLSTM(nI, lstm_width, lstm_depth, dropout) if lstm_depth else None
        H = lstm_width if lstm_depth else nI
        self.encoders = torch.nn.ModuleDict()
        if architecture == "hierarchical":
            lower = 0
            for name in TASKS:
                self.encoders[name] = ShortcutBiLSTM(H, lower, task_width, task_depth, dropout)
                lower = task_width
            H = task_width
        n_et = len(et_tags) if setup == "PT" else n_types
        # one LayerNorm per task on the decoder input (identity without)
        self.norms = torch.nn.ModuleDict(
            {name: torch.nn.LayerNorm(H) if layer_norm else torch.nn.Identity() for name in self.tasks}
        )
        self.mr_out = torch.nn.Linear(H, len(mr_tags)) if "MR" in self.tasks else None
        self.et_out = torch.nn.Linear(H, n_et) if "ET" in self.tasks else None
        self.el_out = torch.nn.Linear(H, n_concepts) if "EL" in self.tasks else None
        self.mr_crf = CRF(len(mr_tags), self.mr_constraints) if use_crf and self.mr_out is not None else None
        pt_et = use_crf and setup == "PT" and self.et_out is not None
        self.et_crf = CRF(len(et_tags), self.et_constraints) if pt_et else None

    def encode(self, X: torch.Tensor, lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Each task's decoder input (B, T, H): its encoding, layer-normalized."""
        shared = self.drop(X)
        if self.shared is not None:
            shared = self.drop(self.shared(shared, lengths))
        below_el = shared.detach() if self.shared_loss == "el" and self.training else shared
        inputs = {"MR": below_el, "ET": below_el, "EL": shared}
        out = dict(inputs)
        if self.encoders:
            lower = None
            for name in TASKS:
                lower = out[name] = self.drop(self.encoders[name](inputs[name], lower, lengths))
        return {name: self.norms[name](out[name]) for name in self.tasks}

    def el_logits(self, H: torch.Tensor, columns: Optional[torch.Tensor]) -> torch.Tensor:
        """EL logits over `columns` of the concept layer (all when None)."""
        assert self.el_out is not None
        if columns is None:
            return self.el_out(H)
        return torch.nn.functional.linear(H, self.el_out.weight[columns], self.el_out.bias[columns])

    def forward(
        self, X: torch.Tensor, lengths: torch.Tensor, spans: Optional[torch.Tensor] = None,
        columns: Optional[torch.Tensor] = None,
    ) -> Tuple[Optional[torch.Tensor], ...]:
        B, T = X.shape[:2]
        mask = length_mask(lengths, T)
        H = self.encode(X, lengths)
        crf_scores = tuple(crf() if crf is not None else (None, None, None) for crf in (self.mr_crf, self.et_crf))
        crf_flat = crf_scores[0] + crf_scores[1]
        if not self.training:
            return (None,) * 9 + self._infer(H, mask, lengths, crf_scores)
        mr = self.mr_out(H["MR"]) if self.mr_out is not None else None
        et = el = None
        if self.setup == "PT":
            if self.et_out is not None:
                et = self.et_out(H["ET"])
            if self.el_out is not None:
                flat = self.el_logits(H["EL"][mask], columns)  # real tokens only: EL is the widest layer
                el = flat.new_zeros((B, T, flat.shape[-1]))
                el[mask] = flat
        else:
            assert spans is not None, "PE training needs the gold spans"
            if self.et_out is not None:
                et = self.et_out(span_mean(H["ET"], spans))
            if self.el_out is not None:
                el = self.el_logits(span_mean(H["EL"], spans), columns)
        return (mr, et, el) + crf_flat + (None,) * 6

    def _infer(self, H, mask, lengths, crf_scores) -> Tuple[Optional[torch.Tensor], ...]:
        """(mr_paths, et_paths, spans, et_probs, el_probs, el_rows): decode the
        tags first, then run EL only where an entity was found."""
        B, T = mask.shape
        device = mask.device

        def decode(emissions: torch.Tensor, crf: Tuple, constraints: Constraints) -> List[List[int]]:
            if crf[0] is None:
                emissions = torch.log_softmax(emissions, dim=-1)
                n = emissions.shape[-1]
                crf = (emissions.new_zeros(n), emissions.new_zeros(n, n), emissions.new_zeros(n))
            return viterbi(emissions, mask, *crf, constraints=constraints)

        def padded(paths: List[List[int]]) -> torch.Tensor:
            out = torch.full((B, T), -1, dtype=torch.long, device=device)
            for b, path in enumerate(paths):
                out[b, : len(path)] = torch.as_tensor(path, dtype=torch.long)
            return out

        mr_paths = et_paths = spans = et_probs = el_probs = el_rows = None
        if self.mr_out is not None:
            mr_paths = decode(self.mr_out(H["MR"]), crf_scores[0], self.mr_constraints)
        if self.setup == "PE":
            rows = [(b, s, e) for b, path in enumerate(mr_paths or []) for s, e in path_spans(path, self.mr_tags, self.tag_scheme)]
            spans = torch.as_tensor(rows, dtype=torch.long, device=device).reshape(-1, 3)
            if self.et_out is not None:
                et_probs = torch.softmax(self.et_out(span_mean(H["ET"], spans)), dim=-1)
            if self.el_out is not None:
                el_probs = torch.softmax(self.el_out(span_mean(H["EL"], spans)), dim=-1)
        else:
            inside = None
            if self.et_out is not None:
                et_list = decode(self.et_out(H["ET"]), crf_scores[1], self.et_constraints)
                et_paths = padded(et_list)
                inside = (et_paths > 0) & mask  # tag 0 is "O"
            elif self.el_out is not None:
                inside = mask  # EL alone: every token, its runs are the mentions
            if self.el_out is not None and inside is not None:
                el_probs = torch.softmax(self.el_out(H["EL"][inside]), dim=-1)
                el_rows = torch.full((B, T), -1, dtype=torch.long, device=device)
                el_rows[inside] = torch.arange(int(inside.sum()), device=device)
        return (padded(mr_paths) if mr_paths is not None else None, et_paths, spans, et_probs, el_probs, el_rows)


def path_spans(path: Sequence[int], tags: Sequence[str], tag_scheme: str) -> List[Tuple[int, int]]:
    """(start, end) token spans, end exclusive, of a valid tag path."""
    names = [tags[t] for t in path]
    if tag_scheme == "BIO":
        names = iob_to_biluo(names)
    return [(start, end + 1) for _, start, end in tags_to_entities(names)]


def hier_loss(
    scores: HierScores,
    gold: Dict[str, torch.Tensor],
    *,
    nil_weight: float = 0.125,
    task_weights: Optional[Dict[str, float]] = None,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """(summed loss, per-task values) on torch tensors.

    gold: "mr" and, PT, "et" (B, T) tag indices; "el" (B, T) (PT) or (S,)
    (PE) indices into the EL columns; PE's "et" (S,) type indices; -1 =
    unknown (padding, misaligned tokens: summed over by a partial-label CRF,
    ignored by cross-entropy). EL's column 0 is nil (the pipe's columns
    start with concept 0), with the class weight `nil_weight`.
    """
    weights = task_weights or {}
    zero = next(s for s in (scores.mr, scores.et, scores.el) if s is not None).new_zeros(())
    total, parts = zero, {}

    def tags_loss(emissions, tag_gold, start, transitions, end) -> torch.Tensor:
        mask = length_mask(scores.lengths, emissions.shape[1])
        if start is None:
            return _ce(emissions, tag_gold)
        return partial_nll(emissions, mask, start, transitions, end, tag_gold).sum() / mask.sum().clamp(min=1)

    if scores.mr is not None:
        parts["MR"] = tags_loss(scores.mr, gold["mr"], scores.mr_start, scores.mr_transitions, scores.mr_end)
    if scores.et is not None:
        if scores.et.dim() == 3:
            parts["ET"] = tags_loss(scores.et, gold["et"], scores.et_start, scores.et_transitions, scores.et_end)
        else:
            parts["ET"] = _ce(scores.et, gold["et"])
    if scores.el is not None:
        class_weight = torch.ones(scores.el.shape[-1], dtype=scores.el.dtype, device=scores.el.device)
        class_weight[0] = nil_weight
        parts["EL"] = _ce(scores.el, gold["el"], class_weight)
    for name, value in parts.items():
        total = total + weights.get(name, 1.0) * value
    return total, {name: float(value.detach()) for name, value in parts.items()}


def _ce(logits: torch.Tensor, gold: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean (class-weighted) cross-entropy over the known targets; 0 if none."""
    gold = gold.reshape(-1)
    if logits.numel() == 0 or not bool((gold >= 0).any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold, weight=weight, ignore_index=-1)


def hier_loss_and_gradient(
    scores: HierScores, gold: Dict[str, numpy.ndarray], *, nil_weight: float, task_weights: Dict[str, float]
) -> Tuple[Tuple[float, Dict[str, float]], HierScores]:
    """`hier_loss` on leaf copies of the model's outputs, and their gradients."""

    def loss_fn(t_scores: HierScores):
        device = next(s for s in (t_scores.mr, t_scores.et, t_scores.el) if s is not None).device
        t_gold = {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in gold.items()}
        t_scores = t_scores._replace(lengths=t_scores.lengths.long())
        return hier_loss(t_scores, t_gold, nil_weight=nil_weight, task_weights=task_weights)

    (total, parts), grads = loss_on_leaves(scores, DIFFERENTIABLE, loss_fn)
    return (float(total.detach()), parts), grads._replace(lengths=scores.lengths)
