"""medlink.JointEnsemble.v1: k joint taggers in one component, their MER
emissions and CRF scores averaged before one decoding, their MEN
probabilities averaged on the decoded spans: an ensemble inside one component.

The members share one architecture (the `member` config, copied k times: a
`medlink.JointTagger.v1` with its own tok2vec, no listener) and one label and
concept set (fold members, which saw different concepts, are first given the
union's columns by `widen_concepts`); each is trained on its own (`spacy train`, a seed or a fold each)
and the ensemble is assembled from the trained pipelines by
``python -m spacy_medlink ensemble``. Inference is the joint tagger's own
(`joint_module.infer_joint`) over all members at once, so a one-member
ensemble would predict exactly what its member does. An ensemble is not
trained as a whole: its forward pass refuses training.
"""
from typing import Any, Callable, List, Sequence, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, torch2xp

from ..torch_utils import require_torch
from .joint_tagger import JOINT_ENSEMBLE, convert_inputs
from .nested_ensemble import copy_member
from .scores import JointScores


@registry.architectures("medlink.JointEnsemble.v1")
def build_joint_ensemble(member: Model[List[Doc], JointScores], n_members: int) -> Model[List[Doc], JointScores]:
    """member: a `medlink.JointTagger.v1` whose tok2vec is its own (not a
    listener), built n_members times. n_members (int): at least 2."""
    require_torch("medlink.JointEnsemble.v1")
    if n_members < 2:
        raise ValueError(f"an ensemble needs at least 2 members, not {n_members}")
    members = [member] + [copy_member(member) for _ in range(n_members - 1)]
    model = Model(JOINT_ENSEMBLE, _forward, init=_init, layers=members, attrs={"n_members": n_members})
    # what the pipe reads of its model (labels, nI, constraints) is the first member's
    model.set_ref("heads", member.get_ref("heads"))
    model.set_ref("tok2vec", member.get_ref("tok2vec"))
    return model


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    raise ValueError(
        "a medlink.JointEnsemble.v1 is assembled from trained members (python -m spacy_medlink ensemble), "
        "not initialized or trained as a whole"
    )


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[JointScores, Callable]:
    import torch

    from .joint_module import infer_joint, token_mask

    if is_train:
        _init(model)
    modules, vs = [], []
    mask = unpad = None
    for member in model.layers:
        wrapper = member.get_ref("heads").layers[0]
        module = wrapper.shims[0]._model
        inputs, _ = convert_inputs(wrapper, member.get_ref("tok2vec").predict(docs), False)
        X, lengths = inputs.args
        module.eval()
        with torch.no_grad():
            padded = module.encode(X, lengths)
        if mask is None:
            mask, unpad = token_mask(padded, lengths)
        modules.append(module)
        vs.append(padded[mask])
    with torch.no_grad():
        outputs = infer_joint(modules, vs, mask, unpad)
    ops = model.ops
    arrays = [None if t is None else torch2xp(t, ops=ops) for t in outputs]
    paths, men_probs, men_rows = arrays[7:]
    scores = JointScores(*arrays[:7], lengths=ops.asarray1i([len(doc) for doc in docs]), paths=paths,
                         men_probs=men_probs, men_rows=men_rows)
    return scores, _no_backprop


def _no_backprop(d_scores: Any) -> Any:
    raise ValueError("an ensemble has no backward pass")


# the bias of a concept column a member never saw: its probability is e^-30 of the others', so the member's
# predictions stay what they were; the ensemble's mean still divides by every member, so a concept that one
# of k members never saw scores at most (k - 1) / k (thresholds copied from one model assume all saw it)
UNSEEN_BIAS = -30.0


def widen_concepts(member: Model, old: Sequence[str], new: Sequence[str]) -> None:
    """Give a trained joint tagger the MEN columns of the concepts `new` (a superset of its
    concepts `old`, in any order): its trained columns move to their places, each new one gets
    zero weights and UNSEEN_BIAS; where MER reads the MEN probabilities (U), a new column gets
    the mean of the trained ones, so the uniform-feedback start (the mean column) is unchanged."""
    import torch

    heads = member.get_ref("heads")
    module = heads.layers[0].shims[0]._model
    index = {c: i for i, c in enumerate(new)}
    missing = [c for c in old if c not in index]
    if missing:
        raise ValueError(f"widen_concepts: {len(missing)} concepts of the member are not in the new set, e.g. {missing[:3]}")
    positions = [0] + [1 + index[c] for c in old]  # nil stays column 0
    n = len(new) + 1
    with torch.no_grad():
        for name in ("men_out", "men_first"):
            lin = getattr(module, name)
            if lin is None:
                continue
            cols = torch.as_tensor(positions, device=lin.weight.device)
            wide = torch.nn.Linear(lin.in_features, n, device=lin.weight.device, dtype=lin.weight.dtype)
            wide.weight.zero_()
            wide.weight[cols] = lin.weight
            wide.bias.fill_(UNSEEN_BIAS)
            wide.bias[cols] = lin.bias
            setattr(module, name, wide)
        if module.U is not None:
            U = module.U.weight  # (H, concepts + 1)
            cols = torch.as_tensor(positions, device=U.device)
            wide = torch.nn.Linear(n, U.shape[0], bias=False, device=U.device, dtype=U.dtype)
            wide.weight.copy_(U.mean(dim=1, keepdim=True).expand(-1, n))
            wide.weight[:, cols] = U
            module.U = wide
    heads.attrs["n_concepts"] = len(new)
