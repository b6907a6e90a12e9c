"""`benchmark kb`: our candidate generator beside scispacy's, and (`--build`) the cost of
building KBs and their index at real sizes.

`--build` writes synthetic MeSH XML and UMLS RRF files of the official formats
and the real files' sizes (kb/synthetic.py), reads each with kb/sources'
readers in a process of its own (peak RSS, seconds, the RSS curve as concepts
are added), reads each again into a KB that keeps nothing (the parse's own
memory, which a streaming reader keeps flat as the file grows), builds our
candidate index on each KB, and times scispacy's index and ours on the same
concepts in the same run.

scispacy's candidate generator on a ConceptKB, for the KB benchmark:

scispacy builds a char-3-gram TF-IDF (min_df=10) and an nmslib HNSW index
(M=100, efConstruction=2000) over every alias. Its `create_tfidf_ann_index`
refuses to run on scipy>=1.11 (`scipy_supports_sparse_float16`) because it
*saves* the vectors as float16, which scipy.sparse no longer supports, and it
hard-codes its HNSW parameters. `build_index` runs the same steps in float32
and caches the pieces without pickle: the aliases (JSON), the fitted
vocabulary and idf (JSON + .npy), the float32 vectors (.npz) and the nmslib
index (its own binary format). Loading rebuilds the vectorizer from them and
reattaches the vectors to the index, as scispacy's own loader does.
"""
import json
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import scipy.sparse

from ..kb.concept_kb import ConceptKB

FILES = ("aliases.json", "tfidf_vocab.json", "tfidf_idf.npy", "tfidf_vectors.npz", "nmslib_index.bin")


def scispacy_kb(kb: ConceptKB, max_concepts: Optional[int] = None):
    """A `scispacy.linking_utils.KnowledgeBase` with the same concepts and names."""
    from scispacy.linking_utils import Entity, KnowledgeBase

    def entities() -> Iterator[Entity]:
        for i, c in enumerate(kb):
            if max_concepts is not None and i >= max_concepts:
                break
            yield Entity(c.concept_id, c.name, list(c.synonyms), list(c.types))

    return KnowledgeBase(entities())


# scispacy's create_tfidf_ann_index settings (hard-coded there).
SCISPACY_M = 100
SCISPACY_EF_CONSTRUCTION = 2000


def build_index(
    sci_kb,
    out_dir: Union[str, Path],
    m: int = SCISPACY_M,
    ef_construction: int = SCISPACY_EF_CONSTRUCTION,
    threads: int = 2,
) -> Tuple[float, int]:
    """Build scispacy's TF-IDF + nmslib index for `sci_kb` into `out_dir`; returns (seconds, aliases).

    The steps of `scispacy.candidate_generation.create_tfidf_ann_index`
    (char_wb 3-grams, min_df=10, empty vectors removed, HNSW over
    cosinesimil_sparse), with the HNSW build parameters exposed: with
    scispacy's M=100, efConstruction=2000 an 800k-alias index takes hours on
    2 cores (measured: 281 s for 33k aliases).
    """
    import nmslib
    from sklearn.feature_extraction.text import TfidfVectorizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    aliases = list(sci_kb.alias_to_cuis.keys())
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=10, dtype=numpy.float32)
    vectors = vectorizer.fit_transform(aliases)
    nonempty = numpy.asarray(vectors.sum(axis=1) != 0).reshape(-1)
    aliases = [a for a, keep in zip(aliases, nonempty) if keep]
    vectors = vectors[nonempty].astype(numpy.float32).tocsr()
    fit_seconds = time.perf_counter() - start
    ann_index = nmslib.init(method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR)
    ann_index.addDataPointBatch(vectors)
    params = {"M": m, "indexThreadQty": threads, "efConstruction": ef_construction, "post": 0}
    ann_index.createIndex(params, print_progress=True)
    seconds = time.perf_counter() - start
    (out_dir / "aliases.json").write_text(json.dumps(aliases), encoding="utf8")
    vocab = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    (out_dir / "tfidf_vocab.json").write_text(json.dumps(vocab), encoding="utf8")
    numpy.save(out_dir / "tfidf_idf.npy", vectorizer.idf_, allow_pickle=False)
    scipy.sparse.save_npz(out_dir / "tfidf_vectors.npz", vectors)
    ann_index.saveIndex(str(out_dir / "nmslib_index.bin"), save_data=False)
    info = {"seconds": seconds, "fit_tfidf_seconds": fit_seconds, "aliases": len(aliases),
            "aliases_empty_removed": int((~nonempty).sum()), "hnsw": params}
    (out_dir / "build.json").write_text(json.dumps(info, indent=2))
    return seconds, len(aliases)


def load_generator(sci_kb, index_dir: Union[str, Path], ef_search: int = 200):
    """scispacy `CandidateGenerator` over a cached index (vectorizer rebuilt, no pickle)."""
    import nmslib
    from scispacy.candidate_generation import CandidateGenerator
    from sklearn.feature_extraction.text import TfidfVectorizer

    index_dir = Path(index_dir)
    aliases: List[str] = json.loads((index_dir / "aliases.json").read_text(encoding="utf8"))
    # The same settings create_tfidf_ann_index fits with.
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=10, dtype=numpy.float32)
    vectorizer.vocabulary_ = json.loads((index_dir / "tfidf_vocab.json").read_text(encoding="utf8"))
    vectorizer.idf_ = numpy.load(index_dir / "tfidf_idf.npy", allow_pickle=False)
    vectors = scipy.sparse.load_npz(index_dir / "tfidf_vectors.npz").astype(numpy.float32)
    ann_index = nmslib.init(method="hnsw", space="cosinesimil_sparse", data_type=nmslib.DataType.SPARSE_VECTOR)
    ann_index.addDataPointBatch(vectors)
    ann_index.loadIndex(str(index_dir / "nmslib_index.bin"))
    ann_index.setQueryTimeParams({"efSearch": ef_search})
    return CandidateGenerator(ann_index=ann_index, tfidf_vectorizer=vectorizer, ann_concept_aliases_list=aliases,
                              kb=sci_kb)


def is_built(index_dir: Union[str, Path]) -> bool:
    return all((Path(index_dir) / f).exists() for f in FILES)


# -- the benchmark command ------------------------------------------------------------

K = 10
SCISPACY_NEIGHBOURS = 30  # scispacy's EntityLinker default k (aliases, before grouping by concept)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def collect_mentions(corpora: List[Tuple[str, Path]], kb: ConceptKB) -> Tuple[list, dict]:
    """Gold mentions with their doc's abbreviation expansion, plus exclusion counts.

    A mention counts if it has exactly one gold ID; composite (several IDs)
    and nil mentions are excluded and counted. Gold IDs the KB lacks stay in
    (they are misses for every system) and are counted.
    """
    from ..corpora.pubtator import LABEL_MAPS, read_pubtator
    from ..corpora.report import ConversionReport
    from ..kb.abbreviations import abbreviation_map
    from ..ids import normalize_kb_id, split_kb_id
    from ..tokenizer import biomed_nlp

    nlp = biomed_nlp()
    mentions = []
    counts: dict = {}
    for name, path in corpora:
        report = ConversionReport(source=str(path))
        label_map = LABEL_MAPS.get(name.split("_")[0])
        c = counts.setdefault(name, {"mentions": 0, "excluded composite": 0, "excluded nil": 0,
                                     "gold ID not in KB": 0, "evaluated": 0, "with long form": 0})
        for doc in read_pubtator(path, nlp, report, label_map=label_map):
            abbrevs = abbreviation_map(doc)
            for span in doc.spans["mentions"]:
                c["mentions"] += 1
                atoms = split_kb_id(normalize_kb_id(span.kb_id_)[0])
                if not atoms:
                    c["excluded nil"] += 1
                    continue
                if len(atoms) > 1:
                    c["excluded composite"] += 1
                    continue
                gold = kb.resolve(next(iter(atoms)))
                if gold not in kb:
                    c["gold ID not in KB"] += 1
                long_form = abbrevs.get(span.text)
                c["with long form"] += long_form is not None
                c["evaluated"] += 1
                mentions.append({"corpus": name, "text": span.text, "type": span.label_, "gold": gold,
                                 "long_form": long_form})
        c["reader"] = report.to_dict()["dropped"]
    return mentions, counts


def _recall(mentions: list, ranked: List[List[str]], resolve) -> dict:
    out: dict = {}
    for m, ids in zip(mentions, ranked):
        ids = [resolve(i) for i in ids]
        for key in (m["corpus"], f"{m['corpus']}/{m['type']}"):
            e = out.setdefault(key, {"n": 0, "hit@1": 0, "hit@10": 0})
            e["n"] += 1
            e["hit@1"] += bool(ids) and ids[0] == m["gold"]
            e["hit@10"] += m["gold"] in ids[:K]
    for e in out.values():
        e["recall@1"] = round(e["hit@1"] / e["n"], 4)
        e["recall@10"] = round(e["hit@10"] / e["n"], 4)
    return dict(sorted(out.items()))


def _merge(first: List[str], second: List[str]) -> List[str]:
    """Long-form candidates, then short-form ones not already there."""
    seen = set(first)
    return (first + [c for c in second if c not in seen])[:K]


def _run_medlink(kb_dir: Path, mentions: list, n_threads: int) -> dict:
    from ..kb.candidates import CandidateGenerator

    base = rss_mb()
    start = time.perf_counter()
    gen = CandidateGenerator.from_disk(kb_dir, n_threads=n_threads)
    load = time.perf_counter() - start
    texts = [m["text"] for m in mentions]
    types = [m["type"] for m in mentions]
    longs = [m["long_form"] or m["text"] for m in mentions]
    gen(texts[:50], k=K, types=types[:50])  # per-type index slices are made on first use
    result: dict = {"load_seconds": round(load, 3), "rss_after_imports_mb": round(base, 1)}
    runs = {}
    gen.dedupe = False  # every mention searched, as scispacy does
    start = time.perf_counter()
    typed = gen(texts, k=K, types=types)
    runs["typed, one batch"] = time.perf_counter() - start
    start = time.perf_counter()
    typed_long = gen(longs, k=K, types=types)
    runs["typed, one batch of long forms (abbreviations expanded)"] = time.perf_counter() - start
    start = time.perf_counter()
    untyped = gen(texts, k=K)
    runs["untyped, one batch"] = time.perf_counter() - start
    untyped_long = gen(longs, k=K)
    gen.dedupe = True
    start = time.perf_counter()
    assert gen(texts, k=K, types=types) == typed
    runs["typed, one batch, repeated strings searched once (dedupe)"] = time.perf_counter() - start
    ids = lambda res: [[c.concept_id for c in cands] for cands in res]  # noqa: E731
    settings = {
        "typed, abbreviations": [_merge(a, b) for a, b in zip(ids(typed_long), ids(typed))],
        "typed, no abbreviations": ids(typed),
        "untyped, abbreviations": [_merge(a, b) for a, b in zip(ids(untyped_long), ids(untyped))],
        "untyped, no abbreviations": ids(untyped),
    }
    result["recall"] = {name: _recall(mentions, ranked, gen.kb.resolve) for name, ranked in settings.items()}
    result["mentions_per_second"] = {name: round(len(mentions) / s, 1) for name, s in runs.items()}
    # A linker calls once per document: batches of 20 mentions, across which
    # only the cache of repeated strings can help.
    gen.dedupe = False
    for cache_size in (0, 100_000):
        gen.cache_size = cache_size
        gen.clear_cache()
        start = time.perf_counter()
        for i in range(0, len(texts), 20):
            gen(texts[i : i + 20], k=K, types=types[i : i + 20])
        seconds = time.perf_counter() - start
        label = "typed, batches of 20, " + ("cache of repeated strings across calls (starts empty)" if cache_size
                                           else "no cache")
        result["mentions_per_second"][label] = round(len(mentions) / seconds, 1)
    result["distinct_mention_strings"] = len(set(zip(texts, types)))
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["n_threads"] = n_threads
    return result


def _run_scispacy(kb_dir: Path, index_dir: Path, mentions: list) -> dict:
    base = rss_mb()
    start = time.perf_counter()
    kb = ConceptKB.load(kb_dir)
    sci_kb = scispacy_kb(kb)
    gen = load_generator(sci_kb, index_dir)
    load = time.perf_counter() - start
    texts = [m["text"] for m in mentions]
    longs = [m["long_form"] or m["text"] for m in mentions]
    gen(texts[:50], SCISPACY_NEIGHBOURS)

    def ranked(res) -> List[List[str]]:
        # as scispacy's EntityLinker: a concept's score is its best alias similarity
        return [[c.concept_id for c in sorted(cands, key=lambda c: -max(c.similarities))][:K] for cands in res]

    start = time.perf_counter()
    plain = ranked(gen(texts, SCISPACY_NEIGHBOURS))
    seconds = time.perf_counter() - start
    long = ranked(gen(longs, SCISPACY_NEIGHBOURS))
    settings = {
        "abbreviations": [_merge(a, b) for a, b in zip(long, plain)],
        "no abbreviations": plain,
    }
    build = json.loads((index_dir / "build.json").read_text())
    return {
        "load_seconds": round(load, 3),
        "rss_after_imports_mb": round(base, 1),
        "build": build,
        "recall": {name: _recall(mentions, r, kb.resolve) for name, r in settings.items()},
        "mentions_per_second": {"untyped, one batch (scispacy has no type filter)": round(len(mentions) / seconds, 1)},
        "neighbours_k": SCISPACY_NEIGHBOURS,
        "ef_search": 200,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "n_threads": "all cores (nmslib knnQueryBatch default)",
    }


def _run_build(kb_dir: Path) -> dict:
    from ..kb.candidates import CandidateGenerator

    kb = ConceptKB.load(kb_dir)
    start = time.perf_counter()
    gen = CandidateGenerator(kb)
    seconds = time.perf_counter() - start
    return {"index_build_seconds": round(seconds, 1), "names": len(gen.keys), "cfg": gen.cfg,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def _subprocess(args: List[str]) -> dict:
    """Run one system in a fresh interpreter, so peak RSS is its own."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "spacy_medlink.cli.benchmark_kb", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker(argv: List[str]) -> None:
    system, kb_dir = argv[0], Path(argv[1])
    if system == "build-stage":
        _build_stage(json.loads(Path(argv[1]).read_text(encoding="utf8")))
        return
    if system == "build":
        print(json.dumps(_run_build(kb_dir)))
        return
    mentions = json.loads(Path(argv[2]).read_text(encoding="utf8"))
    if system == "medlink":
        print(json.dumps(_run_medlink(kb_dir, mentions, int(argv[3]))))
    elif system == "scispacy":
        print(json.dumps(_run_scispacy(kb_dir, Path(argv[3]), mentions)))
    else:
        raise ValueError(system)


# -- the KB build benchmark (`benchmark kb --build`) ---------------------------------------
#
# Each reader builds its KB in a process of its own, so that the peak RSS
# measured (os.wait4's ru_maxrss for that child) is the reader's alone; a
# watcher samples the child's RSS, kills it over `max_rss_mib` and keeps its
# curve. A second pass of each reader adds into a KB that keeps nothing: its
# peak is the parse alone, which stays flat as the file grows when the reader
# streams, while the first pass grows with the KB.

BUILD_SOURCES = ("mesh", "umls")
RSS_POINTS = 40  # points kept of each RSS curve


def _vm_rss_mib(pid: Union[int, str] = "self") -> Optional[float]:
    """Resident set size from /proc; None once the process has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _TracedKB(ConceptKB):
    """A ConceptKB that writes its RSS every `every` concepts added to `trace`, one JSON line each
    and flushed, so that a stage killed for its memory still leaves its curve. With `keep=False`
    it keeps nothing, so that a reader's own memory shows apart from the KB's."""

    def __init__(self, trace: Path, every: int, keep: bool = True) -> None:
        super().__init__()
        self.keep = keep
        self.added = 0
        self.every = max(1, every)
        self._trace = open(trace, "a", encoding="utf8")
        self._start = time.perf_counter()

    def add(self, concept) -> None:  # type: ignore[override]
        self.added += 1
        if self.keep:
            super().add(concept)
        if self.added % self.every == 0:
            self.sample()

    def add_synonym(self, concept_id: str, name: str, source: str) -> str:
        return super().add_synonym(concept_id, name, source) if self.keep else concept_id

    def sample(self) -> None:
        point = {"added": self.added, "concepts": len(self), "seconds": round(time.perf_counter() - self._start, 2),
                 "rss_mib": round(_vm_rss_mib() or 0.0, 1)}
        self._trace.write(json.dumps(point) + "\n")
        self._trace.flush()


def _read_source(source: str, paths: Dict[str, str], kb: ConceptKB,
                 umls_types: Sequence[str] = ()) -> Tuple[ConceptKB, Dict[str, dict]]:
    """One source's files into `kb` with kb/sources' readers; their counts by file."""
    if source == "mesh":
        from ..kb.sources.mesh_xml import read_mesh_xml

        kb, desc, descriptor_types = read_mesh_xml(paths["mesh_descriptors"], kb=kb, source="MeSH")
        kb, supp, _ = read_mesh_xml(paths["mesh_supplementals"], kb=kb, descriptor_types=descriptor_types,
                                    source="MeSH")
        return kb, {"desc2025.xml": dict(desc), "supp2025.xml": dict(supp)}
    if source == "umls":
        from ..kb.sources.umls import read_umls

        kb, counts = read_umls(paths["umls"], kb=kb, semantic_types=umls_types or None, source="UMLS")
        return kb, {"MRCONSO.RRF": dict(counts)}
    raise ValueError(f"Unknown source {source!r}")


def _first_concepts(kb: ConceptKB, n: int) -> ConceptKB:
    """The first `n` concepts of `kb` as a KB of their own (the same ones scispacy_kb takes)."""
    out = ConceptKB()
    for i, concept in enumerate(kb):
        if i >= n:
            break
        out.add(concept)
    return out


def _ru_peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build_stage(spec: dict) -> None:
    """One measured stage, in its own process: read, parse (read into a KB that keeps nothing),
    index (our candidate index) or scispacy (its TF-IDF + HNSW index)."""
    stage = spec["stage"]
    result: dict = {"rss_after_imports_mib": round(_vm_rss_mib() or 0.0, 1)}
    if stage in ("read", "parse"):
        kb = _TracedKB(Path(spec["trace"]), spec["expected"] // RSS_POINTS, keep=stage == "read")
        start = time.perf_counter()
        kb, counts = _read_source(spec["source"], spec["paths"], kb, spec.get("umls_types", ()))
        result["seconds"] = round(time.perf_counter() - start, 2)
        kb.sample()
        result["peak_rss_read_mib"] = round(_ru_peak_mib(), 1)
        result["records_added"] = kb.added
        result["reader_counts"] = counts
        if stage == "read":
            result["concepts"] = len(kb)
            result["names"] = sum(1 for _ in kb.names())
            result["types"] = len({t for c in kb for t in c.types})
            start = time.perf_counter()
            kb.to_disk(spec["kb_out"])
            result["save_seconds"] = round(time.perf_counter() - start, 2)
            result["kb_disk_bytes"] = sum(f.stat().st_size for f in Path(spec["kb_out"]).rglob("*") if f.is_file())
    elif stage == "index":
        from ..kb.candidates import CandidateGenerator

        kb = ConceptKB.load(spec["kb"])
        if spec.get("max_concepts"):
            kb = _first_concepts(kb, spec["max_concepts"])
        result["rss_kb_loaded_mib"] = round(_vm_rss_mib() or 0.0, 1)
        start = time.perf_counter()
        gen = CandidateGenerator(kb)
        result["seconds"] = round(time.perf_counter() - start, 2)
        result["peak_rss_build_mib"] = round(_ru_peak_mib(), 1)
        result.update(concepts=len(kb), names=len(gen.keys), links=int(gen.link_indptr[-1]),
                      ngrams=len(gen.vectorizer.vocabulary_), nonzeros=int(gen.names_matrix.nnz), cfg=gen.cfg)
        start = time.perf_counter()
        gen.to_disk(spec["out"])
        result["save_seconds"] = round(time.perf_counter() - start, 2)
    elif stage == "scispacy":
        kb = ConceptKB.load(spec["kb"])
        start = time.perf_counter()
        sci_kb = scispacy_kb(kb, max_concepts=spec["max_concepts"])
        result["knowledge_base_seconds"] = round(time.perf_counter() - start, 2)
        seconds, aliases = build_index(sci_kb, spec["out"], m=spec["m"], ef_construction=spec["ef_construction"],
                                       threads=spec["threads"])
        result["seconds"] = round(seconds, 2)
        result["concepts"] = len(sci_kb.cui_to_entity)
        result["names"] = aliases
        result["build"] = json.loads((Path(spec["out"]) / "build.json").read_text())
        result["peak_rss_build_mib"] = round(_ru_peak_mib(), 1)
    else:
        raise ValueError(f"Unknown stage {stage!r}")
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf8")


def _thin(points: list, n: int = RSS_POINTS) -> list:
    """At most about `n` evenly spaced points of a curve, its last and its highest kept."""
    if len(points) <= n:
        return points
    step = len(points) / n
    keep = {int(i * step) for i in range(n)} | {len(points) - 1}
    keep.add(max(range(len(points)), key=lambda i: points[i][-1] if isinstance(points[i], list) else
                 points[i]["rss_mib"]))
    return [points[i] for i in sorted(keep)]


def _measure(spec: dict, work: Path, max_rss_mib: float, timeout: float) -> dict:
    """Run one stage in a child process: its result, wall seconds, peak RSS (ru_maxrss of that
    child) and RSS curve; a child over `max_rss_mib` or `timeout` is killed and says so."""
    import os
    import subprocess
    import sys
    import threading

    name = spec["name"]
    spec = {**spec, "result": str(work / f"{name}.result.json"), "trace": str(work / f"{name}.trace.jsonl")}
    spec_path = work / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf8")
    log = work / f"{name}.log"
    start = time.perf_counter()
    with open(log, "w", encoding="utf8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "spacy_medlink.cli.benchmark_kb", "build-stage",
                                 str(spec_path)], stdout=out, stderr=subprocess.STDOUT)
    timeline: List[List[float]] = []
    stopped: List[str] = []

    def watch() -> None:
        # The child stays a zombie (waitid WNOWAIT below) until this returns, so its pid is
        # never another process's here.
        while True:
            rss = _vm_rss_mib(proc.pid)
            if rss is None:
                return
            elapsed = time.perf_counter() - start
            timeline.append([round(elapsed, 1), round(rss, 1)])
            if not stopped and (rss > max_rss_mib or elapsed > timeout):
                stopped.append(f"RSS {rss:.0f} MiB over the limit of {max_rss_mib:.0f} MiB" if rss > max_rss_mib
                               else f"over the time limit of {timeout:.0f} s")
                proc.kill()
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    watcher.join()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result_path = Path(spec["result"])
    result: dict = json.loads(result_path.read_text(encoding="utf8")) if result_path.exists() else {}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    trace = Path(spec["trace"])
    if trace.exists():
        curve = [json.loads(line) for line in trace.read_text(encoding="utf8").splitlines() if line]
        if curve:
            result["rss_curve"] = _thin(curve)
    result["rss_timeline_mib"] = _thin(timeline)
    if stopped:
        result["stopped"] = stopped[0]
    elif proc.returncode != 0:
        result["error"] = f"exit code {proc.returncode}: " + log.read_text(encoding="utf8")[-2000:]
    return result


def describe_machine() -> dict:
    """What the figures were measured on: CPU, cores, memory, load, library versions."""
    import os
    import platform
    from importlib.metadata import PackageNotFoundError, version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), float("nan"))
    versions = {}
    for package in ("numpy", "scipy", "scikit-learn", "sparse_dot_topn", "scispacy", "nmslib-metabrainz", "spacy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "memory_gib": round(mem, 1), "platform": platform.platform(), "python": platform.python_version(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "versions": versions}


def _sources(folder: Path, scale: float, seed: int, echo) -> dict:
    """The synthetic files for one scale: reused when `folder` holds them for this scale and seed."""
    from ..kb import synthetic

    manifest = folder / "synthetic.json"
    if manifest.exists():
        info = json.loads(manifest.read_text(encoding="utf8"))
        if info.get("scale") == scale and info.get("seed") == seed:
            echo(f"Reusing the synthetic files in {folder}")
            return {**info, "reused": True}
    echo(f"Writing synthetic files at scale {scale:g} into {folder}")
    start = time.perf_counter()
    counts = synthetic.write_sources(folder, scale=scale, seed=seed)
    info = {"scale": scale, "seed": seed, "counts": counts, "generate_seconds": round(time.perf_counter() - start, 1)}
    manifest.write_text(json.dumps(info, indent=2), encoding="utf8")
    return {**info, "reused": False}


def _file_table(folder: Path, counts: dict) -> dict:
    from ..kb.synthetic import SOURCE_FILES

    desc, supp, umls = counts["mesh_descriptors"], counts["mesh_supplementals"], counts["umls"]
    size = lambda key: (folder / SOURCE_FILES[key]).stat().st_size  # noqa: E731
    return {
        "desc2025.xml": {"bytes": size("mesh_descriptors"), "records": desc["records"], "terms": desc["terms"],
                         "bytes_per_record": round(size("mesh_descriptors") / desc["records"])},
        "supp2025.xml": {"bytes": size("mesh_supplementals"), "records": supp["records"], "terms": supp["terms"],
                         "bytes_per_record": round(size("mesh_supplementals") / supp["records"])},
        "MRCONSO.RRF": {"bytes": size("mrconso"), "rows": umls["mrconso_rows"], "english_rows": umls["english_rows"],
                        "english_suppressed_rows": umls["english_suppressed_rows"],
                        "non_english_rows": umls["non_english_rows"], "concepts": umls["concepts"],
                        "bytes_per_row": round(size("mrconso") / umls["mrconso_rows"], 1)},
        "MRSTY.RRF": {"bytes": size("mrsty"), "rows": umls["mrsty_rows"]},
    }


def run_build_benchmark(
    scales: Sequence[float],
    seed: int,
    sources: Optional[Path],
    max_rss_mib: float,
    scispacy_concepts: int,
    ef_construction: int,
    threads: int,
    timeout: float,
    umls_types: Sequence[str] = ("st21pv",),
    echo=print,
) -> dict:
    """Generate (or reuse) the synthetic sources at each scale, then measure every reader, the
    parse alone, our candidate index and, at the largest scale, scispacy's index on as many
    concepts as `scispacy_concepts`, beside ours on the same ones."""
    import shutil
    import tempfile

    from ..kb.synthetic import SOURCE_FILES

    report: dict = {"machine": describe_machine(), "settings": {
        "scales": list(scales), "seed": seed, "umls_semantic_types": list(umls_types),
        "max_rss_mib": max_rss_mib, "stage_timeout_s": timeout,
        "scispacy_concepts": scispacy_concepts, "scispacy_m": SCISPACY_M,
        "scispacy_ef_construction": ef_construction, "scispacy_threads": threads}, "scales": {}}
    tmp = Path(tempfile.mkdtemp(prefix="medlink_kb_build_"))
    try:
        last_mesh_kb: Optional[Path] = None
        for scale in sorted(scales):
            key = f"{scale:g}"
            folder = (sources if sources is not None else tmp / "sources") / f"scale-{key}-seed-{seed}"
            info = _sources(folder, scale, seed, echo)
            paths = {name: str(folder / rel) for name, rel in SOURCE_FILES.items()}
            counts = info["counts"]
            expected = {"mesh": counts["mesh_descriptors"]["records"] + counts["mesh_supplementals"]["records"],
                        "umls": counts["umls"]["concepts_with_english"]}
            entry: dict = {"files": _file_table(folder, counts), "generate_seconds": info["generate_seconds"],
                           "files_reused": info["reused"], "parse_only": {}, "kb_build": {}, "index_build": {}}
            report["scales"][key] = entry
            work = tmp / f"work-{key}"
            work.mkdir()
            for source in BUILD_SOURCES:
                for stage, table in (("parse", "parse_only"), ("read", "kb_build")):
                    spec = {"name": f"{stage}-{source}", "stage": stage, "source": source, "paths": paths,
                            "expected": expected[source], "kb_out": str(work / f"kb-{source}"),
                            "umls_types": list(umls_types)}
                    echo(f"[{key}] {stage} {source} ...")
                    entry[table][source] = result = _measure(spec, work, max_rss_mib, timeout)
                    echo(f"[{key}] {stage} {source}: {result.get('seconds')} s, peak RSS {result['peak_rss_mib']} MiB"
                         + (f" ({result.get('stopped') or result.get('error', '')[:200]})"
                            if "stopped" in result or "error" in result else ""))
                if "concepts" not in entry["kb_build"][source]:
                    continue
                spec = {"name": f"index-{source}", "stage": "index", "kb": str(work / f"kb-{source}"),
                        "out": str(work / f"index-{source}")}
                echo(f"[{key}] index {source} ...")
                entry["index_build"][source] = result = _measure(spec, work, max_rss_mib, timeout)
                echo(f"[{key}] index {source}: {result.get('seconds')} s, peak RSS {result['peak_rss_mib']} MiB")
                shutil.rmtree(work / f"index-{source}", ignore_errors=True)
            if "concepts" in entry["kb_build"]["mesh"]:
                if last_mesh_kb is not None:
                    shutil.rmtree(last_mesh_kb, ignore_errors=True)
                last_mesh_kb = work / "kb-mesh"
            shutil.rmtree(work / "kb-umls", ignore_errors=True)
        if scispacy_concepts > 0 and last_mesh_kb is not None:
            report["scispacy_comparison"] = _compare_scispacy(last_mesh_kb, tmp, scispacy_concepts, ef_construction,
                                                              threads, max_rss_mib, timeout, echo)
        report["summary"] = _build_summary(report)
        report["machine"]["load_average_at_end_1_5_15"] = describe_machine()["load_average_1_5_15"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _compare_scispacy(kb_dir: Path, tmp: Path, n: int, ef_construction: int, threads: int, max_rss_mib: float,
                      timeout: float, echo) -> dict:
    """Our index and scispacy's over the same first `n` concepts of a KB, each in its own process."""
    work = tmp / "scispacy"
    work.mkdir()
    ours = _measure({"name": "index-subset", "stage": "index", "kb": str(kb_dir), "max_concepts": n,
                     "out": str(work / "medlink")}, work, max_rss_mib, timeout)
    echo(f"ours on {ours.get('concepts')} concepts: {ours.get('seconds')} s")
    theirs = _measure({"name": "scispacy", "stage": "scispacy", "kb": str(kb_dir), "max_concepts": n,
                       "out": str(work / "scispacy"), "m": SCISPACY_M, "ef_construction": ef_construction,
                       "threads": threads}, work, max_rss_mib, timeout)
    echo(f"scispacy on {theirs.get('concepts')} concepts: {theirs.get('seconds')} s")
    out = {"kb": "the MeSH KB of the largest scale, its first concepts", "concepts": n, "medlink": ours,
           "scispacy": theirs}
    if ours.get("seconds") and theirs.get("seconds"):
        out["seconds_ratio_scispacy_over_medlink"] = round(theirs["seconds"] / ours["seconds"], 1)
    return out


def _build_summary(report: dict) -> dict:
    """Per source and scale: file bytes, KB size, peak RSS of the parse alone and of the KB build
    (each also over the process's RSS after its imports), and seconds."""
    rows: Dict[str, list] = {}
    for key, entry in report["scales"].items():
        files = entry["files"]
        file_bytes = {"mesh": files["desc2025.xml"]["bytes"] + files["supp2025.xml"]["bytes"],
                      "umls": files["MRCONSO.RRF"]["bytes"] + files["MRSTY.RRF"]["bytes"]}
        for source in BUILD_SOURCES:
            parse = entry["parse_only"].get(source, {})
            read = entry["kb_build"].get(source, {})
            index = entry["index_build"].get(source, {})
            row = {"scale": float(key), "file_mib": round(file_bytes[source] / 2**20, 1),
                   "concepts": read.get("concepts"), "names": read.get("names"),
                   "parse_seconds": parse.get("seconds"), "parse_peak_rss_mib": parse.get("peak_rss_mib"),
                   "parse_rss_over_imports_mib": _over(parse),
                   "kb_build_seconds": read.get("seconds"), "kb_build_peak_rss_mib": read.get("peak_rss_read_mib"),
                   "kb_build_rss_over_imports_mib": _over(read, "peak_rss_read_mib"),
                   "kb_save_seconds": read.get("save_seconds"), "kb_build_and_save_peak_rss_mib": read.get("peak_rss_mib"),
                   "index_build_seconds": index.get("seconds"), "index_build_peak_rss_mib": index.get("peak_rss_mib"),
                   "index_names": index.get("names")}
            for stage in (parse, read, index):
                if "stopped" in stage or "error" in stage:
                    row.setdefault("not_finished", []).append(stage.get("stopped") or stage["error"][:300])
            rows.setdefault(source, []).append(row)
    return rows


def _over(result: dict, key: str = "peak_rss_mib") -> Optional[float]:
    if result.get(key) is None or result.get("rss_after_imports_mib") is None:
        return None
    return round(result[key] - result["rss_after_imports_mib"], 1)


def _parse_corpora(values: List[str]) -> List[Tuple[str, Path]]:
    import typer

    out = []
    for value in values:
        if "=" not in value:
            raise typer.BadParameter(f"--corpus takes NAME=PATH, got {value!r}")
        name, path = value.split("=", 1)
        out.append((name, Path(path)))
    return out


DEFAULT_OUTPUT = Path("metrics/linking/kb_benchmark.json")
DEFAULT_BUILD_OUTPUT = Path("metrics/kb/kb_build_benchmark.json")


def _register() -> None:
    import os
    import tempfile

    import srsly
    import typer

    from ._app import benchmark_app

    @benchmark_app.command("kb")
    def benchmark_kb_cli(
        kb_dir: Optional[Path] = typer.Argument(None, help="KB folder written by `kb build` (not with --build)"),
        corpus: List[str] = typer.Option([], "--corpus", help="NAME=PATH of a PubTator dev file; NAME 'ncbi' maps NCBI types to Disease"),
        output: Optional[Path] = typer.Option(None, "--output", help=f"Report JSON (default {DEFAULT_OUTPUT}, with --build {DEFAULT_BUILD_OUTPUT})"),
        scispacy: bool = typer.Option(False, "--scispacy", help="Also run scispacy's CandidateGenerator on the same KB"),
        scispacy_index: Path = typer.Option(Path("kb/_scispacy_full"), "--scispacy-index", help="Cached scispacy index (built if missing)"),
        ef_construction: int = typer.Option(SCISPACY_EF_CONSTRUCTION, "--ef-construction", help="HNSW efConstruction if the scispacy index must be built"),
        threads: int = typer.Option(os.cpu_count() or 1, "--threads", help="Threads for our sparse top-k product (with --build: nmslib's index threads)"),
        build: bool = typer.Option(False, "--build", help="Instead: memory and time of building KBs from synthetic full-size MeSH XML and UMLS RRF, and of the candidate index"),
        scale: List[float] = typer.Option([0.1, 1.0], "--scale", help="With --build: size of the synthetic files, 1.0 the real files' (repeat for several)"),
        seed: int = typer.Option(0, "--seed", help="With --build: seed of the synthetic files"),
        sources: Optional[Path] = typer.Option(None, "--sources", help="With --build: keep the synthetic files here, reused when there (default: a temporary folder, deleted)"),
        max_rss: float = typer.Option(8192, "--max-rss", help="With --build: MiB; a stage over it is stopped and its growth reported"),
        scispacy_concepts: int = typer.Option(10_000, "--scispacy-concepts", help="With --build: concepts of the index-build comparison with scispacy (0: none)"),
        stage_timeout: float = typer.Option(3 * 3600, "--stage-timeout", help="With --build: seconds before a stage is stopped"),
        umls_types: List[str] = typer.Option(["st21pv"], "--umls-types", help="With --build: semantic types the UMLS KB keeps (TUIs or 'st21pv'; the candidate index holds at most 32)"),
    ) -> None:
        """Recall@1/@10, speed, load time and memory of candidate generation on gold dev mentions;
        with --build, peak memory and time of building KBs and indexes at real sizes."""
        if build:
            output = output or DEFAULT_BUILD_OUTPUT
            report = run_build_benchmark(scale, seed, sources, max_rss, scispacy_concepts, ef_construction, threads,
                                         stage_timeout, umls_types=umls_types, echo=typer.echo)
            output.parent.mkdir(parents=True, exist_ok=True)
            srsly.write_json(output, report)
            typer.echo(f"Wrote {output}")
            return
        if kb_dir is None or not corpus:
            raise typer.BadParameter("benchmark kb takes a KB folder and --corpus (or --build)")
        output = output or DEFAULT_OUTPUT
        kb = ConceptKB.load(kb_dir)
        mentions, counts = collect_mentions(_parse_corpora(corpus), kb)
        typer.echo(f"{len(mentions)} gold mentions evaluated: {json.dumps(counts)}")
        result = {"kb_dir": str(kb_dir), "kb": kb.stats(), "k": K, "mentions": counts}
        del kb
        with tempfile.TemporaryDirectory() as tmp:
            mentions_file = Path(tmp) / "mentions.json"
            mentions_file.write_text(json.dumps(mentions), encoding="utf8")
            result["medlink_build"] = _subprocess(["build", str(kb_dir)])
            typer.echo(f"ours, build: {result['medlink_build']}")
            result["medlink"] = _subprocess(["medlink", str(kb_dir), str(mentions_file), str(threads)])
            typer.echo(f"ours: {json.dumps(result['medlink'])}")
            if scispacy:
                if not is_built(scispacy_index):
                    typer.echo(f"Building scispacy's index into {scispacy_index} (slow)")
                    build_index(scispacy_kb(ConceptKB.load(kb_dir)), scispacy_index, ef_construction=ef_construction)
                result["scispacy"] = _subprocess(["scispacy", str(kb_dir), str(mentions_file), str(scispacy_index)])
                typer.echo(f"scispacy: {json.dumps(result['scispacy'])}")
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, result)
        typer.echo(f"Wrote {output}")


_register()

if __name__ == "__main__":
    import sys

    _worker(sys.argv[1:])
