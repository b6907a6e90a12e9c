"""Silver docs for self-training: the teachers' agreed entities, disputed tokens missing,
concept IDs empty; and the joint tagger reads missing tokens as unknown, not outside."""
import json
from collections import Counter

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.corpora.silver import agreed_doc, completed_doc

WORDS = ["Cisplatin", "caused", "acute", "renal", "failure", "and", "nausea", "."]


def _predicted(ents):
    doc = Doc(Vocab(), words=WORDS)
    doc.ents = [doc.char_span(*_chars(doc, s, e), label=label) for s, e, label in ents]
    return doc


def _chars(doc, start, end):
    return doc[start].idx, doc[end - 1].idx + len(doc[end - 1])


def test_agreed_entities_kept_disputed_tokens_missing():
    a = _predicted([(0, 1, "Chemical"), (2, 5, "Disease"), (6, 7, "Disease")])
    b = _predicted([(0, 1, "Chemical"), (3, 5, "Disease")])
    counts: Counter = Counter()
    doc = agreed_doc(Vocab(), [a, b], counts)
    assert [(e.start, e.end, e.label_, e.kb_id_) for e in doc.ents] == [(0, 1, "Chemical", "")]
    # ent_iob: 0 missing, 2 outside, 3 begin
    assert [t.ent_iob for t in doc] == [3, 2, 0, 0, 0, 2, 0, 2]
    assert counts == Counter(entities=1, entities_Chemical=1, disputed=3, missing_tokens=4)
    # one teacher: its entities, nothing missing
    doc = agreed_doc(Vocab(), [a], Counter())
    assert [(e.start, e.end) for e in doc.ents] == [(0, 1), (2, 5), (6, 7)] and 0 not in [t.ent_iob for t in doc]


def test_teachers_must_tokenize_alike():
    a = _predicted([])
    b = Doc(Vocab(), words=["Cisplatin", "caused", "acute", "renal-failure"])
    with pytest.raises(ValueError, match="tokenize"):
        agreed_doc(Vocab(), [a, b], Counter())


def test_joint_tagger_reads_missing_tokens_as_unknown():
    from ..pipeline.helpers import TINY_TOK2VEC, make_examples

    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", config={"model": {
        "@architectures": "medlink.JointTagger.v1", "lstm_width": 8, "lstm_depth": 1, "tok2vec": TINY_TOK2VEC}})
    gold = make_examples(nlp, [("Aspirin caused ulcer.", [(0, 7, "Chemical", "D001241"), (15, 20, "Disease", "D014456")])])
    a = _predicted([(0, 1, "Chemical"), (2, 5, "Disease")])
    b = _predicted([(0, 1, "Chemical")])
    silver = agreed_doc(nlp.vocab, [a, b], Counter())
    eg = Example(nlp.make_doc(silver.text), silver)
    nlp.initialize(lambda: gold + [eg])
    jt = nlp.get_pipe("medlink_joint_tagger")
    mer, men = jt._targets([eg], len(WORDS))
    tags = jt.entity_tags
    assert [tags[i] if i >= 0 else None for i in mer[0]] == ["B-Chemical", "O", None, None, None, "O", "O", "O"]
    assert men[0].tolist() == [-1, 0, -1, -1, -1, 0, 0, 0]  # no concept ID: unknown to MEN
    losses = nlp.update([eg], losses={})
    assert 0 < losses["medlink_joint_tagger"] < float("inf")


def _ruler(tmp_path, name, patterns):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    nlp.to_disk(tmp_path / name)
    return str(tmp_path / name)


def test_silver_command_counts_and_writes(tmp_path):
    a = _ruler(tmp_path, "a", [{"label": "Chemical", "pattern": "cisplatin"}, {"label": "Disease", "pattern": "nausea"}])
    b = _ruler(tmp_path, "b", [{"label": "Chemical", "pattern": "cisplatin"}])
    text = tmp_path / "text.txt"
    text.write_text("short line\n" + "".join(f"Patients {i} given cisplatin had nausea and were seen again.\n"
                                              for i in range(5)), encoding="utf8")
    out, report = tmp_path / "silver.spacy", tmp_path / "silver.json"
    result = CliRunner().invoke(app, ["silver", str(out), str(text), "--model", a, "--model", b, "--limit", "3",
                                      "--min-words", "5", "--report", str(report)])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    counts = json.loads(report.read_text())
    assert (counts["lines_read"], counts["lines_eligible"], counts["lines_drawn"], counts["docs"]) == (6, 5, 3, 3)
    assert counts["entities"] == counts["entities_Chemical"] == 3 and counts["disputed"] == 3
    assert all([e.text for e in d.ents] == ["cisplatin"] for d in docs)
    assert all(d[d.text.split().index("nausea")].ent_iob == 0 for d in docs)


def _gold(ents):
    doc = Doc(Vocab(), words=WORDS)
    doc.ents = [Span(doc, s, e, label=label, kb_id=kb_id) for s, e, label, kb_id in ents]
    return doc


def test_completed_doc_fills_only_the_missing_label():
    # the gold annotates diseases only; teachers fill in chemicals
    gold = _gold([(2, 5, "Disease", "D058186")])
    a = _predicted([(0, 1, "Chemical"), (3, 4, "Chemical"), (6, 7, "Chemical")])
    b = _predicted([(0, 1, "Chemical"), (6, 7, "Disease")])
    counts: Counter = Counter()
    doc = completed_doc(gold, [a, b], ["Chemical"], counts)
    assert [(e.start, e.end, e.label_, e.kb_id_) for e in doc.ents] == [(0, 1, "Chemical", ""), (2, 5, "Disease", "D058186")]
    # token 6: a Chemical only teacher a predicts (missing); teacher b's Disease there is not a label to fill
    assert [t.ent_iob for t in doc] == [3, 2, 3, 1, 1, 2, 0, 2]
    assert counts == Counter(gold_entities=1, entities=1, entities_Chemical=1, disputed=1, overlapping_gold=1, missing_tokens=1)
    # add_agreed=False: the agreed chemical's tokens are missing too, the gold stays
    counts = Counter()
    doc = completed_doc(gold, [a, b], ["Chemical"], counts, add_agreed=False)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(2, 5, "Disease")]
    assert [t.ent_iob for t in doc] == [0, 2, 3, 1, 1, 2, 0, 2]
    assert counts["agreed_missing"] == 1 and counts["missing_tokens"] == 2 and counts["entities"] == 0


def test_completed_doc_marks_the_rest_of_an_entity_over_gold_missing():
    # both teachers read "acute renal" as a chemical; "renal failure" is gold: "acute" is not known outside
    gold = _gold([(3, 5, "Disease", "D058186")])
    gold.spans["mentions"] = [Span(gold, 3, 5, label="Disease", kb_id="D058186")]
    a = _predicted([(2, 4, "Chemical")])
    counts: Counter = Counter()
    doc = completed_doc(gold, [a, a], ["Chemical"], counts, add_agreed=False)
    assert [t.ent_iob for t in doc] == [2, 2, 0, 3, 1, 2, 2, 2]
    assert counts["overlapping_gold"] == 1 and counts["missing_tokens"] == 1
    assert [(s.start, s.end, s.kb_id_) for s in doc.spans["mentions"]] == [(3, 5, "D058186")]


def test_completed_doc_refuses_other_tokens():
    gold = _gold([])
    with pytest.raises(ValueError, match="tokens differ"):
        completed_doc(gold, [Doc(Vocab(), words=["Cisplatin", "caused"])], ["Chemical"], Counter())


def test_complete_command_keeps_gold_and_refuses_annotated_labels(tmp_path):
    teacher = _ruler(tmp_path, "t", [{"label": "Chemical", "pattern": "cisplatin"}, {"label": "Disease", "pattern": "nausea"}])
    nlp = spacy.blank("en")
    golds = []
    for i in range(3):
        doc = nlp(f"Patients {i} given cisplatin had nausea .")
        doc.ents = [Span(doc, 5, 6, label="Disease", kb_id="D009325")]
        golds.append(doc)
    gold_path, out, report = tmp_path / "gold.spacy", tmp_path / "out.spacy", tmp_path / "report.json"
    DocBin(docs=golds).to_disk(gold_path)
    result = CliRunner().invoke(app, ["complete", str(out), str(gold_path), "--model", teacher, "--label", "Chemical",
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    assert [[(e.text, e.label_, e.kb_id_) for e in d.ents] for d in docs] == [[("cisplatin", "Chemical", ""), ("nausea", "Disease", "D009325")]] * 3
    counts = json.loads(report.read_text())
    assert (counts["docs_read"], counts["docs"], counts["gold_entities"], counts["entities_Chemical"]) == (3, 3, 3, 3)
    # Disease is annotated by the gold: filling it is refused; so is a label no teacher predicts
    for label in ("Disease", "Gene"):
        result = CliRunner().invoke(app, ["complete", str(out), str(gold_path), "--model", teacher, "--label", label])
        assert result.exit_code == 1
