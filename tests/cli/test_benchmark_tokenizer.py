"""`benchmark tokenizer`: gold aligned to token boundaries per corpus, spaCy's tokenizer against ours."""
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.corpora.standoff import GOLD_KEY

TEXT = "Na+/K+-ATPase rose after (CYP)-induced cystitis."


def write_corpora(folder):
    nlp = spacy.blank("en")
    doc = nlp.make_doc(TEXT)
    doc.user_data[GOLD_KEY] = [[TEXT.index(m), TEXT.index(m) + len(m), "Chemical", ""] for m in ("K+", "CYP")]
    DocBin(docs=[doc], store_user_data=True).to_disk(folder / "toy.spacy")
    # a PubTator-style conversion: spans only, its report beside it
    spans = nlp.make_doc(TEXT)
    spans.spans["mentions"] = [spans.char_span(TEXT.index("cystitis"), len(TEXT) - 1, label="Disease")]
    DocBin(docs=[spans], store_user_data=True).to_disk(folder / "pubtator.spacy")
    srsly.write_json(folder / "pubtator.report.json", {"notes": {"expanded to token boundaries": 2}})


def test_benchmark_tokenizer_writes_each_corpus(tmp_path):
    write_corpora(tmp_path)
    out = tmp_path / "out" / "tokenizer.json"
    result = CliRunner().invoke(app, ["benchmark", "tokenizer", "--data", str(tmp_path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    report = srsly.read_json(out)
    toy = report["corpora"]["toy"]
    assert toy["gold_offsets"] == "original" and "conversion" not in toy
    assert (toy["spacy_en"]["mentions"], toy["spacy_en"]["aligned"]) == (2, 0)
    assert (toy["medlink"]["mentions"], toy["medlink"]["aligned"]) == (2, 2)
    pubtator = report["corpora"]["pubtator"]
    assert pubtator["gold_offsets"] == "converted spans"
    assert pubtator["conversion"]["expanded_to_token_boundaries"] == 2
    assert report["summary"]["spacy_en"] == {"mentions": 3, "aligned": 1, "share": pytest.approx(1 / 3)}
    assert report["summary"]["medlink"]["aligned"] == 3
    if report["tokenizers"]["scispacy"]:
        assert toy["scispacy"]["mentions"] == 2
    else:
        assert "unavailable" in toy["scispacy"]
    result = CliRunner().invoke(app, ["benchmark", "tokenizer", "--data", str(tmp_path), "--output", str(out),
                                      "--corpus", "toy", "--corpus", "nope"], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "nope.spacy" in result.output
