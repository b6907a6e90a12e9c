"""en_medlink as users get it: a tiny trained joint-tagger pipeline goes
through `spacy package`, is pip-installed, and then, in fresh interpreters
that import nothing of ours (entry points only), `spacy.load` finds and
grounds entities and `spacy evaluate` scores NER and normalization."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from .pipeline.test_joint_tagger import _examples, _model_config, _train

NAME = "medlink_tiny"


@pytest.fixture(scope="module")
def installed(kb_dir, tmp_path_factory):  # noqa: F811
    """(site folder with en_medlink_tiny installed, dev.spacy of the training texts)."""
    root = tmp_path_factory.mktemp("package")
    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", name="joint_tagger",
                 config={"model": _model_config(), "use_abbreviations": False})
    nlp.config["initialize"]["components"]["joint_tagger"] = {"kb_path": str(kb_dir)}
    examples = _examples(nlp)
    _train(nlp, examples)
    nlp.get_pipe("joint_tagger").cfg["men_threshold"] = 0.0  # the MEN head decides: training IDs
    nlp.to_disk(root / "model")
    dev = root / "dev.spacy"
    DocBin(docs=[eg.reference for eg in examples]).to_disk(dev)
    packages = root / "packages"
    packages.mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(root / "model"), str(packages), "--name", NAME,
                    "--version", "0.0.1", "--build", "wheel", "--force"], check=True, capture_output=True)
    wheels = list(packages.glob("*/dist/*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: spacy-medlink" in metadata  # so pip brings our entry points along
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheels[0])], check=True)
    return site, dev


def _run(site: Path, args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_installed_package_finds_and_grounds_entities(installed, tmp_path):
    site, _ = installed
    script = (
        "import json, spacy\n"
        f"nlp = spacy.load('en_{NAME}')\n"
        "doc = nlp('Aspirin can cause gastric ulcer in elderly patients.')\n"
        "print(json.dumps({'pipes': nlp.pipe_names, 'modules': sorted(m for m in __import__('sys').modules if m.startswith('spacy_medlink.pipeline')),\n"
        "  'ents': [(e.text, e.label_, e.kb_id_, e._.medlink_score) for e in doc.ents]}))\n"
    )
    out = _run(site, ["-c", script], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pipes"] == ["joint_tagger"]
    assert "spacy_medlink.pipeline.joint_tagger" in result["modules"]  # resolved through the entry point
    assert [e[:3] for e in result["ents"]] == [["Aspirin", "Chemical", "D001241"], ["gastric ulcer", "Disease", "D014456"]]
    assert all(0.0 < e[3] <= 1.0 for e in result["ents"])


def test_spacy_evaluate_on_package_reports_ner_and_normalization(installed, tmp_path):
    site, dev = installed
    out = _run(site, ["-m", "spacy", "evaluate", f"en_{NAME}", str(dev)], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    # spaCy's own table: NER P/R/F (spaCy prints no other component's metrics)
    assert "NER F" in out.stdout and "100.00" in out.stdout
    # --per-component keeps every score our scorer returns
    scores_path = tmp_path / "scores.json"
    out = _run(site, ["-m", "spacy", "evaluate", f"en_{NAME}", str(dev), "--per-component", "--output",
                      str(scores_path)], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    scores = json.loads(scores_path.read_text())["joint_tagger"]
    assert scores["ents_f"] == 1.0
    assert scores["nen_f"] == 1.0 and scores["nen_doc_f"] == 1.0
    assert set(scores["nen_per_type"]) == {"Chemical", "Disease"}
