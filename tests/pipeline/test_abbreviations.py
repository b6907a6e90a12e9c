"""medlink_abbreviations: short forms agree with their long forms in doc.ents."""
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example

from spacy_medlink.pipeline.abbreviations import agree

TEXT = ("Familial Mediterranean fever ( FMF ) is rare . FMF patients and lipoma preferred partner ( LPP ) ."
        " LPP was cloned . Deleted in colorectal cancer ( DCC ) is a gene . DCC is lost .")


def _doc(nlp, ents):
    """TEXT's doc with entities on the given phrases (first occurrence of each, or by token index)."""
    doc = nlp.make_doc(TEXT)
    words = [t.text for t in doc]
    spans = []
    for phrase, label, kb_id in ents:
        if isinstance(phrase, tuple):
            start, end = phrase
        else:
            parts = phrase.split()
            start = next(i for i in range(len(words)) if words[i:i + len(parts)] == parts)
            end = start + len(parts)
        span = Span(doc, start, end, label=label, kb_id=kb_id)
        span._.medlink_score = 0.9
        span._.medlink_candidates = [[kb_id, 0.9]]
        spans.append(span)
    doc.ents = spans
    return doc


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_abbreviations", name="abbreviations")
    return nlp


def _ents(doc):
    return [(e.text, e.start, e.label_, e.kb_id_) for e in doc.ents]


def test_short_forms_take_the_long_forms_entity(nlp):
    doc = _doc(nlp, [("Familial Mediterranean fever", "Disease", "D010505"), ("colorectal cancer", "Disease", "D015179")])
    doc = nlp.get_pipe("abbreviations")(doc)
    fmf = [e for e in doc.ents if e.text == "FMF"]
    assert [(e.label_, e.kb_id_) for e in fmf] == [("Disease", "D010505")] * 2  # in brackets and after
    assert fmf[1]._.medlink_score == 0.9 and fmf[1]._.medlink_candidates == [["D010505", 0.9]]
    # "colorectal cancer" only ends the long form "Deleted in colorectal cancer": DCC stays untagged
    assert not [e for e in doc.ents if e.text == "DCC"]


def test_short_forms_of_untagged_long_forms_are_removed(nlp):
    lpp = [i for i, t in enumerate(nlp.make_doc(TEXT)) if t.text == "LPP"]
    doc = _doc(nlp, [((lpp[1], lpp[1] + 1), "Disease", "D1"), ("DCC is", "Disease", "D2")])
    doc = nlp.get_pipe("abbreviations")(doc)
    # LPP's long form is no entity: LPP goes; "DCC is" overlaps nothing of its long form either,
    # but its text is not the short form, so it stays
    assert _ents(doc) == [("DCC is", len(nlp.make_doc(TEXT)) - 4, "Disease", "D2")]


def test_an_entity_in_the_way_is_kept(nlp):
    """An occurrence that an entity overlaps is left as it is."""
    doc = nlp.make_doc(TEXT)
    fmf = [i for i, t in enumerate(doc) if t.text == "FMF"]
    doc = _doc(nlp, [("Familial Mediterranean fever", "Disease", "D010505"), ((fmf[1], fmf[1] + 2), "Other", "X")])
    doc = nlp.get_pipe("abbreviations")(doc)
    assert ("FMF patients", fmf[1], "Other", "X") in _ents(doc)
    assert [e.start for e in doc.ents if e.text == "FMF"] == [fmf[0]]


@pytest.mark.parametrize("add,remove", [(False, False), (True, False), (False, True)])
def test_switches(add, remove):
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_abbreviations", config={"add_short_forms": add, "remove_short_forms": remove})
    lpp = [i for i, t in enumerate(nlp.make_doc(TEXT)) if t.text == "LPP"][1]
    doc = nlp.get_pipe("medlink_abbreviations")(
        _doc(nlp, [("Familial Mediterranean fever", "Disease", "D1"), ((lpp, lpp + 1), "Disease", "D2")]))
    texts = [e.text for e in doc.ents]
    assert (texts.count("FMF") == 2) is add
    assert ("LPP" not in texts) is remove


def test_agree_needs_no_pipeline(nlp):
    """`agree` is the whole rule: what the pipe does with the detector's definitions."""
    doc = _doc(nlp, [("Familial Mediterranean fever", "Disease", "D1")])
    long_form = (0, 3)
    shorts = [(i, i + 1) for i, t in enumerate(doc) if t.text == "FMF"]
    assert [e.text for e in agree(doc, [(long_form, shorts)])] == ["Familial Mediterranean fever", "FMF", "FMF"]
    assert [e.text for e in agree(doc, [(long_form, shorts)], add=False)] == ["Familial Mediterranean fever"]


def test_serialization_keeps_the_settings(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_abbreviations", config={"add_short_forms": False})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("medlink_abbreviations").cfg == {"add_short_forms": False, "remove_short_forms": True,
                                                            "exact_long_form": False}
    doc = _doc(loaded, [("Familial Mediterranean fever", "Disease", "D1")])
    assert [e.text for e in loaded.get_pipe("medlink_abbreviations")(doc).ents] == ["Familial Mediterranean fever"]


def test_scores_ner_on_the_final_entities(nlp):
    gold = _doc(nlp, [("Familial Mediterranean fever", "Disease", "D1")])
    gold.ents = list(gold.ents) + [Span(gold, i, i + 1, label="Disease", kb_id="D1")
                                   for i, t in enumerate(gold) if t.text == "FMF"]
    predicted = nlp.get_pipe("abbreviations")(_doc(nlp, [("Familial Mediterranean fever", "Disease", "D1")]))
    scores = nlp.get_pipe("abbreviations").score([Example(predicted, gold)])
    assert scores["ents_f"] == 1.0 and "nen_f" not in scores  # NEN is the recognizer's scorer's (its KB resolves IDs)


def test_exact_long_form_needs_the_entity_to_be_the_long_form():
    """"Deficiency of ... ( X )": the entity covers the long form, but X names its enzyme."""
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Deficiency of arylsulfatase A ( ARSA ) causes MLD . ARSA was low .")
    doc.ents = [Span(doc, 0, 4, label="Disease", kb_id="D007966")]
    definitions = [((2, 4), [(5, 6), (10, 11)])]
    assert [e.text for e in agree(doc, definitions)] == ["Deficiency of arylsulfatase A", "ARSA", "ARSA"]
    assert [e.text for e in agree(doc, definitions, exact=True)] == ["Deficiency of arylsulfatase A"]
    doc.ents = [Span(doc, 2, 4, label="Disease", kb_id="D007966")]
    assert [e.text for e in agree(doc, definitions, exact=True)] == ["arylsulfatase A", "ARSA", "ARSA"]


def test_a_use_inside_a_longer_word_or_a_long_form_is_no_use():
    """"CHD" in "AR-CHD" and in "autosomal recessive CHD" is not the short form of coronary heart disease."""
    nlp = spacy.blank("en")
    doc = nlp.make_doc("coronary heart disease ( CHD ) and autosomal recessive CHD ( AR-CHD ) . AR-CHD and CHD .")
    words = [t.text for t in doc]
    doc.ents = [Span(doc, 0, 3, label="Disease", kb_id="D003324")]
    chd = [i for i, w in enumerate(words) if w == "CHD"]
    definitions = [((0, 3), [(i, i + 1) for i in chd]), ((7, 10), [(i, i + 3) for i in range(len(words) - 2)
                                                             if words[i:i + 3] == ["AR", "-", "CHD"]])]
    got = [(e.start, e.text) for e in agree(doc, definitions)]
    assert got == [(0, "coronary heart disease"), (4, "CHD"), (len(words) - 2, "CHD")]


def test_the_order_of_definitions_does_not_matter():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("coronary heart disease ( CHD ) and autosomal recessive CHD ( ARCHD ) . ARCHD is rare .")
    doc.ents = [Span(doc, 0, 3, label="Disease", kb_id="D003324"), Span(doc, 14, 15, label="Disease", kb_id="X")]
    a = ((0, 3), [(4, 5), (9, 10)])
    b = ((7, 10), [(11, 12), (14, 15)])
    first = [(e.start, e.text) for e in agree(doc, [a, b])]
    assert first == [(e.start, e.text) for e in agree(doc, [b, a])]
    assert (14, "ARCHD") not in first  # its long form is no entity: removed, whatever came first
