"""`ensemble`: k trained nested-recognizer pipelines -> one pipeline whose
component averages their scores (`medlink.NestedEnsemble.v1`), the last step
of k-fold cross-validation stacking."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ._app import app


def assemble_ensemble(models: List[Path], component: Optional[str] = None):
    """The ensemble pipeline (not saved): members' config, labels and weights."""
    import spacy
    from spacy.util import load_model_from_config

    from ..pipeline.nested_recognizer import NestedRecognizer

    if len(models) < 2:
        raise ValueError("an ensemble needs at least 2 trained pipelines")
    members = [spacy.load(path) for path in models]
    names = [name for name, pipe in members[0].pipeline if isinstance(pipe, NestedRecognizer)]
    name = component or (names[0] if len(names) == 1 else None)
    if name is None:
        raise ValueError(f"{models[0]}: name the nested recognizer with --component (found {names})")
    pipes = [m.get_pipe(name) for m in members]
    for path, pipe in zip(models[1:], pipes[1:]):
        if pipe.labels != pipes[0].labels or pipe.cfg["tag_scheme"] != pipes[0].cfg["tag_scheme"]:
            raise ValueError(f"{path}: labels or tag scheme differ from {models[0]}'s")
    config = members[0].config.copy()
    member_model = config["components"][name]["model"]
    config["components"][name]["model"] = {
        "@architectures": "medlink.NestedEnsemble.v1", "n_members": len(members), "member": member_model,
    }
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.tokenizer.from_bytes(members[0].tokenizer.to_bytes())
    for label in pipes[0].labels:
        nlp.vocab.strings.add(label)
    ensemble = nlp.get_pipe(name)
    ensemble._load_cfg(ensemble._trained_cfg(dict(pipes[0].cfg)))
    for layer, pipe in zip(ensemble.model.layers, pipes):
        layer.from_bytes(pipe.model.to_bytes())
    nlp.meta["medlink_ensemble_members"] = [str(p) for p in models]
    return nlp


@app.command("ensemble")
def ensemble_cli(
    # fmt: off
    output: Path = typer.Argument(..., help="Output pipeline folder"),
    models: List[Path] = typer.Argument(..., help="Trained pipelines (same config and labels, e.g. one per fold)"),
    component: Optional[str] = typer.Option(None, "--component", "-c", help="The nested recognizer's name, if there are several"),
    # fmt: on
) -> None:
    """Average the scores of k trained nested recognizers in one pipeline (k-fold stacking)."""
    try:
        nlp = assemble_ensemble(models, component)
    except (ValueError, OSError) as err:
        msg.fail("Ensemble failed", str(err), exits=1)
    nlp.to_disk(output)
    msg.good(f"Wrote an ensemble of {len(models)} members to {output}")
