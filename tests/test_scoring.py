"""Normalization scores on hand-computed examples."""
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example
from spacy.util import registry

from spacy_medlink.scoring import score_ner_nen, score_nen

TEXT = "Cisplatin caused renal and hepatic failure and seizures in rats given haloperidol ."
# token indices: Cisplatin0 caused1 renal2 and3 hepatic4 failure5 and6 seizures7 in8 rats9 given10 haloperidol11 .12


def make_doc(nlp, ents):
    doc = nlp.make_doc(TEXT)
    doc.ents = [Span(doc, s, e, label=label, kb_id=kb) for s, e, label, kb in ents]
    return doc


@pytest.fixture
def nlp():
    return spacy.blank("en")


GOLD = [
    (0, 1, "Chemical", "D002945"),
    (2, 6, "Disease", "D058186|D017093"),
    (7, 8, "Disease", "D012640"),
    (11, 12, "Chemical", ""),  # no concept: NER only
]


def test_perfect(nlp):
    eg = Example(make_doc(nlp, GOLD), make_doc(nlp, GOLD))
    scores = score_ner_nen([eg])
    assert scores["ents_f"] == pytest.approx(1.0)
    assert scores["nen_f"] == pytest.approx(1.0)
    assert scores["nen_doc_f"] == pytest.approx(1.0)


def test_hand_computed(nlp):
    pred = [
        (0, 1, "Chemical", "D002945"),  # right
        (2, 6, "Disease", "D017093|D058186"),  # right: composite compared as a set
        (7, 8, "Disease", "D004827"),  # wrong ID
        (11, 12, "Chemical", "D006220"),  # gold has no concept: ignored for NEN
    ]
    eg = Example(make_doc(nlp, pred), make_doc(nlp, GOLD))
    s = score_nen([eg])
    # mention level: gold linked 3, predicted (counted) 3, tp 2
    assert s["nen_p"] == pytest.approx(2 / 3)
    assert s["nen_r"] == pytest.approx(2 / 3)
    assert s["nen_per_type"]["Chemical"] == {"p": pytest.approx(1.0), "r": pytest.approx(1.0), "f": pytest.approx(1.0)}
    assert s["nen_per_type"]["Disease"]["p"] == pytest.approx(1 / 2)
    # document level: gold {C:D002945, D:D058186, D:D017093, D:D012640};
    # pred {C:D002945, D:D017093, D:D058186, D:D004827} -> tp 3, fp 1, fn 1
    assert s["nen_doc_p"] == pytest.approx(3 / 4)
    assert s["nen_doc_r"] == pytest.approx(3 / 4)
    assert s["nen_doc_per_type"]["Disease"]["r"] == pytest.approx(2 / 3)


def test_span_or_label_must_match(nlp):
    pred = [
        (0, 1, "Disease", "D002945"),  # wrong label
        (2, 5, "Disease", "D058186|D017093"),  # wrong span
        (7, 8, "Disease", ""),  # no ID: costs recall only
    ]
    eg = Example(make_doc(nlp, pred), make_doc(nlp, GOLD))
    s = score_ner_nen([eg])
    assert s["nen_p"] == pytest.approx(0.0)
    assert s["nen_r"] == pytest.approx(0.0)
    assert s["ents_p"] == pytest.approx(1 / 3)
    # document level ignores spans: D058186 and D017093 are found (as Disease),
    # D002945 predicted as a Disease is a false positive
    assert s["nen_doc_per_type"]["Disease"]["p"] == pytest.approx(2 / 3)
    assert s["nen_doc_per_type"]["Disease"]["r"] == pytest.approx(2 / 3)
    # the Chemical ID was predicted under the Disease label: not found
    assert s["nen_doc_per_type"]["Chemical"]["r"] == pytest.approx(0.0)


def test_partial_composite_is_wrong_at_mention_level(nlp):
    pred = [(2, 6, "Disease", "D058186")]
    eg = Example(make_doc(nlp, pred), make_doc(nlp, GOLD))
    s = score_nen([eg])
    assert s["nen_p"] == pytest.approx(0.0)
    assert s["nen_doc_p"] == pytest.approx(1.0)
    assert s["nen_doc_r"] == pytest.approx(1 / 4)


def test_id_resolver(nlp):
    gold = [(7, 8, "Disease", "OMIM:123")]
    pred = [(7, 8, "Disease", "D012640")]
    eg = Example(make_doc(nlp, pred), make_doc(nlp, gold))
    assert score_nen([eg])["nen_f"] == pytest.approx(0.0)
    resolved = score_nen([eg], id_resolver=lambda i: {"OMIM:123": "D012640"}.get(i, i))
    assert resolved["nen_f"] == pytest.approx(1.0)


def test_micro_average_over_documents(nlp):
    right = Example(make_doc(nlp, GOLD), make_doc(nlp, GOLD))
    empty = Example(make_doc(nlp, []), make_doc(nlp, GOLD))
    s = score_nen([right, empty])
    assert s["nen_p"] == pytest.approx(1.0)
    assert s["nen_r"] == pytest.approx(0.5)
    assert s["nen_doc_r"] == pytest.approx(0.5)


def test_no_gold_ids_gives_none(nlp):
    eg = Example(make_doc(nlp, []), make_doc(nlp, [(0, 1, "Chemical", "")]))
    s = score_nen([eg])
    assert s["nen_f"] is None and s["nen_doc_f"] is None


def test_registered():
    assert registry.scorers.get("medlink.nen_scorer.v1")() is score_nen
    assert registry.scorers.get("medlink.ner_nen_scorer.v1")() is score_ner_nen


def test_seen_unseen_split(nlp):
    from spacy_medlink.scoring import score_nen_seen_unseen

    pred = [
        (0, 1, "Chemical", "D002945"),  # right, seen
        (2, 6, "Disease", "D058186"),  # composite half right: wrong, seen via D058186
        (7, 8, "Disease", "D012640"),  # right, unseen
    ]
    eg = Example(make_doc(nlp, pred), make_doc(nlp, GOLD))
    out = score_nen_seen_unseen([eg], {"D002945", "D058186"})
    assert out["seen"] == {"mentions": 2, "correct": 1, "recall": 0.5}
    assert out["unseen"] == {"mentions": 1, "correct": 1, "recall": 1.0}  # the nil gold mention is not counted
    # resolved IDs decide what was seen
    out = score_nen_seen_unseen([eg], {"OLD"}, id_resolver=lambda i: "OLD" if i == "D012640" else i)
    assert out["seen"]["mentions"] == 1 and out["unseen"]["mentions"] == 2


def _spans_doc(nlp, text, spans, key="nested"):
    doc = nlp.make_doc(text)
    doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in spans]
    return doc


def test_nested_spans_scores_and_breakdown():
    from spacy_medlink.scoring import score_nested_spans

    nlp = spacy.blank("zh")
    text = "肺癌患者发热"  # 肺0 癌1 患2 者3 发4 热5
    gold = [(0, 2, "dis"), (0, 1, "bod"), (4, 6, "sym")]  # 肺 inside 肺癌: both nested; 发热 flat
    pred = [(0, 2, "dis"), (4, 6, "sym"), (4, 5, "bod")]  # misses 肺, adds 发 (makes 发热 nested in pred)
    eg = Example(_spans_doc(nlp, text, pred), _spans_doc(nlp, text, gold))
    s = score_nested_spans([eg])
    assert s["spans_nested_p"] == pytest.approx(2 / 3) and s["spans_nested_r"] == pytest.approx(2 / 3)
    assert s["spans_nested_per_type"]["bod"] == {"p": 0.0, "r": 0.0, "f": 0.0}
    assert s["spans_nested_nested_gold"] == 2 and s["spans_nested_flat_gold"] == 1
    # nested: gold {肺癌, 肺}, pred {发热, 发} -> no overlap
    assert s["spans_nested_nested_r"] == 0.0
    # flat: gold {发热}, pred {肺癌} (alone in pred)
    assert s["spans_nested_flat_r"] == 0.0 and s["spans_nested_flat_p"] == 0.0
    scorer = registry.scorers.get("medlink.nested_spans_scorer.v1")(spans_key="sc")
    eg2 = Example(_spans_doc(nlp, text, pred, "sc"), _spans_doc(nlp, text, gold, "sc"))
    assert scorer([eg2])["spans_sc_f"] == pytest.approx(2 / 3)


def test_nested_spans_unannotated_reference_skipped():
    from spacy_medlink.scoring import score_nested_spans

    nlp = spacy.blank("zh")
    eg = Example(_spans_doc(nlp, "肺癌", [(0, 2, "dis")]), nlp.make_doc("肺癌"))
    assert score_nested_spans([eg])["spans_nested_f"] is None
