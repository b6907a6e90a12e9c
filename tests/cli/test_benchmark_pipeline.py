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


def test_benchmark_pipeline_sweeps_a_setting(tmp_path):
    """One run per value of a pipe setting, each row saying which."""
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("tagger")
    doc = nlp.make_doc("Aspirin works")
    nlp.initialize(lambda: [Example.from_dict(doc, {"tags": ["NN", "VBZ"]})])
    nlp.to_disk(tmp_path / "tagger")
    DocBin(docs=[nlp.make_doc("No ulcer was seen.")]).to_disk(tmp_path / "data.spacy")
    out = tmp_path / "bench.json"
    args = ["benchmark", "pipeline", str(tmp_path / "tagger"), "--data", str(tmp_path / "data.spacy"), "--output", str(out)]
    result = CliRunner().invoke(app, args + ["--sweep", "tagger.overwrite=false,true"])
    assert result.exit_code == 0, result.output
    rows = srsly.read_json(out)["results"]
    assert [r["setting"] for r in rows] == [{"tagger.overwrite": False}, {"tagger.overwrite": True}]
    result = CliRunner().invoke(app, args + ["--sweep", "tagger.nope=1"], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "has no setting 'nope'" in result.output
    result = CliRunner().invoke(app, args + ["--sweep", "k=1"], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "PIPE.KEY" in result.output


def test_sweep_values_are_json_or_strings():
    from spacy_medlink.cli.benchmark_pipeline import parse_sweep

    assert parse_sweep("gated_normalizer.k=1,5") == ("gated_normalizer.k", [1, 5])
    assert parse_sweep("p.flag=false,true") == ("p.flag", [False, True])
    assert parse_sweep("gated_normalizer.pair_context=doc,sentence") == (
        "gated_normalizer.pair_context", ["doc", "sentence"])
    assert parse_sweep(None) == (None, [None])
