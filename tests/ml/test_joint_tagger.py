"""JointTaggerModule at inference: MER decoded inside the module, the final MEN
head run on span tokens only. Checked against the training-mode outputs
(every token scored) decoded the plain way, for every feedback and CRF choice."""
import pytest
import torch

from spacy_medlink.ml.crf import transition_constraints, viterbi
from spacy_medlink.ml.joint_module import JointTaggerModule, infer_joint, token_mask

TAGS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


@pytest.mark.parametrize("feedback", ["none", "mer", "men", "both"])
@pytest.mark.parametrize("use_crf", [True, False])
@pytest.mark.parametrize("feedback_init", ["uniform", "first_pass"])
def test_inference_matches_scoring_every_token(feedback, use_crf, feedback_init):
    torch.manual_seed(0)
    constraints = transition_constraints(TAGS, "BIO")
    module = JointTaggerModule(
        8, n_tags=len(TAGS), n_concepts=6, lstm_width=8, lstm_depth=1, dropout=0.0,
        feedback=feedback, feedback_init=feedback_init, constraints=constraints,
        use_crf=use_crf, outside=0,
    )
    X = torch.randn(3, 30, 8)
    lengths = torch.tensor([30, 12, 0])
    mask = torch.arange(30)[None, :] < lengths[:, None]
    with torch.no_grad():
        module.train()
        # shift the O score so that about half the tokens prefer O: spans and non-spans
        module.mer_out.weight.mul_(30.0)
        mer = module(X, lengths)[0][mask]
        module.mer_out.bias[0] += (mer[:, 1:].max(dim=1).values - mer[:, 0]).median()
        mer, men, *_ = module(X, lengths)
        module.eval()
        out = module(X, lengths)
    mer_i, men_i, _, _, start, transitions, end, paths, men_probs, men_rows = out
    assert men_i is None
    torch.testing.assert_close(mer_i, mer)
    if use_crf:
        emissions = mer
    else:
        emissions = torch.log_softmax(mer, dim=-1)
        start, transitions, end = torch.zeros(5), torch.zeros(5, 5), torch.zeros(5)
    expected = viterbi(emissions, mask, start, transitions, end, constraints=constraints)
    assert [paths[b, :n].tolist() for b, n in enumerate(lengths.tolist())] == expected
    assert (paths[~mask] == -1).all() and (men_rows[~mask] == -1).all()
    inside = (paths != 0) & mask
    assert inside.any() and (~inside & mask).any()
    assert (men_rows[inside] >= 0).all() and (men_rows[~inside] == -1).all()
    assert men_probs.shape == (int(inside.sum()), 6)
    torch.testing.assert_close(men_probs[men_rows[inside]], torch.softmax(men[inside], dim=-1))


@pytest.mark.parametrize("feedback", ["mer", "both"])
@pytest.mark.parametrize("use_crf", [True, False])
def test_ensemble_inference_averages_members(feedback, use_crf):
    """infer_joint over two modules: the path is the best under the mean emissions and
    mean CRF scores (mean tag probabilities without a CRF), the MEN probabilities are the
    members' mean on the path's span tokens; one module twice gives that module's output."""
    constraints = transition_constraints(TAGS, "BIO")
    modules = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        modules.append(JointTaggerModule(
            8, n_tags=len(TAGS), n_concepts=6, lstm_width=8, lstm_depth=1, dropout=0.0, feedback=feedback,
            feedback_init="uniform", constraints=constraints, use_crf=use_crf, outside=0,
        ))
    X = torch.randn(2, 20, 8)
    lengths = torch.tensor([20, 9])
    with torch.no_grad():
        full = []
        for m in modules:
            m.train()
            m.mer_out.weight.mul_(30.0)  # spans and non-spans, as above
            mer = m(X, lengths)[0][token_mask(X, lengths)[0]]
            m.mer_out.bias[0] += (mer[:, 1:].max(dim=1).values - mer[:, 0]).median()
            full.append(m(X, lengths))
            m.eval()
        mask, unpad = token_mask(X, lengths)
        vs = [m.encode(X, lengths)[mask] for m in modules]
        out = infer_joint(modules, vs, mask, unpad)
        alone = infer_joint(modules[:1], vs[:1], mask, unpad)
        twice = infer_joint(modules[:1] * 2, vs[:1] * 2, mask, unpad)
    for a, b in zip(alone, twice):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    mers = [f[0] for f in full]
    if use_crf:
        emissions = (mers[0] + mers[1]) / 2
        start, transitions, end = ((full[0][i] + full[1][i]) / 2 for i in (4, 5, 6))
    else:
        emissions = torch.log((torch.softmax(mers[0], -1) + torch.softmax(mers[1], -1)) / 2)
        start, transitions, end = torch.zeros(5), torch.zeros(5, 5), torch.zeros(5)
    paths, men_probs, men_rows = out[7:]
    expected = viterbi(emissions, mask, start, transitions, end, constraints=constraints)
    assert [paths[b, :n].tolist() for b, n in enumerate(lengths.tolist())] == expected
    inside = (paths != 0) & mask
    assert inside.any()
    mean_men = (torch.softmax(full[0][1][inside], -1) + torch.softmax(full[1][1][inside], -1)) / 2
    torch.testing.assert_close(men_probs[men_rows[inside]], mean_men)
