"""medlink_hier_linker, in the manner of spaCy's test_spancat.py: every
architecture and set-up learns a tiny set (2 types, 3 concepts) to
perfection, targets and the batch softmax columns, serialization round
trips, the KB for a concept EL never saw, and the config files."""
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from thinc.api import Adam, fix_random_seed

from spacy_medlink.ml.hier_linker import HierInput
from spacy_medlink.ml.hier_module import HierLinkerModule, hier_loss, path_spans

from .helpers import TINY_TOK2VEC, make_examples

CONFIGS = Path(__file__).parents[2] / "configs"
PIPE = "medlink_hier_linker"

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


def _model_config(architecture="hierarchical", setup="PE", task="EL", shared_loss="all", use_crf=True):
    return {
        "@architectures": "medlink.HierLinker.v1",
        "architecture": architecture,
        "setup": setup,
        "task": task,
        "lstm_width": 32,
        "lstm_depth": 1,
        "task_width": 32,
        "task_depth": 1,
        "dropout": 0.0,
        "shared_loss": shared_loss,
        "use_crf": use_crf,
        "tok2vec": TINY_TOK2VEC,
    }


def _make_nlp(tag_scheme="BILUO", **model):
    nlp = spacy.blank("en")
    nlp.add_pipe(PIPE, config={"model": _model_config(**model), "tag_scheme": tag_scheme, "use_abbreviations": False})
    return nlp


def _train(nlp, examples, n_iter=30, kb_path=None):
    if kb_path is not None:
        nlp.config["initialize"]["components"][PIPE] = {"kb_path": str(kb_path)}
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def _linked(doc):
    return [(e.text, e.label_, e.kb_id_, e._.medlink_score, e._.medlink_candidates) for e in doc.ents]


def ent_outputs(doc):
    return [(e.start_char, e.end_char, e.label_, e.kb_id_) for e in doc.ents]


@pytest.fixture(scope="module")
def trained(kb_dir):
    nlp = _make_nlp()
    return _train(nlp, make_examples(nlp, TRAIN_DATA), kb_path=kb_dir)


def test_initialize_infers_labels():
    nlp = _make_nlp(tag_scheme="BIO")
    nlp.initialize(lambda: make_examples(nlp, TRAIN_DATA))
    hl = nlp.get_pipe(PIPE)
    assert hl.labels == ("Chemical", "Disease")
    assert hl.concepts == ("D001241", "D007052", "D014456")
    assert hl.mention_tags == ("O", "B-ENTITY", "I-ENTITY")
    assert hl.tasks == ("MR", "ET", "EL") and hl.setup == "PE"


def test_targets_pt_and_pe():
    """MR tags drop the type; EL's nil covers O tokens and a mention without
    an ID; EL's targets index the batch's columns, nil first."""
    data = TRAIN_DATA + [("An ulcer was seen.", [(3, 8, "Disease", "")])]
    for setup in ("PT", "PE"):
        nlp = _make_nlp(setup=setup)
        examples = make_examples(nlp, data)
        nlp.initialize(lambda: examples)
        hl = nlp.get_pipe(PIPE)
        gold, spans, columns = hl._targets([examples[0], examples[-1]])
        assert [hl.mention_tags[i] for i in gold["mr"][1, :5]] == ["O", "U-ENTITY", "O", "O", "O"]
        assert gold["mr"][1, 5] == -1  # padding
        assert columns.tolist() == [0, 1, 3]  # nil, D001241, D014456: the concepts of these two docs
        if setup == "PT":
            assert [hl.entity_tags[i] for i in gold["et"][0, :5]] == ["U-Chemical", "O", "O", "B-Disease", "L-Disease"]
            assert gold["el"][0, :5].tolist() == [1, 0, 0, 2, 2]
            assert gold["el"][1, :5].tolist() == [0, 0, 0, 0, 0]  # the ID-less mention is nil
            assert spans is None
        else:
            assert spans.tolist() == [[0, 0, 1], [0, 3, 5], [1, 1, 2]]
            assert gold["et"].tolist() == [0, 1, 1]
            assert gold["el"].tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    "architecture,setup,shared_loss,use_crf,tag_scheme",
    [
        ("hierarchical", "PE", "all", True, "BILUO"),
        ("hierarchical", "PT", "all", True, "BILUO"),
        ("hierarchical", "PE", "el", False, "BIO"),
        ("flat", "PT", "all", False, "BIO"),
        ("flat", "PE", "all", True, "BILUO"),
    ],
)
def test_overfits_tiny_set(architecture, setup, shared_loss, use_crf, tag_scheme):
    nlp = _make_nlp(tag_scheme=tag_scheme, architecture=architecture, setup=setup, shared_loss=shared_loss,
                    use_crf=use_crf)
    examples = make_examples(nlp, TRAIN_DATA)
    _train(nlp, examples, n_iter=40)
    for text, ents in TRAIN_DATA:
        doc = nlp(text)
        assert ent_outputs(doc) == [(s, e, label, kb) for s, e, label, kb in ents]
        assert [(s.start_char, s.end_char) for s in doc.spans["medlink_mentions"]] == [(s, e) for s, e, _, _ in ents]
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and scores["nen_f"] == 1.0 and scores["mr_f"] == 1.0


@pytest.mark.parametrize("task", ["MR", "ET", "EL"])
def test_single_task_pt(task):
    """One task alone: MR writes mentions only, ET typed entities without
    concepts, EL entities from its runs of one concept."""
    nlp = _make_nlp(architecture="single", setup="PT", task=task)
    examples = make_examples(nlp, TRAIN_DATA)
    _train(nlp, examples, n_iter=40)
    hl = nlp.get_pipe(PIPE)
    assert hl.tasks == (task,)
    doc = nlp(TRAIN_DATA[0][0])
    gold = TRAIN_DATA[0][1]
    if task == "MR":
        assert not doc.ents
        assert [(s.start_char, s.end_char) for s in doc.spans["medlink_mentions"]] == [(s, e) for s, e, _, _ in gold]
    elif task == "ET":
        assert ent_outputs(doc) == [(s, e, label, "") for s, e, label, _ in gold]
        assert "medlink_mentions" not in doc.spans
    else:
        assert ent_outputs(doc) == [(s, e, label, kb) for s, e, label, kb in gold]
    scores = nlp.evaluate(examples)
    assert ("mr_f" in scores) == (task == "MR")


def test_builder_rejects_bad_settings():
    with pytest.raises(ValueError, match="single-task PE"):
        _make_nlp(architecture="single", setup="PE", task="EL")
    with pytest.raises(ValueError, match="untrained"):
        _make_nlp(architecture="single", setup="PT", task="MR", shared_loss="el")
    with pytest.raises(ValueError, match="architecture"):
        _make_nlp(architecture="deep")
    with pytest.raises(ValueError, match="task_weights"):
        spacy.blank("en").add_pipe(PIPE, config={"model": _model_config(), "task_weights": {"NER": 1.0}})


def _module(architecture="hierarchical", setup="PT", shared_loss="all"):
    torch.manual_seed(0)
    return HierLinkerModule(
        6, mr_tags=["O", "B-ENTITY", "I-ENTITY"], et_tags=["O", "B-X", "I-X"], n_types=1, n_concepts=5,
        tag_scheme="BIO", architecture=architecture, setup=setup, task="EL", lstm_width=8, lstm_depth=1,
        task_width=8, task_depth=1, dropout=0.0, shared_loss=shared_loss, use_crf=False,
    )


def test_batch_columns_are_the_full_softmax_restricted():
    """EL's logits over the batch's columns are those columns of the full layer."""
    module = _module().train()
    X, lengths = torch.randn(2, 4, 6), torch.tensor([4, 2])
    columns = torch.tensor([0, 2, 4])
    el_cols = module(X, lengths, columns=columns)[2]
    el_full = module(X, lengths)[2]
    assert torch.allclose(el_cols[0], el_full[0][:, columns], atol=1e-6)
    assert torch.all(el_cols[1, 2:] == 0)  # padding


def test_nil_weight_scales_nil_tokens():
    """The loss is the class-weighted mean cross-entropy, nil at nil_weight."""
    module = _module().train()
    X, lengths = torch.randn(1, 3, 6), torch.tensor([3])
    out = module(X, lengths, columns=torch.tensor([0, 1]))
    el = out[2]
    gold = torch.tensor([[0, 1, 0]])
    from spacy_medlink.ml.scores import HierScores

    scores = HierScores(el=el, lengths=lengths)
    loss, parts = hier_loss(scores, {"el": gold}, nil_weight=0.125)
    logp = torch.log_softmax(el[0], dim=-1)
    w = torch.tensor([0.125, 1.0, 0.125])
    expected = -(w * logp[torch.arange(3), gold[0]]).sum() / w.sum()
    assert torch.allclose(loss, expected) and parts == {"EL": pytest.approx(float(expected.detach()))}


def test_shared_loss_el_stops_lower_gradients():
    """shared_loss='el': MR's loss moves MR's own layers, not the shared BiLSTM."""
    for shared_loss, reaches_shared in (("all", True), ("el", False)):
        module = _module(shared_loss=shared_loss).train()
        out = module(torch.randn(1, 4, 6), torch.tensor([4]))
        out[0].sum().backward()  # MR emissions only
        grad = module.shared.forward_layers[0].weight_ih_l0.grad
        assert (grad is not None and bool(grad.abs().sum() > 0)) == reaches_shared
        assert module.encoders["MR"].lstm.forward_layers[0].weight_ih_l0.grad is not None


def test_hierarchy_shortcuts():
    """ET's encoder reads shared ⊕ MR's output, EL's reads shared ⊕ ET's."""
    module = _module()
    assert module.encoders["MR"].n_lower == 0
    assert module.encoders["ET"].n_lower == 8 and module.encoders["EL"].n_lower == 8
    flat = _module(architecture="flat")
    assert not flat.encoders


def test_path_spans():
    tags = ["O", "B-ENTITY", "I-ENTITY", "L-ENTITY", "U-ENTITY"]
    assert path_spans([4, 0, 1, 2, 3, 0], tags, "BILUO") == [(0, 1), (2, 5)]
    assert path_spans([1, 2, 1, 0], ["O", "B-ENTITY", "I-ENTITY"], "BIO") == [(0, 2), (2, 3)]


def test_kb_for_unseen_concept(trained):
    """A mention EL is unsure of goes to the KB (threshold > 1: always)."""
    hl = trained.get_pipe(PIPE)
    old = dict(hl.cfg)
    try:
        hl.cfg["men_threshold"] = 1.1
        text = "Aspirin can cause gastric ulcer in elderly patients."
        doc = trained(text)
        # the KB's exact name wins ("gastric ulcer" is its own concept there)
        assert [e.kb_id_ for e in doc.ents] == ["D001241", "D013276"]
        assert all(e._.medlink_candidates for e in doc.ents)
        hl.cfg["rerank_weight"] = 5.0  # EL is sure of D014456, which the KB also found
        assert [e.kb_id_ for e in trained(text).ents] == ["D001241", "D014456"]
    finally:
        hl.cfg.update(old)


def test_serialization_round_trips(trained, tmp_path):
    text = TRAIN_DATA[1][0]
    expected = _linked(trained(text))
    trained.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert _linked(loaded(text)) == expected
    assert loaded.get_pipe(PIPE).generator is not None
    again = spacy.blank("en")
    again.add_pipe(PIPE, config={"model": _model_config(), "use_abbreviations": False})
    again.from_bytes(trained.to_bytes())
    assert _linked(again(text)) == expected


def test_empty_docs(trained):
    docs = list(trained.pipe(["", TRAIN_DATA[2][0]]))
    assert not docs[0].ents and list(docs[0].spans["medlink_mentions"]) == []
    assert [e.kb_id_ for e in docs[1].ents] == ["D007052", "D001241"]


@pytest.mark.parametrize("name", ["hier_tok2vec.cfg", "hier_floret.cfg", "hier_floret_dict.cfg", "hier_trf.cfg",
                                  "hier_medmentions_tok2vec.cfg"])
def test_configs_resolve(name):
    from spacy.util import load_config

    config = load_config(CONFIGS / name)
    assert config["components"]["hier_linker"]["factory"] == PIPE
    if name != "hier_trf.cfg":
        nlp = spacy.util.load_model_from_config(config, auto_fill=True)
        assert PIPE in nlp.pipe_names or "hier_linker" in nlp.pipe_names


def test_tune_threshold_sweeps_hier_linker(trained):
    """`tune threshold` sets the hier linker's KB settings like the joint tagger's."""
    from spacy_medlink.cli.tune import sweep_settings

    examples = make_examples(trained, TRAIN_DATA)
    rows = sweep_settings(trained, PIPE, examples, [{"men_threshold": 0.0, "rerank_weight": 0.0},
                                                     {"men_threshold": 1.1, "rerank_weight": 0.0}])
    assert rows[0]["nen_f"] == 1.0  # EL decides: the training concepts
    assert rows[1]["nen_f"] < 1.0  # the KB decides "gastric ulcer" as D013276
    assert trained.get_pipe(PIPE).cfg["men_threshold"] == 0.5  # restored


def test_el_softmax_columns():
    """batch: nil + the batch's concepts (+ sampled negatives); full: no columns."""
    nlp = _make_nlp()
    examples = make_examples(nlp, TRAIN_DATA)
    nlp.initialize(lambda: examples)
    hl = nlp.get_pipe(PIPE)
    _, _, columns = hl._targets(examples[:1])
    assert columns.tolist() == [0, 1, 3]
    hl.cfg["el_negatives"] = 1
    numpy.random.seed(0)
    gold, _, columns = hl._targets(examples[:1])
    assert columns.tolist() == [0, 1, 2, 3]  # the one concept left, drawn
    assert gold["el"].tolist() == [1, 3]
    hl.cfg["el_negatives"] = 0
    hl.cfg["el_softmax"] = "full"
    gold, _, columns = hl._targets(examples[:1])
    assert columns is None and gold["el"].tolist() == [1, 3]  # concept tags themselves
    with pytest.raises(ValueError, match="el_softmax"):
        spacy.blank("en").add_pipe(PIPE, config={"model": _model_config(), "el_softmax": "sampled"})


def test_overfits_with_full_softmax():
    nlp = spacy.blank("en")
    nlp.add_pipe(PIPE, config={"model": _model_config(setup="PT"), "el_softmax": "full", "use_abbreviations": False})
    examples = make_examples(nlp, TRAIN_DATA)
    _train(nlp, examples, n_iter=40)
    assert nlp.evaluate(examples)["nen_f"] == 1.0


def test_get_loss_follows_the_forward_columns():
    """With sampled negatives, get_loss maps EL's targets through the columns
    the forward pass used, not through a fresh draw."""
    nlp = _make_nlp()
    examples = make_examples(nlp, TRAIN_DATA)
    nlp.initialize(lambda: examples)
    hl = nlp.get_pipe(PIPE)
    hl.cfg["el_negatives"] = 1
    numpy.random.seed(0)
    gold, spans, columns = hl._targets(examples[:1])
    scores, _ = hl.model.begin_update(HierInput([eg.predicted for eg in examples[:1]], spans, columns))
    assert scores.columns.tolist() == columns.tolist()
    numpy.random.seed(1)  # a fresh draw would differ; get_loss must not draw
    again, _, _ = hl._targets(examples[:1], columns=scores.columns)
    assert again["el"].tolist() == gold["el"].tolist()
    loss, d_scores = hl.get_loss(examples[:1], scores)
    expected, _ = hl._loss_and_gradient(scores, gold)
    assert loss == pytest.approx(expected[0])
