import json

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry

from spacy_medlink.corpora.genia import NO_TYPE, create_genia_reader, read_genia, read_genia_iob2
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError

try:
    from spacy_medlink.tokenizer import biomed_nlp
except ImportError:  # pragma: no cover
    biomed_nlp = None

JSONL = "genia_term_3.02_sentences.jsonl.gz"
EXACT_DUP = "exact duplicate (same start, end, type)"
EXPAND_DUP = "misaligned: expanding it duplicates another span"
EXPANDED = "misaligned: expanded to token boundaries"
# split: sentences, first sentence id, <cons> read, typed (SOURCES.md), exact duplicates
EXPECTED = {
    "train": (15023, 0, 79769, 46185, 21),
    "dev": (1669, 15023, 8058, 4379, 8),
    "test": (1854, 16692, 10049, 5515, 4),
}


@pytest.fixture(scope="module")
def nlp():
    return biomed_nlp() if biomed_nlp is not None else spacy.blank("en")


@pytest.fixture(scope="module")
def splits(data_dir, nlp):
    out = {}
    for split in EXPECTED:
        report = ConversionReport()
        docs = list(read_genia(data_dir / "genia" / JSONL, nlp, report, split=split))
        out[split] = (docs, report)
    return out


@pytest.mark.parametrize("split", list(EXPECTED))
def test_genia_split_counts(splits, split):
    n_sents, first_id, n_read, n_typed, n_exact_dup = EXPECTED[split]
    docs, report = splits[split]
    assert len(docs) == report.documents_read == report.documents_kept == n_sents
    # the split is contiguous by sentence, as SOURCES.md says
    ids = [int(d.user_data["doc_id"]) for d in docs]
    assert ids == list(range(first_id, first_id + n_sents))
    assert all(d.user_data["pmid"].isdigit() for d in docs)
    assert report.mentions_read == n_read
    assert report.dropped[NO_TYPE] == n_read - n_typed
    assert report.dropped[EXACT_DUP] == n_exact_dup
    # kept = typed - exact duplicates - expansions onto an existing span (tokenizer-dependent)
    assert report.mentions_kept + report.dropped[EXPAND_DUP] == n_typed - n_exact_dup
    assert set(report.dropped) <= {NO_TYPE, EXACT_DUP, EXPAND_DUP}
    assert report.is_balanced()
    assert set(report.labels) == {"DNA", "RNA", "protein", "cell_line", "cell_type"}
    assert sum(len(d.spans["nested"]) for d in docs) == report.mentions_kept
    n_outside_ents = sum(len(d.spans["nested"]) - len(d.ents) for d in docs)
    assert n_outside_ents == report.notes["nested: kept in doc.spans only"] > 0


@pytest.mark.skipif(biomed_nlp is None, reason="needs spacy_medlink.tokenizer")
def test_genia_alignment_with_biomed_tokenizer(splits):
    """Measured with the biomedical tokenizer: train 29 expanded + 3 expansion
    duplicates of 46,164, dev 5 + 0, test 6 + 0 (about 0.07%)."""
    docs, report = splits["train"]
    misaligned = report.notes[EXPANDED] + report.dropped[EXPAND_DUP]
    assert misaligned <= 100
    assert report.mentions_kept >= 46185 - 21 - 10
    for split in ("dev", "test"):
        report = splits[split][1]
        assert report.notes[EXPANDED] + report.dropped[EXPAND_DUP] <= 20


def test_genia_train_protein_nesting(splits):
    docs, _ = splits["train"]
    doc = docs[1]  # "... CD28 surface receptor ..." with protein "CD28" inside
    spans = {(s.text, s.label_) for s in doc.spans["nested"]}
    assert {("CD28 surface receptor", "protein"), ("CD28", "protein")} <= spans
    assert "CD28" not in {e.text for e in doc.ents}


@pytest.mark.parametrize("name,n_sents,n_ents", [("dev", 1669, 4337), ("test", 1854, 5474)])
def test_genia_iob2(data_dir, nlp, name, n_sents, n_ents):
    report = ConversionReport()
    docs = list(read_genia_iob2(data_dir / "genia" / f"genia.{name}.iob2.gz", nlp, report))
    assert len(docs) == report.documents_kept == n_sents
    assert report.mentions_read == report.mentions_kept == n_ents
    assert report.is_balanced() and not report.dropped
    assert sum(len(d.spans["nested"]) for d in docs) == n_ents
    assert docs[0].user_data["doc_id"] == f"genia.{name}:0"
    if name == "dev":
        assert docs[0][3:6].text == "c - fos"
        assert [(e.text, e.label_) for e in docs[0].ents][:2] == [("c - fos", "DNA"), ("IL - 4", "protein")]


def test_registered_reader(data_dir, nlp):
    make_reader = registry.readers.get("medlink.GeniaCorpus.v1")
    assert make_reader is create_genia_reader
    examples = list(make_reader(data_dir / "genia" / JSONL, split="dev", limit=3)(nlp))
    assert len(examples) == 3 and all(isinstance(eg, Example) for eg in examples)
    assert examples[0].reference.user_data["doc_id"] == "15023"
    assert len(examples[0].reference.spans["nested"]) > 0
    iob2 = list(make_reader(data_dir / "genia" / "genia.dev.iob2.gz", limit=2)(nlp))
    assert [t.text for t in iob2[0].predicted] == [t.text for t in iob2[0].reference]
    with pytest.raises(ValueError):
        create_genia_reader(data_dir / "genia" / JSONL, split="validation")


# Small inline cases -----------------------------------------------------------


def _record(i, split="train", entities=None):
    text = "IL-2 gene expression requires NF-kappa B ."
    if entities is None:
        entities = [
            {"start": 0, "end": 20, "sem": "G#other_name", "type": None, "text": "IL-2 gene expression"},
            {"start": 0, "end": 9, "sem": "G#DNA_domain_or_region", "type": "DNA", "text": "IL-2 gene"},
            {"start": 0, "end": 4, "sem": "G#protein_molecule", "type": "protein", "text": "IL-2"},
            {"start": 0, "end": 4, "sem": "G#protein_family_or_group", "type": "protein", "text": "IL-2"},
            {"start": 30, "end": 38, "sem": "G#protein_molecule", "type": "protein", "text": "NF-kappa"},
            {"start": 30, "end": 37, "sem": "G#protein_molecule", "type": "protein", "text": "NF-kapp"},
        ]
    return {"id": i, "pmid": "1", "part": "abstract", "split": split, "text": text, "entities": entities}


def _write(path, records, extra=""):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n" + extra)
    return path


def test_inline_accounting(tmp_path):
    nlp = spacy.blank("en")
    path = _write(tmp_path / "g.jsonl", [_record(0), _record(1, "dev")])
    report = ConversionReport()
    docs = list(read_genia(path, nlp, report, split="train"))
    assert len(docs) == 1 and docs[0].user_data == {"doc_id": "0", "pmid": "1"}
    assert report.mentions_read == 6 and report.mentions_kept == 3
    assert report.dropped == {NO_TYPE: 1, EXACT_DUP: 1, EXPAND_DUP: 1}
    assert report.notes == {"nested: kept in doc.spans only": 1}
    assert report.is_balanced()
    spans = [(s.text, s.label_) for s in docs[0].spans["nested"]]
    assert spans == [("IL-2 gene", "DNA"), ("IL-2", "protein"), ("NF-kappa", "protein")]
    assert [e.text for e in docs[0].ents] == ["IL-2 gene", "NF-kappa"]


@pytest.mark.parametrize(
    "bad,message",
    [
        ("{not json", "invalid JSON"),
        (json.dumps(_record(2, entities=[{"start": 0, "end": 99, "type": "DNA"}])), "outside the text"),
        (json.dumps(_record(2, entities=[{"start": 0, "end": 4, "type": "DNA", "text": "IL-3"}])), "does not match"),
        (json.dumps(_record(2, entities=[{"start": 0, "end": 4, "type": "gene"}])), "not in"),
        (json.dumps(_record(2, split="validation")), "split"),
        (json.dumps({"id": 2, "text": "x"}), "missing"),
        (json.dumps(_record(2, split="train")), "not contiguous"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "g.jsonl", [_record(0), _record(1, "dev")], extra=bad + "\n")
    with pytest.raises(CorpusFormatError, match=message) as err:
        list(read_genia(path, spacy.blank("en"), ConversionReport()))
    assert err.value.path == str(path) and err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: ")


def test_iob2_malformed_and_lenient(tmp_path):
    nlp = spacy.blank("en")
    path = tmp_path / "x.iob2"
    path.write_text("IL\tB-protein\tO\n-\tI-protein\tO\n4\tI-protein\tO\n\nc\tI-DNA\tB-DNA\nfos\tI-DNA\tI-DNA\n")
    report = ConversionReport()
    docs = list(read_genia_iob2(path, nlp, report))
    assert [[(s.text, s.label_) for s in d.spans["nested"]] for d in docs] == [
        [("IL - 4", "protein")],
        [("c fos", "DNA")],
    ]
    assert report.dropped == {"duplicate span across label layers": 1}
    assert report.notes["IOB2: I- continuing nothing read as B-"] == 1
    assert report.is_balanced() and report.mentions_read == 3
    path.write_text("IL\tB-protein\tO\n-\tX-protein\tO\n")
    with pytest.raises(CorpusFormatError) as err:
        list(read_genia_iob2(path, nlp, ConversionReport()))
    assert err.value.line == 2
    path.write_text("IL\tB-protein\tO\n-\tI-protein\n")
    with pytest.raises(CorpusFormatError, match="columns") as err:
        list(read_genia_iob2(path, nlp, ConversionReport()))
    assert err.value.line == 2
