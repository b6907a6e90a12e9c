"""medlink.CharBigramEmbed.v1: bigram IDs, shapes, context sensitivity, round trip."""
import numpy
import spacy
from spacy.util import registry
from thinc.api import fix_random_seed

from spacy_medlink.ml.char_ngrams import bigram_ids


def _embed():
    return registry.architectures.get("medlink.CharBigramEmbed.v1")(
        width=8, attrs=["NORM", "SHAPE"], rows=[100, 10], bigram_rows=200)


def test_bigram_ids_depend_on_neighbours_and_order():
    ids = bigram_ids(numpy.asarray([5, 6, 5]))
    assert ids.shape == (3, 2)
    assert ids[1, 0] == bigram_ids(numpy.asarray([5, 6]))[1, 0]  # (5, 6) as a left bigram of 6
    assert ids[0, 1] != ids[1, 0]  # right bigram of 5 and left bigram of 6 are distinct features
    assert bigram_ids(numpy.asarray([], dtype="uint64")).shape == (0, 2)


def test_same_character_differs_by_context():
    nlp = spacy.blank("zh")
    fix_random_seed(0)
    model = _embed()
    docs = [nlp.make_doc("肺癌"), nlp.make_doc("胃癌"), nlp.make_doc("")]
    model.initialize(X=docs[:2])
    out = model.predict(docs)
    assert out[0].shape == (2, 8) and out[2].shape == (0, 8)
    assert not numpy.allclose(out[0][1], out[1][1])  # 癌 after 肺 vs after 胃
    clone = _embed().from_bytes(model.to_bytes())
    assert numpy.allclose(clone.predict(docs[:1])[0], out[0])
