"""JointTaggerModule at inference: MER decoded inside the module, the final MEN
head run on span tokens only. Checked against the training-mode outputs
(every token scored) decoded the plain way, for every feedback and CRF choice."""
import pytest
import torch

from spacy_medlink.ml.crf import transition_constraints, viterbi
from spacy_medlink.ml.joint_tagger import JointTaggerModule

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
