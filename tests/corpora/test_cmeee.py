import gzip
import json
from collections import Counter

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_medlink.corpora.cmeee import create_cmeee_reader, read_cmeee
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError

DEV_TYPES = {
    "bod": 5883, "dis": 4935, "sym": 4130, "pro": 2057, "dru": 1440,
    "ite": 923, "mic": 584, "equ": 238, "dep": 110,
}  # fmt: skip


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("zh")
    # spaCy's default Chinese segmenter is one token per character, no extra package
    assert nlp.tokenizer.segmenter == "char"
    return nlp


def _read(path, nlp):
    report = ConversionReport()
    docs = list(read_cmeee(path, nlp, report))
    return docs, report


@pytest.fixture(scope="module")
def train_json(data_dir, nlp):
    return _read(data_dir / "cmeee" / "CMeEE_train.json.gz", nlp)


@pytest.fixture(scope="module")
def dev(data_dir, nlp):
    return _read(data_dir / "cmeee" / "CMeEE_dev.json.gz", nlp)


def _content(doc):
    return (
        doc.text,
        [t.text for t in doc],
        [(s.start, s.end, s.label_) for s in doc.spans["nested"]],
        [(e.start, e.end, e.label_) for e in doc.ents],
    )


def test_train_counts(train_json):
    docs, report = train_json
    assert len(docs) == report.documents_read == report.documents_kept == 15000
    assert report.mentions_read == 61796
    assert report.mentions_kept == 61794
    assert dict(report.dropped) == {"empty entity": 2}
    assert report.is_balanced()
    where = report.examples["empty entity"]
    assert "CMeEE_train.json.gz:182225: record 6051, pro 16-15" in where[0]
    assert "CMeEE_train.json.gz:192007: record 6421, mic 15-14" in where[1]
    assert sum(len(d.spans["nested"]) for d in docs) == 61794
    assert docs[0].user_data["doc_id"] == "CMeEE_train:0"
    assert docs[-1].user_data["doc_id"] == "CMeEE_train:14999"


def test_chip_train_is_identical_to_json(train_json, data_dir, nlp):
    docs_json, report_json = train_json
    docs_chip, report_chip = _read(data_dir / "cmeee" / "chip2020_task1_train_data_all.txt.gz", nlp)
    assert len(docs_chip) == len(docs_json)
    for doc_j, doc_c in zip(docs_json, docs_chip):
        assert _content(doc_c) == _content(doc_j)
        assert doc_c.user_data["doc_id"].split(":")[1] == doc_j.user_data["doc_id"].split(":")[1]
    assert report_chip.labels == report_json.labels
    assert report_chip.dropped == report_json.dropped
    assert report_chip.notes == report_json.notes
    assert "chip2020_task1_train_data_all.txt.gz:6052: record 6051" in report_chip.examples["empty entity"][0]


def test_dev_counts_and_nesting(dev):
    docs, report = dev
    assert len(docs) == 5000
    assert report.mentions_read == report.mentions_kept == 20300
    assert dict(report.labels) == DEV_TYPES
    assert report.is_balanced() and not report.dropped
    n_outside_ents = sum(len(d.spans["nested"]) - len(d.ents) for d in docs)
    assert n_outside_ents == report.notes["nested: kept in doc.spans only"] == 1223
    # SOURCES.md's example: bod "肺" inside sym "肺内病变" (dev sentence 1)
    doc = docs[1]
    spans = {(s.start_char, s.end_char, s.label_) for s in doc.spans["nested"]}
    assert (10, 11, "bod") in spans and (10, 14, "sym") in spans
    assert doc.text[10:14] == "肺内病变"
    assert any(e.label_ == "sym" and e.start_char == 10 for e in doc.ents)
    assert not any(e.label_ == "bod" and e.start_char == 10 for e in doc.ents)
    for doc in docs:  # ents are the outermost spans, non-overlapping
        ents = list(doc.ents)
        assert all(a.end <= b.start for a, b in zip(ents, ents[1:]))
        assert set(ents) <= set(doc.spans["nested"])


def test_test_split_has_no_entities(data_dir, nlp):
    docs, report = _read(data_dir / "cmeee" / "CMeEE_test.json.gz", nlp)
    assert len(docs) == report.documents_kept == 3000
    assert report.mentions_read == 0
    assert all(len(d.spans["nested"]) == 0 and not d.ents for d in docs)


def test_registered_reader(data_dir, nlp):
    make_reader = registry.readers.get("medlink.CMeEECorpus.v1")
    assert make_reader is create_cmeee_reader
    corpus = make_reader(data_dir / "cmeee" / "CMeEE_dev.json.gz", spans_key="sc", limit=7)
    examples = list(corpus(nlp))
    assert len(examples) == 7
    assert all(isinstance(eg, Example) for eg in examples)
    eg = examples[1]
    assert eg.predicted.text == eg.reference.text and not eg.predicted.ents
    assert len(eg.reference.spans["sc"]) > len(eg.reference.ents) > 0


# Small inline cases -----------------------------------------------------------


def _write_json(path, records, gz=False):
    text = json.dumps(records, indent=2, ensure_ascii=False)
    if gz:
        with gzip.open(path, "wt", encoding="utf8") as file_:
            file_.write(text)
    else:
        path.write_text(text, encoding="utf8")
    return path


RECORDS = [
    {"text": "肺内病变。", "entities": [
        {"start_idx": 0, "end_idx": 3, "type": "sym", "entity": "肺内病变"},
        {"start_idx": 0, "end_idx": 0, "type": "bod", "entity": "肺"},
    ]},
    {"text": "禁止洗胃及；", "entities": [
        {"start_idx": 2, "end_idx": 3, "type": "pro", "entity": "洗胃"},
        {"start_idx": 5, "end_idx": 4, "type": "pro", "entity": ""},
    ]},
]  # fmt: skip


@pytest.mark.parametrize("gz", [False, True])
def test_inline_json_and_chip_agree(tmp_path, nlp, gz):
    json_path = _write_json(tmp_path / ("x.json.gz" if gz else "x.json"), RECORDS, gz=gz)
    chip_path = tmp_path / "x.txt"
    chip_path.write_text("肺内病变。|||0    3    sym|||0    0    bod|||\n禁止洗胃及；|||2    3    pro|||5    4    pro|||")
    docs_j, report_j = _read(json_path, nlp)
    docs_c, report_c = _read(chip_path, nlp)
    assert [_content(d) for d in docs_j] == [_content(d) for d in docs_c]
    assert _content(docs_j[0])[2] == [(0, 4, "sym"), (0, 1, "bod")]
    assert _content(docs_j[0])[3] == [(0, 4, "sym")]
    assert docs_j[1].user_data["doc_id"] == "x:1"
    for report in (report_j, report_c):
        assert (report.mentions_read, report.mentions_kept) == (4, 3)
        assert report.dropped == Counter({"empty entity": 1})
        assert report.notes == Counter({"nested: kept in doc.spans only": 1})
        assert report.is_balanced()
    assert report_j.examples["empty entity"] == [f"{json_path}:19: record 1, pro 5-4"]
    assert report_c.examples["empty entity"] == [f"{chip_path}:2: record 1, pro 5-4"]


def test_json_entity_mismatch_names_file_line_and_record(tmp_path, nlp):
    records = json.loads(json.dumps(RECORDS))
    records[1]["entities"][0]["entity"] = "洗澡"
    path = _write_json(tmp_path / "bad.json", records)
    with pytest.raises(CorpusFormatError) as err:
        _read(path, nlp)
    assert err.value.path == str(path) and err.value.line == 19
    assert "record 1" in str(err.value) and "'洗澡'" in str(err.value)


@pytest.mark.parametrize(
    "entity,message",
    [
        ({"start_idx": 3, "end_idx": 9, "type": "pro", "entity": "胃及"}, "outside the text"),
        ({"start_idx": 3, "end_idx": 1, "type": "pro", "entity": ""}, "outside the text"),
        ({"start_idx": "3", "end_idx": 4, "type": "pro"}, "malformed"),
        ({"start_idx": 3, "type": "pro"}, "needs 'start_idx'"),
    ],
)
def test_json_bad_entity(tmp_path, nlp, entity, message):
    path = _write_json(tmp_path / "bad.json", [RECORDS[0], {"text": "禁止洗胃及；", "entities": [entity]}])
    with pytest.raises(CorpusFormatError, match=message) as err:
        _read(path, nlp)
    assert err.value.line == 19 and "record 1" in str(err.value)


def test_json_syntax_error_names_line(tmp_path, nlp):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"text": "肺", "entities": []},\n  {"text": "肺" "entities": []}\n]')
    with pytest.raises(CorpusFormatError) as err:
        _read(path, nlp)
    assert err.value.line == 3 and "record 1" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "line2",
    ["禁止洗胃及；|||2    3|||", "禁止洗胃及；|||two    3    pro|||", "禁止洗胃及；|||2    9    pro|||", "no separator"],
)
def test_chip_malformed_line(tmp_path, nlp, line2):
    path = tmp_path / "bad.txt"
    path.write_text(f"肺内病变。|||0    3    sym|||\n{line2}\n")
    with pytest.raises(CorpusFormatError) as err:
        _read(path, nlp)
    assert err.value.path == str(path) and err.value.line == 2


def test_unaligned_entity_is_counted(tmp_path, nlp):
    # char segmentation puts a space in the previous token's whitespace, so an
    # entity that starts on it cannot align: dropped and counted, never silently
    path = tmp_path / "space.txt"
    path.write_text("肺 病变|||1    3    sym|||2    3    sym|||")
    docs, report = _read(path, nlp)
    assert [(s.text, s.label_) for s in docs[0].spans["nested"]] == [("病变", "sym")]
    assert report.dropped == Counter({"does not align with tokens": 1})
    assert report.examples["does not align with tokens"] == [f"{path}:1: record 0, sym 1-3"]
    assert report.is_balanced()
