"""The spaCy project end to end on a small slice: assets, convert, KB, train,
assemble, evaluate, package; then the wheel loads in a fresh process with no
import of ours (entry points only) and links entities to the KB. And the
product path's shape: its workflows, each pipeline's model card and settings."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import srsly

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def smoke_project(data_dir, tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "project.yml", project / "project.yml")
    shutil.copytree(ROOT / "configs", project / "configs")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "smoke", str(project), "--vars.data_dir", str(data_dir)]
    result = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return project


def test_smoke_workflow_scores_ner_and_normalization(smoke_project):
    scores = json.loads((smoke_project / "training/smoke/metrics.json").read_text())
    assert set(scores) >= {"ner", "linker"}
    assert scores["ner"]["ents_f"] is not None
    for key in ("nen_p", "nen_r", "nen_f", "nen_doc_f", "nen_per_type", "nen_doc_per_type"):
        assert key in scores["linker"], key
    report = json.loads((smoke_project / "corpus/smoke/train.report.json").read_text())
    assert report["documents_read"] == 40
    assert report["mentions_read"] == report["mentions_kept"] + report["mentions_dropped"]


def test_smoke_package_loads_in_fresh_process(smoke_project, tmp_path):
    wheels = list((smoke_project / "training/smoke/packages").glob("*/dist/*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as zf:
        meta = [n for n in zf.namelist() if n.endswith("METADATA")]
        requires = zf.read(meta[0]).decode()
    assert "Requires-Dist: spacy-medlink" in requires
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheels[0])],
        check=True,
    )
    script = (
        "import json, spacy\n"
        "from spacy.tokens import Span\n"
        "nlp = spacy.load('en_medlink_smoke')\n"
        "doc = nlp.make_doc('Patients with familial Mediterranean fever (FMF) and breast cancer.')\n"
        "doc.ents = [Span(doc, 2, 5, label='Disease'), Span(doc, 6, 7, label='Disease'), Span(doc, 9, 11, label='Disease')]\n"
        "doc = nlp.get_pipe('linker')(doc)\n"
        "full = nlp('Patients with breast cancer and ovarian cancer.')\n"
        "print(json.dumps({'pipe_names': nlp.pipe_names,\n"
        "  'linked': [(e.text, e.kb_id_, e._.medlink_score) for e in doc.ents],\n"
        "  'ents': [(e.text, e.label_, e.kb_id_) for e in full.ents]}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pipe_names"] == ["tok2vec", "ner", "linker"]
    linked = {text: kb_id for text, kb_id, _ in result["linked"]}
    assert linked["familial Mediterranean fever"] == "D010505"
    assert linked["FMF"] == "D010505"  # short form resolved through its long form
    assert linked["breast cancer"] == "D001943"
    assert all(kb_id for _, _, kb_id in result["ents"])


def _project():
    return srsly.read_yaml(ROOT / "project.yml")


def test_workflows_run_commands_the_project_defines():
    project = _project()
    commands = {cmd["name"] for cmd in project["commands"]}
    assert {"all", "reproduce", "pipelines", "smoke"} <= set(project["workflows"])
    for name, steps in project["workflows"].items():
        assert set(steps) <= commands, name
    # the product path trains once, on train + dev, with the settings dev chose (committed):
    # the train-only run and its tuning are for `reproduce`
    assert "final" in project["workflows"]["all"]
    assert not {"train", "tune", "kb-train"} & set(project["workflows"]["all"])
    assert {"train", "tune", "kb-train", "baseline", "benchmark"} <= set(project["workflows"]["reproduce"])


def test_each_pipeline_has_a_model_card_and_its_settings():
    """Every pipeline `pipelines` builds has meta/<name>.json, a valid spaCy meta once
    `spacy package` adds the version; a joint tagger also has the settings `final` applies."""
    from spacy.schemas import ModelMetaSchema, validate

    project = _project()
    built = {"en_medlink"} | {step for step in project["workflows"]["pipelines"] if "medlink" in step}
    assert built == {"en_medlink", "en_medlink_ncbi", "zh_medlink_nested", "zh_medlink_ccks2019", "en_medlink_genia"}
    for name in built:
        meta = srsly.read_json(ROOT / "meta" / f"{name}.json")
        assert f"{meta['lang']}_{meta['name']}" == name
        assert not validate(ModelMetaSchema, {**meta, "version": "0.0.0"}), name
        assert "\n" not in meta["description"]  # the wheel's one-line summary
        assert meta["sources"] and all(source.get("license") for source in meta["sources"]), name
        for path in {word.strip("`(),.;:") for word in meta["notes"].split() if word.strip("`(),.;:").endswith(".json")}:
            assert (ROOT / path).exists(), (name, path)
        if name.startswith("en_medlink") and name != "en_medlink_genia":
            settings = srsly.read_json(ROOT / "configs" / "settings" / f"{name}.json")
            assert [pipe["name"] for pipe in settings["pipes"]] == ["joint_tagger", "abbreviations"]


def _steps(workflow: str) -> Iterator[Dict[str, Any]]:
    """The commands a workflow runs, each with its vars: a step that runs others
    (`spacy project run <command> . --vars...`) counts as those, with its overrides."""
    from weasel.util import load_project_config, parse_config_overrides

    project = load_project_config(ROOT)
    commands = {cmd["name"]: cmd for cmd in project["commands"]}
    for step in project["workflows"][workflow]:
        nested = [shlex.split(line) for line in commands[step]["script"] if "spacy project run" in line]
        if not nested:
            yield commands[step]
        for args in nested:
            overrides = parse_config_overrides(args[args.index("run") + 3 :], env_var=None)
            config = load_project_config(ROOT, overrides=overrides)
            yield next(cmd for cmd in config["commands"] if cmd["name"] == args[args.index("run") + 1])


def test_reproduce_builds_the_train_only_kbs_and_the_dev_choices():
    """`reproduce` builds the train-only KBs the experiments read (kb/mesh_medic, kb/medic)
    and writes every train-only figure of en_medlink and en_medlink_ncbi where metrics/ keeps it."""
    steps = list(_steps("reproduce"))
    outputs = {path for cmd in steps for path in cmd.get("outputs", [])}
    assert {"kb/mesh_medic", "kb/medic"} <= outputs
    for pipeline, dataset in (("en_medlink", "bc5cdr"), ("en_medlink_ncbi", "ncbi")):
        metrics = f"metrics/pipelines/{pipeline}"
        expected = {f"{metrics}/linking_ranker_{dataset}_train_oof.json", f"{metrics}/linking_{dataset}_traindev_test.json"}
        expected |= {f"{metrics}/{dataset}_joint_floret_dict_{name}.json" for name in ("abbreviations", "threshold", "dev", "test")}
        assert expected <= outputs, expected - outputs
        assert all((ROOT / path).exists() for path in expected), pipeline
    kb_builds = [line for cmd in steps for line in cmd["script"] if "kb build kb/medic" in line]
    assert kb_builds and not any("--mesh" in line for line in kb_builds)  # CTD MEDIC alone


def test_en_medlink_trains_on_the_multi_corpus_set_and_ncbi_on_its_own():
    """`all` converts the multi-corpus set before `final` trains en_medlink on it, with
    mention replacement; en_medlink_ncbi's `final` keeps NCBI train + dev alone, no replacement."""
    all_steps = _project()["workflows"]["all"]
    assert all_steps.index("convert") < all_steps.index("convert-multi") < all_steps.index("final")
    finals = [cmd for cmd in _steps("pipelines") if cmd["name"] == "final"]
    assert len(finals) == 2  # en_medlink's, then en_medlink_ncbi's
    multi = next(cmd for cmd in _steps("pipelines") if cmd["name"] == "convert-multi")
    en, ncbi = (cmd["script"][0] for cmd in finals)
    assert "--paths.train corpus/multi/train_dev.spacy" in en and multi["outputs"][0] == "corpus/multi/train_dev.spacy"
    assert '"level":0.3' in en and "kb/mesh_medic_base" in en
    assert "--paths.train corpus/ncbi/train_dev.spacy" in ncbi and '"level":0}' in ncbi
    merged = [line for line in multi["script"] if "merge corpus/multi/train_dev.spacy" in line]
    assert merged and merged[0].count("corpus/bc5cdr/train_dev.spacy") == 2
