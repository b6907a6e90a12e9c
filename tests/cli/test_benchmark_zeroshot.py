"""`benchmark zeroshot`: the MEN head cannot output a concept it never saw; the KB can."""
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_medlink.cli import app

from ..pipeline.test_joint_tagger import _examples, trained  # noqa: F401 (fixture)


def test_zeroshot_splits_by_training_concepts(trained, tmp_path):  # noqa: F811
    examples = _examples(trained)
    DocBin(docs=[eg.reference for eg in examples]).to_disk(tmp_path / "train.spacy")
    test = trained.make_doc("Patients with gastric ulcer were given aspirin.")
    test.ents = [test.char_span(14, 27, label="Disease", kb_id="D013276"),  # in the KB, never in training
                 test.char_span(39, 46, label="Chemical", kb_id="D001241")]
    DocBin(docs=[test]).to_disk(tmp_path / "test.spacy")
    jt = trained.get_pipe("medlink_joint_tagger")
    out = tmp_path / "z.json"
    for threshold, unseen_correct in ((0.0, 0), (1.01, 1)):  # MEN only / KB only
        jt.cfg["men_threshold"] = threshold
        trained.get_pipe_config("medlink_joint_tagger")["men_threshold"] = threshold  # as `tune` saves it
        trained.to_disk(tmp_path / "model")
        result = CliRunner().invoke(app, ["benchmark", "zeroshot", str(tmp_path / "model"), "--train",
                                          str(tmp_path / "train.spacy"), "--data", str(tmp_path / "test.spacy"),
                                          "--output", str(out)])
        assert result.exit_code == 0, result.output
        row = srsly.read_json(out)["results"][0]
        assert row["train_concepts"] == 3
        assert row["unseen"]["mentions"] == 1 and row["unseen"]["correct"] == unseen_correct
        assert row["seen"] == {"mentions": 1, "correct": 1, "recall": 1.0}
    jt.cfg["men_threshold"] = 0.5
    trained.get_pipe_config("medlink_joint_tagger")["men_threshold"] = 0.5
