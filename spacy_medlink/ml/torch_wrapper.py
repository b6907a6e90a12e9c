"""Wrap our torch modules as thinc layers: PyTorchWrapper_v3 plus weight averaging.

thinc's ``PyTorchShim.finish_update`` hands the optimizer the keys
``(shim.id, param_name)``, but its ``use_params`` looks for string keys
``"pytorch_{id}_…"``. So with ``[training.optimizer] use_averages = true`` the
averages of a torch module are kept but never used: spaCy evaluates and saves
the averaged tok2vec in front of the *raw* torch weights. ``AveragingPyTorchShim``
reads the keys ``finish_update`` writes, so parameter averaging (on by default
in spaCy's own ``ner`` configs) covers the whole model.

Weights are saved as raw numpy buffers in msgpack (no pickle), through
PyTorchWrapper_v3's serialize/deserialize hooks.

Importing this module (which every model does when it builds its torch
module) makes forked workers run torch on one thread (`torch_utils`).
"""
import contextlib
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy
import srsly
import torch
from thinc.api import ArgsKwargs, Model, PyTorchShim, torch2xp, xp2torch
from thinc.layers.pytorchwrapper import forward as pytorch_forward

from ..torch_utils import one_torch_thread_in_forks

one_torch_thread_in_forks()


class AveragingPyTorchShim(PyTorchShim):
    """A PyTorchShim whose ``use_params`` applies the optimizer's averages."""

    @contextlib.contextmanager
    def use_params(self, params):
        state = {
            name: xp2torch(params[(self.id, name)], device=self.device)
            for name, _ in self._model.named_parameters()
            if (self.id, name) in params
        }
        if not state:
            yield
            return
        backup = {name: tensor.detach().clone() for name, tensor in self._model.state_dict().items()}
        self._model.load_state_dict(state, strict=False)
        try:
            yield
        finally:
            self._model.load_state_dict(backup)


def wrap_torch_module(
    module: torch.nn.Module,
    *,
    convert_inputs: Optional[Callable] = None,
    convert_outputs: Optional[Callable] = None,
) -> Model:
    """thinc's PyTorchWrapper_v3 (same forward and attrs) on an AveragingPyTorchShim."""
    from thinc.layers.pytorchwrapper import (
        convert_pytorch_default_inputs,
        convert_pytorch_default_outputs,
    )

    return Model(
        "pytorch",
        pytorch_forward,
        attrs={
            "convert_inputs": convert_inputs or convert_pytorch_default_inputs,
            "convert_outputs": convert_outputs or convert_pytorch_default_outputs,
        },
        shims=[
            AveragingPyTorchShim(
                module,
                serialize_model=serialize_torch_module,
                deserialize_model=deserialize_torch_module,
            )
        ],
        dims={"nI": None, "nO": None},
    )


def serialize_torch_module(module: torch.nn.Module) -> bytes:
    """state_dict as {name: (dtype, shape, raw bytes)} in msgpack: no pickle."""
    state = {}
    for name, tensor in module.state_dict().items():
        array = tensor.detach().cpu().numpy()
        state[name] = (array.dtype.str, list(array.shape), array.tobytes())
    return srsly.msgpack_dumps(state)


def deserialize_torch_module(module: torch.nn.Module, data: bytes, device: "torch.device") -> torch.nn.Module:
    state = {
        name: torch.from_numpy(numpy.frombuffer(buf, dtype=numpy.dtype(dtype)).reshape(shape).copy())
        for name, (dtype, shape, buf) in srsly.msgpack_loads(data).items()
    }
    module.load_state_dict(state)
    module.to(device)
    return module


# -- losses on a module's outputs ------------------------------------------------
# The models here return *scores* (emissions, logits, CRF transitions) and the
# pipe computes the loss in torch: on leaf copies of the scores, whose
# gradients then go back through the module's backprop.
def loss_on_leaves(
    scores: NamedTuple, differentiable: Sequence[str], loss_fn: Callable[[NamedTuple], Any]
) -> Tuple[Any, NamedTuple]:
    """``loss_fn`` on a copy of `scores` whose fields are torch tensors (leaves
    with gradients for the `differentiable` ones), and those gradients.

    Returns loss_fn's result and a `scores`-like tuple holding the gradients
    (xp arrays; None where a field has none) and the other fields unchanged.
    loss_fn returns the loss tensor, or a tuple whose first item is.
    """
    leaves: Dict[str, torch.Tensor] = {}
    fields: Dict[str, Any] = {}
    for name, value in scores._asdict().items():
        if value is None:
            continue
        if name in differentiable:
            leaves[name] = fields[name] = xp2torch(value, requires_grad=True)
        elif hasattr(value, "shape"):
            fields[name] = xp2torch(value)
    result = loss_fn(scores._replace(**fields))
    loss = result[0] if isinstance(result, tuple) else result
    loss.backward()
    grads = {name: torch2xp(t.grad) if t.grad is not None else None for name, t in leaves.items()}
    nulls = {name: None for name in differentiable if name not in grads}
    return result, scores._replace(**grads, **nulls)


def backward_args(
    outputs: Sequence[Optional[torch.Tensor]], d_scores: NamedTuple, differentiable: Sequence[str]
) -> ArgsKwargs:
    """The ``torch.autograd.backward`` call for a module's `outputs` (in the
    order of `differentiable`), given the gradients of their scores."""
    tensors, grads = [], []
    for t, name in zip(outputs, differentiable):
        g = getattr(d_scores, name)
        if t is not None and g is not None and t.requires_grad:
            tensors.append(t)
            grads.append(xp2torch(g, device=t.device))
    return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grads})
