"""medlink_nested_recognizer, in the manner of spaCy's test_spancat.py: a
tiny nested set learned to perfection (CRF and Biaffine decoders), the
targets, serialization round trips, and configuration errors."""
import warnings

import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import Adam, fix_random_seed

from spacy_medlink.ml.nested_recognizer import tag_path_spans
from spacy_medlink.pipeline._nested_targets import nested_targets

from .helpers import TINY_TOK2VEC

KEY = "nested"
QUERIES = {"dis": "在文本中找出疾病", "bod": "在文本中找出身体部位"}
# (text, [(start, end exclusive, label)]): 肺 (bod) inside 肺癌 (dis), as in CMeEE
TRAIN_DATA = [
    ("患者肺癌三年", [(2, 4, "dis"), (2, 3, "bod")]),
    ("胃溃疡加重", [(0, 3, "dis"), (0, 1, "bod")]),
    ("肝脏正常", [(0, 2, "bod")]),
    ("患者发热", []),
]


def _model(**overrides):
    model = {
        "@architectures": "medlink.NestedRecognizer.v1",
        "hidden_width": 32, "lstm_depth": 1, "type_width": 8, "aux_lstm_width": 16,
        "biaffine_width": 16, "max_span_length": 5, "dropout": 0.0, "tok2vec": TINY_TOK2VEC,
    }
    model.update(overrides)
    return model


def _make_nlp(**config):
    nlp = spacy.blank("zh")
    config.setdefault("queries", QUERIES)
    nlp.add_pipe("medlink_nested_recognizer", config={"model": _model(), **config})
    return nlp


def _examples(nlp, data=TRAIN_DATA):
    examples = []
    for text, spans in data:
        ref = nlp.make_doc(text)
        ref.spans[KEY] = [ref.char_span(s, e, label=label) for s, e, label in spans]
        examples.append(Example(nlp.make_doc(text), ref))
    return examples


def _train(nlp, examples, n_iter=60):
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def _outputs(nlp, texts):
    return [sorted((s.start_char, s.end_char, s.label_) for s in doc.spans[KEY]) for doc in nlp.pipe(texts)]


def _gold(data=TRAIN_DATA):
    return [sorted(spans) for _, spans in data]


@pytest.mark.parametrize("tag_scheme", ["BIO", "BIOES"])
@pytest.mark.parametrize("loss_weighting", ["paper", "uncertainty"])
def test_overfit_nested_crf(tag_scheme, loss_weighting):
    nlp = _train(_make_nlp(tag_scheme=tag_scheme, loss_weighting=loss_weighting), _examples(spacy.blank("zh")))
    assert _outputs(nlp, [t for t, _ in TRAIN_DATA]) == _gold()
    doc = nlp("患者肺癌三年")
    assert [(e.text, e.label_) for e in doc.ents] == [("肺癌", "dis")]  # the outermost
    scores = nlp.evaluate(_examples(nlp))
    assert scores["spans_nested_f"] == 1.0
    assert scores["spans_nested_nested_r"] == 1.0


def test_overfit_biaffine_decoder():
    nlp = _train(_make_nlp(decoder="biaffine"), _examples(spacy.blank("zh")))
    assert _outputs(nlp, [t for t, _ in TRAIN_DATA]) == _gold()


def test_crf_objective_skips_biaffine():
    nlp = _make_nlp(objective="crf")
    _train(nlp, _examples(nlp), n_iter=1)
    pipe = nlp.get_pipe("medlink_nested_recognizer")
    scores, _ = pipe.model.begin_update((list(nlp.pipe(["肺癌"])), pipe.query_docs()))
    assert scores.biaffine is None


def test_loss_weights_move_and_are_reported():
    nlp = _make_nlp(loss_weighting="paper")
    examples = _examples(nlp)
    _train(nlp, examples, n_iter=1)
    optimizer = Adam(0.05)
    losses = {}
    for _ in range(20):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    name = "medlink_nested_recognizer"
    alpha, beta = losses[f"{name}_alpha"], losses[f"{name}_beta"]
    assert alpha + beta == pytest.approx(1.0)
    assert alpha != pytest.approx(0.5, abs=1e-3)  # learned, not fixed
    assert losses[f"{name}_crf"] > 0 and losses[f"{name}_biaffine"] > 0


def test_fgm_adds_adversarial_pass():
    nlp = _make_nlp(fgm_epsilon=0.5)
    examples = _examples(nlp)
    _train(nlp, examples, n_iter=1)
    losses = {}
    nlp.update(examples, sgd=Adam(0.01), losses=losses)
    assert losses["medlink_nested_recognizer_fgm"] > 0


def test_targets_nested_types_and_band():
    nlp = _make_nlp(tag_scheme="BIOES")
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("medlink_nested_recognizer")
    assert pipe.labels == ("bod", "dis")
    tags, spans = nested_targets(examples[:1], pipe.key, pipe.labels, "BIOES", 7, 3)
    # "患者肺癌三年": bod 肺 (U), dis 肺癌 (B L); padding unknown
    O, B, I, L, U = range(5)
    assert tags[0, 0].tolist() == [O, O, U, O, O, O, -1]
    assert tags[0, 1].tolist() == [O, O, B, L, O, O, -1]
    assert spans[0, 1, 2, 1] == 1 and spans[0, 0, 2, 0] == 1
    assert spans[0, 1, 2, 0] == 0  # 肺 is not a dis
    assert spans[0, 0, 5, 1] == -1  # past the end
    assert (spans[0] == 1).sum() == 2


def test_unannotated_reference_is_unknown():
    nlp = _make_nlp()
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("medlink_nested_recognizer")
    bare = Example(nlp.make_doc("肺癌"), nlp.make_doc("肺癌"))
    tags, spans = nested_targets([bare], pipe.key, pipe.labels, "BIO", 2, 2)
    assert (tags == -1).all() and (spans == -1).all()


def test_tag_path_spans():
    assert tag_path_spans([0, 1, 2, 0, 1, 1], "BIO") == [(1, 3), (4, 5), (5, 6)]
    assert tag_path_spans([4, 1, 2, 3, 0], "BIOES") == [(0, 1), (1, 4)]


def test_serialization_round_trips(tmp_path):
    nlp = _train(_make_nlp(), _examples(spacy.blank("zh")), n_iter=30)
    texts = [t for t, _ in TRAIN_DATA]
    expected = _outputs(nlp, texts)
    nlp.to_disk(tmp_path / "nlp")
    assert _outputs(spacy.load(tmp_path / "nlp"), texts) == expected
    nlp2 = _make_nlp()
    nlp2.get_pipe("medlink_nested_recognizer").from_bytes(nlp.get_pipe("medlink_nested_recognizer").to_bytes())
    assert _outputs(nlp2, texts) == expected
    assert b"pickle" not in (tmp_path / "nlp" / "medlink_nested_recognizer" / "model").read_bytes()[:0]


def test_decoder_is_chosen_at_load(tmp_path):
    """A model trained with both heads decodes with either: the config given to spacy.load
    wins over the saved cfg for the decoding settings, and the weights stay the trained ones."""
    nlp = _train(_make_nlp(), _examples(spacy.blank("zh")))
    nlp.to_disk(tmp_path / "nlp")
    texts = [t for t, _ in TRAIN_DATA]
    override = {"components": {"medlink_nested_recognizer": {"decoder": "biaffine", "set_ents": False}}}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        loaded = spacy.load(tmp_path / "nlp", config=override)
    said = sorted(str(w.message) for w in said if "from the config" in str(w.message))
    assert len(said) == 2 and "decoder = 'biaffine' from the config, not the 'crf' saved" in said[0]
    pipe = loaded.get_pipe("medlink_nested_recognizer")
    assert pipe.cfg["decoder"] == "biaffine" and pipe.model.get_ref("heads").attrs["biaffine_predict"]
    assert _outputs(loaded, texts) == _gold()  # the trained Biaffine head, not a fresh one
    assert not loaded("患者肺癌三年").ents
    assert spacy.load(tmp_path / "nlp").get_pipe("medlink_nested_recognizer").cfg["decoder"] == "crf"


def test_empty_and_whitespace_docs():
    nlp = _train(_make_nlp(), _examples(spacy.blank("zh")), n_iter=2)
    docs = list(nlp.pipe(["", "   ", "肺癌"]))
    assert list(docs[0].spans[KEY]) == [] and list(docs[1].spans[KEY]) == []


def test_predict_chunks_keep_doc_order():
    nlp = _train(_make_nlp(), _examples(spacy.blank("zh")), n_iter=60)
    texts = ["肝脏正常" * 30, "患者肺癌三年", "胃溃疡加重"]
    batch = _outputs(nlp, texts)
    assert batch == [_outputs(nlp, [t])[0] for t in texts]


def test_missing_query_is_an_error():
    nlp = _make_nlp(queries={"dis": "在文本中找出疾病"})
    with pytest.raises(ValueError, match="no query for label"):
        nlp.initialize(lambda: _examples(nlp))


@pytest.mark.parametrize("config", [{"tag_scheme": "IOB"}, {"objective": "crf", "decoder": "biaffine"},
                                    {"loss_weighting": "sum"}, {"fgm_epsilon": -1.0}])
def test_bad_config(config):
    with pytest.raises(ValueError):
        _make_nlp(**config)


def test_listener_tok2vec_is_rejected():
    nlp = spacy.blank("zh")
    nlp.add_pipe("tok2vec")
    model = _model(tok2vec={"@architectures": "spacy.Tok2VecListener.v1", "width": 96})
    with pytest.raises(ValueError, match="listener"):
        nlp.add_pipe("medlink_nested_recognizer", config={"model": model, "queries": QUERIES})


CONFIGS = __import__("pathlib").Path(__file__).parents[2] / "configs"


def test_configs_pass_debug_config():
    from spacy.cli.debug_config import debug_config

    cfgs = sorted(CONFIGS.glob("nested_*.cfg")) + sorted(CONFIGS.glob("spancat_*.cfg"))
    assert len(cfgs) >= 6
    for cfg in cfgs:
        debug_config(cfg, overrides={"paths.train": "train.spacy", "paths.dev": "dev.spacy"})


def test_zh_config_trains_and_traces_loss_weights(tmp_path):
    """configs/nested_zh_tok2vec.cfg as shipped: it learns on the tiny set
    and the before_update callback writes alpha and beta."""
    from spacy.util import load_config, load_model_from_config

    trace = tmp_path / "weights.jsonl"
    config = load_config(CONFIGS / "nested_zh_tok2vec.cfg", overrides={"paths.loss_trace": str(trace)})
    config["components"]["nested"]["queries"] = QUERIES
    nlp = load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    callback = nlp.config.interpolate()["training"]["before_update"]
    from spacy.util import registry

    callback = registry.resolve({"cb": callback})["cb"]
    losses = []
    for step in range(3):
        callback(nlp, {"step": step * 100, "epoch": 0})
        losses.append(nlp.update(examples, sgd=optimizer, losses={})["nested"])
    assert losses[-1] < losses[0]
    rows = [__import__("json").loads(line) for line in trace.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 100, 200]
    assert rows[0]["alpha"] == 0.5 and rows[-1]["alpha"] != 0.5
    assert all(r["alpha"] + r["beta"] == pytest.approx(1.0) for r in rows)


def test_ensemble_averages_members_and_round_trips(tmp_path):
    from spacy_medlink.cli.ensemble import assemble_ensemble
    from spacy_medlink.ml.nested_recognizer import ensemble_members

    paths = []
    for seed in (0, 1):
        nlp = _make_nlp()
        examples = _examples(nlp)
        fix_random_seed(seed)
        nlp.initialize(lambda: examples)
        optimizer = Adam(0.01)
        for _ in range(60):
            nlp.update(examples, sgd=optimizer, losses={})
        nlp.to_disk(tmp_path / f"m{seed}")
        paths.append(tmp_path / f"m{seed}")
    ensemble = assemble_ensemble(paths)
    name = "medlink_nested_recognizer"
    pipe = ensemble.get_pipe(name)
    assert len(ensemble_members(pipe.model)) == 2
    docs = [ensemble.make_doc(t) for t, _ in TRAIN_DATA]
    (_, averaged), = pipe.predict(docs[:1])
    singles = [spacy.load(p).get_pipe(name).predict(docs[:1])[0][1] for p in paths]
    expected = (singles[0].emissions + singles[1].emissions) / 2
    assert numpy.allclose(averaged.emissions, expected, atol=1e-5)
    texts = [t for t, _ in TRAIN_DATA]
    assert _outputs(ensemble, texts) == _gold()
    ensemble.to_disk(tmp_path / "ens")
    assert _outputs(spacy.load(tmp_path / "ens"), texts) == _gold()
    with pytest.raises(ValueError, match="not trained"):
        ensemble.update(_examples(ensemble), sgd=Adam(0.01))
