"""Installing spacy-medlink cannot break spaCy.

torch is an extra (``[torch]``), and spaCy imports every module named by a
registered factory whenever it creates a pipeline, so those modules import
nothing heavy. Checked in a subprocess where torch cannot be imported (and the
distributions that require it, such as spacy-transformers, are hidden as if not
installed): spaCy and our command line work there, and our trainable components
say what to install. With --runslow, a fresh virtualenv installed the way the
README says loads a small packaged pipeline.
"""
import configparser
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy

ROOT = Path(__file__).parents[1]
TORCH_VERSION = "2.13.0"  # requirements.txt's pin: here it resolves to the local CPU wheel

# Installed first on the subprocess's path: `import torch` fails, and the entry points of
# distributions that require torch are dropped, as in an environment where neither exists.
NO_TORCH = '''
import importlib.metadata as _metadata
import re
import sys

sys.modules["torch"] = None


def _requires_torch(dist):
    for req in dist.requires or ():
        name, _, marker = req.partition(";")
        if re.fullmatch(r"torch(\\s*[\\[<>=!~(].*)?", name.strip()) and "extra" not in marker:
            return True
    return False


_without = {d.metadata["Name"] for d in _metadata.distributions() if _requires_torch(d)}
_entry_points = _metadata.entry_points


def _filtered(**params):
    eps = _entry_points(**params)
    if not isinstance(eps, _metadata.EntryPoints):  # Python < 3.12 without arguments: by group
        eps = _metadata.EntryPoints(ep for group in eps.values() for ep in group)
    dist = lambda ep: getattr(ep, "dist", None)  # noqa: E731
    return _metadata.EntryPoints(ep for ep in eps if dist(ep) is None or dist(ep).metadata["Name"] not in _without)


_metadata.entry_points = _filtered
'''

CHECK = '''
import importlib, json, sys
import spacy
from spacy.language import Language
from spacy.util import registry

out = {"torch_blocked": sys.modules.get("torch", 0) is None}
nlp = spacy.blank("en")
doc = nlp("Aspirin can cause gastric ulcer.")
out["blank"] = [t.text for t in doc]
out["factories"] = sorted(name for name in registry.factories.get_all() if name.startswith("medlink_"))
out["language_factories"] = sorted(name for name in Language.factories if name.startswith("medlink_"))
out["registered"] = {}
for group, name, target in ENTRY_POINTS:
    module, _, attr = target.partition(":")
    function = getattr(importlib.import_module(module), attr)
    registered = getattr(registry, group).get(name)
    out["registered"][name] = registered is function or getattr(registered, "__wrapped__", None) is function
out["heavy"] = sorted(m for m in ("torch", "transformers", "spacy_transformers", "lightgbm") if sys.modules.get(m))
out["errors"] = {}
for factory in ("medlink_joint_tagger", "medlink_gated_normalizer", "medlink_nested_recognizer", "medlink_hier_linker"):
    try:
        spacy.blank("en").add_pipe(factory)
        out["errors"][factory] = None
    except ImportError as err:
        out["errors"][factory] = str(err)
light = spacy.blank("en")
for factory in ("medlink_abbreviations", "medlink_coordinations", "medlink_kb_linker"):
    light.add_pipe(factory)
out["light"] = light.pipe_names
print(json.dumps(out))
'''


def _entry_points():
    """(registry, registered name, module:function) of every spaCy entry point in setup.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    groups = config["options.entry_points"]
    rows = []
    for group, lines in groups.items():
        if not group.startswith("spacy_"):
            continue
        for line in filter(None, (x.strip() for x in lines.splitlines())):
            name, _, target = (part.strip() for part in line.partition("="))
            rows.append((group[len("spacy_"):], name, target))
    return rows


def test_spacy_works_without_torch(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH, encoding="utf8")
    entry_points = _entry_points()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    script = f"ENTRY_POINTS = {entry_points!r}\n{CHECK}"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["torch_blocked"]
    assert out["blank"] == ["Aspirin", "can", "cause", "gastric", "ulcer", "."]
    ours = sorted(name for group, name, _ in entry_points if group == "factories")
    assert out["factories"] == ours and out["language_factories"] == ours
    assert all(out["registered"].values()), out["registered"]
    assert len(out["registered"]) == len(entry_points)
    assert out["heavy"] == []
    for factory, message in out["errors"].items():
        assert message is not None, f"{factory} was created without torch"
        assert "PyTorch" in message and "[torch]" in message, message
    assert out["light"] == ["medlink_abbreviations", "medlink_coordinations", "medlink_kb_linker"]


def test_cli_works_without_torch(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH, encoding="utf8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), COLUMNS="200")
    result = subprocess.run([sys.executable, "-m", "spacy_medlink", "--help"], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "annotate" in result.stdout


def _package_tiny_pipeline(root: Path, kb_dir: Path) -> Path:
    """A trained joint tagger with its KB, as a `spacy package` wheel."""
    from .pipeline.test_joint_tagger import _examples, _model_config, _train

    nlp = spacy.blank("en")
    nlp.add_pipe("medlink_joint_tagger", name="joint_tagger",
                 config={"model": _model_config(), "use_abbreviations": False})
    nlp.config["initialize"]["components"]["joint_tagger"] = {"kb_path": str(kb_dir)}
    _train(nlp, _examples(nlp))
    nlp.get_pipe("joint_tagger").cfg["men_threshold"] = 0.0  # the MEN head decides: training IDs
    nlp.to_disk(root / "model")
    packages = root / "packages"
    packages.mkdir()
    subprocess.run([sys.executable, "-m", "spacy", "package", str(root / "model"), str(packages),
                    "--name", "medlink_venv", "--version", "0.0.1", "--build", "wheel", "--force"],
                   check=True, capture_output=True)
    (wheel,) = packages.glob("*/dist/*.whl")
    return wheel


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.venv
def test_fresh_virtualenv_installs_and_loads_a_packaged_pipeline(kb_dir, tmp_path):
    """`python -m venv`, then the README's install (torch first, then the package from
    the repository), then a packaged pipeline, loaded by a fresh interpreter of that venv."""
    wheel = _package_tiny_pipeline(tmp_path, kb_dir)
    source = tmp_path / "spacy-medlink"  # a copy, so that building leaves the checkout as it was
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "spacy_medlink", source / "spacy_medlink",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    start = time.time()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    _pip(python, f"torch=={TORCH_VERSION}")
    _pip(python, str(source))
    _pip(python, str(wheel))
    script = (
        "import json, spacy, spacy_medlink\n"
        "nlp = spacy.load('en_medlink_venv')\n"
        "doc = nlp('Aspirin can cause gastric ulcer in elderly patients.')\n"
        "print(json.dumps({'package': spacy_medlink.__file__,\n"
        "                  'ents': [(e.text, e.label_, e.kb_id_) for e in doc.ents]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"fresh virtualenv: installed and loaded in {time.time() - start:.0f}s")
    assert out["package"].startswith(str(venv))  # the installed copy, not the checkout
    assert out["ents"] == [["Aspirin", "Chemical", "D001241"], ["gastric ulcer", "Disease", "D014456"]]
