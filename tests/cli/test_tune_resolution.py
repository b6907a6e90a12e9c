"""`tune resolution` on a tiny trained gated normalizer (its fixtures)."""
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app

from ..pipeline.test_gated_normalizer import NAME, _examples, trained  # noqa: F401 (fixture)


def test_tune_resolution_cli_sweeps_the_grid(trained, tmp_path):  # noqa: F811
    """Every weight/threshold combination is scored on dev; the best is saved
    in the pipe's cfg and config.cfg; a threshold above 1 leaves every ID empty."""
    nlp, _ = trained
    model, out, dev, sweep = tmp_path / "model", tmp_path / "tuned", tmp_path / "dev.spacy", tmp_path / "sweep.json"
    nlp.to_disk(model)
    DocBin(docs=[eg.reference for eg in _examples(nlp)], store_user_data=True).to_disk(dev)
    result = CliRunner().invoke(app, ["tune", "resolution", str(model), str(dev), str(out), "--pipe", NAME,
                                      "--kb-weights", "0,2", "--mid-weights", "1", "--high-weights", "0,1",
                                      "--thresholds", "1.01,0", "--sweep-output", str(sweep)])
    assert result.exit_code == 0, result.output
    rows = srsly.read_json(sweep)["sweep"]
    assert len(rows) == 2 * 1 * 2 * 2
    assert {(r["kb_score_weight"], r["high_score_weight"], r["threshold"]) for r in rows} == {
        (kb, high, t) for kb in (0, 2) for high in (0, 1) for t in (1.01, 0)}
    assert all(r["nen_r"] == 0.0 for r in rows if r["threshold"] == 1.01)
    best = srsly.read_json(sweep)["best"]
    assert best["threshold"] == 0.0 and best["nen_f"] == max(r["nen_f"] for r in rows) > 0.9
    tuned = spacy.load(out)
    for key in ("kb_score_weight", "mid_score_weight", "high_score_weight", "threshold"):
        assert tuned.get_pipe(NAME).cfg[key] == best[key]
        assert tuned.config["components"][NAME][key] == best[key]
    assert nlp.get_pipe(NAME).cfg["threshold"] == 0.0  # the sweep restored the pipe
