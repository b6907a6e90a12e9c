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


def test_kb_build_from_train_corpus_only(tmp_path):
    """No MEDIC/MeSH (MedMentions: UMLS is licensed): the train mentions' IDs are the concepts."""
    (tmp_path / "train.txt").write_text(
        "1|t|type 2 diabetes\n1|a|x\n1\t0\t15\ttype 2 diabetes\tT038\tUMLS:C0011860\n\n"
    )
    out = tmp_path / "kb"
    args = ["kb", "build", str(out), "--train-corpus", str(tmp_path / "train.txt"), "--train-name", "medmentions"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "KB: 1 concepts" in result.output and "T038: 1 concepts" in result.output
    (cands,) = CandidateGenerator.from_disk(out)(["type 2 diabetes"], k=1, types=["T038"])
    assert cands[0].concept_id == "UMLS:C0011860"
    (tmp_path / "nil.txt").write_text("1|t|diabetes\n1|a|x\n1\t0\t8\tdiabetes\tT038\t-1\n\n")
    result = CliRunner().invoke(app, args[:3] + ["--train-corpus", str(tmp_path / "nil.txt"), "--train-name", "mm"])
    assert result.exit_code == 1 and "The KB has no concepts" in result.output
