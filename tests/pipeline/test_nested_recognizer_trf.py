"""medlink.NestedRecognizerTransformer.v1 on a tiny random BERT built in a
temporary folder (no hub): sentence-pair input, overfitting, FGM on the word
embeddings, and a pipeline that saves and loads without the model folder."""
import shutil

import pytest
import spacy
from thinc.api import Adam, fix_random_seed

from .test_nested_recognizer import QUERIES, TRAIN_DATA, _examples, _gold, _outputs

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_bert")
    chars = sorted({c for text, _ in TRAIN_DATA for c in text} | {c for q in QUERIES.values() for c in q} | {","})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                    encoding="utf8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), tokenize_chinese_chars=True)
    tokenizer.save_pretrained(path)
    config = transformers.BertConfig(vocab_size=len(chars) + 5, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(path)
    return path


def _make_nlp(tiny_bert, **config):
    nlp = spacy.blank("zh")
    model = {"@architectures": "medlink.NestedRecognizerTransformer.v1", "name": str(tiny_bert), "window": 4,
             "pairs_per_batch": 5, "type_width": 8, "aux_lstm_width": 16, "biaffine_width": 16,
             "max_span_length": 5, "dropout": 0.0}
    nlp.add_pipe("medlink_nested_recognizer", config={"model": model, "queries": QUERIES, **config})
    return nlp


def _train(nlp, n_iter=80, lr=0.003):
    examples = _examples(nlp)
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    optimizer = Adam(lr)
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def test_pair_encoding_reads_context_tokens_only(tiny_bert):
    nlp = _make_nlp(tiny_bert)
    nlp.initialize(lambda: _examples(nlp))
    pipe = nlp.get_pipe("medlink_nested_recognizer")
    module = pipe.model.get_ref("heads").layers[0].shims[0]._model
    words = [["患", "者", "肺", "癌", "三", "年"], ["胃"]]  # 6 tokens: two windows of 4
    queries = [[t.text for t in q] for q in pipe.query_docs()]
    h = module.encode(words, queries)
    assert h.shape == (2, 2, 6, 32)
    assert (h[1, :, 1:] == 0).all()  # padding
    assert (h[0].abs().sum(-1) > 0).all()  # every context token, in both windows, has a vector
    assert not module.encode([["肺", "癌"]], queries[:1]).equal(module.encode([["肺", "癌"]], queries[1:]))


def test_overfit_and_round_trip(tiny_bert, tmp_path):
    nlp = _train(_make_nlp(tiny_bert))
    texts = [t for t, _ in TRAIN_DATA]
    assert _outputs(nlp, texts) == _gold()
    nlp.to_disk(tmp_path / "nlp")
    moved = tmp_path / "moved_bert"
    shutil.copytree(tiny_bert, moved)
    shutil.rmtree(tiny_bert)  # the saved pipeline must not need the model folder
    try:
        assert _outputs(spacy.load(tmp_path / "nlp"), texts) == _gold()
    finally:
        shutil.copytree(moved, tiny_bert)


def test_fgm_perturbs_and_restores_word_embeddings(tiny_bert):
    nlp = _make_nlp(tiny_bert, fgm_epsilon=1.0)
    nlp.initialize(lambda: _examples(nlp))
    pipe = nlp.get_pipe("medlink_nested_recognizer")
    embeddings = pipe.model.get_ref("heads").layers[0].shims[0]._model.fgm_parameter()
    before = embeddings.detach().clone()
    losses = {}
    nlp.update(_examples(nlp), sgd=False, losses=losses)  # no step: the weights must come back unchanged
    assert losses["medlink_nested_recognizer_fgm"] > 0
    assert embeddings.detach().equal(before)
