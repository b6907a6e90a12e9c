"""`ensemble`: k trained pipelines -> one pipeline whose component averages
their members' scores before decoding: nested recognizers
(`medlink.NestedEnsemble.v1`, the last step of k-fold cross-validation
stacking) or joint taggers (`medlink.JointEnsemble.v1`, k seeds or folds)."""
from pathlib import Path
from typing import Dict, List, Optional

import typer
from wasabi import msg

from ._app import app


def assemble_ensemble(models: List[Path], component: Optional[str] = None):
    """The ensemble pipeline (not saved): members' config, labels and weights."""
    import spacy

    from ..pipeline.joint_tagger import JointTagger
    from ..pipeline.nested_recognizer import NestedRecognizer

    if len(models) < 2:
        raise ValueError("an ensemble needs at least 2 trained pipelines")
    members = [spacy.load(path) for path in models]
    kinds = (NestedRecognizer, JointTagger)
    names = [name for name, pipe in members[0].pipeline if isinstance(pipe, kinds)]
    name = component or (names[0] if len(names) == 1 else None)
    if name is None:
        raise ValueError(f"{models[0]}: name the nested recognizer or joint tagger with --component (found {names})")
    if isinstance(members[0].get_pipe(name), JointTagger):
        nlp = _joint_ensemble(members, models, name)
    else:
        nlp = _nested_ensemble(members, models, name)
    nlp.meta["medlink_ensemble_members"] = [str(p) for p in models]
    return nlp


def _nested_ensemble(members: list, models: List[Path], name: str):
    pipes = [m.get_pipe(name) for m in members]
    for path, pipe in zip(models[1:], pipes[1:]):
        if pipe.labels != pipes[0].labels or pipe.cfg["tag_scheme"] != pipes[0].cfg["tag_scheme"]:
            raise ValueError(f"{path}: labels or tag scheme differ from {models[0]}'s")
    return _ensemble_pipeline(members[0].config.copy(), "medlink.NestedEnsemble.v1", members, pipes, name)


def _joint_ensemble(members: list, models: List[Path], name: str):
    """Each member's joint tagger takes its own copy of the tok2vec it listens to
    (spaCy's `replace_listeners`), so that members differ in their encoders too; the
    tok2vec component leaves the ensemble's pipeline when nothing else listens to it.
    Members that saw different concepts (folds) get the union's (`widen_concepts`).
    The KB and the linking settings are the first member's."""
    from ..ml.joint_ensemble import widen_concepts

    pipes = []
    for member in members:
        for upstream, pipe in list(member.pipeline):
            if name in getattr(pipe, "listening_components", []):
                member.replace_listeners(upstream, name, ["model.tok2vec"])
        pipes.append(member.get_pipe(name))
    first = pipes[0]
    for path, pipe in zip(models[1:], pipes[1:]):
        if (pipe.labels, pipe.cfg["tag_scheme"]) != (first.labels, first.cfg["tag_scheme"]):
            raise ValueError(f"{path}: labels or tag scheme differ from {models[0]}'s")
    # fold members saw different concepts: each gets the union's MEN columns, in one order
    union: Dict[str, List[str]] = {}
    for pipe in pipes:
        for concept, labels in pipe.cfg["concepts"].items():
            union[concept] = list(dict.fromkeys(union.get(concept, []) + list(labels)))
    for pipe in pipes:
        if list(pipe.concepts) != list(union):
            widen_concepts(pipe.model, pipe.concepts, list(union))
        pipe.cfg["concepts"] = {c: list(ls) for c, ls in union.items()}
        pipe._cache.clear()
    # interpolated: the copied tok2vec's variables (${components.tok2vec...}) point into a
    # component that leaves the pipeline
    config = members[0].config.interpolate()
    for upstream, pipe in members[0].pipeline:
        if hasattr(pipe, "listening_components") and not pipe.listening_components:
            config["nlp"]["pipeline"] = [n for n in config["nlp"]["pipeline"] if n != upstream]
            del config["components"][upstream]
    nlp = _ensemble_pipeline(config, "medlink.JointEnsemble.v1", members, pipes, name)
    nlp.get_pipe(name).generator = first.generator
    return nlp


def _ensemble_pipeline(config, architecture: str, members: list, pipes: list, name: str):
    """The first member's pipeline (`config`, tokenizer, vocab with its strings and vectors,
    the pipe's cfg) with `name`'s model made an `architecture` of the members' trained models."""
    from spacy.util import load_model_from_config

    config["components"][name]["model"] = {
        "@architectures": architecture, "n_members": len(members), "member": config["components"][name]["model"],
    }
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.tokenizer.from_bytes(members[0].tokenizer.to_bytes())
    nlp.vocab.from_bytes(members[0].vocab.to_bytes())
    for label in pipes[0].labels:
        nlp.vocab.strings.add(label)
    ensemble = nlp.get_pipe(name)
    ensemble._load_cfg(ensemble._trained_cfg(dict(pipes[0].cfg)))
    for layer, pipe in zip(ensemble.model.layers, pipes):
        layer.from_bytes(pipe.model.to_bytes())
    return nlp


@app.command("ensemble")
def ensemble_cli(
    # fmt: off
    output: Path = typer.Argument(..., help="Output pipeline folder"),
    models: List[Path] = typer.Argument(..., help="Trained pipelines (same config and labels, e.g. one per fold)"),
    component: Optional[str] = typer.Option(None, "--component", "-c", help="The nested recognizer's or joint tagger's name, if there are several"),
    # fmt: on
) -> None:
    """Average the scores of k trained nested recognizers or joint taggers in one pipeline (seeds, k-fold stacking)."""
    try:
        nlp = assemble_ensemble(models, component)
    except (ValueError, OSError) as err:
        msg.fail("Ensemble failed", str(err), exits=1)
    output.mkdir(parents=True, exist_ok=True)  # spaCy's to_disk makes the last folder only
    nlp.to_disk(output)
    msg.good(f"Wrote an ensemble of {len(models)} members to {output}")
