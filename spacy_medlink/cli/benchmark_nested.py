"""`python -m spacy_medlink benchmark nested`: the cost of the MRC recognizer
against the number of entity types.

The paper (MRC-MTL-MS) runs one encoder pass per (sentence, type) pair, so
its cost grows with K times the encoder. Ours encodes each sentence once and
conditions per type, so only the heads grow with K. For each K, a recognizer
with the first K types is built from CONFIG (untrained: speed does not depend
on the weights) and times `nlp.pipe` over the texts of DATA; the peer in the
same run is K single-type passes (what one pass per pair costs, encoder
included), reported as the ratio ``K · t(1) / t(K)``.
"""
import json
import time
from pathlib import Path
from typing import List, Optional

WARMUP_DOCS = 20


def time_k_types(config: Path, data: Path, k: int, limit: int, batch_size: int, component: str,
                 overrides: Optional[dict] = None) -> dict:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example
    from spacy.util import load_config
    from thinc.api import fix_random_seed

    cfg = load_config(config, overrides=dict(overrides or {}), interpolate=False)
    nlp = spacy.blank(cfg["nlp"]["lang"], config={"nlp": {"tokenizer": cfg["nlp"]["tokenizer"]}})
    pipe_cfg = dict(cfg["components"][component])
    factory = pipe_cfg.pop("factory")
    docs = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    if limit:
        docs = docs[:limit]
    key = pipe_cfg.get("spans_key", "nested")
    labels = sorted({s.label_ for d in docs for s in d.spans.get(key, [])})[:k]
    if len(labels) < k:
        raise ValueError(f"{data}: only {len(labels)} entity types, asked for {k}")
    pipe_cfg.pop("scorer", None)
    nlp.add_pipe(factory, name=component, config=pipe_cfg)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs[:50]]
    fix_random_seed(0)
    nlp.config["initialize"]["components"][component] = {"labels": labels}
    nlp.initialize(lambda: examples)
    texts = [d.text for d in docs]
    for _ in nlp.pipe(texts[:WARMUP_DOCS], batch_size=batch_size):
        pass
    start = time.perf_counter()
    n_words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - start
    return {"types": k, "labels": labels, "docs": len(texts), "words": n_words, "seconds": round(seconds, 3),
            "sentences_per_second": round(len(texts) / seconds, 1), "words_per_second": round(n_words / seconds, 1)}


def _register() -> None:
    import srsly
    import typer

    from ._app import benchmark_app

    @benchmark_app.command("nested")
    def benchmark_nested_cli(
        config: Path = typer.Argument(..., help="A nested-recognizer config, e.g. configs/nested_zh_tok2vec.cfg", exists=True),
        data: Path = typer.Option(..., "--data", help="A .spacy split (its texts, and its types for the labels)"),
        types: str = typer.Option("1,3,5,9", "--types", help="Numbers of entity types to time"),
        output: Path = typer.Option(Path("metrics/nested/benchmark_nested.json"), "--output"),
        limit: int = typer.Option(1000, "--limit", help="Docs of DATA to process (0: all)"),
        batch_size: int = typer.Option(256, "--batch-size"),
        threads: int = typer.Option(1, "--threads", help="torch threads"),
        component: str = typer.Option("nested", "--component", help="The recognizer's name in CONFIG"),
        queries: Optional[str] = typer.Option(None, "--queries", help="medlink.mrc_queries.v1 preset (cmeee, ccks2019, genia)"),
    ) -> None:
        """Sentences per second against the number of entity types, beside one pass per (sentence, type)."""
        from ..torch_utils import require_torch

        require_torch("benchmark nested").set_num_threads(threads)
        ks: List[int] = sorted({int(x) for x in types.split(",") if x.strip()})
        if 1 not in ks:
            ks = [1] + ks  # the single-type pass is the peer
        overrides = {f"components.{component}.queries.corpus": queries} if queries else {}
        rows = []
        for k in ks:
            row = time_k_types(config, data, k, limit, batch_size, component, overrides)
            rows.append(row)
            typer.echo(f"K={k}: {row['sentences_per_second']:.1f} sentences/s, {row['words_per_second']:.0f} words/s")
        t1 = rows[0]["seconds"]
        for row in rows:
            row["one_pass_per_type_seconds"] = round(row["types"] * t1, 3)
            row["speedup_vs_one_pass_per_type"] = round(row["types"] * t1 / row["seconds"], 2)
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, {"config": str(config), "data": str(data), "threads": threads, "results": rows})
        typer.echo(json.dumps([(r["types"], r["speedup_vs_one_pass_per_type"]) for r in rows]))
        typer.echo(f"Wrote {output}")


_register()
