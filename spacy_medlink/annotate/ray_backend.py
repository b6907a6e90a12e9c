"""`annotate --backend ray`: the same annotation on a Ray cluster (Ray Data, no scheduler of ours).

* Ray Data reads the input shards (each file, or each text file of a folder)
  with the same readers as the local backend, in parallel: first to count
  their records (the ETA, and where a resumed run starts in each shard), then
  to stream them.
* `map_batches` runs the pipeline in a pool of `n_actors` actors that each
  load the model once (`_Annotator`); Ray restarts an actor that dies and
  retries its batches, and order is preserved, so every record comes back
  exactly once and in input order.
* The driver writes the output with the local backend's writer
  (`run.write_annotated`): the same chunks, manifests, resume and summary,
  record for record the same output.

Ray is an extra: `pip install spacy-medlink[ray]`.
"""
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from .records import BadRecord, Record, read_records
from .run import Progress, prepare_output, write_annotated
from .writers import Annotated

READ_CPUS = 0  # readers reserve no CPU, so they run beside actors that hold every CPU
READ_BLOCK_BYTES = 256 * 1024  # about a hundred abstracts per block: work for every actor


def _shards(inputs: Sequence[Path]) -> List[str]:
    out: List[str] = []
    for path in inputs:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No input at {path}")
        out.extend(str(p) for p in sorted(path.rglob("*.txt"))) if path.is_dir() else out.append(str(path))
    return out


def _count_shard(row: Dict[str, Any]) -> Dict[str, Any]:
    n = sum(1 for _ in read_records([Path(row["path"])], row["fmt"], id_field=row["id_field"],
                                    text_field=row["text_field"], on_bad=lambda b: None))
    return {**row, "records": n}


def _read_shard(row: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """The records of one shard after its first `skip` ones, and its malformed records (if skip_bad)."""
    bad: List[BadRecord] = []
    skip = row["skip"]
    records = read_records([Path(row["path"])], row["fmt"], id_field=row["id_field"], text_field=row["text_field"],
                           on_bad=bad.append if row["skip_bad"] else None)
    for record in records:
        while bad:
            b = bad.pop(0)
            yield {"id": "", "text": "", "source": b.source, "line": b.line, "passages": "[]",
                   "bad": b.reason, "resumed": skip > 0}
        if skip > 0:
            skip -= 1
            continue
        yield {"id": record.id, "text": record.text, "source": record.source, "line": record.line,
               "passages": json.dumps(record.passages), "bad": "", "resumed": False}
    for b in bad:
        yield {"id": "", "text": "", "source": b.source, "line": b.line, "passages": "[]", "bad": b.reason,
               "resumed": skip > 0}


class _Annotator:
    """A Ray actor: loads the pipeline once, annotates batches of rows."""

    def __init__(self, model: str, max_chars: int, batch_size: int, fault: Optional[Dict[str, str]] = None) -> None:
        import gc

        import spacy

        self.nlp = spacy.load(model)
        gc.freeze()  # as the local command does: the collector leaves the loaded pipeline alone
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.fault = fault  # tests: {"id": ..., "flag": path}: die once on that record

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        from .run import Workers, annotate_records

        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        if self.fault is not None and any(r["id"] == self.fault["id"] for r in rows):
            flag = Path(self.fault["flag"])
            if not flag.exists():
                flag.write_text("killed", encoding="utf8")
                import os

                os._exit(1)  # the worker process dies mid-batch
        good = [i for i, r in enumerate(rows) if not r["bad"]]
        records = [Record(rows[i]["id"], rows[i]["text"], rows[i]["source"], int(rows[i]["line"]),
                          tuple(tuple(p) for p in json.loads(rows[i]["passages"]))) for i in good]
        counts: Counter = Counter()
        annotated = annotate_records(Workers(self.nlp, 1, self.batch_size), records, self.max_chars, counts)
        out = [""] * len(rows)
        for i, (_, ann) in zip(good, annotated):
            out[i] = json.dumps(ann)
        return {**batch, "annotation": out, "empty": [counts["empty"]] + [0] * (len(rows) - 1),
                "sectioned": [counts["sectioned"]] + [0] * (len(rows) - 1)}


def annotate_ray(
    model: str,
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    input_format: Optional[str] = None,
    fmt: str = "jsonl",
    chunk_size: int = 1000,
    n_actors: int = 1,
    batch_size: int = 32,
    max_chars: int = 100_000,
    id_field: str = "id",
    text_field: str = "text",
    skip_bad: bool = False,
    address: Optional[str] = None,
    progress: Optional[Progress] = None,
    _fault: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """Annotate `inputs` into `out_dir` with a pool of Ray actors; the summary as the local backend's."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError("--backend ray needs Ray Data: pip install 'spacy-medlink[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    # A shard's records would come out as one block (the default target is 128 MiB) and an
    # actor takes whole blocks: one actor would annotate a whole file while the others wait.
    # (`repartition` would split them too, but its tasks need a CPU the actors hold.)
    ctx.target_max_block_size = min(ctx.target_max_block_size or READ_BLOCK_BYTES, READ_BLOCK_BYTES)
    previous = prepare_output(out_dir, fmt)
    base = {"fmt": input_format, "id_field": id_field, "text_field": text_field, "skip_bad": skip_bad}
    shards = [{"path": p, **base} for p in _shards(inputs)]
    # reading reserves no CPU: with as many actors as CPUs, readers must still run
    counted = ray.data.from_items(shards, override_num_blocks=max(len(shards), 1)).map(
        _count_shard, num_cpus=READ_CPUS).take_all()
    by_path = {row["path"]: row["records"] for row in counted}
    resume = sum(m["records"] for m in previous)
    total = sum(by_path.values())
    items, left = [], resume
    for shard in shards:
        n = by_path[shard["path"]]
        items.append({**shard, "skip": min(left, n)})
        left -= min(left, n)
    if left:
        raise ValueError(f"{out_dir} holds {resume} annotated records, more than the input has: it changed")
    ds = ray.data.from_items(items, override_num_blocks=max(len(items), 1)).flat_map(_read_shard, num_cpus=READ_CPUS)
    ds = ds.map_batches(_Annotator, fn_constructor_kwargs={"model": str(model), "max_chars": max_chars,
                                                          "batch_size": batch_size, "fault": _fault},
                        concurrency=n_actors, batch_size=batch_size, num_cpus=1, batch_format="default",
                        max_restarts=-1, max_task_retries=-1)
    counts: Counter = Counter()
    skipped: List[BadRecord] = []

    def annotated() -> Iterator[Annotated]:
        for row in ds.iter_rows():
            counts["empty"] += int(row["empty"])
            counts["sectioned"] += int(row["sectioned"])
            if row["bad"]:
                if row["resumed"]:
                    counts["resumed_malformed"] += 1
                else:
                    skipped.append(BadRecord(row["source"], int(row["line"]), row["bad"]))
                continue
            record = Record(row["id"], row["text"], row["source"], int(row["line"]),
                            tuple(tuple(p) for p in json.loads(row["passages"])))
            yield record, json.loads(row["annotation"])

    counts["resumed"] = resume
    return write_annotated(annotated(), out_dir, fmt=fmt, chunk_size=chunk_size, previous=previous, counts=counts,
                           skipped=skipped, total=total, progress=progress,
                           backend={"backend": "ray", "n_actors": n_actors})
