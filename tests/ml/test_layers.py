"""The shared torch layers against brute-force references."""
import pytest
import torch

from spacy_medlink.ml.layers import (
    Biaffine,
    BiLSTM,
    ConditionalLayerNorm,
    LossWeights,
    PackedBiLSTM,
    pooled_mean,
    reverse_padded,
)


def test_biaffine_band_equals_the_formula():
    torch.manual_seed(0)
    layer = Biaffine(6, 2)
    starts, ends = torch.randn(3, 9, 6), torch.randn(3, 9, 6)
    for block in (2, 4, 128):  # several blocks, a ragged last one, and one block
        out = layer(starts, ends, 4, block=block)
        assert out.shape == (3, 9, 4, 2)
        for n in range(3):
            for i in range(9):
                for l in range(4):
                    if i + l >= 9:
                        continue
                    s, e = starts[n, i], ends[n, i + l]
                    ref = torch.einsum("d,cde,e->c", s, layer.U, e) + layer.W(torch.cat([s, e]))
                    assert torch.allclose(out[n, i, l], ref, atol=1e-5), (block, n, i, l)


def test_biaffine_gradients_match_the_formula():
    torch.manual_seed(0)
    layer = Biaffine(4, 2)
    starts = torch.randn(2, 5, 4, requires_grad=True)
    ends = torch.randn(2, 5, 4, requires_grad=True)
    weights = torch.randn(2, 5, 3, 2)
    valid = (torch.arange(5)[:, None] + torch.arange(3)[None, :] < 5)[None, :, :, None]
    (layer(starts, ends, 3, block=2) * weights * valid).sum().backward()
    g_starts, g_ends = starts.grad.clone(), ends.grad.clone()
    starts.grad = ends.grad = None
    total = 0
    for n in range(2):
        for i in range(5):
            for l in range(3):
                if i + l < 5:
                    s, e = starts[n, i], ends[n, i + l]
                    r = torch.einsum("d,cde,e->c", s, layer.U, e) + layer.W(torch.cat([s, e]))
                    total = total + (r * weights[n, i, l]).sum()
    total.backward()
    assert torch.allclose(g_starts, starts.grad, atol=1e-5)
    assert torch.allclose(g_ends, ends.grad, atol=1e-5)


@pytest.mark.parametrize("cls", [BiLSTM, PackedBiLSTM])
def test_bilstm_ignores_padding(cls):
    torch.manual_seed(0)
    layer = cls(5, 8, depth=2)
    X, lengths = torch.randn(3, 6, 5), torch.tensor([6, 3, 1])
    out = layer(X, lengths)
    assert out.shape == (3, 6, 8)
    for n in range(3):
        alone = layer(X[n : n + 1, : lengths[n]], lengths[n : n + 1])
        assert torch.allclose(out[n, : lengths[n]], alone[0], atol=1e-6)


def test_bilstm_odd_width():
    with pytest.raises(ValueError):
        BiLSTM(4, 5)


def test_packed_bilstm_zeros_padding_and_keeps_torch_lstm_parameters():
    torch.manual_seed(0)
    layer = PackedBiLSTM(5, 8, depth=2)
    X, lengths = torch.randn(3, 6, 5), torch.tensor([6, 3, 1])
    out = layer(X, lengths)
    assert all((out[n, lengths[n] :] == 0).all() for n in range(3))
    assert layer(X[:, :0], lengths).shape == (3, 0, 8)
    # the parameter names saved pipelines hold (a plain torch LSTM's)
    plain = torch.nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)
    assert list(layer.state_dict()) == list(plain.state_dict())
    with pytest.raises(ValueError):
        PackedBiLSTM(4, 5)


def test_reverse_padded():
    X = torch.arange(8.0).view(2, 4, 1)
    out = reverse_padded(X, torch.tensor([4, 2]))
    assert out[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_conditional_layer_norm_starts_as_layer_norm_and_conditions():
    torch.manual_seed(0)
    layer = ConditionalLayerNorm(6, 3)
    X, cond = torch.randn(2, 4, 6), torch.randn(5, 3)
    out = layer(X, cond)
    assert out.shape == (2, 5, 4, 6)
    plain = torch.nn.functional.layer_norm(X, (6,), eps=layer.eps)
    assert torch.allclose(out[:, 2], plain, atol=1e-5)
    torch.nn.init.normal_(layer.gain.weight)
    torch.nn.init.normal_(layer.bias.weight)
    out = layer(X, cond)
    gain, bias = 1 + cond @ layer.gain.weight.T, cond @ layer.bias.weight.T
    assert torch.allclose(out[1, 3], plain[1] * gain[3] + bias[3], atol=1e-5)


def test_loss_weights():
    l1, l2 = torch.tensor(2.0), torch.tensor(0.5)
    paper = LossWeights("paper")
    w = paper.w.detach()
    assert paper.weights(w) == pytest.approx((0.5, 0.5))
    total = paper.combine(paper.w, l1, l2)
    assert float(total.detach()) == pytest.approx(1.25)
    total.backward()
    # d/dw1 = α(L1 - total) > 0: descent moves weight onto the smaller loss
    assert paper.w.grad[0] > 0 > paper.w.grad[1]
    unc = LossWeights("uncertainty")
    assert float(unc.combine(unc.w, l1, l2).detach()) == pytest.approx(2.5)
    assert LossWeights("fixed", 0.3, 0.7).weights(w) == (0.3, 0.7)
    with pytest.raises(ValueError):
        LossWeights("sum")


def test_pooled_mean():
    X = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert pooled_mean(X, torch.tensor([2])).tolist() == [[2.0]]


def test_span_mean_matches_brute_force():
    from spacy_medlink.ml.layers import span_mean

    torch.manual_seed(0)
    X = torch.randn(2, 6, 3, requires_grad=True)
    spans = torch.tensor([[0, 0, 1], [0, 2, 6], [1, 1, 4], [1, 5, 6]])
    out = span_mean(X, spans)
    expected = torch.stack([X[r, s:e].mean(0) for r, s, e in spans.tolist()])
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    assert X.grad[0, 1].abs().sum() == 0  # token 1 of row 0 is in no span
    assert torch.allclose(X.grad[0, 2], torch.full((3,), 0.25))
    assert span_mean(X, torch.zeros((0, 3), dtype=torch.long)).shape == (0, 3)


def test_shortcut_bilstm_reads_shared_and_lower():
    from spacy_medlink.ml.layers import ShortcutBiLSTM

    torch.manual_seed(0)
    shared, lower, lengths = torch.randn(2, 5, 4), torch.randn(2, 5, 6), torch.tensor([5, 3])
    layer = ShortcutBiLSTM(4, 6, width=8)
    out = layer(shared, lower, lengths)
    assert out.shape == (2, 5, 8)
    assert torch.allclose(out, layer.lstm(torch.cat([shared, lower], dim=-1), lengths))
    lowest = ShortcutBiLSTM(4, 0, width=8)
    assert lowest(shared, None, lengths).shape == (2, 5, 8)
    with pytest.raises(ValueError, match="n_lower"):
        lowest(shared, lower, lengths)
    with pytest.raises(ValueError, match="n_lower"):
        layer(shared, None, lengths)
