"""`tune export` and `tune apply`: the settings `tune` chose, through a JSON file, give
an untuned copy of the pipeline what `tune copy` gives it."""
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.tune import _same_settings

from ..pipeline.test_joint_tagger import _examples, trained  # noqa: F401 (fixture)


def _ents(nlp, texts):
    return [[(e.start_char, e.end_char, e.label_, e.kb_id_, round(e._.medlink_score, 6)) for e in doc.ents]
            for doc in nlp.pipe(texts)]


def test_export_then_apply_is_tune_copy(trained, tmp_path):  # noqa: F811
    model, abbr, tuned, dev = tmp_path / "model", tmp_path / "abbr", tmp_path / "tuned", tmp_path / "dev.spacy"
    trained.to_disk(model)
    DocBin(docs=[eg.reference for eg in _examples(trained)], store_user_data=True).to_disk(dev)
    runner = CliRunner()
    for args in (["abbreviations", str(model), str(dev), str(abbr)],
                 ["coordinations", str(abbr), str(dev), str(tmp_path / "coord"), "--train", str(dev), "--min-count", "1"],
                 ["threshold", str(tmp_path / "coord"), str(dev), str(tuned), "--pipe", "medlink_joint_tagger",
                  "--grid", "1.01,0.0", "--kb-thresholds", "0.3"]):
        result = runner.invoke(app, ["tune", *args])
        assert result.exit_code == 0, result.output
    settings = tmp_path / "settings" / "tuned.json"
    result = runner.invoke(app, ["tune", "export", str(tuned), str(settings)])
    assert result.exit_code == 0, result.output
    pipes = {entry["name"]: entry for entry in srsly.read_json(settings)["pipes"]}
    assert pipes["medlink_joint_tagger"]["settings"] == pytest.approx(
        {"men_threshold": 0.0, "rerank_weight": 0.0, "kb_threshold": 0.3})
    assert "config" not in pipes["medlink_joint_tagger"]  # a trained pipe: its settings only
    assert pipes["coordinations"]["data"]["words"]  # the word list travels in the file
    applied, copied = tmp_path / "applied", tmp_path / "copied"
    result = runner.invoke(app, ["tune", "apply", str(settings), str(model), str(applied)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["tune", "copy", str(tuned), str(model), str(copied)])
    assert result.exit_code == 0, result.output
    reference, nlp, by_copy = spacy.load(tuned), spacy.load(applied), spacy.load(copied)
    assert nlp.pipe_names == reference.pipe_names == by_copy.pipe_names
    for name in reference.pipe_names:
        if name in ("medlink_joint_tagger", "abbreviations", "coordinations"):
            assert _same_settings(nlp.get_pipe(name).cfg, reference.get_pipe(name).cfg), name
            assert _same_settings(dict(nlp.config["components"][name]), dict(reference.config["components"][name]))
    assert nlp.get_pipe("coordinations").words == reference.get_pipe("coordinations").words
    texts = [eg.reference.text for eg in _examples(trained)]
    assert _ents(nlp, texts) == _ents(reference, texts) == _ents(by_copy, texts)
    # exported again, the same file; --compare says so, and fails on another
    again = tmp_path / "again.json"
    result = runner.invoke(app, ["tune", "export", str(applied), str(again), "--compare", str(settings)])
    assert result.exit_code == 0, result.output
    exact = srsly.read_json(settings)
    exact["pipes"][[e["name"] for e in exact["pipes"]].index("medlink_joint_tagger")]["settings"]["kb_threshold"] = 0.3
    srsly.write_json(settings, exact)  # the grid's value, as a committed file writes it
    result = runner.invoke(app, ["tune", "export", str(applied), str(again), "--compare", str(settings)])
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.json"
    srsly.write_json(other, {"pipes": []})
    result = runner.invoke(app, ["tune", "export", str(applied), str(again), "--compare", str(other)])
    assert result.exit_code == 1


def test_apply_refuses_settings_for_another_pipeline(trained, tmp_path):  # noqa: F811
    trained.to_disk(tmp_path / "model")
    settings = tmp_path / "settings.json"
    srsly.write_json(settings, {"pipes": [{"name": "joint_tagger", "factory": "medlink_joint_tagger",
                                           "settings": {"men_threshold": 0.2}}]})
    result = CliRunner().invoke(app, ["tune", "apply", str(settings), str(tmp_path / "model"), str(tmp_path / "o")],
                                env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "medlink_joint_tagger" in result.output
