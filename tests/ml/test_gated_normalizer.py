"""medlink.GatedNormalizer.v1: the torch module (`ml/gated_module.py`: shapes, masks, switches, loss)
and the thinc model around it (names and texts through one tok2vec, gradients)."""
import numpy
import pytest
import spacy
import torch
from thinc.api import fix_random_seed

from spacy_medlink.ml.crf import transition_constraints
from spacy_medlink.ml.gated_module import GatedNormalizerModule, gated_loss, gated_loss_and_gradient
from spacy_medlink.ml.gated_normalizer import (
    GatedBatch,
    build_gated_normalizer,
    build_gated_normalizer_v2,
    encode_concepts,
    encode_texts,
    score_pairs,
    set_gated_labels,
    torch_module,
)
from spacy_medlink.ml.layers import segment_softmax
from spacy_medlink.ml.scores import GatedScores

TAGS = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]


def _module(**kwargs):
    settings = dict(n_tags=len(TAGS), lstm_width=8, lstm_depth=1, dropout=0.0, use_mid=True, use_high=True,
                    fusion="gate", attention="attention", constraints=transition_constraints(TAGS, "BIO"))
    settings.update(kwargs)
    torch.manual_seed(0)
    return GatedNormalizerModule(6, **settings)


def _inputs(lengths=(5, 3), name_lengths=(2, 1, 3), name_concept=(0, 1, 1), pairs=((0, 0), (0, 1), (1, 1))):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(len(lengths), max(lengths), 6, generator=gen)
    names = torch.randn(len(name_lengths), max(name_lengths), 6, generator=gen)
    for i, n in enumerate(lengths):
        X[i, n:] = 0
    for i, n in enumerate(name_lengths):
        names[i, n:] = 0
    return (X, torch.tensor(lengths), names, torch.tensor(name_lengths), torch.tensor(name_concept),
            int(max(name_concept) + 1), torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs]))


def test_module_shapes():
    module = _module()
    ner, start, transitions, end, mid, high, attention = module(*_inputs())
    assert ner.shape == (2, 5, len(TAGS))
    assert start.shape == (len(TAGS),) and transitions.shape == (len(TAGS), len(TAGS))
    assert mid.shape == (3,) and high.shape == (3, 5, 3) and attention.shape == (3, 5)
    # no pairs: only the NER outputs
    args = list(_inputs())
    args[6], args[7] = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    out = module(*args)
    assert out[0].shape == (2, 5, len(TAGS)) and out[4] is None and out[5] is None


def test_attention_sums_to_one_and_respects_padding():
    module = _module()
    X, lengths, names, name_lengths, name_concept, n_concepts, pair_doc, pair_concept = _inputs()
    *_, attention = module(X, lengths, names, name_lengths, name_concept, n_concepts, pair_doc, pair_concept)
    numpy.testing.assert_allclose(attention.sum(1).detach().numpy(), 1.0, rtol=1e-6)
    assert (attention[2, 3:] == 0).all()  # pair 2 is doc 1, 3 tokens long
    assert (attention[:2] > 0).all()
    # the weights depend on the concept (additive attention, not a linear score
    # whose concept term would cancel in the softmax)
    assert not torch.allclose(attention[0], attention[1])
    # padding never changes the result: the same doc padded more scores alike
    X2 = torch.cat([X, torch.randn(2, 4, 6)], dim=1)
    X2[1, 3:] = 0
    X2[0, 5:] = 0
    *_, attention2 = module(X2, lengths, names, name_lengths, name_concept, n_concepts, pair_doc, pair_concept)
    torch.testing.assert_close(attention2[:, :5], attention, rtol=1e-5, atol=1e-6)
    assert (attention2[:, 5:] == 0).all()


def test_segment_softmax_and_mean_attention():
    scores = torch.tensor([0.5, -1.0, 2.0, 3.0])
    weights = segment_softmax(scores, torch.tensor([0, 0, 2, 2]), 3)
    torch.testing.assert_close(weights[:2], torch.softmax(scores[:2], 0))
    torch.testing.assert_close(weights[2:], torch.softmax(scores[2:], 0))
    assert segment_softmax(scores[:0], torch.tensor([], dtype=torch.long), 2).shape == (0,)
    # an empty text (length 0) gets an all-zero attention row, no NaN
    module = _module()
    args = list(_inputs(lengths=(5, 0)))
    *_, attention = module(*args)
    assert torch.isfinite(attention).all() and (attention[2] == 0).all()
    module = _module(attention="mean")
    *_, attention = module(*_inputs())
    torch.testing.assert_close(attention[0], torch.full((5,), 0.2))
    torch.testing.assert_close(attention[2], torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0, 0.0]))


def test_concept_names_are_averaged():
    module = _module()
    X, lengths, names, name_lengths, name_concept, *_ = _inputs()
    h_e = module.encode_concepts(names, name_lengths, name_concept, 2)
    single = module.encode_concepts(names, name_lengths, torch.arange(3), 3)
    torch.testing.assert_close(h_e[0], single[0])
    torch.testing.assert_close(h_e[1], (single[1] + single[2]) / 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fusion": "concat"},
        {"attention": "mean"},
        {"use_mid": False},
        {"use_high": False},
        {"use_mid": False, "fusion": "concat"},
        {"lstm_depth": 0, "constraints": None},
        {"match": True},
        {"match": True, "fusion": "concat", "use_mid": False},
    ],
)
def test_switches_build_and_run(kwargs):
    module = _module(**kwargs)
    ner, start, transitions, end, mid, high, attention = module(*_inputs())
    assert ner.shape[:2] == (2, 5)
    assert (mid is None) == (kwargs.get("use_mid") is False)
    assert (high is None) == (kwargs.get("use_high") is False)
    assert (module.gate is None) == (kwargs.get("fusion") == "concat" or kwargs.get("use_high") is False)
    assert (start is None) == ("constraints" in kwargs)


@pytest.mark.parametrize("crf", [True, False])
def test_loss_decreases(crf):
    module = _module(constraints=transition_constraints(TAGS, "BIO") if crf else None)
    inputs = _inputs()
    ner_gold = torch.tensor([[1, 2, 0, 3, 0], [0, 3, 4, -1, -1]])
    mid_gold = torch.tensor([1, 0, 1])
    high_gold = torch.tensor([[1, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 2, -1, -1]])
    optimizer = torch.optim.Adam(module.parameters(), lr=0.03)
    losses = []
    for _ in range(40):
        ner, start, transitions, end, mid, high, _ = module(*inputs)
        scores = GatedScores(ner, start, transitions, end, mid, high, lengths=inputs[1])
        loss, parts = gated_loss(scores, ner_gold, mid_gold, high_gold, mid_weight=0.125, high_weight=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] / 2
    assert set(parts) == {"low", "mid", "high"} and all(v > 0 for v in parts.values())


def test_loss_weights_and_ignored_targets():
    module = _module(constraints=None)
    inputs = _inputs()
    ner, start, transitions, end, mid, high, _ = module(*inputs)
    scores = GatedScores(ner, start, transitions, end, mid, high, lengths=inputs[1])
    ner_gold = torch.full((2, 5), -1)
    mid_gold = torch.tensor([1, 0, 1])
    high_gold = torch.full((3, 5), -1)
    loss, parts = gated_loss(scores, ner_gold, mid_gold, high_gold, mid_weight=0.5, high_weight=0.1)
    assert parts["low"] == 0.0 and parts["high"] == 0.0
    torch.testing.assert_close(loss, torch.tensor(0.5 * parts["mid"]))


def _tiny_model(version=1, **kwargs):
    nlp = spacy.blank("en")
    config = {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 16,
                  "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"], "rows": [100, 50, 50, 50],
                  "include_static_vectors": False},
        "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 16, "depth": 1,
                   "window_size": 1, "maxout_pieces": 2},
    }
    tok2vec = spacy.util.registry.resolve({"x": config})["x"]
    build = build_gated_normalizer if version == 1 else build_gated_normalizer_v2
    model = build(tok2vec, lstm_width=8, dropout=0.0, **kwargs)
    set_gated_labels(model, TAGS, "BIO")
    docs = [nlp.make_doc("Aspirin caused gastric ulcer ."), nlp.make_doc("No ulcer .")]
    names = [nlp.make_doc("Stomach Ulcer"), nlp.make_doc("gastric ulcer"), nlp.make_doc("Aspirin")]
    fix_random_seed(0)
    model.initialize(X=docs)
    batch = GatedBatch(docs, names, numpy.array([0, 0, 1]), 2, numpy.array([0, 0, 1]), numpy.array([0, 1, 0]))
    return model, batch


def test_thinc_model_forward_backward():
    model, batch = _tiny_model()
    scores, backprop = model.begin_update(batch)
    assert scores.ner.shape == (2, 5, len(TAGS))
    assert scores.mid.shape == (3,) and scores.high.shape == (3, 5, 3)
    assert scores.lengths.tolist() == [5, 3] and scores.pair_doc.tolist() == [0, 0, 1]
    ner_gold = numpy.array([[3, 0, 1, 2, 0], [0, 1, 0, -1, -1]])
    high_gold = numpy.array([[0, 0, 1, 2, 0], [0, 0, 1, 2, 0], [0, 0, 0, -1, -1]])
    loss, parts, d_scores = gated_loss_and_gradient(
        scores, ner_gold, numpy.array([1, 1, 0]), high_gold, mid_weight=0.125, high_weight=0.1
    )
    assert loss > 0 and d_scores.ner.shape == scores.ner.shape and d_scores.mid.shape == (3,)
    # the shared tok2vec gets gradients from the concept names too
    tok2vec = model.get_ref("tok2vec")
    embed = [node for node in tok2vec.walk() if node.name.startswith("hashembed")][0]
    before = embed.get_grad("E").copy() if embed.has_grad("E") else 0
    backprop(d_scores)
    assert numpy.abs(embed.get_grad("E") - before).sum() > 0
    # ... and the heads hand a gradient back for every name token
    heads = model.get_ref("heads")
    feats = tok2vec.predict(list(batch.docs) + list(batch.name_docs))
    inputs = (feats[:2], feats[2:], batch.name_concept, batch.n_concepts, batch.pair_doc, batch.pair_concept)
    scores, bp_heads = heads.begin_update(inputs)
    _, _, d_scores = gated_loss_and_gradient(scores, ner_gold, numpy.array([1, 1, 0]), high_gold,
                                             mid_weight=0.125, high_weight=0.1)
    d_text, d_names = bp_heads(d_scores)
    assert [d.shape for d in d_names] == [f.shape for f in feats[2:]]
    assert all(numpy.abs(d).sum(1).min() > 0 for d in d_names)


def test_two_stage_inference_matches_forward():
    """encode_texts + encode_concepts + score_pairs give the forward's numbers."""
    model, batch = _tiny_model()
    scores = model.predict(batch)
    texts = encode_texts(model, batch.docs)
    h_e = encode_concepts(model, batch.name_docs, batch.name_concept, batch.n_concepts)
    mid, high = score_pairs(model, texts, h_e, batch.pair_doc, batch.pair_concept, chunk_size=2)
    numpy.testing.assert_allclose(mid, 1 / (1 + numpy.exp(-scores.mid)), rtol=1e-5)
    e = numpy.exp(scores.high - scores.high.max(-1, keepdims=True))
    numpy.testing.assert_allclose(high, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)
    assert [len(p) for p in texts.paths] == [5, 3]


def test_model_settings_are_checked():
    with pytest.raises(ValueError, match="fusion"):
        _tiny_model(fusion="add")
    with pytest.raises(ValueError, match="attention"):
        _tiny_model(attention="max")
    with pytest.raises(ValueError, match="use_mid and use_high"):
        _tiny_model(use_mid=False, use_high=False)
    with pytest.raises(ValueError, match="tag"):
        model, _ = _tiny_model()
        set_gated_labels(model, ["O", "X-Disease"], "BIO")


@pytest.mark.parametrize("match", [False, True])
@pytest.mark.parametrize("fusion", ["gate", "concat"])
def test_factored_heads_equal_the_formulas(fusion, match):
    """score_pairs splits W[H; ·] into a per-doc and a per-pair part; the numbers
    are those of the concatenations as written in the paper (v2: plus the
    matching features h_e ⊙ h_a and x_i ⊙ h_e)."""
    module = _module(fusion=fusion, match=match)
    X, lengths, names, name_lengths, name_concept, n_concepts, pair_doc, pair_concept = _inputs()
    with torch.no_grad():
        H = module.encode(X, lengths)
        h_e = module.encode_concepts(names, name_lengths, name_concept, n_concepts)
        mid, high, alpha = module.score_pairs(H, lengths, h_e, pair_doc, pair_concept)
        Hp, he = H[pair_doc], h_e[pair_concept]
        mask = torch.arange(H.shape[1])[None, :] < lengths[pair_doc][:, None]
        He = he.unsqueeze(1).expand_as(Hp)
        scores = module.att_v(torch.tanh(module.att_in(torch.cat([Hp, He], -1)))).squeeze(-1)
        ref_alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        ref_alpha = torch.nan_to_num(ref_alpha)
        h_a = (ref_alpha.unsqueeze(-1) * Hp).sum(1)
        ref_mid = module.mid_out(torch.cat([he, h_a], -1)).squeeze(-1)
        if fusion == "gate":
            G = torch.sigmoid(module.gate(torch.cat([Hp, h_a.unsqueeze(1).expand_as(Hp)], -1)))
            ref_high = module.high_out(Hp * (1 - G) + He * G)
        else:
            ref_high = module.high_out(torch.cat([Hp, He], -1))
        if match:
            ref_mid = ref_mid + (module.mid_match.weight[0] * he * h_a).sum(-1)
            ref_high = ref_high + (Hp * He) @ module.high_match.weight.T
        else:
            assert module.mid_match is None and module.high_match is None
    torch.testing.assert_close(alpha, ref_alpha)
    torch.testing.assert_close(mid, ref_mid)
    torch.testing.assert_close(high[mask], ref_high[mask])


def test_v2_adds_only_the_matching_weights():
    """v1 (the paper) and v2 share every parameter shape but the two matching
    layers; v1 is built without them."""
    v1 = dict(_module().named_parameters())
    v2 = dict(_module(match=True).named_parameters())
    assert set(v2) - set(v1) == {"mid_match.weight", "high_match.weight"}
    assert all(v1[k].shape == v2[k].shape for k in v1)
    model, batch = _tiny_model()
    assert model.get_ref("heads").attrs["match"] is False
    assert torch_module(model).mid_match is None and torch_module(model).high_match is None
    model, batch = _tiny_model(version=2)
    assert torch_module(model).mid_match is not None and torch_module(model).high_match is not None
    scores = model.predict(batch)
    assert scores.mid.shape == (3,) and scores.high.shape == (3, 5, 3)


@pytest.mark.parametrize("match", [False, True])
def test_pair_ranges_score_the_sentence_only(match):
    """A pair with a token range [start, end) (a sentence) is scored as if its
    text were those tokens of H: attention sums to one over the range, and
    positions outside it get α = 0 and high logits 0."""
    module = _module(match=match)
    X, lengths, names, name_lengths, name_concept, n_concepts, pair_doc, pair_concept = _inputs()
    with torch.no_grad():
        H = module.encode(X, lengths)
        h_e = module.encode_concepts(names, name_lengths, name_concept, n_concepts)
        starts, ends = torch.tensor([1, 0, 0]), torch.tensor([4, 2, 3])
        mid, high, alpha = module.score_pairs(H, lengths, h_e, pair_doc, pair_concept, starts, ends)
        for p in range(3):
            s, e, d = int(starts[p]), int(ends[p]), int(pair_doc[p])
            sub = H[d : d + 1, s:e]
            ref_mid, ref_high, ref_alpha = module.score_pairs(
                sub, torch.tensor([e - s]), h_e, torch.tensor([0]), pair_concept[p : p + 1]
            )
            torch.testing.assert_close(alpha[p, s:e], ref_alpha[0])
            torch.testing.assert_close(mid[p], ref_mid[0])
            torch.testing.assert_close(high[p, s:e], ref_high[0])
            assert (alpha[p, :s] == 0).all() and (alpha[p, e:] == 0).all()
            assert (high[p, :s] == 0).all() and (high[p, e:] == 0).all()
        # without ranges: the whole doc, as before
        full = module.score_pairs(H, lengths, h_e, pair_doc, pair_concept)
        whole = module.score_pairs(H, lengths, h_e, pair_doc, pair_concept, torch.zeros(3, dtype=torch.long),
                                   lengths[pair_doc])
        for a, b in zip(full, whole):
            torch.testing.assert_close(a, b)
