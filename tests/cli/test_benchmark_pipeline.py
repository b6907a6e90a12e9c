"""`benchmark pipeline`: every pipeline processes the same texts in its own process."""
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app


def test_benchmark_pipeline_reports_each_model(tmp_path):
    nlp = spacy.blank("en")
    texts = ["Aspirin can cause gastric ulcer.", "Ibuprofen is a drug.", "No ulcer was seen."]
    DocBin(docs=[nlp.make_doc(t) for t in texts]).to_disk(tmp_path / "data.spacy")
    nlp.to_disk(tmp_path / "blank")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "sents")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["benchmark", "pipeline", str(tmp_path / "blank"), str(tmp_path / "sents"),
                                      "--data", str(tmp_path / "data.spacy"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = srsly.read_json(out)["results"]
    assert [r["pipeline"] for r in rows] == [[], ["sentencizer"]]
    assert all(r["docs"] == 3 and r["words"] == sum(len(nlp.make_doc(t)) for t in texts) for r in rows)
    assert all(r["words_per_second"] > 0 and r["peak_rss_mb"] > 0 for r in rows)
    assert rows[0]["speed_vs_first"] == 1.0


def test_benchmark_pipeline_missing_data(tmp_path):
    result = CliRunner().invoke(app, ["benchmark", "pipeline", "x", "--data", str(tmp_path / "none.spacy")],
                                env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "does not exist" in result.output
