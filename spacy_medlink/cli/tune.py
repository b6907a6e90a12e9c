"""`python -m spacy_medlink tune`: pick a pipe's decoding settings on dev.

Decoding settings depend on the training run, so they are tuned after
training, on dev only. The model runs once per batch; only `set_annotations`
(span decoding, score combination, KB lookups) repeats for each setting. The
pipeline is saved with the best setting (in its cfg and config.cfg); the sweep
goes to a JSON file.

* `tune threshold`: `medlink_joint_tagger` (and `medlink_hier_linker`, whose EL
  head plays the MEN head's part) hands a span to the KB when its MEN
  head is less sure than `men_threshold`, and re-ranks the KB's candidates
  with the MEN probability times `rerank_weight`; both are swept as a grid.
* `tune linker`: `medlink_kb_linker` leaves the ID empty where the KB's
  top-1 (the trained ranker's probability) scores under `threshold`.
* `tune resolution`: `medlink_gated_normalizer` ranks each span's candidates by
  `(mid^w_mid · high^w_high · kb^w_kb)^(1/Σw)` and leaves the ID empty under
  `threshold`; the weights and the threshold are swept as a grid.
* `tune abbreviations`: adds `medlink_abbreviations` (short forms agree with
  their long forms in doc.ents) after the recognizer and sweeps its two
  switches, none of them included, so dev decides whether it stays on.
* `tune coordinations`: adds `medlink_coordinations` (an entity extended over
  the conjuncts before it, "classical and Duarte galactosemia"), its word list
  read from the training split, and decides on dev whether it extends.
* `tune copy`: gives a pipeline the settings tuned for another run of the same
  config, e.g. the final model trained on train + dev once dev has chosen its
  settings (dev can no longer tune a model that has trained on it), and the
  pipes `tune` added that SOURCE has and it lacks (`medlink_abbreviations`,
  `medlink_coordinations`), copied from SOURCE with their data.
* `tune export` / `tune apply`: the same settings through a JSON file, so
  that a pipeline's chosen settings can be committed beside its config and
  given to a model trained later without the tuned pipeline at hand.
"""
import contextlib
from itertools import product
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import typer

from ._app import app

tune_app = typer.Typer(help="Tune decoding settings of a trained pipeline on dev.", no_args_is_help=True)
app.add_typer(tune_app, name="tune")

DEFAULT_GRID = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.01"
DEFAULT_KB_WEIGHTS = "0,0.25,0.5,1,2,4,8"
DEFAULT_HEAD_WEIGHTS = "0,1"
DEFAULT_THRESHOLDS = "0"
# what the commands here sweep, and so what `tune copy` copies (a pipe's other settings stay its own)
TUNED_SETTINGS = ("men_threshold", "rerank_weight", "kb_threshold", "threshold", "kb_score_weight",
                  "mid_score_weight", "high_score_weight", "add_short_forms", "remove_short_forms",
                  "exact_long_form", "extend")
# pipes without weights that `tune` adds to a trained pipeline, and so `tune copy` adds too
ADDED_FACTORIES = ("medlink_abbreviations", "medlink_coordinations")


def sweep_settings(nlp, pipe_name: str, examples: List, settings: Sequence[Dict[str, Any]],
                   batch_size: int = 32) -> List[Dict]:
    """Scores of `pipe_name` on `examples` for each dict of cfg values in `settings`.

    The pipes before `pipe_name` and its model run once per batch; its
    `set_annotations`, and the pipes after it, run per setting. Every pipe's
    scorer scores, as in `nlp.evaluate`. The pipe's cfg is restored afterwards.
    """
    from spacy.scorer import Scorer
    from spacy.training import Example
    from spacy.util import minibatch

    pipe = nlp.get_pipe(pipe_name)
    keys = sorted({k for s in settings for k in s})
    missing = [k for k in keys if k not in pipe.cfg]
    if missing:
        raise ValueError(f"Pipe {pipe_name!r} ({type(pipe).__name__}) has no setting {', '.join(missing)} to tune")
    at = nlp.pipe_names.index(pipe_name)
    before = [proc for _, proc in nlp.pipeline[:at]]
    after = [proc for _, proc in nlp.pipeline[at + 1 :]]
    saved = {k: pipe.cfg[k] for k in keys}
    predicted: List[List] = [[] for _ in settings]
    # KB-backed pipes look a batch of spans up once, however many settings send it to the KB
    memoized = getattr(pipe, "memoized_lookups", contextlib.nullcontext)
    try:
        with memoized():
            for batch in minibatch(examples, batch_size):
                docs = [nlp.make_doc(eg.reference.text) for eg in batch]
                for proc in before:
                    docs = _run(proc, docs)
                scores = pipe.predict(docs)
                _drop_transformer_output(docs)
                for i, setting in enumerate(settings):
                    pipe.cfg.update(setting)
                    copies = [doc.copy() for doc in docs]
                    pipe.set_annotations(copies, scores)
                    for proc in after:
                        copies = _run(proc, copies)
                    predicted[i].extend(Example(doc, eg.reference) for doc, eg in zip(copies, batch))
    finally:
        pipe.cfg.update(saved)
    scorer = Scorer(nlp)
    return [{**setting, **_summary(scorer.score(egs))} for setting, egs in zip(settings, predicted)]


def _run(proc, docs: List) -> List:
    """A pipe over docs, as `Language.pipe` runs it: its `pipe` where it has one, else per doc."""
    return list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]


def _drop_transformer_output(docs: List) -> None:
    """Each setting copies every doc (user data included): spacy-transformers'
    per-doc output, no longer needed once the pipe has predicted, would be
    copied once per setting and fill the memory."""
    from spacy.tokens import Doc

    if Doc.has_extension("trf_data"):
        for doc in docs:
            doc._.trf_data = None


def sweep_threshold(nlp, pipe_name: str, examples: List, grid: List[float], batch_size: int = 32) -> List[Dict]:
    """Scores of `pipe_name` on `examples` for each `men_threshold` in `grid`."""
    return sweep_settings(nlp, pipe_name, examples, [{"men_threshold": t} for t in grid], batch_size)


def _summary(scores: Dict) -> Dict:
    return {k: scores.get(k) for k in ("ents_f", "nen_p", "nen_r", "nen_f", "nen_doc_f")}


def _floats(text: str, option: str) -> List[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: comma-separated numbers expected, not {text!r}")
    if not values:
        raise typer.BadParameter(f"{option} is empty")
    return values


def _tune(model: Path, dev: Path, output: Path, pipe_name: str, settings: List[Dict[str, Any]], metric: str,
          sweep_output: Optional[Path], add: Optional[Callable[[Any], None]] = None) -> Dict:
    """Sweep `settings` on dev, save the pipeline with the best, write the sweep.
    `add` puts a weightless pipe into the loaded pipeline first."""
    import spacy
    import srsly
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp = spacy.load(model)
    if add is not None:
        add(nlp)
    if pipe_name not in nlp.pipe_names:
        raise typer.BadParameter(f"{model} has no pipe {pipe_name!r} (pipes: {nlp.pipe_names})")
    gold = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    try:
        rows = sweep_settings(nlp, pipe_name, examples, settings)
    except ValueError as err:
        raise typer.BadParameter(str(err))
    if any(row.get(metric) is None for row in rows):
        raise typer.BadParameter(f"metric {metric!r} is not among the scores ({sorted(rows[0])})")
    for row in rows:
        typer.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    best = max(rows, key=lambda row: row[metric])  # first of equals: the earliest in the grid
    best_setting = {k: best[k] for k in settings[0]}
    _apply(nlp, pipe_name, best_setting)
    nlp.to_disk(output)
    chosen = ", ".join(f"{k} {v}" for k, v in best_setting.items())
    typer.echo(f"Best {chosen} ({metric} {best[metric]:.4f} on {dev}); saved {output}")
    if sweep_output is not None:
        sweep_output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(sweep_output, {"model": str(model), "dev": str(dev), "pipe": pipe_name, "metric": metric,
                                        "best": best, "sweep": rows})
    return best


def _apply(nlp, pipe_name: str, setting: Dict[str, Any]) -> None:
    """Give the pipe `setting` in its cfg and in the config, so config.cfg says it too."""
    nlp.get_pipe(pipe_name).cfg.update(setting)
    nlp.get_pipe_config(pipe_name).update(setting)


@tune_app.command("threshold")
def tune_threshold_cli(
    model: Path = typer.Argument(..., help="Trained pipeline folder (e.g. training/bc5cdr_joint_tok2vec/model-best)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best threshold to"),
    pipe_name: str = typer.Option("joint_tagger", "--pipe", help="Name of the pipe to tune"),
    grid: str = typer.Option(DEFAULT_GRID, "--grid", help="Comma-separated thresholds (>1 = always ask the KB)"),
    rerank_weights: str = typer.Option("0", "--rerank-weights", help="Comma-separated rerank_weight values"),
    kb_thresholds: str = typer.Option("0", "--kb-thresholds", help="Comma-separated kb_threshold values (no concept under the KB's top-1 score)"),
    metric: str = typer.Option("nen_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per setting) as JSON"),
) -> None:
    """Sweep men_threshold (and rerank_weight, kb_threshold) on dev, save the pipeline with the best."""
    settings = [{"men_threshold": t, "rerank_weight": w, "kb_threshold": kt}
                for t, w, kt in product(_floats(grid, "--grid"), _floats(rerank_weights, "--rerank-weights"),
                                        _floats(kb_thresholds, "--kb-thresholds"))]
    _tune(model, dev, output, pipe_name, settings, metric, sweep_output)


@tune_app.command("linker")
def tune_linker_cli(
    model: Path = typer.Argument(..., help="Pipeline with a medlink_kb_linker (e.g. training/bc5cdr_baseline_floret)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best threshold to"),
    pipe_name: str = typer.Option("linker", "--pipe", help="Name of the medlink_kb_linker pipe (configs/kb_linker.cfg calls it linker)"),
    grid: str = typer.Option("0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", "--grid", help="Comma-separated thresholds"),
    metric: str = typer.Option("nen_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per setting) as JSON"),
) -> None:
    """Sweep the KB linker's no-concept threshold on dev, save the pipeline with the best."""
    _tune(model, dev, output, pipe_name, [{"threshold": t} for t in _floats(grid, "--grid")], metric, sweep_output)


@tune_app.command("resolution")
def tune_resolution_cli(
    model: Path = typer.Argument(..., help="Trained pipeline folder (e.g. training/bc5cdr_gated_tok2vec/model-best)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best setting to"),
    pipe_name: str = typer.Option("gated_normalizer", "--pipe", help="Name of the pipe to tune"),
    kb_weights: str = typer.Option(DEFAULT_KB_WEIGHTS, "--kb-weights", help="Comma-separated kb_score_weight values"),
    mid_weights: str = typer.Option(DEFAULT_HEAD_WEIGHTS, "--mid-weights", help="Comma-separated mid_score_weight values"),
    high_weights: str = typer.Option(DEFAULT_HEAD_WEIGHTS, "--high-weights", help="Comma-separated high_score_weight values"),
    thresholds: str = typer.Option(DEFAULT_THRESHOLDS, "--thresholds", help="Comma-separated threshold values"),
    metric: str = typer.Option("nen_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per setting) as JSON"),
) -> None:
    """Sweep the candidate-scoring weights and threshold on dev, save the pipeline with the best."""
    grid = product(_floats(kb_weights, "--kb-weights"), _floats(mid_weights, "--mid-weights"),
                   _floats(high_weights, "--high-weights"), _floats(thresholds, "--thresholds"))
    settings = [{"kb_score_weight": kb, "mid_score_weight": mid, "high_score_weight": high, "threshold": t}
                for kb, mid, high, t in grid]
    _tune(model, dev, output, pipe_name, settings, metric, sweep_output)


@tune_app.command("abbreviations")
def tune_abbreviations_cli(
    model: Path = typer.Argument(..., help="Trained pipeline that writes doc.ents (e.g. training/ncbi_joint_floret_dict/model-best)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best setting to"),
    pipe_name: str = typer.Option("abbreviations", "--pipe", help="Name of the medlink_abbreviations pipe (added after the last pipe if absent)"),
    metric: str = typer.Option("ents_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per setting) as JSON"),
) -> None:
    """Add medlink_abbreviations and sweep its switches on dev (all off: as without it); save the pipeline with the best."""

    def add(nlp) -> None:
        if pipe_name not in nlp.pipe_names:
            nlp.add_pipe("medlink_abbreviations", name=pipe_name)
        elif nlp.get_pipe_meta(pipe_name).factory != "medlink_abbreviations":
            raise typer.BadParameter(f"{model}'s pipe {pipe_name!r} is not a medlink_abbreviations pipe")

    settings = [{"add_short_forms": a, "remove_short_forms": r, "exact_long_form": x}
                for a, r, x in product((False, True), repeat=3) if a or not x]
    _tune(model, dev, output, pipe_name, settings, metric, sweep_output, add=add)


@tune_app.command("coordinations")
def tune_coordinations_cli(
    model: Path = typer.Argument(..., help="Trained pipeline that writes doc.ents (e.g. training/ncbi_joint_floret_dict/model-abbr)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best setting to"),
    train: Path = typer.Option(..., "--train", help="TRAIN split (.spacy) whose multi-word mentions give the conjunct words"),
    pipe_name: str = typer.Option("coordinations", "--pipe", help="Name of the medlink_coordinations pipe (added after the last pipe)"),
    min_count: int = typer.Option(2, "--min-count", help="How often a word must begin a multi-word training mention"),
    metric: str = typer.Option("ents_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per setting) as JSON"),
) -> None:
    """Add medlink_coordinations (word list from TRAIN) and decide on dev whether it extends; save the pipeline."""
    from spacy.tokens import DocBin
    from spacy.training import Example

    def add(nlp) -> None:
        if pipe_name in nlp.pipe_names:
            raise typer.BadParameter(f"{model} already has a pipe {pipe_name!r}")
        pipe = nlp.add_pipe("medlink_coordinations", name=pipe_name, config={"min_count": min_count})
        gold = list(DocBin().from_disk(train).get_docs(nlp.vocab))
        pipe.initialize(lambda: (Example(doc, doc) for doc in gold), nlp=nlp)
        typer.echo(f"{len(pipe.words)} conjunct words from {train}")

    _tune(model, dev, output, pipe_name, [{"extend": False}, {"extend": True}], metric, sweep_output, add=add)


def export_settings(nlp) -> Dict[str, Any]:
    """What `tune` chose for `nlp`, JSON-serializable: each of our pipes'
    TUNED_SETTINGS, and the pipes `tune` adds (ADDED_FACTORIES) with their
    config, the pipes they follow and their data (a word list), so that
    `apply_settings` can rebuild them where no tuned pipeline is at hand."""
    import srsly

    pipes = []
    for i, (name, pipe) in enumerate(nlp.pipeline):
        factory = nlp.get_pipe_meta(name).factory
        ours = type(pipe).__module__.startswith("spacy_medlink.")
        settings = {k: pipe.cfg[k] for k in TUNED_SETTINGS if k in getattr(pipe, "cfg", {})} if ours else {}
        entry: Dict[str, Any] = {"name": name, "factory": factory, "settings": settings}
        if factory in ADDED_FACTORIES:
            config = {k: v for k, v in nlp.get_pipe_config(name).items() if k != "factory"}
            data = srsly.msgpack_loads(pipe.to_bytes()) if hasattr(pipe, "to_bytes") else None
            entry.update(follows=nlp.pipe_names[:i], config=config, data=data)
        elif not settings:
            continue
        pipes.append(entry)
    return {"pipes": pipes}


def apply_settings(nlp, settings: Dict[str, Any], source: str) -> List[str]:
    """Give `nlp` the settings `export_settings` wrote (from `source`): add the
    pipes it lacks after the last pipe of theirs it has, and set the tuned
    settings of each of our pipes. Returns what changed, one line a pipe."""
    import srsly

    entries = {entry["name"]: entry for entry in settings["pipes"]}
    changed = []
    for entry in settings["pipes"]:
        name = entry["name"]
        if "config" not in entry or name in nlp.pipe_names:
            continue
        after = next((n for n in reversed(entry["follows"]) if n in nlp.pipe_names), None)
        if after is None:
            raise typer.BadParameter(f"the pipeline has none of the pipes that {name!r} follows in {source} "
                                     f"({entry['follows']})")
        pipe = nlp.add_pipe(entry["factory"], name=name, after=after, config=entry["config"])
        if entry["data"] is not None:
            pipe.from_bytes(srsly.msgpack_dumps(entry["data"]))
        changed.append(f"{name}: added")
    for name, pipe in nlp.pipeline:
        ours = type(pipe).__module__.startswith("spacy_medlink.")
        keys = [k for k in TUNED_SETTINGS if k in getattr(pipe, "cfg", {})] if ours else []
        if not keys:
            continue
        entry = entries.get(name)
        if entry is None or entry["factory"] != nlp.get_pipe_meta(name).factory:
            raise typer.BadParameter(f"{source} has no {type(pipe).__name__} named {name!r} to copy settings from")
        setting = {k: entry["settings"][k] for k in keys if k in entry["settings"]}
        _apply(nlp, name, setting)
        changed.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in setting.items()))
    if not changed:
        raise typer.BadParameter("the pipeline has no pipe with tuned settings")
    return changed


@tune_app.command("copy")
def tune_copy_cli(
    source: Path = typer.Argument(..., help="The tuned pipeline (e.g. training/bc5cdr_joint_floret_dict/model-tuned)"),
    model: Path = typer.Argument(..., help="A pipeline of the same config to give SOURCE's settings (e.g. one trained on train + dev)"),
    output: Path = typer.Argument(..., help="Folder to save MODEL with SOURCE's settings to"),
) -> None:
    """Copy the settings that `tune` sweeps (TUNED_SETTINGS) from SOURCE's pipes to MODEL's pipes of the same name, adding the weightless pipes `tune` added (ADDED_FACTORIES)."""
    import spacy

    nlp = spacy.load(model)
    changed = apply_settings(nlp, export_settings(spacy.load(source)), str(source))
    nlp.to_disk(output)
    typer.echo(f"Saved {output} with the settings of {source}: " + "; ".join(changed))


@tune_app.command("export")
def tune_export_cli(
    model: Path = typer.Argument(..., help="A tuned pipeline (e.g. training/bc5cdr_joint_floret_dict/model-tuned)"),
    settings_json: Path = typer.Argument(..., help="JSON file to write the settings to (e.g. configs/settings/en_medlink.json)"),
    compare: Optional[Path] = typer.Option(None, "--compare", help="A settings file these must equal (e.g. the committed one); exit 1 if they differ"),
) -> None:
    """Write the settings `tune` chose for MODEL (what `tune copy` copies) to SETTINGS_JSON, for `tune apply`."""
    import spacy
    import srsly

    settings = export_settings(spacy.load(model))
    settings_json.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(settings_json, settings)
    typer.echo(f"Wrote the settings of {model} to {settings_json}")
    if compare is not None:
        if not _same_settings(srsly.read_json(compare), srsly.read_json(settings_json)):
            typer.echo(f"{settings_json} differs from {compare}:\n{srsly.json_dumps(settings, indent=2)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"The same settings as {compare}")


def _same_settings(a: Any, b: Any) -> bool:
    """Equal, floats within rounding: a value read back from a saved config may
    differ in its last bit from the grid's (0.30000000000000004 for 0.3)."""
    import math

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_settings(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_settings(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return not isinstance(a, bool) and not isinstance(b, bool) and isinstance(a, (int, float)) \
            and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@tune_app.command("apply")
def tune_apply_cli(
    settings_json: Path = typer.Argument(..., help="Settings written by `tune export` (e.g. configs/settings/en_medlink.json)"),
    model: Path = typer.Argument(..., help="A pipeline of the config they were tuned for (e.g. one trained on train + dev)"),
    output: Path = typer.Argument(..., help="Folder to save MODEL with those settings to"),
) -> None:
    """Give MODEL the settings of SETTINGS_JSON, as `tune copy` would from the pipeline they were exported from."""
    import spacy
    import srsly

    nlp = spacy.load(model)
    changed = apply_settings(nlp, srsly.read_json(settings_json), str(settings_json))
    nlp.to_disk(output)
    typer.echo(f"Saved {output} with the settings of {settings_json}: " + "; ".join(changed))
