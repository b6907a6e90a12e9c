"""Annotate a stream of records with a pipeline, in chunks that are complete or absent.

Records are taken `chunk_size` at a time, in input order. A chunk's records
are cut into sections of at most `max_chars` characters (a 900k-character
full text is annotated piece by piece, never held whole in the pipeline),
run through `nlp.pipe` (in this process, or with `n_process` > 1 in a pool
of forked workers that each turn their docs into plain annotation dicts, so
the parent only merges and writes: spaCy's own `n_process` sends every Doc
back to be deserialized by the parent, which then became the bottleneck),
put back together with their offsets, and written to `part-NNNNN.<ext>.tmp`, renamed into place;
then a manifest `part-NNNNN.json` (records, first and last ID, entities, entities
per type) is written the same way. A chunk is done when its manifest exists, so a rerun
with the same output folder skips the records of the done chunks (checking
that the input still starts with them) and goes on after the last one.
The summary's counts add up: read = annotated + resumed + skipped
(empty texts are annotated, with no entities, and counted apart);
`entities_per_type` and `chunks` are the whole output's, earlier runs' chunks included.
"""
import gc
import itertools
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from .records import BadRecord, Record, split_sections
from .writers import OUTPUT_FORMATS, Annotated, chunk_entity_types, doc_annotations, merge_sections, write_chunk

Progress = Callable[[Dict[str, Any]], None]


def done_chunks(out_dir: Path) -> List[Dict[str, Any]]:
    """Manifests of the chunks already written, in order (stops at the first gap)."""
    out = []
    while (out_dir / f"part-{len(out):05d}.json").exists():
        out.append(json.loads((out_dir / f"part-{len(out):05d}.json").read_text(encoding="utf8")))
    return out


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def prepare_output(out_dir: Path, fmt: str) -> List[Dict[str, Any]]:
    """Create `out_dir` and return the manifests of its done chunks (checked against `fmt`)."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"Unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = done_chunks(out_dir)
    if previous and previous[0].get("format") != fmt:
        raise ValueError(f"{out_dir} holds {previous[0].get('format')} output; annotate into another folder")
    return previous


def annotate(
    nlp,
    records: Iterable[Record],
    out_dir: Path,
    *,
    fmt: str = "jsonl",
    chunk_size: int = 1000,
    n_process: int = 1,
    batch_size: int = 32,
    max_chars: int = 100_000,
    skipped: Optional[List[BadRecord]] = None,
    total: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Annotate `records` into `out_dir` on this machine; returns the summary (also in summary.json).

    skipped: the list the reader's `on_bad` appends to (with --skip-bad), so
        skips are counted and listed in skipped.jsonl.
    """
    previous = prepare_output(out_dir, fmt)
    counts: Counter = Counter()
    stream = iter(records)
    skipped = skipped if skipped is not None else []
    n_bad_before = len(skipped)
    _skip_done(stream, previous, counts)
    counts["resumed_malformed"] = len(skipped) - n_bad_before  # listed in skipped.jsonl by the earlier run

    workers = Workers(nlp, n_process, batch_size)

    def annotated() -> Iterator[Annotated]:
        # With workers, the next chunk is handed to them before this one is merged
        # and written, so that they do not wait for the writing.
        started = None
        while True:
            chunk = [r for _, r in zip(range(chunk_size), stream)]
            following = annotate_records(workers, chunk, max_chars, counts) if chunk else None
            if started is not None:
                yield from started
            if following is None:
                return
            started = following

    try:
        summary = write_annotated(annotated(), out_dir, fmt=fmt, chunk_size=chunk_size, previous=previous,
                                  counts=counts, skipped=skipped, total=total, progress=progress,
                                  backend={"n_process": n_process})
    finally:
        workers.close()
    summary["process_cpu_seconds"] = process_cpu_seconds()  # the workers are reaped now: theirs is in it
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary


def process_cpu_seconds() -> Dict[str, float]:
    """CPU time (user + system) of this process and of its reaped children (annotate's workers)
    since the process started: with the command's one run, where the cores went."""
    import resource

    def total(who: int) -> float:
        usage = resource.getrusage(who)
        return round(usage.ru_utime + usage.ru_stime, 3)

    return {"main": total(resource.RUSAGE_SELF), "workers": total(resource.RUSAGE_CHILDREN)}


_WORKER_NLP = None


def _init_worker(nlp) -> None:
    global _WORKER_NLP
    _WORKER_NLP = nlp


def _annotate_batch(batch: List[str]) -> List[Dict[str, Any]]:
    return [doc_annotations(doc) for doc in _WORKER_NLP.pipe(batch, batch_size=len(batch))]  # type: ignore[union-attr]


class Workers:
    """Texts in, `doc_annotations` out, in order: in this process, or with `n_process` > 1
    in a pool of worker processes holding `nlp`. The pool is forked (where the platform
    can; spawned elsewhere) after this process has annotated the first batch itself, so
    that the workers share the caches the pipeline fills on first use (the KB's per-type
    index, for one) instead of each building its own. Torch components set one thread
    in forked children (`ml/torch_wrapper.py`)."""

    def __init__(self, nlp, n_process: int = 1, batch_size: int = 32) -> None:
        self.nlp, self.n_process, self.batch_size = nlp, n_process, batch_size
        self.pool = None

    def start(self, texts: List[str]) -> Iterator[Dict[str, Any]]:
        """Hand `texts` to the workers now; iterate the result for their annotations, in order."""
        size = self.batch_size
        if self.n_process <= 1:
            return (doc_annotations(doc) for doc in self.nlp.pipe(texts, batch_size=size))
        first: List[Dict[str, Any]] = []
        if self.pool is None:
            head, texts = texts[:size], texts[size:]
            first = [doc_annotations(doc) for doc in self.nlp.pipe(head, batch_size=size)]
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            # The pipeline's objects are the children's too: frozen, the children's garbage
            # collector never walks them, so it never writes their headers and their pages
            # stay shared instead of being copied into every worker.
            # (`annotate` froze them after loading already; then they stay frozen here too.)
            frozen_before = gc.get_freeze_count() > 0
            gc.freeze()
            try:
                self.pool = context.Pool(self.n_process, initializer=_init_worker, initargs=(self.nlp,))
            finally:
                if not frozen_before:
                    gc.unfreeze()
        batches = self.pool.imap(_annotate_batch, [texts[i : i + size] for i in range(0, len(texts), size)])
        return itertools.chain(first, itertools.chain.from_iterable(batches))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def write_annotated(
    items: Iterator[Annotated],
    out_dir: Path,
    *,
    fmt: str,
    chunk_size: int,
    previous: List[Dict[str, Any]],
    counts: Counter,
    skipped: List[BadRecord],
    total: Optional[int] = None,
    progress: Optional[Progress] = None,
    backend: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Write annotated records in chunks after the `previous` ones, then the summary.

    Whoever produces `items` counts resumed (and malformed among them),
    empty and sectioned records in `counts` and appends the malformed records
    it meets to `skipped` while `items` is consumed.
    """
    resume = sum(m["records"] for m in previous)
    n_bad_seen = len(skipped)
    start = time.perf_counter()
    # when the first record arrives: what came before is start-up (a pool forked after the
    # first batch, Ray's actors each loading the pipeline), the rest is the steady rate
    first: List[float] = []

    def timed(stream: Iterator[Annotated]) -> Iterator[Annotated]:
        for item in stream:
            if not first:
                first.append(time.perf_counter())
            yield item

    items = timed(items)
    ext = OUTPUT_FORMATS[fmt]
    per_type: Counter = Counter()
    for i, manifest in enumerate(previous):
        if "entities_per_type" in manifest:
            per_type.update(manifest["entities_per_type"])
        else:  # a manifest from before they counted types: count its chunk
            per_type.update(chunk_entity_types(out_dir / f"part-{i:05d}{ext}", fmt))
    index = len(previous)
    while True:
        chunk = [item for _, item in zip(range(chunk_size), items)]
        if not chunk:
            break
        chunk_types = Counter(e["label"] for _, ann in chunk for e in ann["entities"])
        per_type.update(chunk_types)
        _atomic_write(out_dir / f"part-{index:05d}{ext}", lambda p: write_chunk(p, fmt, chunk))
        manifest = {"format": fmt, "records": len(chunk), "first_id": chunk[0][0].id, "last_id": chunk[-1][0].id,
                    "entities": sum(chunk_types.values()), "entities_per_type": dict(sorted(chunk_types.items()))}
        _atomic_write(out_dir / f"part-{index:05d}.json",
                      lambda p: p.write_text(json.dumps(manifest), encoding="utf8"))
        index += 1
        counts["annotated"] += len(chunk)
        if progress is not None:
            elapsed = time.perf_counter() - start
            progress({"documents": counts["annotated"] + resume, "total": total, "elapsed": elapsed,
                      "docs_per_s": counts["annotated"] / elapsed if elapsed else 0.0})
    bad = skipped[n_bad_seen:]
    if bad:
        with (out_dir / "skipped.jsonl").open("a", encoding="utf8") as f:
            for b in bad:
                f.write(json.dumps(b._asdict(), ensure_ascii=False) + "\n")
    elapsed = time.perf_counter() - start
    steady = start + elapsed - first[0] if first and counts["annotated"] > 1 else 0.0
    summary = {
        "read": counts["annotated"] + counts["resumed"] + len(bad) + counts["resumed_malformed"],
        "annotated": counts["annotated"],
        "resumed": counts["resumed"] + counts["resumed_malformed"],
        "skipped": {"malformed": len(bad)},
        "empty": counts["empty"],
        "sectioned": counts["sectioned"],
        "chunks": index,
        "entities_per_type": dict(sorted(per_type.items())),
        "seconds": round(elapsed, 2),
        "docs_per_s": round(counts["annotated"] / elapsed, 2) if elapsed else None,
        # the first record's wait, and the rate of the others after it
        "first_record_seconds": round(first[0] - start, 2) if first else None,
        "steady_docs_per_s": round((counts["annotated"] - 1) / steady, 2) if steady else None,
        **(backend or {}),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary


def _skip_done(stream: Iterator[Record], previous: List[Dict[str, Any]], counts: Counter) -> None:
    """Consume the records the done chunks hold, checking each chunk's first and last ID."""
    for i, manifest in enumerate(previous):
        records = [r for _, r in zip(range(manifest["records"]), stream)]
        if len(records) < manifest["records"] or records[0].id != manifest["first_id"] \
                or records[-1].id != manifest["last_id"]:
            raise ValueError(f"Chunk {i} of the output ({manifest['first_id']}..{manifest['last_id']}) does not "
                             "match the input: it changed since the first run (annotate into a new folder)")
        counts["resumed"] += len(records)


def annotate_records(workers: "Workers", chunk: List[Record], max_chars: int,
                     counts: Counter) -> Iterator[Annotated]:
    """(record, annotations) for each record, sectioned, in order; counts empty and sectioned ones.
    The chunk goes to the workers now, not when the result is first iterated."""
    pieces: List[Tuple[str, int]] = []
    n_sections = []
    for record in chunk:
        if not record.text.strip():
            counts["empty"] += 1
            n_sections.append(0)
            continue
        sections = split_sections(record.text, max_chars)
        counts["sectioned"] += len(sections) > 1
        n_sections.append(len(sections))
        pieces.extend((text, offset) for offset, text in sections)
    anns = workers.start([text for text, _ in pieces])
    offsets = iter(offset for _, offset in pieces)

    def merged() -> Iterator[Annotated]:
        for record, n in zip(chunk, n_sections):
            yield record, merge_sections([(next(offsets), ann) for _, ann in zip(range(n), anns)])

    return merged()
