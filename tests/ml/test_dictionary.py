"""medlink.DictionaryEmbed.v1: the dictionary tags embedded beside a tok2vec's embeddings."""

import pytest
import spacy
from spacy.training import Example

from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.name_matcher import NameMatcher
from spacy_medlink.tokenizer import biomed_nlp

TRAIN = [
    ("Lithium carbonate caused heart failure.", [(0, 17, "Chemical"), (25, 38, "Disease")]),
    ("Heart failure after lithium carbonate.", [(0, 13, "Disease"), (20, 37, "Chemical")]),
    ("No heart failure was seen.", [(3, 16, "Disease")]),
]


def _config(path):
    return {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "medlink.DictionaryEmbed.v1",
            "width": 32,
            "types": ["Chemical", "Disease"],
            "matcher_path": str(path),
            "feature_width": 8,
            "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 32, "attrs": ["NORM", "SHAPE"],
                      "rows": [500, 100], "include_static_vectors": False},
        },
        "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 32, "depth": 1, "window_size": 1,
                   "maxout_pieces": 2},
    }


@pytest.fixture
def matcher_path(tmp_path):
    kb = ConceptKB()
    kb.add(Concept("D1", "heart failure", (), ("Disease",)))
    kb.add(Concept("D2", "lithium carbonate", (), ("Chemical",)))
    path = tmp_path / "names.msgpack"
    NameMatcher.build(kb, biomed_nlp().tokenizer).to_disk(path)
    return path


def _nlp(matcher_path):
    nlp = spacy.blank("en")
    nlp.tokenizer = biomed_nlp().tokenizer
    nlp.add_pipe("tok2vec", config={"model": _config(matcher_path)})
    nlp.add_pipe("ner")
    return nlp


def _examples(nlp):
    out = []
    for text, ents in TRAIN:
        ref = nlp.make_doc(text)
        ref.ents = [ref.char_span(s, e, label=lab) for s, e, lab in ents]
        out.append(Example(nlp.make_doc(text), ref))
    return out


def test_overfits_and_round_trips_without_the_matcher_file(matcher_path, tmp_path):
    nlp = _nlp(matcher_path)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    texts = [t for t, _ in TRAIN]
    expected = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    assert expected == [[(t[s:e], lab) for s, e, lab in ents] for t, ents in TRAIN]
    nlp.to_disk(tmp_path / "model")
    matcher_path.unlink()  # the hashes travel inside the model
    loaded = spacy.load(tmp_path / "model")
    assert [[(e.text, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)] == expected
    tok2vec = loaded.get_pipe("tok2vec").model
    again = tok2vec.from_bytes(nlp.get_pipe("tok2vec").model.to_bytes())
    assert [t.tolist() for t in again.predict([loaded.make_doc(texts[0])])] == \
        [t.tolist() for t in nlp.get_pipe("tok2vec").model.predict([nlp.make_doc(texts[0])])]


def test_unknown_type_and_missing_matcher(matcher_path):
    nlp = spacy.blank("en")
    config = _config(matcher_path)
    config["embed"]["types"] = ["Gene"]
    nlp.add_pipe("tok2vec", config={"model": config})
    nlp.add_pipe("ner")
    with pytest.raises(ValueError, match="no names of type Gene"):
        nlp.initialize(lambda: _examples(nlp))
    nlp = spacy.blank("en")
    config = _config(matcher_path)
    config["embed"]["matcher_path"] = None
    nlp.add_pipe("tok2vec", config={"model": config})
    nlp.add_pipe("ner")
    with pytest.raises(ValueError, match="matcher_path"):
        nlp.initialize(lambda: _examples(nlp))


def test_copies_share_one_decoded_matcher(matcher_path, monkeypatch):
    """Copies of a model (an ensemble's members, each loaded with its own bytes) decode
    the matcher once between them, and each copy's calls reuse it."""
    nlp = _nlp(matcher_path)
    nlp.initialize(lambda: _examples(nlp))
    model = nlp.get_pipe("tok2vec").model
    copy = model.copy()
    copy.from_bytes(model.to_bytes())
    tags = [node for m in (model, copy) for node in m.walk() if node.name == "dictionary_tags"]
    assert len(tags) == 2 and tags[0].attrs["matcher_bytes"] is not tags[1].attrs["matcher_bytes"]
    decoded = []
    real = NameMatcher.from_bytes
    monkeypatch.setattr(NameMatcher, "from_bytes", classmethod(lambda cls, b: decoded.append(1) or real(b)))
    doc = nlp.make_doc(TRAIN[0][0])
    for _ in range(3):
        a, b = model.predict([doc]), copy.predict([doc])
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert len(decoded) <= 1  # at most once (none if an earlier call of this process decoded it)
