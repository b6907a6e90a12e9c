"""`annotate --backend ray`: the same annotation on a Ray cluster.

* Ray Data reads the input shards (each file, or each text file of a folder)
  with the same readers as the local backend, in parallel: first to count
  their records (the ETA, and where a resumed run starts in each shard), then
  to stream them, in order, to the driver.
* A pool of `n_actors` Ray actors (`_Annotator`) each load the model once and
  annotate batches of records; the driver hands each batch to the least busy
  actor and takes the results back in input order. Ray restarts an actor that
  dies and retries its batches (`max_restarts`, `max_task_retries`), so every
  record comes back exactly once.
  The actors are plain Ray actors, not a Ray Data `map_batches` stage: Ray Data
  hands its actors their constructor arguments through the object store, which
  Ray (2.60) logs as an error for any actor that may restart (ray-project/ray#57733);
  ours get theirs (a model name or path, three numbers) by value.
* The driver writes the output with the local backend's writer
  (`run.write_annotated`): the same chunks, manifests, resume and summary,
  record for record the same output.

Ray is an extra: `pip install spacy-medlink[ray]`.
"""
import json
from collections import Counter, deque
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .records import BadRecord, Record, read_records
from .run import Progress, prepare_output, write_annotated
from .writers import Annotated

READ_CPUS = 0  # readers reserve no CPU, so they run beside actors that hold every CPU
READ_BLOCK_BYTES = 256 * 1024  # about a hundred abstracts per block: the driver gets records while a shard is read
BATCHES_PER_ACTOR = 2  # one annotated while the next waits: an actor never waits for the driver


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
    """A Ray actor: loads the pipeline once, annotates batches of records."""

    def __init__(self, model: str, max_chars: int, batch_size: int, fault: Optional[Dict[str, str]] = None) -> None:
        import gc

        import spacy

        self.nlp = spacy.load(model)
        gc.freeze()  # as the local command does: the collector leaves the loaded pipeline alone
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.fault = fault  # tests: {"id": ..., "flag": path}: die once on that record

    def annotate(self, records: List[Record]) -> Dict[str, Any]:
        """The records' annotations, in order, and how many were empty or sectioned."""
        from .run import Workers, annotate_records

        if self.fault is not None and any(r.id == self.fault["id"] for r in records):
            flag = Path(self.fault["flag"])
            if not flag.exists():
                flag.write_text("killed", encoding="utf8")
                import os

                os._exit(1)  # the worker process dies mid-batch
        counts: Counter = Counter()
        annotated = annotate_records(Workers(self.nlp, 1, self.batch_size), records, self.max_chars, counts)
        return {"annotations": [ann for _, ann in annotated], "empty": counts["empty"],
                "sectioned": counts["sectioned"]}


def _in_order(actors: List[Any], batches: Iterable[List[Record]],
              per_actor: int = BATCHES_PER_ACTOR) -> Iterator[Tuple[List[Record], Dict[str, Any]]]:
    """Each batch with its annotation, in input order. A batch goes to the actor with the
    fewest unfinished batches (at most `per_actor`), so one slow batch holds up no other actor."""
    import ray

    pending: Deque[Tuple[List[Record], Any]] = deque()  # (batch, result ref) in input order
    unfinished: Dict[Any, int] = {}  # result ref -> its actor's index
    load = [0] * len(actors)
    batches = iter(batches)
    more = True
    while True:
        while more and min(load) < per_actor:
            batch = next(batches, None)
            if batch is None:
                more = False
                break
            i = load.index(min(load))
            ref = actors[i].annotate.remote(batch)
            pending.append((batch, ref))
            unfinished[ref] = i
            load[i] += 1
        if not pending:
            return
        batch, ref = pending[0]
        if ref not in unfinished:
            pending.popleft()
            yield batch, ray.get(ref)
            continue
        done, _ = ray.wait(list(unfinished), num_returns=1)
        for ref in done:
            load[unfinished.pop(ref)] -= 1


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
    # A shard's records would come out as one block (the default target is 128 MiB): the
    # driver would get none of a file's records before all of them were read.
    ctx.target_max_block_size = min(ctx.target_max_block_size or READ_BLOCK_BYTES, READ_BLOCK_BYTES)
    previous = prepare_output(out_dir, fmt)
    # The actors load the model while the shards are counted.
    # Ray restarts a dead actor (its constructor runs again) and retries its batches.
    annotator = ray.remote(_Annotator).options(num_cpus=1, max_restarts=-1, max_task_retries=-1)
    actors = [annotator.remote(str(model), max_chars, batch_size, _fault) for _ in range(n_actors)]
    try:
        return _annotate_with(actors, inputs, out_dir, previous, input_format=input_format, fmt=fmt,
                              chunk_size=chunk_size, batch_size=batch_size, id_field=id_field, text_field=text_field,
                              skip_bad=skip_bad, progress=progress)
    finally:
        for actor in actors:
            ray.kill(actor)


def _annotate_with(actors: List[Any], inputs: Sequence[Path], out_dir: Path, previous: List[Dict[str, Any]], *,
                   input_format: Optional[str], fmt: str, chunk_size: int, batch_size: int, id_field: str,
                   text_field: str, skip_bad: bool, progress: Optional[Progress]) -> Dict[str, Any]:
    """`annotate_ray`'s reading, annotating with `actors` and writing."""
    import ray.data

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
    counts: Counter = Counter()
    skipped: List[BadRecord] = []

    def batches() -> Iterator[List[Record]]:
        """The records to annotate, `batch_size` at a time; malformed ones counted or listed."""
        batch: List[Record] = []
        for row in ds.iter_rows():
            if row["bad"]:
                if row["resumed"]:
                    counts["resumed_malformed"] += 1
                else:
                    skipped.append(BadRecord(row["source"], int(row["line"]), row["bad"]))
                continue
            batch.append(Record(row["id"], row["text"], row["source"], int(row["line"]),
                                tuple(tuple(p) for p in json.loads(row["passages"]))))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def annotated() -> Iterator[Annotated]:
        for batch, result in _in_order(actors, batches()):
            counts["empty"] += result["empty"]
            counts["sectioned"] += result["sectioned"]
            yield from zip(batch, result["annotations"])

    counts["resumed"] = resume
    return write_annotated(annotated(), out_dir, fmt=fmt, chunk_size=chunk_size, previous=previous, counts=counts,
                           skipped=skipped, total=total, progress=progress,
                           backend={"backend": "ray", "n_actors": len(actors)})
