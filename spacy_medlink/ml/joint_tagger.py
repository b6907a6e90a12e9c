"""medlink.JointTagger.v1: NER and normalization as two tagging heads with explicit feedback.

Zhao et al. (AAAI 2019), "A neural multi-task learning framework to jointly
model medical named entity recognition and normalization". One encoder (a
spaCy tok2vec, then an optional BiLSTM; the paper: char CNN + words + a
3-layer BiLSTM) gives each token a vector ``v``. Two heads tag every token:

* MER: entity boundaries and types (BIO or BILUO tags), optionally with a CRF;
* MEN: the token's concept (one tag per concept ID seen in training, plus nil).

Each head reads the other's prediction (explicit feedback)::

    v_MER = v ∘ (v + y_MEN·U)        v_MEN = v ∘ (v + y_MER·V)

with ∘ concatenation, ``y_*`` the other head's softmax distribution and U, V
learned. ``feedback`` picks the arrows for the paper's ablation: "none",
"mer" (MER → MEN only), "men" (MEN → MER only), "both".

Breaking the cycle ("both"): each head needs the other's output first. We
compute a first guess y⁰ of both distributions, then the final heads with
feedback from y⁰. ``feedback_init`` says where y⁰ comes from:

* "uniform" (default): the paper's start. Both heads run once with feedback
  from a uniform distribution (which carries no information, only the mean
  row of U or V as a bias), giving y⁰; then the *same* heads run again with
  feedback from y⁰. No extra parameters, and the heads learn to read an
  informative as well as an uninformative partner, which is the paper's
  iterated-update view cut at two rounds.
* "first_pass": separate linear heads over ``v`` alone give y⁰ (a first pass
  of both tasks without feedback), then the feedback heads.

Both first-guess heads are trained too (weight ``aux_weight`` in the pipe's
loss), so that y⁰ means what the feedback assumes it means. Gradients flow
through the feedback, as in the paper (end-to-end training).

How thinc and torch meet: the torch module returns *scores*, not a loss: MER
emissions, MEN logits, the first-guess logits and, with the CRF, its
(constrained) start/transition/end scores. The pipe's ``get_loss`` rebuilds
them as leaf tensors, computes the joint loss in torch (`joint_loss`, CRF NLL
included), calls ``backward()`` there and hands the leaf gradients to the
model's backprop, which feeds them to ``torch.autograd.backward`` on the real
outputs. So spaCy's usual ``begin_update → get_loss → backprop`` loop holds,
the loss math lives here in torch, and the CRF parameters get their gradient
through the transition scores they output (a CRF's scores are emissions *and*
transitions; decoding needs both, which is why the model outputs them).

The torch module (`ml/joint_module.py`) is wrapped by `wrap_torch_module` (PyTorchWrapper_v3 whose
shim also applies the optimizer's weight averages; msgpack weights, no pickle). This
module imports torch only inside the functions that use it (`torch_utils`).
"""
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, chain, torch2xp, xp2torch
from thinc.types import Floats2d

from ..torch_utils import require_torch
from .scores import JointScores

if TYPE_CHECKING:
    import torch

    from .crf import Constraints

FEEDBACK = ("none", "mer", "men", "both")
FEEDBACK_INIT = ("uniform", "first_pass")
# the name of `medlink.JointEnsemble.v1` models (ml/joint_ensemble.py): k joint taggers in one
JOINT_ENSEMBLE = "medlink_joint_ensemble"


_DIFFERENTIABLE = ("mer", "men", "mer_aux", "men_aux", "start", "transitions", "end")


@registry.architectures("medlink.JointTagger.v1")
def build_joint_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lstm_width: int = 256,
    lstm_depth: int = 1,
    dropout: float = 0.2,
    feedback: str = "both",
    feedback_init: str = "uniform",
    use_crf: bool = True,
) -> Model[List[Doc], JointScores]:
    """Shared encoder, MER and MEN heads with explicit feedback, optional CRF.

    tok2vec: token vectors (a Tok2Vec, or a listener of a tok2vec/transformer).
    lstm_width (int): BiLSTM output width (both directions; even).
    lstm_depth (int): BiLSTM layers over the tok2vec output; 0 = none.
    dropout (float): on the BiLSTM's input and output (the paper's placement).
    feedback (str): "none", "mer" (MER → MEN), "men" (MEN → MER) or "both".
    feedback_init (str): "uniform" or "first_pass", how the cycle of "both" starts.
    use_crf (bool): a linear-chain CRF over the MER tags (else softmax).

    The label spaces are set by the pipe (`set_joint_labels`) before
    initialization or deserialization: the torch module is built then.
    """
    require_torch("medlink.JointTagger.v1")
    if feedback not in FEEDBACK:
        raise ValueError(f"feedback must be one of {FEEDBACK}, not {feedback!r}")
    if feedback_init not in FEEDBACK_INIT:
        raise ValueError(f"feedback_init must be one of {FEEDBACK_INIT}, not {feedback_init!r}")
    if lstm_depth and lstm_width % 2:
        raise ValueError(f"lstm_width must be even (two directions), not {lstm_width}")
    heads: Model = Model(
        "medlink_joint_heads",
        _heads_forward,
        init=_heads_init,
        dims={"nI": tok2vec.maybe_get_dim("nO")},
        attrs={
            "lstm_width": lstm_width,
            "lstm_depth": lstm_depth,
            "dropout": dropout,
            "feedback": feedback,
            "feedback_init": feedback_init,
            "use_crf": use_crf,
            # set by set_joint_labels
            "mer_tags": None,
            "tag_scheme": None,
            "n_concepts": None,
        },
    )
    model = chain(tok2vec, heads)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("heads", heads)
    return model


def set_joint_labels(model: Model, mer_tags: Sequence[str], tag_scheme: str, n_concepts: int) -> None:
    """Give the heads their label spaces and (re)build the torch module.

    mer_tags: MER tag names ("O", "B-Disease", ...), in output order.
    tag_scheme: "BIO" or "BILUO", for the CRF constraints.
    n_concepts: concept tags, nil excluded (the MEN head has n_concepts + 1 outputs).
    """
    from .crf import transition_constraints

    transition_constraints(mer_tags, tag_scheme)  # validates the tags
    for member in joint_members(model):
        heads = member.get_ref("heads")
        heads.attrs["mer_tags"] = list(mer_tags)
        heads.attrs["tag_scheme"] = tag_scheme
        heads.attrs["n_concepts"] = int(n_concepts)
        if heads.has_dim("nI"):
            _build(heads)


def joint_members(model: Model) -> List[Model]:
    """The joint taggers in `model`: an ensemble's members, or [model]."""
    return list(model.layers) if model.name == JOINT_ENSEMBLE else [model]


def mer_constraints(model: Model) -> "Constraints":
    from .crf import transition_constraints

    heads = model.get_ref("heads")
    return transition_constraints(heads.attrs["mer_tags"], heads.attrs["tag_scheme"])


def _heads_init(model: Model, X: Optional[List[Floats2d]] = None, Y: Any = None) -> None:
    if not model.has_dim("nI") and X:
        model.set_dim("nI", X[0].shape[1])
    if not model.layers:
        _build(model)


def _heads_forward(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[JointScores, Callable]:
    if not model.layers:
        raise ValueError("medlink_joint_heads: no labels yet; the pipe calls set_joint_labels first")
    return model.layers[0](X, is_train)


def _build(heads: Model) -> None:
    from .crf import transition_constraints
    from .joint_module import JointTaggerModule
    from .torch_wrapper import wrap_torch_module

    attrs = heads.attrs
    if attrs["mer_tags"] is None:
        raise ValueError("medlink_joint_heads: set_joint_labels must be called before initialization")
    module = JointTaggerModule(
        heads.get_dim("nI"),
        n_tags=len(attrs["mer_tags"]),
        n_concepts=attrs["n_concepts"] + 1,
        lstm_width=attrs["lstm_width"],
        lstm_depth=attrs["lstm_depth"],
        dropout=attrs["dropout"],
        feedback=attrs["feedback"],
        feedback_init=attrs["feedback_init"],
        constraints=transition_constraints(attrs["mer_tags"], attrs["tag_scheme"]),
        use_crf=attrs["use_crf"],
        outside=attrs["mer_tags"].index("O"),
    )
    wrapped = wrap_torch_module(module, convert_inputs=convert_inputs, convert_outputs=_convert_outputs)
    heads.layers[:] = [wrapped]


# -- thinc <-> torch ------------------------------------------------------------
def convert_inputs(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """List of (n_tokens, nI) arrays -> padded (B, T, nI) tensor and lengths (also run
    by `medlink.JointEnsemble.v1` on each member)."""
    import torch

    lengths = [len(x) for x in X]
    width = model.get_dim("nI") if model.has_dim("nI") else (X[0].shape[1] if X else 0)
    padded = model.ops.alloc3f(len(X), max(lengths, default=0), width)
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
    device = model.shims[0].device
    Xt = xp2torch(padded, requires_grad=is_train, device=device)
    Lt = torch.tensor(lengths, dtype=torch.long)

    def reverse(dXt: ArgsKwargs) -> List[Floats2d]:
        grad = dXt.args[0]
        if grad is None:
            return [model.ops.alloc2f(n, width) for n in lengths]
        dX = torch2xp(grad, ops=model.ops)
        return [dX[i, :n] for i, n in enumerate(lengths)]

    return ArgsKwargs(args=(Xt, Lt), kwargs={}), reverse


def _convert_outputs(model: Model, X_Yt: Tuple[List[Floats2d], tuple], is_train: bool) -> Tuple[JointScores, Callable]:
    from .torch_wrapper import backward_args

    X, outputs = X_Yt
    lengths = model.ops.asarray1i([len(x) for x in X])
    arrays = [None if t is None else torch2xp(t, ops=model.ops) for t in outputs]
    paths, men_probs, men_rows = arrays[7:]
    scores = JointScores(*arrays[:7], lengths=lengths, paths=paths, men_probs=men_probs, men_rows=men_rows)

    return scores, lambda d_scores: backward_args(outputs, d_scores, _DIFFERENTIABLE)


# -- loss and decoding (run by the pipe on JointScores) --------------------------
def joint_loss(
    scores: JointScores,
    mer_gold: "torch.Tensor",
    men_gold: "torch.Tensor",
    *,
    men_weight: float = 1.0,
    aux_weight: float = 1.0,
    mer_candidates: Optional["torch.Tensor"] = None,
) -> "torch.Tensor":
    """Joint loss per token: MER (CRF NLL or cross-entropy) + men_weight · MEN CE.

    scores: torch tensors. mer_gold, men_gold: (B, T) gold tag indices, -1
    where unknown (padding, misaligned or unannotated tokens, a mention
    without concept ID for MEN). With a CRF, an unknown MER tag is summed over
    (partial-label NLL) rather than dropped. The first guesses of a feedback
    cycle add aux_weight · (MER CE + men_weight · MEN CE). mer_candidates
    (B, T, n_tags) bool: the tags an unknown token may have, where a corpus
    annotates some types only (see `crf.partial_nll`).
    """
    import torch

    from .crf import partial_nll
    from .layers import length_mask

    lengths = scores.lengths
    B, T, n_tags = scores.mer.shape
    mask = length_mask(lengths, T)
    n_tokens = mask.sum().clamp(min=1)

    def ce(logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=-1, reduction="sum"
        )

    if scores.transitions is not None:
        loss = partial_nll(
            scores.mer, mask, scores.start, scores.transitions, scores.end, mer_gold, mer_candidates
        ).sum()
    else:
        loss = ce(scores.mer, mer_gold)
    loss = loss + men_weight * ce(scores.men, men_gold)
    if scores.mer_aux is not None:
        loss = loss + aux_weight * (ce(scores.mer_aux, mer_gold) + men_weight * ce(scores.men_aux, men_gold))
    return loss / n_tokens


def joint_loss_and_gradient(
    scores: JointScores, mer_gold: numpy.ndarray, men_gold: numpy.ndarray, *, men_weight: float, aux_weight: float,
    mer_candidates: Optional[numpy.ndarray] = None,
) -> Tuple[float, JointScores]:
    """`joint_loss` on leaf copies of the model's outputs, and their gradients."""
    import torch

    from .torch_wrapper import loss_on_leaves

    def loss_fn(t_scores: JointScores) -> torch.Tensor:
        device = t_scores.mer.device
        return joint_loss(
            t_scores._replace(lengths=t_scores.lengths.long()),
            torch.as_tensor(mer_gold, dtype=torch.long, device=device),
            torch.as_tensor(men_gold, dtype=torch.long, device=device),
            men_weight=men_weight,
            aux_weight=aux_weight,
            mer_candidates=None if mer_candidates is None else torch.as_tensor(mer_candidates, device=device),
        )

    loss, grads = loss_on_leaves(scores, _DIFFERENTIABLE, loss_fn)
    return float(loss.item()), grads


def decode_mer(scores: JointScores, constraints: "Constraints") -> List[List[int]]:
    """Best valid MER tag path per doc: Viterbi over the CRF, or, without a
    CRF, over the softmax log-probabilities with the constraints only (the
    most probable valid sequence, rather than argmax plus repair). Scores
    from `model.predict` carry the paths already (the module decodes)."""
    if scores.paths is not None:
        paths = scores.paths
        return [[int(t) for t in paths[b, :n]] for b, n in enumerate(scores.lengths.tolist())]
    import torch

    from .crf import viterbi
    from .layers import length_mask

    mer = xp2torch(scores.mer)
    lengths = xp2torch(scores.lengths).long()
    mask = length_mask(lengths, mer.shape[1])
    if scores.transitions is not None:
        start, transitions, end = (xp2torch(a) for a in (scores.start, scores.transitions, scores.end))
    else:
        mer = torch.log_softmax(mer, dim=-1)
        n = mer.shape[-1]
        start, transitions, end = mer.new_zeros(n), mer.new_zeros(n, n), mer.new_zeros(n)
    return viterbi(mer, mask, start, transitions, end, constraints=constraints)
