"""CCKS 2019 (Yidu-S4K): the staged files and hand-made records."""
import json

import pytest
import spacy

from spacy_medlink.corpora.ccks2019 import create_ccks2019_reader, read_ccks2019
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("zh")


def _write(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                    encoding="utf8")
    return path


def _read(path, nlp, split=None):
    report = ConversionReport()
    return list(read_ccks2019(path, nlp, report, split=split)), report


def test_record_offsets_end_exclusive(tmp_path, nlp):
    path = _write(tmp_path / "x.jsonl", [
        {"originalText": "患者直肠癌术后", "entities": [
            {"label_type": "疾病和诊断", "overlap": 0, "start_pos": 2, "end_pos": 5},
            {"start_pos": 2, "end_pos": 4, "label_type": "解剖部位"}]},
    ])
    (doc,), report = _read(path, nlp)
    assert [(s.text, s.label_) for s in doc.spans["nested"]] == [("直肠癌", "疾病和诊断"), ("直肠", "解剖部位")]
    assert [e.text for e in doc.ents] == ["直肠癌"]
    assert report.is_balanced() and report.mentions_kept == 2


def test_edge_space_trimmed_and_counted(tmp_path, nlp):
    path = _write(tmp_path / "x.jsonl", [
        {"originalText": "见 胃体溃疡", "entities": [{"label_type": "解剖部位", "start_pos": 1, "end_pos": 4}]},
    ])
    (doc,), report = _read(path, nlp)
    assert [s.text for s in doc.spans["nested"]] == ["胃体"]
    assert report.notes["space at the edge trimmed, to align with tokens"] == 1
    assert report.mentions_kept == 1


@pytest.mark.parametrize("bad, message", [
    ("{not json", "invalid JSON"),
    ({"text": "x"}, "originalText"),
    ({"originalText": "abc", "entities": [{"label_type": "药物", "start_pos": 2, "end_pos": 9}]}, "outside the text"),
    ({"originalText": "abc", "entities": [{"label_type": "药物", "start_pos": 1}]}, "end_pos"),
])
def test_malformed_names_file_and_line(tmp_path, nlp, bad, message):
    path = _write(tmp_path / "bad.jsonl", [{"originalText": "好", "entities": []}, bad])
    with pytest.raises(CorpusFormatError, match=message) as err:
        _read(path, nlp)
    assert err.value.line == 2 and "bad.jsonl:2" in str(err.value)


def test_splits_of_staged_train(data_dir, nlp):
    path = data_dir / "ccks2019" / "ccks2019_train.jsonl.gz"
    train, report = _read(path, nlp, "train")
    assert len(train) == report.documents_kept == 800 and report.documents_read == 1000
    assert report.mentions_kept == 13762 and report.is_balanced()
    dev, report = _read(path, nlp, "dev")
    assert len(dev) == 200 and report.mentions_kept == 3891 and report.is_balanced()
    assert train[0].user_data["doc_id"].endswith(":0") and dev[0].user_data["doc_id"].endswith(":800")


def test_staged_test(data_dir, nlp):
    docs, report = _read(data_dir / "ccks2019" / "ccks2019_test.jsonl.gz", nlp)
    assert len(docs) == 379 and report.mentions_read == report.mentions_kept == 6002
    assert report.notes["space at the edge trimmed, to align with tokens"] == 21


def test_reader_registered(tmp_path, nlp):
    from spacy.util import registry

    path = _write(tmp_path / "x.jsonl", [{"originalText": "用药物", "entities": [
        {"label_type": "药物", "start_pos": 1, "end_pos": 3}]}])
    reader = registry.readers.get("medlink.CCKS2019Corpus.v1")(path)
    (eg,) = list(reader(nlp))
    assert [s.text for s in eg.reference.spans["nested"]] == ["药物"]
    with pytest.raises(ValueError):
        create_ccks2019_reader(path, split="test")
