from spacy.tokens import Span

from spacy_medlink.kb.candidates import CandidateGenerator
from spacy_medlink.kb.concept_kb import Concept, ConceptKB
from spacy_medlink.kb.span_lookup import span_candidates
from spacy_medlink.tokenizer import biomed_nlp


def _generator():
    kb = ConceptKB()
    kb.add(Concept("D010505", "Familial Mediterranean Fever", (), ("Disease",), (), ("MEDIC",)))
    kb.add(Concept("D015179", "Colorectal Neoplasms", ("colorectal cancer",), ("Disease",), (), ("MEDIC",)))
    kb.add(Concept("D002118", "Calcium", ("Ca",), ("Chemical",), (), ("MeSH",)))
    kb.add(Concept("D000001", "fluoromethyl fluoride", ("FMF",), ("Chemical",), (), ("MeSH",)))
    return CandidateGenerator(kb)


def test_long_form_type_filter_and_order():
    nlp = biomed_nlp()
    doc = nlp.make_doc("Familial Mediterranean fever (FMF) and calcium. FMF patients had colorectal cancer.")
    spans = [
        Span(doc, 4, 5, label="Disease"),  # "FMF" defined as the long form
        Span(doc, 7, 8, label="Chemical"),  # "calcium"
        Span(doc, 9, 10, label="Disease"),  # "FMF" again
        Span(doc, 12, 14, label="Disease"),  # "colorectal cancer"
    ]
    assert [s.text for s in spans] == ["FMF", "calcium", "FMF", "colorectal cancer"]
    found = span_candidates(_generator(), spans, k=3)
    assert len(found) == 4
    # the short form is looked up by its long form; the Chemical "FMF" is filtered out by type
    assert found[0][0].concept_id == "D010505"
    assert all(c.concept_id != "D000001" for c in found[0])
    assert found[1][0].concept_id == "D002118"
    assert found[2][0].concept_id == "D010505"
    assert found[3][0].concept_id == "D015179"
    # without abbreviations, "FMF" as a Disease has no exact match
    plain = span_candidates(_generator(), spans, k=3, use_abbreviations=False)
    assert not plain[0] or plain[0][0].concept_id != "D010505" or plain[0][0].score < 1.0


def test_no_spans():
    assert span_candidates(_generator(), []) == []


def test_long_forms_spell_out_short_forms_inside_a_mention():
    from spacy_medlink.kb.span_lookup import span_long_forms

    nlp = biomed_nlp()
    doc = nlp.make_doc("Gastrointestinal (GI) toxicity and GI bleeding after dexamethasone (DEX); DEX doses.")
    spans = [doc.char_span(0, 30, label="Disease"), doc.char_span(35, 46, label="Disease"),
             doc.char_span(53, 66, label="Chemical"), doc.char_span(74, 77, label="Chemical")]
    assert [s.text for s in spans] == ["Gastrointestinal (GI) toxicity", "GI bleeding", "dexamethasone", "DEX"]
    assert span_long_forms(spans) == ["Gastrointestinal toxicity", "Gastrointestinal bleeding", None, "dexamethasone"]


def test_long_forms_spell_out_hyphenated_short_forms_and_bracketed_definitions():
    from spacy_medlink.kb.span_lookup import span_long_forms

    doc = biomed_nlp().make_doc("5-fluorouracil (5-FU) toxicity and 5-FU toxicity with glucose (Glu; 5 mM) loss.")
    spans = [doc.char_span(0, 30, label="Disease"), doc.char_span(35, 48, label="Disease")]
    assert [s.text for s in spans] == ["5-fluorouracil (5-FU) toxicity", "5-FU toxicity"]
    assert span_long_forms(spans) == ["5-fluorouracil toxicity", "5-fluorouracil toxicity"]
