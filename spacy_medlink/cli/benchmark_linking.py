"""`python -m spacy_medlink benchmark linking`: normalization alone, on gold or predicted mentions.

Two tables from one KB folder (its candidate generator, and its trained
ranker when it has one):

* gold mentions: accuracy@1 and @5 of the KB's top-k, the ranker's and the
  exact-match dictionary's, per type, for concepts seen and unseen in the
  training split, composite mentions (right only when the whole ID set is)
  and mentions whose gold ID the KB lacks (the ceiling) counted apart;
  gold mentions without a concept are counted, not scored; each system's
  mentions/s in the same run (the ranker's cost beside the generator's).
* with `--model`: the pipeline's own entities, linked by the pipeline
  itself, by the KB's top-1, by the ranker at each `--thresholds` value (a
  top-1 probability below it leaves the ID empty) and by the dictionary,
  each scored by `medlink.nen_scorer.v1` (mention and document level, P/R/F),
  IDs resolved through the KB. Choose the threshold on dev, report test.
"""
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

import typer

from ._app import benchmark_app

SYSTEMS = ("kb", "ranker", "dictionary")


def _docs(path: Path, vocab) -> list:
    from spacy.tokens import DocBin

    return list(DocBin().from_disk(path).get_docs(vocab))


def _train_concepts(docs: Sequence, resolve: Callable[[str], str]) -> Set[str]:
    from ..ids import split_kb_id

    return {resolve(a) for doc in docs for ent in doc.ents for a in split_kb_id(ent.kb_id_)}


def _linkers(generator, train_docs: Sequence) -> Dict[str, Callable]:
    """name -> f(spans) -> ranked concept lists (top 5), for each system this KB offers."""
    from ..kb.dictionary import ExactDictionary
    from ..kb.mention_stats import split_stats
    from ..kb.span_lookup import span_candidates, span_long_forms

    stats, _ = split_stats(train_docs, generator.kb.resolve)
    dictionary = ExactDictionary(generator, stats)

    def kb(spans):
        return [[(c.concept_id, c.score) for c in cands] for cands in span_candidates(generator, spans, k=5, rank=False)]

    def ranker(spans):
        return [[(c.concept_id, c.score) for c in cands] for cands in span_candidates(generator, spans, k=5)]

    def exact(spans):
        return [[(cid, 1.0)] if cid else [] for cid in dictionary(spans, span_long_forms(spans))]

    out = {"kb": kb, "dictionary": exact}
    if generator.ranker is not None:
        out["ranker"] = ranker
    return out


def gold_table(generator, docs: Sequence, train_docs: Sequence) -> Dict[str, Any]:
    """Accuracy@1/@5 of each system on the gold mentions of `docs`."""
    from ..ids import split_kb_id

    resolve = generator.kb.resolve
    seen = _train_concepts(train_docs, resolve)
    spans = [ent for doc in docs for ent in doc.ents]
    golds = [frozenset(resolve(a) for a in split_kb_id(ent.kb_id_)) for ent in spans]
    counts = {"mentions": len(spans), "nil": sum(not g for g in golds),
              "composite": sum(len(g) > 1 for g in golds),
              "gold_id_not_in_kb": sum(bool(g) and any(a not in generator.kb for a in g) for g in golds)}
    table: Dict[str, Dict[str, Dict[str, Any]]] = {}
    seconds: Dict[str, float] = {}
    for name, linker in _linkers(generator, train_docs).items():
        generator.clear_cache()
        start = time.perf_counter()
        ranked = linker(spans)
        seconds[name] = time.perf_counter() - start
        groups: Dict[str, Dict[str, int]] = {}
        for span, gold, cands in zip(spans, golds, ranked):
            if not gold:
                continue
            ids = [frozenset(resolve(a) for a in split_kb_id(cid)) for cid, _ in cands]
            keys = ["all", span.label_, "seen" if gold <= seen else "unseen"]
            if len(gold) > 1:
                keys.append("composite")
            if any(a not in generator.kb for a in gold):
                keys.append("gold_id_not_in_kb")
            hit1 = bool(ids) and ids[0] == gold
            hit5 = gold <= frozenset().union(*ids[:5])
            for key in keys:
                g = groups.setdefault(key, {"n": 0, "hit@1": 0, "hit@5": 0})
                g["n"] += 1
                g["hit@1"] += hit1
                g["hit@5"] += hit5
        table[name] = {key: {"n": g["n"], "acc@1": round(g["hit@1"] / g["n"], 4), "acc@5": round(g["hit@5"] / g["n"], 4)}
                       for key, g in sorted(groups.items())}
    speed = {name: {"seconds": round(t, 2), "mentions_per_s": round(len(spans) / t, 1) if t else None}
             for name, t in seconds.items()}
    return {"counts": counts, "accuracy": table, "speed": speed}


def pipeline_table(generator, nlp, docs: Sequence, train_docs: Sequence, thresholds: Sequence[float],
                   batch_size: int = 32) -> Dict[str, Any]:
    """Normalization scores of the pipeline's own entities, linked by each system."""
    from spacy.tokens import Span
    from spacy.training import Example

    from ..scoring import score_nen

    resolve = generator.kb.resolve
    predicted = list(nlp.pipe((doc.text for doc in docs), batch_size=batch_size))

    def scored(ids_per_doc: Optional[List[List[str]]]) -> Dict[str, Any]:
        examples = []
        for pred, ref, ids in zip(predicted, docs, ids_per_doc or [None] * len(docs)):
            if ids is not None:
                pred = pred.copy()
                pred.ents = [Span(pred, e.start, e.end, label=e.label, kb_id=cid) for e, cid in zip(pred.ents, ids)]
            examples.append(Example(pred, ref))
        s = score_nen(examples, id_resolver=resolve)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items() if not k.endswith("per_type")}

    spans = [ent for doc in predicted for ent in doc.ents]
    sizes = [len(doc.ents) for doc in predicted]

    def per_doc(flat: List[str]) -> List[List[str]]:
        out, pos = [], 0
        for n in sizes:
            out.append(flat[pos : pos + n])
            pos += n
        return out

    rows: Dict[str, Any] = {"model": scored(None)}
    for name, linker in _linkers(generator, train_docs).items():
        ranked = linker(spans)
        if name == "ranker":
            for t in thresholds:
                rows[f"ranker@{t:g}"] = scored(per_doc([c[0][0] if c and c[0][1] >= t else "" for c in ranked]))
        else:
            rows[name] = scored(per_doc([c[0][0] if c else "" for c in ranked]))
    return rows


@benchmark_app.command("linking")
def benchmark_linking_cli(
    kb_dir: Path = typer.Argument(..., help="KB folder (`kb build`, with the ranker of `kb ranker` if trained)"),
    data: Path = typer.Option(..., "--data", help="The split to score (.spacy), e.g. corpus/bc5cdr/test.spacy"),
    train: Path = typer.Option(..., "--train", help="The TRAIN split (.spacy): seen/unseen concepts, the dictionary's strings"),
    output: Path = typer.Option(..., "--output", help="JSON file for the results"),
    model: Optional[str] = typer.Option(None, "--model", help="Also link this pipeline's own entities with each system"),
    thresholds: str = typer.Option("0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", "--thresholds", help="Ranker no-concept thresholds (with --model)"),
) -> None:
    """Linking accuracy on gold mentions, and each linker on a pipeline's own entities."""
    import json

    import spacy
    import srsly

    from ..kb.candidates import CandidateGenerator

    generator = CandidateGenerator.from_disk(kb_dir)
    nlp = spacy.load(model) if model else spacy.blank("en")
    docs = _docs(data, nlp.vocab)
    train_docs = _docs(train, nlp.vocab)
    result: Dict[str, Any] = {"kb": str(kb_dir), "data": str(data), "train": str(train),
                              "ranker": generator.ranker is not None,
                              "gold_mentions": gold_table(generator, docs, train_docs)}
    typer.echo(json.dumps(result["gold_mentions"]["counts"]))
    for name, groups in result["gold_mentions"]["accuracy"].items():
        typer.echo(f"{name}: " + ", ".join(f"{k} {v['acc@1']:.4f}/{v['acc@5']:.4f} (n={v['n']})" for k, v in groups.items()))
    if model:
        grid = [float(t) for t in thresholds.split(",") if t.strip()]
        result["model"] = model
        result["pipeline"] = pipeline_table(generator, nlp, docs, train_docs, grid)
        for name, s in result["pipeline"].items():
            typer.echo(f"{name}: mention P/R/F {s['nen_p']:.4f}/{s['nen_r']:.4f}/{s['nen_f']:.4f}  "
                       f"doc {s['nen_doc_p']:.4f}/{s['nen_doc_r']:.4f}/{s['nen_doc_f']:.4f}")
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, result)
    typer.echo(f"Wrote {output}")
