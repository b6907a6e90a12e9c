"""`python -m spacy_medlink benchmark crosscorpus`: a pipeline on corpora
annotated by other groups (`spacy_medlink.crosscorpus`), as JSON.

DATA holds one converted test split per corpus, named by its key
(`corpus/crosscorpus/craft.spacy`, `ddi.spacy`, ...; the project's `convert`
step writes them). Corpora the model trained on are named with
`--trained-on`: they are scored too (the in-domain condition) but left out of
the held-out means.
"""
import time
from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ._app import benchmark_app


@benchmark_app.command("crosscorpus")
def benchmark_crosscorpus_cli(
    # fmt: off
    model: str = typer.Argument(..., help="Pipeline path or installed package"),
    data: Path = typer.Option(..., "--data", help="Folder of <corpus>.spacy test splits (keys: bc5cdr, ncbi, craft, bionlp13cg, ddi, gnormplus, nlmgene)", exists=True, file_okay=False),
    output: Path = typer.Option(..., "--output", help="JSON file for the results"),
    corpora: Optional[str] = typer.Option(None, "--corpora", help="Comma-separated corpus keys (default: every <key>.spacy in DATA)"),
    trained_on: str = typer.Option("", "--trained-on", help="Comma-separated keys of corpora the model trained on: scored, but not in the held-out means"),
    train: Optional[Path] = typer.Option(None, "--train", help="The model's training data (.spacy): recall on gold names it never saw", exists=True, dir_okay=False),
    n_threads: int = typer.Option(1, "--threads", help="torch threads"),
    # fmt: on
) -> None:
    """Strict NER per type, normalization where the IDs are MeSH/MEDIC, genes
    called Chemical, and token alignment of the gold, per corpus."""
    import spacy
    from spacy.tokens import DocBin

    from ..corpora.standoff import gold_mentions
    from ..crosscorpus import CORPORA, score_corpus, summarize

    try:
        import torch

        torch.set_num_threads(n_threads)
    except ImportError:
        pass
    names = [n.strip() for n in corpora.split(",")] if corpora else sorted(
        p.stem for p in data.glob("*.spacy") if p.stem in CORPORA)
    unknown = [n for n in names if n not in CORPORA]
    if unknown:
        msg.fail(f"Unknown corpus keys {unknown}; known: {sorted(CORPORA)}", exits=1)
    missing = [n for n in names if not (data / f"{n}.spacy").exists()]
    if missing or not names:
        msg.fail(f"No {', '.join(f'{n}.spacy' for n in missing) or 'corpus'} in {data}", exits=1)
    nlp = spacy.load(model)
    train_names = None
    if train is not None:
        train_names = {m_text.lower() for doc in DocBin().from_disk(train).get_docs(nlp.vocab)
                       for m_text in (doc.text[s:e] for s, e, _, _ in gold_mentions(doc))}
    results = {}
    for name in names:
        spec = CORPORA[name]
        refs = list(DocBin().from_disk(data / f"{name}.spacy").get_docs(nlp.vocab))
        start = time.perf_counter()
        scores = score_corpus(nlp, refs, spec, train_names=train_names)
        scores["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = {"description": spec.description, "license": spec.license, "label_map": spec.label_map,
                         "complete": list(spec.complete), "partial": list(spec.partial), **scores}
        ner = scores.get("ner", {}).get("f")
        nen = scores.get("nen", {}).get("nen_f")
        gene = scores.get("genes", {}).get("as_chemical_overlap_rate")
        msg.info(f"{name}: NER F {ner if ner is None else round(ner, 3)}, mention NEN F "
                 f"{nen if nen is None else round(nen, 3)}, genes called Chemical "
                 f"{gene if gene is None else round(gene, 3)} ({scores['seconds']} s)")
    trained = [n.strip() for n in trained_on.split(",") if n.strip()]
    summary = summarize(results, trained)
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, {"model": model, "pipeline": nlp.pipe_names, "trained_on": trained,
                              "summary": summary, "corpora": results})
    msg.good(f"Held-out mean NER F {summary['mean_ner_f']}, mean mention NEN F {summary['mean_nen_f']}, "
             f"mean document NEN F {summary['mean_nen_doc_f']}", str(output))
