from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.kb.candidates import CandidateGenerator

MEDIC = (
    "# CTD header\n"
    "Familial Mediterranean Fever\tMESH:D010505\tOMIM:249100\t\t\t\t\tFMF|Mediterranean Fever, Familial\t\n"
    "Breast Neoplasms\tMESH:D001943\t\t\t\t\t\tBreast Cancer|Breast Tumor\t\n"
)
TRAIN = "1|t|breast carcinoma\n1|a|x\n1\t0\t16\tbreast carcinoma\tSpecificDisease\tD001943\n\n"


def test_kb_build_command(tmp_path):
    (tmp_path / "medic.tsv").write_text(MEDIC)
    (tmp_path / "train.txt").write_text(TRAIN)
    out = tmp_path / "kb"
    result = CliRunner().invoke(app, [
        "kb", "build", str(out), "--medic", str(tmp_path / "medic.tsv"),
        "--train-corpus", str(tmp_path / "train.txt"), "--train-name", "ncbi",
    ])
    assert result.exit_code == 0, result.output
    assert "KB: 2 concepts" in result.output
    gen = CandidateGenerator.from_disk(out)
    assert gen.kb.resolve("OMIM:249100") == "D010505"
    (cands,) = gen(["breast carcinoma"], k=1, types=["Disease"])
    assert cands[0].concept_id == "D001943" and cands[0].score == 1.0  # from the train mention


def test_kb_build_needs_a_source(tmp_path):
    result = CliRunner().invoke(app, ["kb", "build", str(tmp_path / "kb")])
    assert result.exit_code != 0
