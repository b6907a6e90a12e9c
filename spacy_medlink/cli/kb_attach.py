"""`python -m spacy_medlink kb attach`: a trained pipeline linking to another KB, or with another ranker.

Without options it gives the pipeline's own KB the trained ranker of KB_DIR
(the same vocabulary, no retraining). With `--whole` (implied by `--type-map`
and `--train`) it swaps in KB_DIR itself, the path from a vocabulary of one's
own to a recognizer that links to it:

1. Types. The candidate generator gives a mention only concepts whose type is
   its label (a bit per type, 32 at most), so the KB's types must be the
   recognizer's labels. `--type-map T047=Disease,T191=Disease,T121=Chemical`
   retypes a copy of the KB (`*=Disease` types every concept); concepts whose
   types map to no label are left out and counted. A KB already typed with the
   labels (an OBO ontology built with `Disease`) needs no map.
2. Ranking. A trained ranker belongs to the KB it was trained against (its
   statistics name that KB's IDs), so the pipeline's own is never carried over.
   The KB's trained ranker (`kb ranker`) or one fit here on a corpus annotated
   with the KB's IDs (`--train`) is used where it is valid for the attached KB
   (`kb_coverage` at least `--min-coverage`); otherwise, or with
   `--ranker calibrated`, the generator's order with its similarity mapped to
   P(top-1 correct) by a calibration fit on the KB's own synonyms
   (`kb.calibration`). `--ranker none` keeps the raw similarity.
3. The recognizer's own concept head (the joint tagger's MEN head, the
   hierarchical linker's EL head) names the training corpus's IDs: where most
   of them (HEAD_MIN_SHARE) are not primary IDs of the attached KB, the KB decides every span
   (`_head_off`), and a span it has no candidate for gets no concept.
4. The no-concept threshold stays the pipeline's (`--threshold` sets it): it
   applies to a probability either way.
"""
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

import typer

from .kb import kb_app

if TYPE_CHECKING:
    from spacy.language import Language

    from ..kb.candidates import CandidateGenerator
    from ..kb.concept_kb import ConceptKB
    from ..kb.ranker import CandidateRanker

RANKER_CHOICES = ("auto", "trained", "calibrated", "none")
HEAD_OFF = 1.01  # a men_threshold above every probability: the KB decides every span
# a concept head stays where at least this share of its IDs' atoms are primary IDs of the attached KB:
# near 1 for the KB of its own vocabulary (short by retired records), near 0 for another vocabulary
HEAD_MIN_SHARE = 0.5


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


def retype_kb(kb: "ConceptKB", type_map: Dict[str, Sequence[str]]) -> Tuple["ConceptKB", Counter]:
    """A copy of `kb` whose concepts are typed with the labels their types map to; a
    concept that maps to none is left out, and counted under each of its types."""
    from ..kb.concept_kb import Concept, ConceptKB

    out = ConceptKB()
    counts: Counter = Counter()
    every = list(type_map.get("*", ()))
    for concept in kb:
        labels = list(dict.fromkeys(every + [label for t in concept.types for label in type_map.get(t, ())]))
        if not labels:
            counts["left out"] += 1
            for t in concept.types or ("(untyped)",):
                counts[f"left out: {t}"] += 1
            continue
        out.add(Concept(concept.concept_id, concept.name, concept.synonyms, tuple(labels), concept.alt_ids,
                        concept.sources))
        counts["kept"] += 1
        for label in labels:
            counts[f"kept: {label}"] += 1
    return out, counts


def recognizer_labels(nlp: "Language") -> Set[str]:
    """The entity labels the pipeline's recognizers predict (empty if none says)."""
    labels: Set[str] = set()
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns and hasattr(pipe, "labels"):
            labels.update(str(label) for label in pipe.labels)
    return labels


def primary_share(ids: Sequence[str], kb: "ConceptKB") -> float:
    """The share of the atoms of `ids` (composite IDs split) that `kb` holds under the same
    primary ID (1.0 for none): another vocabulary holds a MeSH ID as an alternative ID at most."""
    from ..ids import split_kb_id

    atoms = [atom for cid in ids for atom in split_kb_id(cid)]
    if not atoms:
        return 1.0
    return sum(1 for atom in atoms if atom in kb and kb.resolve(atom) == atom) / len(atoms)


def _set(nlp: "Language", name: str, key: str, value: Any) -> None:
    """A setting in the pipe's cfg and, where the factory takes it, in the config, so
    that config.cfg (which decides inference settings at load) says it too."""
    nlp.get_pipe(name).cfg[key] = value
    config = nlp.get_pipe_config(name)
    if key in config:
        config[key] = value


def _head_off(nlp: "Language", name: str) -> None:
    """Let the KB decide every span of a component whose concept head names another
    vocabulary: above `HEAD_OFF` no span is the head's, no KB candidate is re-ranked by it,
    and its concepts are allowed for no label (`restrict_concepts`), so that a span the KB
    has no candidate for gets no concept rather than one of the head's IDs."""
    pipe = nlp.get_pipe(name)
    _set(nlp, name, "men_threshold", HEAD_OFF)
    _set(nlp, name, "rerank_weight", 0.0)
    _set(nlp, name, "restrict_concepts", True)
    pipe.cfg["concepts"] = {cid: [] for cid in pipe.cfg["concepts"]}
    getattr(pipe, "_cache", {}).clear()


def _trained_ranker(kb_dir: Path) -> Optional["CandidateRanker"]:
    from ..kb.candidates import RANKER_DIR
    from ..kb.ranker import CandidateRanker

    if not (kb_dir / RANKER_DIR / "ranker.msgpack").exists():
        return None
    ranker = CandidateRanker.from_disk(kb_dir / RANKER_DIR)
    return None if ranker.cfg["learner"] == "calibrated" else ranker


def choose_ranker(generator: "CandidateGenerator", trained: Optional["CandidateRanker"], mode: str,
                  min_coverage: float, *, calibration_mentions: int = 4000, seed: int = 0,
                  log=print) -> Tuple[Optional["CandidateRanker"], Dict[str, Any]]:
    """The ranker for `generator` by `mode` (RANKER_CHOICES) and what decided it."""
    from ..kb.calibration import fit_calibration
    from ..kb.ranker import CandidateRanker

    coverage = trained.kb_coverage(generator.kb) if trained is not None else None
    valid = trained is not None and (coverage is None or coverage >= min_coverage)
    info: Dict[str, Any] = {"mode": mode, "trained_coverage": None if coverage is None else round(coverage, 4)}
    if mode == "none":
        info["kind"] = "none"
        return None, info
    if mode in ("auto", "trained") and valid:
        info["kind"] = "trained"
        return trained, info
    if mode == "trained":
        why = ("KB_DIR has no trained ranker" if trained is None else
               f"its ranker's training mentions name concepts of another KB: {coverage:.1%} of them are "
               f"concepts of this one (--min-coverage {min_coverage})")
        raise typer.BadParameter(f"--ranker trained: {why}. Train one against this KB (--train, or `kb ranker`) "
                                 "or use --ranker calibrated")
    if trained is not None and mode == "auto":
        log(f"Warning: the KB's trained ranker names concepts of another KB ({coverage:.1%} of its training "
            f"mentions' concepts are concepts of this one, under --min-coverage {min_coverage}): "
            "using the calibrated generator score instead")
        info["reason"] = "trained ranker not valid for this KB"
    calibration = fit_calibration(generator, n_mentions=calibration_mentions, seed=seed)
    info["kind"] = "calibrated"
    info["calibration"] = calibration.info
    return CandidateRanker.calibrated(calibration), info


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

    from ..kb.candidates import RANKER_DIR, CandidateGenerator
    from ..kb.ranker import CandidateRanker

    if ranker_mode not in RANKER_CHOICES:
        raise typer.BadParameter(f"--ranker: expected one of {', '.join(RANKER_CHOICES)}, not {ranker_mode!r}")
    mapping = parse_type_map(type_map)
    whole = whole or bool(mapping) or train is not None
    if train is not None and ranker_mode in ("calibrated", "none"):
        raise typer.BadParameter(f"--train fits a ranker; --ranker {ranker_mode} asks for none")
    nlp = spacy.load(model if model.exists() else str(model))  # a folder, or an installed pipeline's name
    names = [name for name, proc in nlp.pipeline
             if hasattr(proc, "generator") and (whole or getattr(proc, "generator") is not None)]
    if not names:
        raise typer.BadParameter(f"{model} has no component with a KB")
    info: Dict[str, Any] = {"model": str(model), "kb": str(kb_dir), "output": str(output), "whole": whole}
    if not whole:
        if not (kb_dir / RANKER_DIR / "ranker.msgpack").exists():
            raise typer.BadParameter(f"{kb_dir} has no trained ranker (run `python -m spacy_medlink kb ranker` "
                                     "first); to attach the KB itself, give --whole")
        ranker = CandidateRanker.from_disk(kb_dir / RANKER_DIR)
        for name in names:
            coverage = ranker.kb_coverage(nlp.get_pipe(name).generator.kb)
            if coverage is not None and coverage < min_coverage:
                raise typer.BadParameter(f"{kb_dir / RANKER_DIR} was trained against another KB: {coverage:.1%} of "
                                         f"its training mentions' concepts are concepts of {name}'s KB "
                                         f"(--min-coverage {min_coverage}); attach the whole KB with --whole")
            nlp.get_pipe(name).generator.ranker = ranker
        nlp.to_disk(output)
        typer.echo(f"Attached {kb_dir / RANKER_DIR} to {', '.join(names)}; saved {output}")
        return
    generator = CandidateGenerator.from_disk(kb_dir, ranker=False)
    trained = _trained_ranker(kb_dir)
    labels = recognizer_labels(nlp)
    info["labels"] = sorted(labels)
    if mapping:
        unknown = sorted({label for ls in mapping.values() for label in ls} - labels) if labels else []
        if unknown:
            raise typer.BadParameter(f"--type-map: {', '.join(unknown)} not among the recognizer's labels "
                                     f"({', '.join(sorted(labels))})")
        kb, counts = retype_kb(generator.kb, mapping)
        if not len(kb):
            raise typer.BadParameter(f"--type-map: no concept of {kb_dir} has a mapped type "
                                     f"(its types: {', '.join(generator.types) or 'none'})")
        typer.echo(f"Types mapped: {counts['kept']} concepts kept, {counts['left out']} left out; "
                   + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k.startswith("kept: ")))
        generator = generator.with_kb(kb)
        info["type_map"] = mapping
        info["concepts"] = dict(sorted(counts.items()))
    else:
        wanted = {nlp.get_pipe(n).cfg.get("type_map", {}).get(label, label) for n in names for label in labels}
        if labels and not wanted & set(generator.types):
            raise typer.BadParameter(f"{kb_dir}'s types ({', '.join(generator.types) or 'none'}) are none of the "
                                     f"recognizer's labels ({', '.join(sorted(labels))}): give --type-map")
        info["concepts"] = {"kept": len(generator.kb)}
    if train is not None:
        trained, generator, info["ranker_fit"] = _fit_on_corpus(nlp, generator, train, folds, seed)
        ranker_mode = "trained"
    ranker, info["ranker"] = choose_ranker(generator, trained, ranker_mode, min_coverage,
                                           calibration_mentions=calibration_mentions, seed=seed, log=typer.echo)
    generator.ranker = ranker
    kind = info["ranker"]["kind"]
    if kind == "calibrated":
        held = info["ranker"]["calibration"]["held_out"]
        typer.echo(f"Calibrated score: {info['ranker']['calibration']['pseudo_mentions']} pseudo-mentions, "
                   f"held-out expected calibration error {held['calibrated']['ece']} "
                   f"(raw similarity {held['raw_similarity']['ece']})")
    info["components"] = {}
    for name in names:
        pipe = nlp.get_pipe(name)
        pipe.generator = generator
        settings: Dict[str, Any] = {}
        if mapping and "type_map" in pipe.cfg:
            _set(nlp, name, "type_map", {})  # the KB's types are the labels now
        concepts = pipe.cfg.get("concepts")
        if "men_threshold" in pipe.cfg and concepts is not None:
            share = primary_share(list(concepts), generator.kb)
            settings["head_concepts_in_kb"] = round(share, 4)
            if share < HEAD_MIN_SHARE:
                _head_off(nlp, name)
                settings["head"] = "off"
                typer.echo(f"{name}: {share:.1%} of its concept head's concepts are concepts of the KB: the KB "
                           f"decides every span (men_threshold {HEAD_OFF}, rerank_weight 0)")
        key = "kb_threshold" if "kb_threshold" in pipe.cfg else "threshold" if nlp.get_pipe_meta(name).factory == "medlink_kb_linker" else None
        if key is not None:
            if threshold is not None:
                _set(nlp, name, key, threshold)
            typer.echo(f"{name}: no concept under a KB score of {pipe.cfg[key]:g} ({key}; the score: {kind})")
        elif threshold is not None:
            typer.echo(f"{name}: --threshold not set (its threshold is on its own combined score)")
        settings.update({k: pipe.cfg[k] for k in ("men_threshold", "rerank_weight", "kb_threshold", "threshold",
                                                  "type_map") if k in pipe.cfg})
        info["components"][name] = settings
    nlp.to_disk(output)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(report, info)
    typer.echo(f"Attached {kb_dir} ({len(generator.kb)} concepts, ranker: {kind}) to {', '.join(names)}; "
               f"saved {output}")


def _fit_on_corpus(nlp: "Language", generator: "CandidateGenerator", train: Path, folds: int,
                   seed: int) -> Tuple["CandidateRanker", "CandidateGenerator", Dict[str, Any]]:
    """A ranker cross-fit on `train` against the KB of `generator` (as `kb ranker --base-kb`
    does), and a generator over that KB with `train`'s mentions as synonyms."""
    from spacy.tokens import DocBin

    from ..kb.builders import add_train_mentions
    from ..kb.concept_kb import ConceptKB
    from ..kb.ranker_fit import fit_ranker

    docs = list(DocBin().from_disk(train).get_docs(nlp.vocab))
    base = generator.kb
    full = ConceptKB().from_bytes(base.to_bytes())
    added = add_train_mentions(full, docs, train.stem)
    full_generator = generator.with_kb(full)
    ranker, report = fit_ranker(full_generator, docs, base_kb=base, folds=max(2, min(folds, len(docs))), seed=seed)
    typer.echo(f"Ranker fit on {report['mentions']} mentions of {train}"
               + "".join(f"; {key}: {acc}" for key, acc in report.get("out_of_fold", {}).items()))
    return ranker, full_generator, {"train": str(train), "synonyms_added": added.get("added", 0), **report}


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

    from ..kb.calibration import fit_calibration
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
        if _trained_ranker(kb_dir) is not None:
            raise typer.BadParameter(f"{kb_dir} has a trained ranker; the calibrated ranking would replace it")
        ranker.to_disk(kb_dir / RANKER_DIR)
        typer.echo(f"Saved the calibrated ranking to {kb_dir / RANKER_DIR}")
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, result)
    typer.echo(f"Wrote {output}")


def evaluate_calibration(generator: "CandidateGenerator", ranker: "CandidateRanker", corpus: Path,
                         thresholds: Sequence[float] = (0.5, 0.7, 0.9)) -> Dict[str, Any]:
    """The top-1 of each single-concept gold mention of `corpus` (looked up as a pipeline
    does: typed by its label, short forms by their long form; no composites), its raw and
    calibrated score and whether it is the gold concept: reliability of both scores and, per
    threshold, the share of mentions linked and the precision of those links."""
    import spacy
    import numpy
    from spacy.tokens import DocBin

    from ..kb.calibration import reliability
    from ..kb.mention_stats import gold_atoms
    from ..kb.span_lookup import span_candidates

    docs = list(DocBin().from_disk(corpus).get_docs(spacy.blank("en").vocab))
    resolve = generator.kb.resolve
    spans, gold = [], []
    for doc in docs:
        for ent in doc.ents:
            atoms = gold_atoms(ent.kb_id_, resolve)
            if len(atoms) == 1:
                spans.append(ent)
                gold.append(atoms[0])
    saved, generator.ranker = generator.ranker, None
    try:
        raw = span_candidates(generator, spans, k=10, composites=False)
        generator.ranker = ranker
        calibrated = span_candidates(generator, spans, k=10, composites=False)
    finally:
        generator.ranker = saved
    rows = []
    for span, g, r, c in zip(spans, gold, raw, calibrated):
        rows.append((span.label_, r[0].score if r else 0.0, c[0].score if c else 0.0,
                     float(bool(c) and c[0].concept_id == g), bool(c)))
    out: Dict[str, Any] = {"by_label": {}}
    for key in ["all"] + sorted({row[0] for row in rows}):
        part = [row for row in rows if key == "all" or row[0] == key]
        raw_s = [row[1] for row in part]
        cal_s = numpy.asarray([row[2] for row in part])
        right = numpy.asarray([row[3] for row in part])
        cuts = {}
        for t in thresholds:
            linked = cal_s >= t
            cuts[str(t)] = {"linked": round(float(linked.mean()), 4) if len(part) else 0.0,
                            "precision": round(float(right[linked].mean()), 4) if linked.any() else None}
        out["by_label"][key] = {"mentions": len(part), "no_candidates": sum(1 for row in part if not row[4]),
                                "accuracy@1": round(float(right.mean()), 4) if len(part) else 0.0,
                                "raw_similarity": reliability(raw_s, right), "calibrated": reliability(cal_s, right),
                                "calibrated_thresholds": cuts}
    return out
