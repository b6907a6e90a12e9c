"""scispacy's candidate generator on a ConceptKB, for the KB benchmark only.

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
from typing import Iterator, List, Optional, Tuple, Union

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


def _parse_corpora(values: List[str]) -> List[Tuple[str, Path]]:
    import typer

    out = []
    for value in values:
        if "=" not in value:
            raise typer.BadParameter(f"--corpus takes NAME=PATH, got {value!r}")
        name, path = value.split("=", 1)
        out.append((name, Path(path)))
    return out


def _register() -> None:
    import os
    import tempfile

    import srsly
    import typer

    from ._app import benchmark_app

    @benchmark_app.command("kb")
    def benchmark_kb_cli(
        kb_dir: Path = typer.Argument(..., help="KB folder written by `kb build`"),
        corpus: List[str] = typer.Option(..., "--corpus", help="NAME=PATH of a PubTator dev file; NAME 'ncbi' maps NCBI types to Disease"),
        output: Path = typer.Option(Path("metrics/linking/kb_benchmark.json"), "--output"),
        scispacy: bool = typer.Option(False, "--scispacy", help="Also run scispacy's CandidateGenerator on the same KB"),
        scispacy_index: Path = typer.Option(Path("kb/_scispacy_full"), "--scispacy-index", help="Cached scispacy index (built if missing)"),
        ef_construction: int = typer.Option(SCISPACY_EF_CONSTRUCTION, "--ef-construction", help="HNSW efConstruction if the scispacy index must be built"),
        threads: int = typer.Option(os.cpu_count() or 1, "--threads", help="Threads for our sparse top-k product"),
    ) -> None:
        """Recall@1/@10, speed, load time and memory of candidate generation on gold dev mentions."""
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
