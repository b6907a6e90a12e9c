"""zh_medlink_nested as users get it: a tiny trained nested recognizer goes
through `spacy package`, is pip-installed, and in a fresh interpreter that
imports nothing of ours (entry points only) `spacy.load` returns nested
spans in doc.spans and the outermost in doc.ents."""
import json
import os
import subprocess
import sys
import zipfile

import spacy

from .pipeline.test_nested_recognizer import TRAIN_DATA, _examples, _make_nlp, _train

NAME = "medlink_nested_tiny"


def test_installed_nested_package_returns_nested_spans(tmp_path):
    nlp = _train(_make_nlp(), _examples(spacy.blank("zh")))
    nlp.to_disk(tmp_path / "model")
    packages = tmp_path / "packages"
    packages.mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(tmp_path / "model"), str(packages), "--name", NAME,
                    "--version", "0.0.1", "--build", "wheel", "--force"], check=True, capture_output=True)
    (wheel,) = packages.glob("*/dist/*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: spacy-medlink" in metadata
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    script = (
        "import json, spacy\n"
        f"nlp = spacy.load('zh_{NAME}')\n"
        f"doc = nlp({TRAIN_DATA[0][0]!r})\n"
        "print(json.dumps({'spans': [(s.start_char, s.end_char, s.label_) for s in doc.spans['nested']],\n"
        "  'ents': [(e.text, e.label_) for e in doc.ents]}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(map(tuple, result["spans"])) == sorted(TRAIN_DATA[0][1])
    assert result["ents"] == [["肺癌", "dis"]]
