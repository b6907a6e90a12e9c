"""wrap_torch_module: thinc's PyTorchWrapper_v3 whose shim applies weight averages."""
import numpy
import pytest
import torch
from numpy.testing import assert_allclose
from thinc.api import Adam, PyTorchWrapper_v3

from spacy_medlink.ml.torch_wrapper import wrap_torch_module


def _train(model, steps=5):
    X = numpy.ones((4, 3), dtype="f")
    model.initialize(X=X)
    optimizer = Adam(0.1, use_averages=True)
    for _ in range(steps):
        Y, backprop = model.begin_update(X)
        backprop(numpy.ones_like(Y))
        model.finish_update(optimizer)
    return X, optimizer


def test_thinc_wrapper_ignores_averages():
    """The thinc behaviour the wrapper exists for (fails once thinc fixes it)."""
    torch.manual_seed(0)
    model = PyTorchWrapper_v3(torch.nn.Linear(3, 2))
    X, optimizer = _train(model)
    with model.use_params(optimizer.averages):
        inside = model.predict(X)
    assert_allclose(inside, model.predict(X))


def test_averages_applied_and_restored():
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    model = wrap_torch_module(module)
    X, optimizer = _train(model)
    shim = model.shims[0]
    raw = model.predict(X)
    weight = optimizer.averages[(shim.id, "weight")]
    bias = optimizer.averages[(shim.id, "bias")]
    with model.use_params(optimizer.averages):
        assert_allclose(module.weight.detach().numpy(), weight)
        assert_allclose(model.predict(X), X @ weight.T + bias, rtol=1e-5)
        assert not numpy.allclose(model.predict(X), raw)
    assert_allclose(model.predict(X), raw)


def test_averages_of_other_shims_ignored():
    torch.manual_seed(0)
    model = wrap_torch_module(torch.nn.Linear(3, 2))
    X, optimizer = _train(model)
    other = {(model.shims[0].id + 1000, "weight"): numpy.zeros((2, 3), dtype="f")}
    raw = model.predict(X)
    with model.use_params(other):
        assert_allclose(model.predict(X), raw)


@pytest.mark.parametrize("buffers", [False, True])
def test_round_trip(buffers):
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    if buffers:
        module.register_buffer("scale", torch.tensor([2.0]))
    model = wrap_torch_module(module)
    X, _ = _train(model, steps=1)
    torch.manual_seed(1)
    other = torch.nn.Linear(3, 2)
    if buffers:
        other.register_buffer("scale", torch.tensor([0.0]))
    copy = wrap_torch_module(other).from_bytes(model.to_bytes())
    assert_allclose(copy.predict(X), model.predict(X))
    if buffers:
        assert copy.shims[0]._model.scale.item() == 2.0
