"""`python -m spacy_medlink annotate MODEL INPUT... --output OUT`: annotate corpora with a trained pipeline."""
import gc
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ._app import app


def _eta(info: dict) -> str:
    done, total, rate = info["documents"], info["total"], info["docs_per_s"]
    if not total or not rate:
        return ""
    seconds = max(total - done, 0) / rate
    return f", ETA {int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline (path or package name, e.g. en_medlink)"),
    inputs: List[Path] = typer.Argument(..., help="Input files or folders (PubTator, BioC XML/JSON, PubMed XML[.gz], JSONL, text)"),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: part-NNNNN files, their manifests, summary.json"),
    fmt: Optional[str] = typer.Option(None, "--format", help="Input format (default: sniffed per file): pubtator, bioc-xml, bioc-json, pubmed-xml, jsonl, text"),
    output_format: str = typer.Option("jsonl", "--output-format", help="jsonl, pubtator or bioc-xml"),
    n_process: int = typer.Option(1, "--n-process", help="Worker processes (a pool of forked workers, each holding the pipeline)"),
    batch_size: int = typer.Option(32, "--batch-size"),
    chunk_size: int = typer.Option(1000, "--chunk-size", help="Records per output file; a rerun resumes after the last complete one"),
    max_chars: int = typer.Option(100_000, "--max-chars", help="Longer texts are annotated in sections of at most this many characters"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records (counted, listed in skipped.jsonl) instead of stopping"),
    id_field: str = typer.Option("id", "--id-field", help="JSONL: the ID field"),
    text_field: str = typer.Option("text", "--text-field", help="JSONL: the text field"),
    count: bool = typer.Option(True, "--count/--no-count", help="Count the records first, for the ETA"),
    backend: str = typer.Option("local", "--backend", help="local (this machine, --n-process) or ray (a pool of Ray actors, --n-actors; Ray Data reads the inputs)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray: the cluster address (default: start or join a local Ray)"),
    n_actors: int = typer.Option(1, "--n-actors", help="Ray: actors, each loading the model once"),
) -> None:
    """Annotate documents with a pipeline: entities, concept IDs, scores, candidates (and span groups)."""
    import spacy

    from ..annotate.records import read_records
    from ..annotate.run import annotate

    def progress(info: dict) -> None:
        of = f"/{info['total']}" if info["total"] else ""
        print(f"{info['documents']}{of} documents, {info['docs_per_s']:.1f} docs/s{_eta(info)}", file=sys.stderr, flush=True)

    if backend == "ray":
        from ..annotate.ray_backend import annotate_ray

        summary = annotate_ray(model, inputs, output, input_format=fmt, fmt=output_format, chunk_size=chunk_size,
                               n_actors=n_actors, batch_size=batch_size, max_chars=max_chars, id_field=id_field,
                               text_field=text_field, skip_bad=skip_bad, address=address, progress=progress)
        _report(summary, output)
        return
    if backend != "local":
        raise typer.BadParameter(f"--backend must be local or ray, not {backend!r}")
    skipped: list = []
    on_bad = skipped.append if skip_bad else None

    def records():
        return read_records(inputs, fmt, id_field=id_field, text_field=text_field, on_bad=on_bad)

    total = None
    if count:
        total = sum(1 for _ in read_records(inputs, fmt, id_field=id_field, text_field=text_field,
                                            on_bad=(lambda b: None) if skip_bad else None))
    nlp = spacy.load(model)
    # The pipeline lives as long as this process: frozen, the garbage collector never walks its
    # objects again (time in every full collection; pages shared with forked workers stay shared).
    gc.freeze()
    summary = annotate(nlp, records(), output, fmt=output_format, chunk_size=chunk_size, n_process=n_process,
                       batch_size=batch_size, max_chars=max_chars, skipped=skipped, total=total, progress=progress)
    _report(summary, output)


def _report(summary: dict, output: Path) -> None:
    typer.echo(f"read {summary['read']}: annotated {summary['annotated']}, resumed {summary['resumed']}, "
               f"skipped {summary['skipped']['malformed']} malformed; {summary['empty']} empty, "
               f"{summary['sectioned']} in sections; entities {summary['entities_per_type']}")
    typer.echo(f"Wrote {output} ({summary['chunks']} chunks, {summary['docs_per_s']} docs/s)")
