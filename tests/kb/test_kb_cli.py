from pathlib import Path

import srsly
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


DATA = Path(__file__).parent / "data"


def _build(out, *args):
    return CliRunner().invoke(app, ["kb", "build", str(out), *map(str, args)])


def test_kb_build_mesh_xml_and_concepts(tmp_path):
    out = tmp_path / "kb"
    result = _build(out, "--mesh-xml", DATA / "mesh" / "supp_sample.xml", "--mesh-xml", DATA / "mesh" / "desc_sample.xml",
                    "--concepts", DATA / "concepts" / "drugs.jsonl", "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    assert "MeSH XML desc_sample.xml (descriptor): records 10" in result.output
    assert "KB: 16 concepts" in result.output
    gen = CandidateGenerator.from_disk(out)
    (cands,) = gen(["paracetamol"], k=1, types=["Chemical"])
    assert cands[0].concept_id == "D000082"
    (cands,) = gen(["ASA"], k=1)
    assert cands[0].concept_id == "DRUG:0001"
    report = srsly.read_json(tmp_path / "report.json")
    assert report["sources"]["mesh_xml:supp_sample.xml"]["concepts"] == 4 and report["kb"]["total"]["concepts"] == 16


def test_kb_build_umls(tmp_path):
    out = tmp_path / "kb"
    result = _build(out, "--umls-meta", DATA / "umls", "--umls-types", "st21pv")
    assert result.exit_code == 0, result.output
    assert "UMLS: " in result.output and "T038: 2 concepts" in result.output
    (cands,) = CandidateGenerator.from_disk(out)(["type 2 diabetes mellitus"], k=1, types=["T038"])
    assert cands[0].concept_id == "UMLS:C0011860"  # MedMentions' IDs and types


def test_kb_build_umls_too_many_types(tmp_path):
    meta = tmp_path / "META"
    meta.mkdir()
    (meta / "MRCONSO.RRF").write_text("C0000001|ENG|P|L1|PF|S1|Y|A1||||SRC|PT|1|one|0|N||\n")
    (meta / "MRSTY.RRF").write_text("".join(f"C00000{i:02d}|T{i:03d}|A{i}|Type {i}|AT{i}|256|\n" for i in range(40)))
    result = _build(tmp_path / "kb", "--umls-meta", tmp_path)
    assert result.exit_code == 1 and "--umls-types" in result.output


def test_kb_build_obo(tmp_path):
    out = tmp_path / "kb"
    obo = DATA / "obo" / "disease_sample.obo"
    result = _build(out, "--obo", obo, "--obo-type", "Disease", "--obo-synonyms", "exact,related")
    assert result.exit_code == 0, result.output
    assert "OBO disease_sample.obo: terms 7" in result.output and "Disease: 3 concepts" in result.output
    gen = CandidateGenerator.from_disk(out)
    (cands,) = gen(["maturity-onset diabetes"], k=1, types=["Disease"])
    assert cands[0].concept_id == "MONDO:0005148" and gen.kb.resolve("OMIM:125853") == "MONDO:0005148"
    result = _build(out, "--obo", obo, "--obo", obo, "--obo-type", "Disease", "--obo-type", "Disease", "--obo-type", "X")
    assert result.exit_code != 0 and "--obo-type" in result.output


def test_kb_build_malformed_source_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.obo"
    bad.write_text("[Term]\nid: X:1\nname x\n")
    result = _build(tmp_path / "kb", "--obo", bad)
    assert result.exit_code == 1 and f"{bad}:3:" in result.output
