from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.convert import default_stem

TEXT = "Cyclophosphamide (CYP)-induced cystitis. Vitamin D."
CORPUS = "\n".join(
    [
        "1|t|Cyclophosphamide (CYP)-induced cystitis.",
        "1|a|Vitamin D.",
        "1\t0\t16\tCyclophosphamide\tChemical\tMESH:D003520",
        "1\t18\t21\tCYP\tChemical\tD003520",
        "1\t31\t39\tcystitis\tDisease\tD003556",
        "1\t41\t50\tVitamin D\tChemical\t-1",
        "1\tCID\tD003520\tD003556",
        "",
        "2|t|Aspirin.",
        "2|a|",
        "2\t0\t7\tAspirin\tSpecificDisease\tD001241",
        "",
    ]
)


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "tiny.PubTator.txt"
    path.write_text(CORPUS, encoding="utf8")
    return path


def run(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)])


def test_convert_pubtator(corpus, tmp_path):
    out = tmp_path / "out" / "corpus"
    label_map = '{"Chemical": "Chemical", "Disease": "Disease", "SpecificDisease": "Disease"}'
    result = run(corpus, out, "--format", "pubtator", "--label-map", label_map, "--name", "train")
    assert result.exit_code == 0, result.output
    assert "documents read 2, kept 2" in result.output
    assert "mentions read 5, kept 5, not kept 0" in result.output
    assert "changed (1): no concept" in result.output
    assert "changed (1): MESH: prefix stripped" in result.output
    docs = list(DocBin().from_disk(out / "train.spacy").get_docs(spacy.blank("en").vocab))
    assert [d.text for d in docs] == [TEXT, "Aspirin. "]
    assert [(e.text, e.label_, e.kb_id_) for e in docs[0].ents] == [
        ("Cyclophosphamide", "Chemical", "D003520"),
        ("CYP", "Chemical", "D003520"),
        ("cystitis", "Disease", "D003556"),
        ("Vitamin D", "Chemical", ""),
    ]
    assert len(docs[0].spans["mentions"]) == 4
    assert docs[0].user_data["doc_id"] == "1"
    # DocBin's msgpack gives tuples back for the lists read_pubtator stored
    assert [list(r) for r in docs[0].user_data["medlink_relations"]] == [["CID", "D003520", "D003556"]]
    assert [(e.text, e.label_) for e in docs[1].ents] == [("Aspirin", "Disease")]
    report = srsly.read_json(out / "train.report.json")
    assert report["mentions_read"] == report["mentions_kept"] == 5
    assert report["labels"] == {"Chemical": 3, "Disease": 2}


def test_convert_reports_drops_and_limit(corpus, tmp_path):
    result = run(corpus, tmp_path, "-f", "pubtator", "--label-map", '{"Chemical": "Chemical", "Disease": ""}', "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "documents read 1, kept 1" in result.output
    assert "mentions read 4, kept 3, not kept 1" in result.output
    assert "NOT KEPT (1): type 'Disease' mapped to no label" in result.output
    assert "tiny.PubTator.txt:5" in result.output  # where it was
    assert len(DocBin().from_disk(tmp_path / "tiny.spacy")) == 1
    assert srsly.read_json(tmp_path / "tiny.report.json")["dropped"] == {"type 'Disease' mapped to no label": 1}


def test_convert_fails_with_file_and_line(corpus, tmp_path):
    result = run(corpus, tmp_path, "-f", "pubtator")  # no label map: fine
    assert result.exit_code == 0
    result = run(corpus, tmp_path, "-f", "pubtator", "--label-map", "ncbi")
    assert result.exit_code == 1
    assert "tiny.PubTator.txt:3: type 'Chemical' is not in the label map" in " ".join(result.output.split())


def test_convert_rejects_options_of_other_formats(corpus, tmp_path):
    result = run(corpus, tmp_path, "-f", "cmeee", "--label-map", "ncbi")
    assert result.exit_code == 1 and "--label-map only applies to --format pubtator" in result.output
    result = run(corpus, tmp_path, "-f", "pubtator", "--split", "dev")
    assert result.exit_code == 1 and "--split only applies to --format genia" in result.output


@pytest.mark.parametrize(
    "name,split,stem",
    [
        ("CDR_TrainingSet.PubTator.txt", None, "CDR_TrainingSet"),
        ("NCBItrainset_corpus.txt", None, "NCBItrainset_corpus"),
        ("genia_term_3.02_sentences.jsonl.gz", "dev", "genia_term_3.02_sentences_dev"),
        ("CMeEE_dev.json.gz", None, "CMeEE_dev"),
    ],
)
def test_default_stem(name, split, stem):
    assert default_stem(Path(name), split) == stem
