"""`benchmark load`: sizes and fresh-process load times, the pipelines taking turns."""
import spacy
import srsly
from typer.testing import CliRunner

from spacy_medlink.cli import app


def test_benchmark_load_reports_each_model(tmp_path):
    nlp = spacy.blank("en")
    nlp.to_disk(tmp_path / "blank")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "sents")
    wheel = tmp_path / "fake.whl"
    wheel.write_bytes(b"0" * 2048)
    out = tmp_path / "load.json"
    result = CliRunner().invoke(app, ["benchmark", "load", str(tmp_path / "blank"), str(tmp_path / "sents"),
                                      "--repeats", "2", "--wheels", f"{wheel},{wheel}", "--output", str(out)])
    assert result.exit_code == 0, result.output
    report = srsly.read_json(out)
    rows = report["results"]
    assert [len(r["runs"]) for r in rows] == [2, 2]
    assert all(r["median_load_s"] > 0 and r["median_rss_mb"] > 0 and r["same_entities_every_run"] for r in rows)
    assert "vocab" in rows[1]["components_mb"] and rows[1]["wheel_mb"] == round(2048 / 2**20, 3)
    assert rows[1]["wheel_ratio_vs_first"] == 1.0 and "load_ratio_vs_first" in rows[1]
    assert "spacy" in report["installed"]


def test_benchmark_load_checks_wheel_count(tmp_path):
    spacy.blank("en").to_disk(tmp_path / "blank")
    result = CliRunner().invoke(app, ["benchmark", "load", str(tmp_path / "blank"), "--wheels", "a.whl,b.whl"],
                                env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "2 wheels for 1 pipelines" in result.output
