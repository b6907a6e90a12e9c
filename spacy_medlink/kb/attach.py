"""A trained pipeline linking to another KB, or with another ranker, without retraining.

`attach_ranker` gives the pipeline's own KB a trained ranker of the same vocabulary.
`attach_kb` swaps in a KB folder itself, the path from a vocabulary of one's own to a
recognizer that links to it (`kb attach` is the command over both):

1. Types. The candidate generator gives a mention only concepts whose type is
   its label (a bit per type, 32 at most), so the KB's types must be the
   recognizer's labels. A type map ({"T047": ["Disease"], "T121": ["Chemical"]};
   "*" types every concept) retypes a copy of the KB (`retype_kb`); concepts whose
   types map to no label are left out and counted. A KB already typed with the
   labels (an OBO ontology built with `Disease`) needs no map.
2. Ranking. A trained ranker belongs to the KB it was trained against (its
   statistics name that KB's IDs), so the pipeline's own is never carried over.
   The KB's trained ranker (`kb ranker`) or one fit on a corpus annotated with
   the KB's IDs (`train`) is used where it is valid for the attached KB
   (`kb_coverage` at least `min_coverage`); otherwise, or with the "calibrated"
   mode, the generator's order with its similarity mapped to P(top-1 correct) by
   a calibration fit on the KB's own synonyms (`kb.calibration`). The "none" mode
   keeps the raw similarity (`choose_ranker`).
3. The recognizer's own concept head (the joint tagger's MEN head, the
   hierarchical linker's EL head) names the training corpus's IDs: where most
   of them (HEAD_MIN_SHARE) are not primary IDs of the attached KB, the KB decides
   every span (`switch_off_head`), and a span it has no candidate for gets no concept.
4. The no-concept threshold stays the pipeline's (`threshold` sets it): it
   applies to a probability either way.

Errors a user can fix raise `AttachError`; their messages name the `kb attach`
options, whose keyword arguments here have the same names.
"""
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

if TYPE_CHECKING:
    from spacy.language import Language

    from .candidates import CandidateGenerator
    from .concept_kb import ConceptKB
    from .ranker import CandidateRanker

RANKER_CHOICES = ("auto", "trained", "calibrated", "none")
HEAD_OFF = 1.01  # a men_threshold above every probability: the KB decides every span
# a concept head stays where at least this share of its IDs' atoms are primary IDs of the attached KB:
# near 1 for the KB of its own vocabulary (short by retired records), near 0 for another vocabulary
HEAD_MIN_SHARE = 0.5

Log = Callable[[str], None]


class AttachError(ValueError):
    """A KB or ranker that cannot be attached as asked: the message says why and what to do."""


def check_ranker_mode(mode: str, train: Optional[Union[str, Path]] = None) -> None:
    """Refuse a ranker mode outside RANKER_CHOICES, or one that asks for no fit ranker with `train`."""
    if mode not in RANKER_CHOICES:
        raise AttachError(f"--ranker: expected one of {', '.join(RANKER_CHOICES)}, not {mode!r}")
    if train is not None and mode in ("calibrated", "none"):
        raise AttachError(f"--train fits a ranker; --ranker {mode} asks for none")


def kb_components(nlp: "Language", whole: bool = True) -> List[str]:
    """The components that look concepts up in a KB; for a ranker alone (`whole` False),
    only those that have one."""
    return [name for name, proc in nlp.pipeline
            if hasattr(proc, "generator") and (whole or getattr(proc, "generator") is not None)]


def recognizer_labels(nlp: "Language") -> Set[str]:
    """The entity labels the pipeline's recognizers predict (empty if none says)."""
    labels: Set[str] = set()
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns and hasattr(pipe, "labels"):
            labels.update(str(label) for label in pipe.labels)
    return labels


def retype_kb(kb: "ConceptKB", type_map: Dict[str, Sequence[str]]) -> Tuple["ConceptKB", Counter]:
    """A copy of `kb` whose concepts are typed with the labels their types map to; a
    concept that maps to none is left out, and counted under each of its types."""
    from .concept_kb import Concept, ConceptKB

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


def switch_off_head(nlp: "Language", name: str) -> None:
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


def trained_ranker(kb_dir: Union[str, Path]) -> Optional["CandidateRanker"]:
    """The trained ranker saved in `kb_dir` (None where there is none, or only a calibrated ranking)."""
    from .candidates import RANKER_DIR
    from .ranker import CandidateRanker

    kb_dir = Path(kb_dir)
    if not (kb_dir / RANKER_DIR / "ranker.msgpack").exists():
        return None
    ranker = CandidateRanker.from_disk(kb_dir / RANKER_DIR)
    return None if ranker.cfg["learner"] == "calibrated" else ranker


def choose_ranker(generator: "CandidateGenerator", trained: Optional["CandidateRanker"], mode: str,
                  min_coverage: float, *, calibration_mentions: int = 4000, seed: int = 0,
                  log: Log = print) -> Tuple[Optional["CandidateRanker"], Dict[str, Any]]:
    """The ranker for `generator` by `mode` (RANKER_CHOICES) and what decided it: `trained`
    where at least `min_coverage` of its training mentions' concepts are the KB's, else a
    calibrated similarity ("auto" says so through `log`; "trained" raises AttachError)."""
    from .calibration import fit_calibration
    from .ranker import CandidateRanker

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
        raise AttachError(f"--ranker trained: {why}. Train one against this KB (--train, or `kb ranker`) "
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


def fit_ranker_on_corpus(nlp: "Language", generator: "CandidateGenerator", train: Path, folds: int, seed: int,
                         log: Log = print) -> Tuple["CandidateRanker", "CandidateGenerator", Dict[str, Any]]:
    """A ranker cross-fit on `train` against the KB of `generator` (as `kb ranker --base-kb`
    does), and a generator over that KB with `train`'s mentions as synonyms."""
    from spacy.tokens import DocBin

    from .builders import add_train_mentions
    from .concept_kb import ConceptKB
    from .ranker_fit import fit_ranker

    docs = list(DocBin().from_disk(train).get_docs(nlp.vocab))
    base = generator.kb
    full = ConceptKB().from_bytes(base.to_bytes())
    added = add_train_mentions(full, docs, train.stem)
    full_generator = generator.with_kb(full)
    ranker, report = fit_ranker(full_generator, docs, base_kb=base, folds=max(2, min(folds, len(docs))), seed=seed)
    log(f"Ranker fit on {report['mentions']} mentions of {train}"
        + "".join(f"; {key}: {acc}" for key, acc in report.get("out_of_fold", {}).items()))
    return ranker, full_generator, {"train": str(train), "synonyms_added": added.get("added", 0), **report}


def attach_ranker(nlp: "Language", kb_dir: Union[str, Path], *, names: Optional[Sequence[str]] = None,
                  min_coverage: float = 0.5) -> List[str]:
    """Give the KB of each component in `names` (default: every one with a KB) the trained
    ranker of `kb_dir`, which must be of the same vocabulary: nothing is changed where it
    covers less than `min_coverage` of a component's KB. Returns the components changed."""
    from .candidates import RANKER_DIR
    from .ranker import CandidateRanker

    kb_dir = Path(kb_dir)
    names = kb_components(nlp, whole=False) if names is None else list(names)
    if not (kb_dir / RANKER_DIR / "ranker.msgpack").exists():
        raise AttachError(f"{kb_dir} has no trained ranker (run `python -m spacy_medlink kb ranker` "
                          "first); to attach the KB itself, give --whole")
    ranker = CandidateRanker.from_disk(kb_dir / RANKER_DIR)
    for name in names:
        coverage = ranker.kb_coverage(nlp.get_pipe(name).generator.kb)
        if coverage is not None and coverage < min_coverage:
            raise AttachError(f"{kb_dir / RANKER_DIR} was trained against another KB: {coverage:.1%} of "
                              f"its training mentions' concepts are concepts of {name}'s KB "
                              f"(--min-coverage {min_coverage}); attach the whole KB with --whole")
    for name in names:
        nlp.get_pipe(name).generator.ranker = ranker
    return names


def attach_kb(nlp: "Language", kb_dir: Union[str, Path], *, type_map: Optional[Dict[str, Sequence[str]]] = None,
              ranker: str = "auto", train: Optional[Union[str, Path]] = None, folds: int = 5,
              threshold: Optional[float] = None, min_coverage: float = 0.5, calibration_mentions: int = 4000,
              seed: int = 0, names: Optional[Sequence[str]] = None, log: Log = print) -> Dict[str, Any]:
    """Swap the KB of `kb_dir` into each component in `names` (default: every one with a KB),
    typed by `type_map` for the recognizer's labels, ranked as `ranker` (RANKER_CHOICES) says
    (`train`: a corpus of the KB's IDs to fit one on), with the concept head switched off
    where it names another vocabulary and the no-concept threshold set to `threshold`.

    Changes `nlp` in place (save it with `nlp.to_disk`) and returns what was done: the labels,
    the concepts kept and left out, the ranker and why, each component's settings. Progress
    and warnings go to `log`."""
    from .candidates import CandidateGenerator

    check_ranker_mode(ranker, train)
    kb_dir = Path(kb_dir)
    mapping = dict(type_map or {})
    names = kb_components(nlp) if names is None else list(names)
    info: Dict[str, Any] = {}
    generator = CandidateGenerator.from_disk(kb_dir, ranker=False)
    trained = trained_ranker(kb_dir)
    labels = recognizer_labels(nlp)
    info["labels"] = sorted(labels)
    if mapping:
        unknown = sorted({label for ls in mapping.values() for label in ls} - labels) if labels else []
        if unknown:
            raise AttachError(f"--type-map: {', '.join(unknown)} not among the recognizer's labels "
                              f"({', '.join(sorted(labels))})")
        kb, counts = retype_kb(generator.kb, mapping)
        if not len(kb):
            raise AttachError(f"--type-map: no concept of {kb_dir} has a mapped type "
                              f"(its types: {', '.join(generator.types) or 'none'})")
        log(f"Types mapped: {counts['kept']} concepts kept, {counts['left out']} left out; "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k.startswith("kept: ")))
        generator = generator.with_kb(kb)
        info["type_map"] = mapping
        info["concepts"] = dict(sorted(counts.items()))
    else:
        wanted = {nlp.get_pipe(n).cfg.get("type_map", {}).get(label, label) for n in names for label in labels}
        if labels and not wanted & set(generator.types):
            raise AttachError(f"{kb_dir}'s types ({', '.join(generator.types) or 'none'}) are none of the "
                              f"recognizer's labels ({', '.join(sorted(labels))}): give --type-map")
        info["concepts"] = {"kept": len(generator.kb)}
    if train is not None:
        trained, generator, info["ranker_fit"] = fit_ranker_on_corpus(nlp, generator, Path(train), folds, seed,
                                                                      log=log)
        ranker = "trained"
    chosen, info["ranker"] = choose_ranker(generator, trained, ranker, min_coverage,
                                           calibration_mentions=calibration_mentions, seed=seed, log=log)
    generator.ranker = chosen
    kind = info["ranker"]["kind"]
    if kind == "calibrated":
        held = info["ranker"]["calibration"]["held_out"]
        log(f"Calibrated score: {info['ranker']['calibration']['pseudo_mentions']} pseudo-mentions, "
            f"held-out expected calibration error {held['calibrated']['ece']} "
            f"(raw similarity {held['raw_similarity']['ece']})")
    info["components"] = {name: _attach_to(nlp, name, generator, bool(mapping), threshold, kind, log)
                          for name in names}
    return info


def _attach_to(nlp: "Language", name: str, generator: "CandidateGenerator", retyped: bool,
               threshold: Optional[float], kind: str, log: Log) -> Dict[str, Any]:
    """Give component `name` the attached `generator`, with its head and threshold settled; its settings."""
    pipe = nlp.get_pipe(name)
    pipe.generator = generator
    settings: Dict[str, Any] = {}
    if retyped and "type_map" in pipe.cfg:
        _set(nlp, name, "type_map", {})  # the KB's types are the labels now
    concepts = pipe.cfg.get("concepts")
    if "men_threshold" in pipe.cfg and concepts is not None:
        share = primary_share(list(concepts), generator.kb)
        settings["head_concepts_in_kb"] = round(share, 4)
        if share < HEAD_MIN_SHARE:
            switch_off_head(nlp, name)
            settings["head"] = "off"
            log(f"{name}: {share:.1%} of its concept head's concepts are concepts of the KB: the KB "
                f"decides every span (men_threshold {HEAD_OFF}, rerank_weight 0)")
    key = ("kb_threshold" if "kb_threshold" in pipe.cfg else
           "threshold" if nlp.get_pipe_meta(name).factory == "medlink_kb_linker" else None)
    if key is not None:
        if threshold is not None:
            _set(nlp, name, key, threshold)
        log(f"{name}: no concept under a KB score of {pipe.cfg[key]:g} ({key}; the score: {kind})")
    elif threshold is not None:
        log(f"{name}: --threshold not set (its threshold is on its own combined score)")
    settings.update({k: pipe.cfg[k] for k in ("men_threshold", "rerank_weight", "kb_threshold", "threshold",
                                              "type_map") if k in pipe.cfg})
    return settings
