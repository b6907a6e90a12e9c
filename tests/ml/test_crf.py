"""The CRF against brute force: every tag sequence of tiny inputs enumerated."""
import itertools

import numpy
import pytest
import torch

from spacy_medlink.ml.crf import CRF, NEG, is_valid, log_partition, nll, partial_nll, transition_constraints, viterbi

BIO2 = ["O", "B-A", "I-A", "B-B", "I-B"]
BILUO1 = ["O", "B-A", "I-A", "L-A", "U-A"]
CASES = [(BIO2, "BIO"), (BILUO1, "BILUO"), (["O", "B-A", "I-A", "B-B"], "BIO")]


def _params(n, constraints, seed):
    gen = torch.Generator().manual_seed(seed)
    start, trans, end = (torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in ((n,), (n, n), (n,)))
    c_start, c_trans, c_end = (torch.as_tensor(c) for c in constraints)
    return start.masked_fill(~c_start, NEG), trans.masked_fill(~c_trans, NEG), end.masked_fill(~c_end, NEG)


def _score(path, em, start, trans, end):
    s = start[path[0]] + end[path[-1]] + sum(em[t, y] for t, y in enumerate(path))
    return s + sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))


def _valid_paths(n, length, constraints, allowed=None):
    for path in itertools.product(range(n), repeat=length):
        if is_valid(path, constraints) and (allowed is None or all(allowed[t, y] for t, y in enumerate(path))):
            yield path


def _batch(n, lengths, seed):
    gen = torch.Generator().manual_seed(seed)
    T = max(lengths)
    em = torch.randn(len(lengths), T, n, generator=gen, dtype=torch.float64) * 2
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return em, mask


@pytest.mark.parametrize("tags,scheme", CASES)
def test_constraints_bio_biluo_rules(tags, scheme):
    start, trans, end = transition_constraints(tags, scheme)
    ix = {t: i for i, t in enumerate(tags)}
    assert start[ix["O"]] and start[ix["B-A"]] and not start[ix["I-A"]]
    assert trans[ix["B-A"], ix["I-A"]] and not trans[ix["O"], ix["I-A"]]
    if "B-B" in ix:
        assert not trans[ix["B-B"], ix["I-A"]]
    if scheme == "BILUO":
        assert not trans[ix["B-A"], ix["O"]] and not trans[ix["I-A"], ix["U-A"]]
        assert trans[ix["L-A"], ix["U-A"]] and trans[ix["U-A"], ix["B-A"]]
        assert not end[ix["B-A"]] and not end[ix["I-A"]] and end[ix["L-A"]] and end[ix["U-A"]]
        assert not start[ix["L-A"]] and start[ix["U-A"]]
    else:
        assert end.all() and trans[ix["I-A"], ix["O"]]


def test_constraints_reject_bad_tags():
    with pytest.raises(ValueError):
        transition_constraints(["O", "L-A"], "BIO")
    with pytest.raises(ValueError):
        transition_constraints(["O", "B-A"], "IOB2")


@pytest.mark.parametrize("tags,scheme", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_partition_nll_viterbi_match_brute_force(tags, scheme, seed):
    n = len(tags)
    constraints = transition_constraints(tags, scheme)
    start, trans, end = _params(n, constraints, seed)
    lengths = [4, 3, 1, 2]
    em, mask = _batch(n, lengths, seed)
    logz = log_partition(em, mask, start, trans, end)
    paths = viterbi(em, mask, start, trans, end, constraints=constraints)
    gen = numpy.random.default_rng(seed)
    for b, length in enumerate(lengths):
        valid = list(_valid_paths(n, length, constraints))
        scores = torch.stack([_score(p, em[b], start, trans, end) for p in valid])
        assert logz[b].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-9)
        assert tuple(paths[b]) == valid[int(scores.argmax())]
        # NLL of one gold path, and of a partial annotation (some tokens unknown)
        gold = valid[gen.integers(len(valid))]
        allowed = torch.zeros(len(lengths), em.shape[1], n, dtype=torch.bool)
        allowed[b, torch.arange(length), torch.tensor(gold)] = True
        loss = nll(em, mask, start, trans, end, allowed)[b]
        assert loss.item() == pytest.approx((logz[b] - _score(gold, em[b], start, trans, end)).item(), abs=1e-9)
        allowed[b, 0, :] = True  # first token unknown
        partial = list(_valid_paths(n, length, constraints, allowed[b]))
        expected = logz[b] - torch.logsumexp(torch.stack([_score(p, em[b], start, trans, end) for p in partial]), 0)
        assert nll(em, mask, start, trans, end, allowed)[b].item() == pytest.approx(expected.item(), abs=1e-9)


@pytest.mark.parametrize("tags,scheme", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_partial_nll_sums_over_unknown_tags_brute_force(tags, scheme, seed):
    """Gold as tag indices with -1 = unknown (what the models' losses pass):
    -log of the share of Z over the valid paths that agree on the known tags."""
    n = len(tags)
    constraints = transition_constraints(tags, scheme)
    start, trans, end = _params(n, constraints, seed)
    lengths = [4, 3, 1]
    em, mask = _batch(n, lengths, seed)
    gen = numpy.random.default_rng(seed)
    gold = torch.full((len(lengths), em.shape[1]), -1, dtype=torch.long)
    for b, length in enumerate(lengths):
        path = list(_valid_paths(n, length, constraints))[0]
        gold[b, :length] = torch.tensor(path)
        gold[b, gen.integers(length)] = -1  # one token unknown
    loss = partial_nll(em, mask, start, trans, end, gold)
    logz = log_partition(em, mask, start, trans, end)
    for b, length in enumerate(lengths):
        agree = [p for p in _valid_paths(n, length, constraints)
                 if all(g < 0 or g == y for g, y in zip(gold[b, :length].tolist(), p))]
        expected = logz[b] - torch.logsumexp(torch.stack([_score(p, em[b], start, trans, end) for p in agree]), 0)
        assert loss[b].item() == pytest.approx(expected.item(), abs=1e-9)
    assert (loss >= -1e-9).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_partial_nll_candidates_brute_force(seed):
    """An unknown token with candidates (a corpus that annotates A only: its
    outside tokens are "O or a tag of B") sums over those tags alone; a row of
    no candidates means any tag."""
    tags, scheme = BIO2, "BIO"
    n = len(tags)
    constraints = transition_constraints(tags, scheme)
    start, trans, end = _params(n, constraints, seed)
    lengths = [4, 3]
    em, mask = _batch(n, lengths, seed)
    # doc 0: B-A I-A known, then two tokens that are O or B-B/I-B; doc 1: one fully unknown token
    gold = torch.tensor([[1, 2, -1, -1], [0, -1, 0, -1]])
    cand = torch.zeros(2, 4, n, dtype=torch.bool)
    cand[0, 2:, [0, 3, 4]] = True
    loss = partial_nll(em, mask, start, trans, end, gold, cand)
    logz = log_partition(em, mask, start, trans, end)
    for b, length in enumerate(lengths):
        def ok(t, y):
            g = gold[b, t].item()
            if g >= 0:
                return y == g
            return not cand[b, t].any() or bool(cand[b, t, y])
        agree = [p for p in _valid_paths(n, length, constraints) if all(ok(t, y) for t, y in enumerate(p))]
        expected = logz[b] - torch.logsumexp(torch.stack([_score(p, em[b], start, trans, end) for p in agree]), 0)
        assert loss[b].item() == pytest.approx(expected.item(), abs=1e-9)
    # without candidates, doc 0's unknown tokens may also be A's tags: a smaller loss
    assert partial_nll(em, mask, start, trans, end, gold)[0] < loss[0]


def test_log_partition_gradient_is_brute_force_marginals():
    tags, scheme = CASES[1]
    n = len(tags)
    constraints = transition_constraints(tags, scheme)
    start, trans, end = _params(n, constraints, 3)
    em, mask = _batch(n, [4], 3)
    em.requires_grad_(True)
    log_partition(em, mask, start, trans, end).sum().backward()
    valid = list(_valid_paths(n, 4, constraints))
    probs = torch.softmax(torch.stack([_score(p, em[0].detach(), start, trans, end) for p in valid]), 0)
    marginals = torch.zeros(4, n, dtype=torch.float64)
    for p, prob in zip(valid, probs):
        marginals[torch.arange(4), torch.tensor(p)] += prob
    assert torch.allclose(em.grad[0], marginals, atol=1e-9)


@pytest.mark.parametrize("tags,scheme", CASES)
def test_viterbi_never_outputs_invalid_sequence(tags, scheme):
    n = len(tags)
    constraints = transition_constraints(tags, scheme)
    for seed in range(20):
        # emissions far beyond NEG, and unconstrained learned scores: only the
        # boolean constraints keep the path valid
        em, mask = _batch(n, [4, 7, 1, 5], seed)
        em = em * 1e6
        start, trans, end = (torch.randn(n), torch.randn(n, n), torch.randn(n))
        for path, length in zip(viterbi(em, mask, start, trans, end, constraints=constraints), [4, 7, 1, 5]):
            assert len(path) == length
            assert is_valid(path, constraints), [tags[i] for i in path]


def test_empty_sequences():
    em = torch.zeros(2, 3, 3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    z = torch.zeros(3)
    assert log_partition(em, mask, z, torch.zeros(3, 3), z)[1].item() == 0.0
    assert viterbi(em, mask, z, torch.zeros(3, 3), z)[1] == []
    assert viterbi(torch.zeros(2, 0, 3), torch.zeros(2, 0, dtype=torch.bool), z, torch.zeros(3, 3), z) == [[], []]


def test_crf_module_masks_forbidden_moves_and_learns():
    tags = BIO2
    crf = CRF(len(tags), transition_constraints(tags, "BIO"))
    start, trans, end = crf()
    assert start[tags.index("I-A")].item() == NEG and trans[0, tags.index("I-B")].item() == NEG
    # the constraint masks are derived from the tags, not saved with the weights
    assert set(crf.state_dict()) == {"start", "transitions", "end"}
    # a few steps of gradient descent on one gold path make Viterbi output it
    gold = [1, 2, 0, 3]
    em = torch.zeros(1, 4, len(tags))
    mask = torch.ones(1, 4, dtype=torch.bool)
    allowed = torch.nn.functional.one_hot(torch.tensor([gold]), len(tags)).bool()
    opt = torch.optim.SGD(crf.parameters(), lr=1.0)
    for _ in range(30):
        opt.zero_grad()
        crf.nll(em, mask, allowed).sum().backward()
        opt.step()
    assert crf.decode(em, mask) == [gold]
