"""`split`: every doc lands in exactly one output, in order."""
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app


def test_split_holds_out_the_last_docs(tmp_path):
    nlp = spacy.blank("zh")
    docs = []
    for i, text in enumerate(["肺癌", "发热", "头痛", "咳嗽"]):
        doc = nlp.make_doc(text)
        doc.spans["nested"] = [doc[0:2]]
        doc.user_data["doc_id"] = f"x:{i}"
        docs.append(doc)
    DocBin(store_user_data=True, docs=docs).to_disk(tmp_path / "all.spacy")
    result = CliRunner().invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"),
                                      str(tmp_path / "b.spacy"), "--last", "1"])
    assert result.exit_code == 0, result.output
    first = list(DocBin().from_disk(tmp_path / "a.spacy").get_docs(nlp.vocab))
    last = list(DocBin().from_disk(tmp_path / "b.spacy").get_docs(nlp.vocab))
    assert [d.text for d in first] == ["肺癌", "发热", "头痛"] and [d.text for d in last] == ["咳嗽"]
    assert last[0].user_data["doc_id"] == "x:3" and len(last[0].spans["nested"]) == 1
    bad = CliRunner().invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"),
                                   str(tmp_path / "b.spacy"), "--last", "4"])
    assert bad.exit_code == 1


def test_split_folds_cover_every_doc_once(tmp_path):
    nlp = spacy.blank("zh")
    DocBin(docs=[nlp.make_doc(t) for t in "甲乙丙丁戊己庚"]).to_disk(tmp_path / "all.spacy")
    held = []
    for i in range(3):
        result = CliRunner().invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / f"r{i}.spacy"),
                                          str(tmp_path / f"f{i}.spacy"), "--folds", "3", "--fold", str(i)])
        assert result.exit_code == 0, result.output
        fold = [d.text for d in DocBin().from_disk(tmp_path / f"f{i}.spacy").get_docs(nlp.vocab)]
        rest = [d.text for d in DocBin().from_disk(tmp_path / f"r{i}.spacy").get_docs(nlp.vocab)]
        assert sorted(fold + rest) == sorted("甲乙丙丁戊己庚") and not set(fold) & set(rest)
        held += fold
    assert held == list("甲乙丙丁戊己庚")


def test_split_blocks_spread_the_held_out_docs(tmp_path):
    """--blocks B: the last N/B docs of each of B equal segments, every doc in exactly one output."""
    nlp = spacy.blank("zh")
    texts = [f"文{i:02d}" for i in range(20)]
    DocBin(docs=[nlp.make_doc(t) for t in texts]).to_disk(tmp_path / "all.spacy")
    result = CliRunner().invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"),
                                      str(tmp_path / "b.spacy"), "--last", "5", "--blocks", "2"])
    assert result.exit_code == 0, result.output
    first = [d.text for d in DocBin().from_disk(tmp_path / "a.spacy").get_docs(nlp.vocab)]
    held = [d.text for d in DocBin().from_disk(tmp_path / "b.spacy").get_docs(nlp.vocab)]
    assert held == ["文08", "文09", "文17", "文18", "文19"]
    assert sorted(first + held) == texts and first == [t for t in texts if t not in held]
    for bad in (["--last", "2", "--blocks", "3"], ["--folds", "2", "--blocks", "2"]):
        out = CliRunner().invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"),
                                       str(tmp_path / "b.spacy"), *bad])
        assert out.exit_code == 1


def test_merge_undoes_split(tmp_path):
    nlp = spacy.blank("en")
    docs = []
    for i, text in enumerate(["cold", "fever", "cough", "pain", "rash"]):
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(0, len(text), label="Disease", kb_id=f"D{i}")]
        doc.user_data["doc_id"] = f"x:{i}"
        docs.append(doc)
    DocBin(store_user_data=True, docs=docs).to_disk(tmp_path / "all.spacy")
    runner = CliRunner()
    assert runner.invoke(app, ["split", str(tmp_path / "all.spacy"), str(tmp_path / "a.spacy"),
                               str(tmp_path / "b.spacy"), "--last", "2"]).exit_code == 0
    result = runner.invoke(app, ["merge", str(tmp_path / "out.spacy"), str(tmp_path / "a.spacy"), str(tmp_path / "b.spacy")])
    assert result.exit_code == 0, result.output
    merged = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [(d.text, d.user_data["doc_id"], d.ents[0].kb_id_) for d in merged] == \
        [(d.text, d.user_data["doc_id"], d.ents[0].kb_id_) for d in docs]
