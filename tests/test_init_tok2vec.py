"""`--paths.init_tok2vec` really loads the pretrained weights into every CPU
config's tok2vec. spaCy reads them only when the config's [pretraining]
section is filled; with an empty one it ignores them without a word, which is
what this test guards against."""
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.util import load_config

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("init_tok2vec")
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Aspirin can cause gastric ulcer.")
    doc.ents = [doc.char_span(0, 7, label="Chemical", kb_id="D001241"),
                doc.char_span(18, 31, label="Disease", kb_id="D014456")]
    DocBin(docs=[doc], store_user_data=True).to_disk(tmp / "train.spacy")
    vectors = spacy.blank("en")
    for i, word in enumerate(["aspirin", "can", "cause", "gastric", "ulcer", "."]):
        vectors.vocab.set_vector(word, numpy.full(8, i, dtype="f"))
    vectors.to_disk(tmp / "vectors")
    return tmp


def _tok2vec(nlp, config):
    """The layer [pretraining] names: a tok2vec pipe, or a component's inline tok2vec."""
    model = nlp.get_pipe(config["pretraining"]["component"]).model
    layer = config["pretraining"]["layer"]
    return model.get_ref(layer) if layer else model


def _shift_params(model) -> None:
    """Every parameter + 0.5: weights no fresh initialization gives."""
    for node in model.walk():
        for param in node.param_names:
            if node.has_param(param):
                node.set_param(param, node.get_param(param) + 0.5)


def _assert_same_params(loaded, donor) -> None:
    expected = [node.get_param(p) for node in donor.walk() for p in node.param_names if node.has_param(p)]
    got = [node.get_param(p) for node in loaded.walk() for p in node.param_names if node.has_param(p)]
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["ner_tok2vec", "ner_floret", "joint_tok2vec", "joint_floret", "gated_floret"])
def test_init_tok2vec_loads_the_weights(name, paths):
    overrides = {"paths.train": str(paths / "train.spacy"), "paths.dev": str(paths / "train.spacy"),
                 "paths.vectors": str(paths / "vectors") if "floret" in name else None}
    config = load_config(CONFIGS / f"{name}.cfg", overrides=overrides)
    if "kb" in config["paths"]:
        config["paths"]["kb"] = None
    # "pretrained" weights: a freshly initialized tok2vec with every parameter shifted
    donor = _tok2vec(init_nlp(config), config)
    _shift_params(donor)
    (paths / f"{name}.bin").write_bytes(donor.to_bytes())
    config["paths"]["init_tok2vec"] = str(paths / f"{name}.bin")
    loaded = _tok2vec(init_nlp(config), config)
    _assert_same_params(loaded, donor)


@pytest.fixture(scope="module")
def zh_train(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("init_tok2vec_zh")
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}})
    doc = nlp.make_doc("患者出现胃癌和腹痛")
    doc.spans["nested"] = [doc.char_span(4, 6, label="dis"), doc.char_span(7, 9, label="sym"),
                           doc.char_span(4, 5, label="bod")]
    DocBin(docs=[doc]).to_disk(tmp / "train.spacy")
    return tmp / "train.spacy"


@pytest.mark.parametrize("name", ["nested_zh_bigram", "spancat_zh_bigram"])
def test_zh_pretrain_weights_load(name, zh_train, tmp_path):
    """What `spacy pretrain configs/pretrain_zh_bigram.cfg` writes (its tok2vec
    pipe's weights) loads into both Chinese bigram recognizers' inline tok2vec."""
    pre = load_config(CONFIGS / "pretrain_zh_bigram.cfg")
    donor = spacy.util.load_model_from_config(pre, auto_fill=True).get_pipe("tok2vec").model
    doc = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "char"}}}).make_doc("胃癌")
    donor.initialize(X=[doc])
    _shift_params(donor)
    (tmp_path / "zh.bin").write_bytes(donor.to_bytes())
    overrides = {"paths.train": str(zh_train), "paths.dev": str(zh_train),
                 "paths.init_tok2vec": str(tmp_path / "zh.bin")}
    config = load_config(CONFIGS / f"{name}.cfg", overrides=overrides)
    loaded = _tok2vec(init_nlp(config), config)
    _assert_same_params(loaded, donor)
