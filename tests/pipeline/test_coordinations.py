"""medlink_coordinations: an entity extended over the conjuncts before it."""
import spacy
from spacy.tokens import Span
from spacy.training import Example

from spacy_medlink.pipeline.coordinations import extend_coordinations

TEXT = "classical and Duarte galactosemia , brain , breast , and prostate cancer , patients and tumors ."


def _nlp(words=None):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("medlink_coordinations", name="coordinations")
    if words is not None:
        pipe.words = set(words)
    return nlp


def _doc(nlp, phrases):
    doc = nlp.make_doc(TEXT)
    toks = [t.text for t in doc]
    spans = []
    for phrase in phrases:
        parts = phrase.split()
        start = next(i for i in range(len(toks)) if toks[i:i + len(parts)] == parts)
        span = Span(doc, start, start + len(parts), label="Disease", kb_id="D" + str(start))
        span._.medlink_score = 0.5
        spans.append(span)
    doc.ents = spans
    return doc


def test_extends_over_known_conjuncts_only():
    nlp = _nlp(["classical", "brain", "breast", "patients"])
    doc = nlp.get_pipe("coordinations")(_doc(nlp, ["Duarte galactosemia", "prostate cancer", "tumors"]))
    assert [e.text for e in doc.ents] == ["classical and Duarte galactosemia", "brain , breast , and prostate cancer",
                                          "patients and tumors"]
    assert doc.ents[0].kb_id_ == "D2" and doc.ents[0]._.medlink_score == 0.5  # the head's concept and values
    nlp = _nlp(["classical"])
    doc = nlp.get_pipe("coordinations")(_doc(nlp, ["Duarte galactosemia", "prostate cancer", "tumors"]))
    assert [e.text for e in doc.ents] == ["classical and Duarte galactosemia", "prostate cancer", "tumors"]


def test_a_conjunct_in_another_entity_stays_there():
    nlp = _nlp(["classical", "brain", "breast"])
    doc = nlp.get_pipe("coordinations")(_doc(nlp, ["breast", "prostate cancer"]))
    assert [e.text for e in doc.ents] == ["breast", "prostate cancer"]


def test_off_changes_nothing():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("medlink_coordinations", config={"extend": False})
    pipe.words = {"classical"}
    doc = pipe(_doc(nlp, ["Duarte galactosemia"]))
    assert [e.text for e in doc.ents] == ["Duarte galactosemia"]


def test_initialize_reads_multiword_mention_starts():
    nlp = _nlp()
    gold = [_doc(nlp, ["classical and Duarte galactosemia", "prostate cancer"]),
            _doc(nlp, ["classical and Duarte galactosemia", "tumors"])]
    nlp.get_pipe("coordinations").initialize(lambda: [Example(d, d) for d in gold])
    assert nlp.get_pipe("coordinations").words == {"classical"}  # "prostate" once, "tumors" one word


def test_serialization_keeps_the_words(tmp_path):
    nlp = _nlp(["classical", "brain"])
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("coordinations").words == {"classical", "brain"}
    again = _nlp().from_bytes(nlp.to_bytes())
    assert again.get_pipe("coordinations").words == {"classical", "brain"}


def test_extend_coordinations_keeps_order_and_entities_without_conjuncts():
    nlp = _nlp()
    doc = _doc(nlp, ["Duarte galactosemia", "tumors"])
    assert [e.text for e in extend_coordinations(doc, set())] == ["Duarte galactosemia", "tumors"]
