"""`tune threshold` and `tune resolution`: decoding settings chosen on dev and saved with the pipeline."""
import contextlib

import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.tune import sweep_threshold

from ..pipeline.test_joint_tagger import _examples, trained  # noqa: F401 (fixture)


def test_sweep_scores_each_threshold(trained):  # noqa: F811
    rows = sweep_threshold(trained, "medlink_joint_tagger", _examples(trained), [0.0, 1.01])
    by_t = {row["men_threshold"]: row for row in rows}
    # MEN decides everything: every training concept right
    assert by_t[0.0]["nen_f"] == 1.0
    # the KB decides everything: "gastric ulcer" goes to the KB's exact match
    # (D013276), not the training ID (D014456)
    assert by_t[1.01]["nen_f"] < 1.0
    assert by_t[0.0]["ents_f"] == by_t[1.01]["ents_f"] == 1.0  # NER does not depend on it
    assert trained.get_pipe("medlink_joint_tagger").cfg["men_threshold"] == 0.5  # restored


def test_sweep_asks_the_kb_once_per_span_batch(trained, monkeypatch):  # noqa: F811
    """Settings that send the same spans to the KB share one lookup, and score as if each looked them up."""
    from spacy_medlink.cli import tune
    from spacy_medlink.kb import span_lookup

    settings = [{"men_threshold": t, "rerank_weight": w, "kb_threshold": k}
                for t in (0.0, 1.01) for w in (0.0, 1.0) for k in (0.0, 0.5)]
    calls = []
    real = span_lookup.span_candidates
    monkeypatch.setattr(span_lookup, "span_candidates", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    examples = _examples(trained)
    rows = tune.sweep_settings(trained, "medlink_joint_tagger", examples, settings)
    memoized = len(calls)
    pipe = trained.get_pipe("medlink_joint_tagger")
    monkeypatch.setattr(type(pipe), "memoized_lookups", contextlib.nullcontext, raising=False)
    calls.clear()
    fresh = tune.sweep_settings(trained, "medlink_joint_tagger", examples, settings)
    assert rows == fresh
    assert 0 < memoized < len(calls)  # at 1.01 every span goes to the KB: looked up once, not four times
    assert "kb_memo" not in pipe._cache  # the memo ends with the sweep


def test_tune_cli_saves_best_threshold(trained, tmp_path):  # noqa: F811
    model, out, dev = tmp_path / "model", tmp_path / "tuned", tmp_path / "dev.spacy"
    trained.to_disk(model)
    DocBin(docs=[eg.reference for eg in _examples(trained)], store_user_data=True).to_disk(dev)
    sweep = tmp_path / "sweep.json"
    result = CliRunner().invoke(app, ["tune", "threshold", str(model), str(dev), str(out), "--pipe",
                                      "medlink_joint_tagger", "--grid", "1.01,0.0,0.5", "--sweep-output", str(sweep)])
    assert result.exit_code == 0, result.output
    nlp = spacy.load(out)
    assert nlp.get_pipe("medlink_joint_tagger").cfg["men_threshold"] == 0.0
    assert nlp.config["components"]["medlink_joint_tagger"]["men_threshold"] == 0.0
    assert srsly.read_json(sweep)["best"]["nen_f"] == 1.0


def test_tune_cli_rejects_unknown_pipe(trained, tmp_path):  # noqa: F811
    trained.to_disk(tmp_path / "model")
    result = CliRunner().invoke(app, ["tune", "threshold", str(tmp_path / "model"), "x.spacy", str(tmp_path / "o"),
                                      "--pipe", "nope"], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "has no pipe" in result.output and "nope" in result.output


def test_tune_resolution_rejects_a_pipe_without_the_settings(trained, tmp_path):  # noqa: F811
    trained.to_disk(tmp_path / "model")
    dev = tmp_path / "dev.spacy"
    DocBin(docs=[eg.reference for eg in _examples(trained)]).to_disk(dev)
    result = CliRunner().invoke(app, ["tune", "resolution", str(tmp_path / "model"), str(dev), str(tmp_path / "o"),
                                      "--pipe", "medlink_joint_tagger"], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "has no setting" in result.output


class _TransformerOutput:
    """Stands in for spacy-transformers' pipe: leaves an output on each doc."""

    def __call__(self, doc):
        doc._.trf_data = list(range(1000))
        return doc

    def pipe(self, docs):
        return (self(doc) for doc in docs)


@spacy.Language.factory("medlink_test_trf_output")
def _make_transformer_output(nlp, name):
    return _TransformerOutput()


def test_sweep_does_not_copy_transformer_output(trained, monkeypatch):  # noqa: F811
    from spacy.tokens import Doc

    if not Doc.has_extension("trf_data"):
        Doc.set_extension("trf_data", default=None)
    pipe = trained.get_pipe("medlink_joint_tagger")
    seen = []
    original = pipe.set_annotations

    def record(docs, scores):
        seen.extend(doc._.trf_data for doc in docs)
        return original(docs, scores)

    monkeypatch.setattr(pipe, "set_annotations", record)
    trained.add_pipe("medlink_test_trf_output", first=True)
    try:
        sweep_threshold(trained, "medlink_joint_tagger", _examples(trained), [0.0, 1.01])
    finally:
        trained.remove_pipe("medlink_test_trf_output")
    assert seen and all(value is None for value in seen)


def test_tune_copy_gives_a_model_the_tuned_settings(trained, tmp_path):  # noqa: F811
    """The final model trained on train + dev gets the settings dev chose for the train-only run."""
    source, model, out = tmp_path / "tuned", tmp_path / "model", tmp_path / "out"
    pipe = trained.get_pipe("medlink_joint_tagger")
    trained.to_disk(model)
    saved = dict(pipe.cfg)
    try:
        pipe.cfg.update(men_threshold=0.25, kb_threshold=0.7)
        trained.get_pipe_config("medlink_joint_tagger").update(men_threshold=0.25, kb_threshold=0.7)
        trained.to_disk(source)
    finally:
        pipe.cfg.update(saved)
        trained.get_pipe_config("medlink_joint_tagger").update({k: saved[k] for k in ("men_threshold", "kb_threshold")})
    result = CliRunner().invoke(app, ["tune", "copy", str(source), str(model), str(out)])
    assert result.exit_code == 0, result.output
    nlp = spacy.load(out)
    for key, value in (("men_threshold", 0.25), ("kb_threshold", 0.7)):
        assert nlp.get_pipe("medlink_joint_tagger").cfg[key] == value
        assert nlp.config["components"]["medlink_joint_tagger"][key] == value
    assert spacy.load(model).get_pipe("medlink_joint_tagger").cfg["men_threshold"] == 0.5  # MODEL itself unchanged
    # a source without the pipe is refused
    blank = spacy.blank("en")
    blank.to_disk(tmp_path / "blank")
    result = CliRunner().invoke(app, ["tune", "copy", str(tmp_path / "blank"), str(model), str(tmp_path / "o2")],
                                env={"COLUMNS": "200"})
    assert result.exit_code != 0 and "to copy settings from" in result.output


def test_tune_abbreviations_adds_the_pipe_and_copy_carries_it(trained, tmp_path):  # noqa: F811
    """`tune abbreviations` sweeps the switch settings after the recognizer; `tune copy` adds the pipe too."""
    model, out, dev, sweep = tmp_path / "model", tmp_path / "tuned", tmp_path / "dev.spacy", tmp_path / "sweep.json"
    trained.to_disk(model)
    DocBin(docs=[eg.reference for eg in _examples(trained)], store_user_data=True).to_disk(dev)
    result = CliRunner().invoke(app, ["tune", "abbreviations", str(model), str(dev), str(out),
                                      "--sweep-output", str(sweep)])
    assert result.exit_code == 0, result.output
    nlp = spacy.load(out)
    assert nlp.pipe_names[-1] == "abbreviations"
    assert nlp.get_pipe_meta("abbreviations").factory == "medlink_abbreviations"
    rows = srsly.read_json(sweep)["sweep"]
    assert [(r["add_short_forms"], r["remove_short_forms"], r["exact_long_form"]) for r in rows] == [
        (False, False, False), (False, True, False), (True, False, False), (True, False, True),
        (True, True, False), (True, True, True)]
    assert rows[0]["nen_f"] is not None  # the recognizer's scorer scores the final entities too
    # the first of equals wins: nothing to agree on in these docs, so the pipe is there but off
    assert nlp.get_pipe("abbreviations").cfg == {"add_short_forms": False, "remove_short_forms": False,
                                                 "exact_long_form": False}
    assert nlp.config["components"]["abbreviations"]["add_short_forms"] is False
    copied = tmp_path / "copied"
    result = CliRunner().invoke(app, ["tune", "copy", str(out), str(model), str(copied)])
    assert result.exit_code == 0, result.output
    again = spacy.load(copied)
    assert again.pipe_names == nlp.pipe_names
    assert again.get_pipe("abbreviations").cfg == nlp.get_pipe("abbreviations").cfg


def test_sweep_runs_the_pipes_after_the_tuned_one(trained):  # noqa: F811
    """What a later pipe does to the entities is in the sweep's scores; a plain function pipe runs too."""
    from spacy.language import Language

    from spacy_medlink.cli.tune import sweep_settings

    if not Language.has_factory("medlink_test_drop_ents"):
        @Language.component("medlink_test_drop_ents")
        def drop_ents(doc):
            doc.ents = []
            return doc

    examples = _examples(trained)
    setting = [{"men_threshold": 0.0}]
    assert sweep_settings(trained, "medlink_joint_tagger", examples, setting)[0]["ents_f"] == 1.0
    trained.add_pipe("medlink_test_drop_ents")
    try:
        assert not sweep_settings(trained, "medlink_joint_tagger", examples, setting)[0]["ents_f"]
    finally:
        trained.remove_pipe("medlink_test_drop_ents")


def test_tune_coordinations_reads_train_and_copy_carries_the_words(trained, tmp_path):  # noqa: F811
    model, out, dev = tmp_path / "model", tmp_path / "tuned", tmp_path / "dev.spacy"
    trained.to_disk(model)
    DocBin(docs=[eg.reference for eg in _examples(trained)], store_user_data=True).to_disk(dev)
    result = CliRunner().invoke(app, ["tune", "coordinations", str(model), str(dev), str(out), "--train", str(dev),
                                      "--min-count", "1"])
    assert result.exit_code == 0, result.output
    nlp = spacy.load(out)
    words = nlp.get_pipe("coordinations").words
    assert words and words == {e[0].lower_ for eg in _examples(trained) for e in eg.reference.ents
                               if len(e) > 1 and e[0].is_alpha}
    copied = tmp_path / "copied"
    result = CliRunner().invoke(app, ["tune", "copy", str(out), str(model), str(copied)])
    assert result.exit_code == 0, result.output
    assert spacy.load(copied).get_pipe("coordinations").words == words
