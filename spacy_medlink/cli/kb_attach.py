"""`python -m spacy_medlink kb attach`: a trained pipeline linking to another KB, or with another ranker.

Without options it gives the pipeline's own KB the trained ranker of KB_DIR
(the same vocabulary, no retraining: `kb.attach.attach_ranker`). With `--whole`
(implied by `--type-map` and `--train`) it swaps in KB_DIR itself, typed by
`--type-map` for the recognizer's labels, ranked by a trained ranker valid for it
or by a similarity calibrated on its synonyms, with a concept head of another
vocabulary switched off (`kb.attach.attach_kb`, whose docstring says why). This
module parses the options, prints and saves; `kb calibrate` fits the calibrated
similarity on its own.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ..kb.attach import AttachError
from .kb import kb_app


def parse_type_map(text: str) -> Dict[str, List[str]]:
    """KB type -> labels from "T047=Disease,T121=Chemical" (a type may repeat to map to
    several labels; `*` maps every concept), or from a JSON file of {type: label or [labels]}."""
    import srsly

    if not text.strip():
        return {}
    path = Path(text)
    if path.suffix == ".json" and path.is_file():
        data = srsly.read_json(path)
        if not isinstance(data, dict):
            raise typer.BadParameter(f"{path}: expected a JSON object of KB type -> label(s)")
        return {str(k): [v] if isinstance(v, str) else [str(x) for x in v] for k, v in data.items()}
    out: Dict[str, List[str]] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        type_, sep, label = pair.partition("=")
        if not sep or not type_.strip() or not label.strip():
            raise typer.BadParameter(f"--type-map: {pair!r} is not KB_TYPE=LABEL")
        labels = out.setdefault(type_.strip(), [])
        if label.strip() not in labels:
            labels.append(label.strip())
    return out


@kb_app.command("attach")
def kb_attach_cli(
    model: Path = typer.Argument(..., help="A trained pipeline folder (or an installed pipeline's name)"),
    kb_dir: Path = typer.Argument(..., help="KB folder whose trained ranker (ranker/) to attach, or with --whole the KB to attach"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline to"),
    whole: bool = typer.Option(False, "--whole", help="Attach the whole KB (concepts, names, index and its ranker, if any), not only the ranker: a vocabulary of your own, or a KB that also holds the dev split's mentions, swapped in after tuning on dev"),
    type_map: str = typer.Option("", "--type-map", help="KB type=recognizer label pairs, comma-separated (T047=Disease,T121=Chemical; *=Disease types every concept), or a .json file of them; concepts of no mapped type are left out. Implies --whole"),
    ranker_mode: str = typer.Option("auto", "--ranker", help="With --whole: auto (the KB's trained ranker where valid for it, else calibrated), trained, calibrated (the generator's similarity as P(top-1 correct), fit on the KB's synonyms) or none (the raw similarity)"),
    train: Optional[Path] = typer.Option(None, "--train", help="A corpus (.spacy) annotated with the KB's IDs and the recognizer's labels: its mentions join the KB as synonyms and a ranker is cross-fit on it against the attached KB. Implies --whole"),
    folds: int = typer.Option(5, "--folds", help="Document folds for --train's cross-fitting"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Set the no-concept threshold on the KB's score (kb_threshold; a KB linker's threshold)"),
    min_coverage: float = typer.Option(0.5, "--min-coverage", help="A trained ranker is used only where at least this share of its training mentions' concepts are concepts of the attached KB"),
    calibration_mentions: int = typer.Option(4000, "--calibration-mentions", help="Pseudo-mentions drawn from the KB to fit the calibrated score"),
    seed: int = typer.Option(0, "--seed"),
    report: Optional[Path] = typer.Option(None, "--report", help="Write what was attached as JSON: concepts kept and left out, the ranker and why, the calibration's held-out quality, each component's settings"),
) -> None:
    """Give every KB-using component of a trained pipeline the ranker of KB_DIR (same KB,
    no retraining), or with --whole the KB itself, typed for the recognizer's labels and ranked
    by a trained ranker valid for it or by a calibrated similarity."""
    import spacy
    import srsly

    from ..kb.attach import attach_kb, attach_ranker, check_ranker_mode, kb_components
    from ..kb.candidates import RANKER_DIR

    try:  # in the options' order: --ranker, --type-map, then --train with --ranker
        check_ranker_mode(ranker_mode)
        mapping = parse_type_map(type_map)
        check_ranker_mode(ranker_mode, train)
    except AttachError as err:
        raise typer.BadParameter(str(err)) from None
    whole = whole or bool(mapping) or train is not None
    nlp = spacy.load(model if model.exists() else str(model))  # a folder, or an installed pipeline's name
    names = kb_components(nlp, whole)
    if not names:
        raise typer.BadParameter(f"{model} has no component with a KB")
    info: Dict[str, Any] = {"model": str(model), "kb": str(kb_dir), "output": str(output), "whole": whole}
    try:
        if not whole:
            attach_ranker(nlp, kb_dir, names=names, min_coverage=min_coverage)
        else:
            info.update(attach_kb(nlp, kb_dir, type_map=mapping, ranker=ranker_mode, train=train, folds=folds,
                                  threshold=threshold, min_coverage=min_coverage,
                                  calibration_mentions=calibration_mentions, seed=seed, names=names,
                                  log=typer.echo))
    except AttachError as err:
        raise typer.BadParameter(str(err)) from None
    nlp.to_disk(output)
    if not whole:
        typer.echo(f"Attached {kb_dir / RANKER_DIR} to {', '.join(names)}; saved {output}")
        return
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(report, info)
    typer.echo(f"Attached {kb_dir} ({len(nlp.get_pipe(names[0]).generator.kb)} concepts, "
               f"ranker: {info['ranker']['kind']}) to {', '.join(names)}; saved {output}")


@kb_app.command("calibrate")
def kb_calibrate_cli(
    kb_dir: Path = typer.Argument(..., help="KB folder written by `kb build`"),
    output: Path = typer.Option(..., "--output", help="JSON report: the pseudo-mentions, the map's held-out quality and, with --eval, its quality on a corpus's gold mentions"),
    eval_corpus: Optional[Path] = typer.Option(None, "--eval", help="A corpus (.spacy) annotated with the KB's IDs: how well the calibrated score of its gold mentions' top-1 candidate says whether it is right"),
    type_map: str = typer.Option("", "--type-map", help="As `kb attach --type-map`: KB type=label pairs, the corpus's labels"),
    calibration_mentions: int = typer.Option(4000, "--calibration-mentions", help="Pseudo-mentions drawn from the KB"),
    seed: int = typer.Option(0, "--seed"),
    save: bool = typer.Option(False, "--save", help="Save the calibrated ranking into KB_DIR/ranker (refused where a trained ranker is there), for a linker configured with this kb_path"),
) -> None:
    """Fit the calibrated similarity that `kb attach` gives a KB without a trained ranker, and
    report how well it is calibrated: on held-out pseudo-mentions, and on a corpus's gold mentions."""
    import srsly

    from ..kb.attach import retype_kb, trained_ranker
    from ..kb.calibration import fit_calibration
    from ..kb.calibration_eval import evaluate_calibration
    from ..kb.candidates import RANKER_DIR, CandidateGenerator
    from ..kb.ranker import CandidateRanker

    generator = CandidateGenerator.from_disk(kb_dir, ranker=False)
    mapping = parse_type_map(type_map)
    if mapping:
        if save:
            raise typer.BadParameter("--save with --type-map: the saved ranking would not match the KB's own types")
        kb, _ = retype_kb(generator.kb, mapping)
        generator = generator.with_kb(kb)
    calibration = fit_calibration(generator, n_mentions=calibration_mentions, seed=seed)
    held = calibration.info["held_out"]
    typer.echo(f"{calibration.info['pseudo_mentions']} pseudo-mentions, accuracy@1 {calibration.info['accuracy@1']}; "
               f"held-out ECE {held['calibrated']['ece']} (raw similarity {held['raw_similarity']['ece']})")
    result: Dict[str, Any] = {"kb": str(kb_dir), "type_map": mapping, "calibration": calibration.to_dict()}
    ranker = CandidateRanker.calibrated(calibration)
    if eval_corpus is not None:
        result["eval"] = {"corpus": str(eval_corpus), **evaluate_calibration(generator, ranker, eval_corpus)}
        for key, part in result["eval"]["by_label"].items():
            typer.echo(f"{eval_corpus} {key}: {part['mentions']} mentions, accuracy@1 {part['accuracy@1']}, ECE "
                       f"{part['calibrated']['ece']} (raw similarity {part['raw_similarity']['ece']})")
    if save:
        if trained_ranker(kb_dir) is not None:
            raise typer.BadParameter(f"{kb_dir} has a trained ranker; the calibrated ranking would replace it")
        ranker.to_disk(kb_dir / RANKER_DIR)
        typer.echo(f"Saved the calibrated ranking to {kb_dir / RANKER_DIR}")
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, result)
    typer.echo(f"Wrote {output}")

