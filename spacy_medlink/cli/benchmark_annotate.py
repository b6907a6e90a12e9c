"""`python -m spacy_medlink benchmark annotate`: documents/s and memory of `annotate`, local and Ray, in one run.

Each setting runs `annotate` in a fresh subprocess on the same inputs (the
PubTator file as given, and the same texts as a gzipped PubmedArticleSet),
while a sampler thread reads the resident memory of that process and of every
process it started (annotate's workers, Ray's actors) every 0.2 s, and their
unique memory every 2 s (reading it costs CPU: sampled every 0.2 s it took a
good part of one of this machine's two cores from the workers it measured). Reported per
setting: documents/s, words/s, wall time, the peak unique memory (USS) of
the whole tree, and each worker's peak RSS and USS (a forked worker's RSS
counts pages it shares with its parent; USS is what it adds). The ratios against one local
process are what the goals speak of (2 processes >= 1.8x; Ray <= 15% slower
than local at the same parallelism), over the whole run and, as
`steady_docs_per_s`, after each run's first record: Ray's actors load the
pipeline after the run has started, local workers are forked from a process
that holds it already, and on a long job only the steady rate counts.
"""
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

import typer

from ._app import benchmark_app

SETTINGS = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]
USS_EVERY = 10  # samples: unique memory every 2 s, so that sampling takes little of the CPU it measures


def pubmed_sample(pubtator: Path, out: Path) -> int:
    """The PubTator file's titles and abstracts as a PubMed baseline-shaped file; returns the count."""
    from ..annotate.records import read_records

    n = 0
    with gzip.open(out, "wt", encoding="utf8") as f:
        f.write("<?xml version='1.0' encoding='utf-8'?>\n<PubmedArticleSet>\n")
        for r in read_records([pubtator], "pubtator"):
            title_end = r.passages[1][1] - 1 if len(r.passages) > 1 else len(r.text)
            title, abstract = r.text[:title_end], r.text[title_end + 1:]
            f.write(f"<PubmedArticle><MedlineCitation><PMID>{escape(r.id)}</PMID><Article><ArticleTitle>{escape(title)}"
                    f"</ArticleTitle><Abstract><AbstractText>{escape(abstract)}</AbstractText></Abstract></Article>"
                    "</MedlineCitation></PubmedArticle>\n")
            n += 1
        f.write("</PubmedArticleSet>\n")
    return n


def repeat_pubtator(src: Path, dst: Path, n: int) -> Path:
    """`src`'s documents `n` times over, the k-th copy's IDs suffixed "rK" (distinct records)."""
    blocks = [b for b in src.read_text(encoding="utf8").split("\n\n") if b.strip()]
    with dst.open("w", encoding="utf8") as f:
        for k in range(n):
            for block in blocks:
                f.write("\n".join(re.sub(r"^([^|\t]+)", rf"\1r{k}", line) for line in block.splitlines()) + "\n\n")
    return dst


def _tree_sample(pid: int, unique: bool = True) -> Dict[int, Tuple[float, float, float]]:
    """(RSS, USS, CPU seconds) of a process and of each descendant still there, in one walk of
    the tree. RSS and USS in MB (USS 0 unless `unique`); CPU is user + system so far. A forked
    worker's RSS counts the pages it still shares with its parent; USS (unique set
    size) is what each extra worker really adds. USS reads every page mapping
    (/proc/PID/smaps): 50-150 ms per GB-sized process, CPU the workers measured would lose."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for p in procs:
        try:
            cpu = sum(p.cpu_times()[:2])
            if unique:
                info = p.memory_full_info()
                out[p.pid] = (info.rss / 2**20, info.uss / 2**20, cpu)
            else:
                out[p.pid] = (p.memory_info().rss / 2**20, 0.0, cpu)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def run_setting(model: str, data: Path, backend: str, workers: int, batch_size: int, words: int,
                threads: Optional[int] = None) -> Dict[str, Any]:
    """One `annotate` run in a subprocess. `threads`: its OMP_NUM_THREADS (torch's thread count in
    the main process; forked local workers run one torch thread each whatever it is)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "spacy_medlink", "annotate", model, str(data), "--output", str(Path(tmp) / "out"),
               "--no-count", "--batch-size", str(batch_size), "--backend", backend]
        cmd += ["--n-actors", str(workers)] if backend == "ray" else ["--n-process", str(workers)]
        env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        peaks: Dict[int, float] = {}
        unique: Dict[int, float] = {}
        cpu: Dict[int, float] = {}
        total_peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            # RSS every 0.2 s (cheap); USS every USS_EVERY-th sample (loaded memory is flat);
            # each process's CPU time as last seen (a worker's last 0.2 s may be missed)
            n = 0
            while not done.is_set():
                full = n % USS_EVERY == 0
                mem = _tree_sample(proc.pid, unique=full)
                for pid, (rss, uss, seconds) in mem.items():
                    cpu[pid] = max(cpu.get(pid, 0.0), seconds)
                    peaks[pid] = max(peaks.get(pid, 0.0), rss)
                    if full:
                        unique[pid] = max(unique.get(pid, 0.0), uss)
                if full:
                    total_peak[0] = max(total_peak[0], sum(uss for _, uss, _ in mem.values()))
                n += 1
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, err = proc.communicate()
        reaped_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise RuntimeError(f"annotate failed ({backend}, {workers}):\n{err[-2000:]}")
        summary = json.loads((Path(tmp) / "out" / "summary.json").read_text())
    children = sorted((mb for pid, mb in peaks.items() if pid != proc.pid), reverse=True)
    children_uss = sorted((mb for pid, mb in unique.items() if pid != proc.pid), reverse=True)
    # The whole tree's CPU time is what this process reaped with it; the local backend reports
    # its own and its reaped workers' apart (summary's process_cpu_seconds). Ray's actors and
    # daemons are not annotate's to reap: for them the samples count.
    tree = sum(getattr(reaped_after, f) - getattr(reaped, f) for f in ("ru_utime", "ru_stime"))
    own = summary.get("process_cpu_seconds")
    if own is not None:
        cpu_others = own["workers"]
        cpu_main = max(own["main"], tree - cpu_others)  # with its exit after the summary
    else:
        cpu_main = cpu.get(proc.pid, 0.0)
        cpu_others = max(tree - cpu_main, sum(v for pid, v in cpu.items() if pid != proc.pid))
    return {"backend": backend, "workers": workers, "threads": threads or "default",
            "documents": summary["annotated"], "wall_seconds": round(seconds, 1),
            # where the cores went: the main process (reading, merging, writing; with one process,
            # all of it) and the processes it started; cores_used = all of it over the wall time
            "cpu_seconds_main": round(cpu_main, 2), "cpu_seconds_workers": round(cpu_others, 2),
            "cores_used": round((cpu_main + cpu_others) / seconds, 2),
            "annotate_seconds": summary["seconds"], "docs_per_s": round(summary["annotated"] / summary["seconds"], 2),
            "words_per_s": round(words / summary["seconds"], 1),
            "first_record_seconds": summary.get("first_record_seconds"), "steady_docs_per_s": summary.get("steady_docs_per_s"),
            "peak_uss_tree_mb": round(total_peak[0], 1),
            "peak_rss_main_mb": round(peaks.get(proc.pid, 0.0), 1),
            "peak_rss_workers_mb": [round(mb, 1) for mb in children[:8]],
            "peak_uss_workers_mb": [round(mb, 1) for mb in children_uss[:8]]}


def parse_setting(text: str) -> Tuple[str, int, Optional[int]]:
    """"local:2" -> ("local", 2, None); "local:1:1" -> ("local", 1, 1)."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or parts[0] not in ("local", "ray") or not all(p.isdigit() for p in parts[1:]):
        raise typer.BadParameter(f"{text!r}: expected BACKEND:WORKERS[:THREADS] with BACKEND local or ray")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else None


@benchmark_app.command("annotate")
def benchmark_annotate_cli(
    model: str = typer.Argument(..., help="Pipeline (path or package name)"),
    data: Path = typer.Option(..., "--data", help="A PubTator file, e.g. assets/bc5cdr/CDR_TestSet.PubTator.txt"),
    output: Path = typer.Option(Path("metrics/annotate/benchmark_annotate.json"), "--output"),
    batch_size: int = typer.Option(32, "--batch-size"),
    settings: Optional[str] = typer.Option(None, "--settings", help="Comma-separated BACKEND:WORKERS[:THREADS] (default local:1,local:2,ray:1,ray:2); THREADS sets the run's OMP_NUM_THREADS, e.g. local:1:1 for one process on one core"),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Annotate the texts this many times (as distinct records), so that start-up costs weigh less"),
) -> None:
    """Documents/s, words/s and resident memory of annotate: 1 vs 2 local processes, Ray with 1 and 2 actors."""
    from ..annotate.records import read_records

    data_arg = data
    chosen = [parse_setting(s) for s in settings.split(",")] if settings else [(b, w, None) for b, w in SETTINGS]
    records = list(read_records([data], "pubtator"))
    results: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if repeat > 1:
            data = repeat_pubtator(data, Path(tmp) / "repeated.pubtator", repeat)
            records = list(read_records([data], "pubtator"))
        words = sum(len(r.text.split()) for r in records)
        sample = Path(tmp) / "pubmed_sample.xml.gz"
        pubmed_sample(data, sample)
        for name, path in (("pubtator", data), ("pubmed-xml", sample)):
            for backend, workers, threads in chosen:
                row = {"input": name, **run_setting(model, path, backend, workers, batch_size, words, threads)}
                typer.echo(json.dumps(row))
                results.append(row)
    for name in ("pubtator", "pubmed-xml"):
        ones = [r for r in results if r["input"] == name and r["backend"] == "local" and r["workers"] == 1]
        base = next(iter(ones), None)
        for r in results:
            if base and r["input"] == name:
                r["speedup_vs_local_1"] = round(r["docs_per_s"] / base["docs_per_s"], 3)
                for one in ones[1:]:  # against each other one-process variant (local:1:1: one core)
                    r[f"speedup_vs_local_1_threads_{one['threads']}"] = round(r["docs_per_s"] / one["docs_per_s"], 3)
                same = next((x for x in results if x["input"] == name and x["backend"] == "local"
                             and x["workers"] == r["workers"]), None)
                if r["backend"] == "ray" and same:
                    r["ray_overhead_vs_local"] = round(1 - r["docs_per_s"] / same["docs_per_s"], 3)
                    # after each backend's first record: start-up (actors loading the pipeline) left out
                    if r["steady_docs_per_s"] and same["steady_docs_per_s"]:
                        r["ray_steady_overhead_vs_local"] = round(1 - r["steady_docs_per_s"] / same["steady_docs_per_s"], 3)
    report = {"model": model, "data": str(data_arg), "repeat": repeat, "documents": len(records), "words": words,
              "batch_size": batch_size, "results": results}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf8")
    typer.echo(f"Wrote {output}")
