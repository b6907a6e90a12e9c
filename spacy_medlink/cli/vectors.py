"""`vectors`: in-domain floret vectors from the unlabeled text (SOURCES.md section 7).

No biomedical transformer reaches this machine, so the CPU pipelines get their
word representations from vectors we train ourselves, in three steps:

- `text`: tokenize the raw text with the pipelines' own tokenizer and lower-case
  it, so that every training word is a token the pipelines will look up (by
  `LOWER`, which is also how the SumPubMed `_lc` files arrive).
- `train`: floret, i.e. fastText whose words and character n-grams share one
  small hashed table (`bucket` rows), so every word, seen or not, has a vector.
- `neighbours`: cosine nearest neighbours, to check that the vectors mean
  something before a pipeline is trained on them.

`spacy init vectors en PREFIX.floret DIR --mode floret --attr LOWER` turns the
table into the pipeline that configs load with `[initialize] vectors`.
"""
import gzip
import re
import time
from enum import Enum
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy
import srsly
import typer
from spacy.attrs import LOWER, NAMES
from spacy.language import Language
from spacy.vectors import Mode, Vectors
from wasabi import msg

from ..corpora.report import CorpusFormatError
from ._app import app

vectors_app = typer.Typer(help="In-domain floret vectors: prepare text, train, inspect.", no_args_is_help=True)
app.add_typer(vectors_app, name="vectors")

# SumPubMed masks numbers as "<dig>" and citations as "<cit>" (SOURCES.md 7).
# A placeholder left in would be split by the tokenizer into "<", "dig", ">"
# and teach the vectors that "dig" is a number. A masked number becomes the
# real number token "0" instead: "<0>" is shorter than any character n-gram
# (minn >= 4), so the ~1M masked numbers train the vector of "0" alone and do
# not flood the n-gram buckets that "2010", "0.05" or "cyp2d6" use. Digits in
# the natural-case text are kept as they are, since the pipelines see them so.
# Citations carry no word: they are dropped.
DIGIT_MASK = "<dig>"
DIGIT_TOKEN = "0"
CITATION_MASK = "<cit>"
FASTTEXT_EOS = "</s>"
_MASKS = re.compile(r"\s*(<dig>|<cit>)\s*")


def unmask(line: str) -> Tuple[str, int, int]:
    """Replace "<dig>" by "0" and drop "<cit>". Returns (text, n_dig, n_cit)."""
    counts = {DIGIT_MASK: 0, CITATION_MASK: 0}

    def replace(match: "re.Match[str]") -> str:
        counts[match.group(1)] += 1
        return f" {DIGIT_TOKEN} " if match.group(1) == DIGIT_MASK else " "

    if "<" not in line:
        return line.strip(), 0, 0
    text = " ".join(_MASKS.sub(replace, line).split())
    return text, counts[DIGIT_MASK], counts[CITATION_MASK]


def read_lines(path: Path, limit: int = 0) -> Iterator[str]:
    """The lines of a UTF-8 text file, gzipped or not (told by its magic bytes)."""
    with path.open("rb") as fh:
        is_gzip = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    # Bytes decoded line by line, so that an error names the right line.
    with opener(path, "rb") as fh:  # type: ignore[operator]
        for line_no, raw in enumerate(fh, start=1):
            if limit and line_no > limit:
                return
            try:
                yield raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise CorpusFormatError(path, line_no, f"not UTF-8: {err}") from None


def tokenize_lines(
    nlp: Language,
    texts: Iterable[str],
    *,
    lowercase: bool = True,
    batch_size: int = 1000,
    n_process: int = 1,
) -> Iterator[List[str]]:
    """The tokens of each text, as the pipelines' tokenizer splits them."""
    if n_process > 1:  # nlp.pipe forks; the pipeline is the tokenizer only
        docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process)
    else:
        docs = nlp.tokenizer.pipe(texts, batch_size=batch_size)
    for doc in docs:
        if lowercase:
            yield [token.lower_ for token in doc if not token.is_space]
        else:
            yield [token.text for token in doc if not token.is_space]


def prepare_text(
    nlp: Language,
    inputs: List[Path],
    output: Path,
    *,
    lowercase: bool = True,
    limit_lines: int = 0,
    batch_size: int = 1000,
    n_process: int = 1,
) -> Dict[str, Dict[str, int]]:
    """Write one line of space-joined tokens per input line. Returns counts per input."""
    stats: Dict[str, Dict[str, int]] = {}
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf8") as out:
        for path in inputs:
            counts = dict(lines=0, tokens_in=0, tokens_out=0, digit_masks=0, citations_dropped=0)

            def texts() -> Iterator[str]:
                for line in read_lines(path, limit_lines):
                    counts["lines"] += 1
                    counts["tokens_in"] += len(line.split())
                    text, n_dig, n_cit = unmask(line)
                    counts["digit_masks"] += n_dig
                    counts["citations_dropped"] += n_cit
                    yield text

            docs = tokenize_lines(nlp, texts(), lowercase=lowercase, batch_size=batch_size, n_process=n_process)
            for tokens in docs:
                counts["tokens_out"] += len(tokens)
                out.write(" ".join(tokens))
                out.write("\n")
            stats[str(path)] = counts
    return stats


@vectors_app.command("text")
def text_cli(
    # fmt: off
    output: Path = typer.Argument(..., help="Output text file: one line of space-joined tokens per input line", dir_okay=False),
    inputs: List[Path] = typer.Argument(..., help="UTF-8 text files, one unit per line (.gz is read too)", exists=True, dir_okay=False),
    lowercase: bool = typer.Option(True, "--lowercase/--no-lowercase", help="Lower-case the tokens (vectors looked up by LOWER)"),
    limit_lines: int = typer.Option(0, "--limit-lines", help="Read only the first N lines of each input (0: all), e.g. for a quick slice"),
    batch_size: int = typer.Option(1000, "--batch-size", help="Texts per tokenizer batch"),
    n_process: int = typer.Option(1, "--n-process", help="Tokenizer processes (nlp.pipe); 1 streams through nlp.tokenizer.pipe"),
    lang: str = typer.Option("en", "--lang", help="en: the biomedical tokenizer; zh: one token per character, as the Chinese pipelines' tokenizer (spaCy's char segmenter) splits text"),
    # fmt: on
) -> None:
    """Tokenize unlabeled text with the pipelines' tokenizer for floret training.

    "<dig>" becomes "0" and "<cit>" is dropped (SumPubMed masks). Counts and
    timing go to OUTPUT with the suffix .stats.json.
    """
    if lang == "en":
        from ..tokenizer import biomed_nlp

        nlp = biomed_nlp("en")
    elif lang == "zh":
        import spacy

        nlp = spacy.blank("zh")  # segmenter "char", as configs/nested_zh_*.cfg
    else:
        raise typer.BadParameter(f"--lang {lang!r}: expected en or zh")
    start = time.perf_counter()
    try:
        per_input = prepare_text(
            nlp, inputs, output, lowercase=lowercase, limit_lines=limit_lines, batch_size=batch_size, n_process=n_process
        )
    except CorpusFormatError as err:
        msg.fail("Text preparation failed", str(err), exits=1)
    seconds = time.perf_counter() - start
    total = {key: sum(counts[key] for counts in per_input.values()) for key in next(iter(per_input.values()))}
    for path, counts in per_input.items():
        msg.text(f"{path}: {counts['lines']:,} lines, {counts['tokens_in']:,} -> {counts['tokens_out']:,} tokens")
    stats = {
        "output": str(output),
        "lang": lang,
        "lowercase": lowercase,
        "limit_lines": limit_lines,
        "inputs": per_input,
        "total": total,
        "seconds": round(seconds, 1),
        "tokens_out_per_second": round(total["tokens_out"] / max(seconds, 1e-9)),
    }
    stats_path = output.with_suffix(".stats.json")
    srsly.write_json(stats_path, stats)
    msg.good(
        f"Wrote {total['lines']:,} lines, {total['tokens_out']:,} tokens to {output} "
        f"(read {total['tokens_in']:,} whitespace tokens; {total['digit_masks']:,} <dig> -> "
        f"{DIGIT_TOKEN!r}, {total['citations_dropped']:,} <cit> dropped)",
        f"{seconds:.1f} s, {stats['tokens_out_per_second']:,} tokens/s. Stats: {stats_path}",
    )


@vectors_app.command("jsonl")
def jsonl_cli(
    # fmt: off
    output: Path = typer.Argument(..., help="Output .jsonl: one {\"text\": ...} per input line", dir_okay=False),
    inputs: List[Path] = typer.Argument(..., help="UTF-8 text files, one unit per line (.gz is read too)", exists=True, dir_okay=False),
    limit_lines: int = typer.Option(0, "--limit-lines", help="Read only the first N lines of each input (0: all)"),
    # fmt: on
) -> None:
    """Raw text for `spacy pretrain` (spacy.JsonlCorpus.v1), which tokenizes it itself.

    Case is kept (pretraining sees SHAPE and PREFIX), "<dig>"/"<cit>" are
    handled as in `text`, and lines left empty are skipped and counted.
    """
    counts = dict(lines=0, written=0, empty_skipped=0, digit_masks=0, citations_dropped=0)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("w", encoding="utf8") as out:
            for path in inputs:
                for line in read_lines(path, limit_lines):
                    counts["lines"] += 1
                    text, n_dig, n_cit = unmask(line)
                    counts["digit_masks"] += n_dig
                    counts["citations_dropped"] += n_cit
                    if not text:
                        counts["empty_skipped"] += 1
                        continue
                    out.write(srsly.json_dumps({"text": text}) + "\n")
                    counts["written"] += 1
    except CorpusFormatError as err:
        msg.fail("JSONL preparation failed", str(err), exits=1)
    msg.good(
        f"Wrote {counts['written']:,} of {counts['lines']:,} lines to {output}",
        f"{counts['empty_skipped']:,} empty lines skipped; {counts['digit_masks']:,} <dig> -> "
        f"{DIGIT_TOKEN!r}, {counts['citations_dropped']:,} <cit> dropped",
    )


class FloretModel(str, Enum):
    cbow = "cbow"
    skipgram = "skipgram"


def train_floret(
    text: Path,
    prefix: str,
    *,
    dim: int = 300,
    epoch: int = 5,
    bucket: int = 50000,
    minn: int = 4,
    maxn: int = 5,
    hash_count: int = 2,
    min_count: int = 5,
    threads: int = 2,
    model: str = "cbow",
    verbose: int = 2,
) -> Dict:
    """Train floret vectors; write PREFIX.floret, PREFIX.vocab.tsv and PREFIX.train.json.

    PREFIX.vocab.tsv holds the training words (count >= min_count) and their
    counts, most frequent first: a floret table has no words, so this is what
    `neighbours` compares against.
    """
    import floret

    params = dict(
        model=model, dim=dim, epoch=epoch, bucket=bucket, minn=minn, maxn=maxn,
        hashCount=hash_count, minCount=min_count, thread=threads,
    )  # fmt: skip
    start = time.perf_counter()
    ft = floret.train_unsupervised(str(text), mode="floret", verbose=verbose, **params)
    seconds = time.perf_counter() - start
    floret_path = Path(prefix + ".floret")
    floret_path.parent.mkdir(parents=True, exist_ok=True)
    ft.save_floret_vectors(str(floret_path))
    words, freqs = ft.get_words(include_freq=True)
    vocab_path = Path(prefix + ".vocab.tsv")
    with vocab_path.open("w", encoding="utf8") as out:
        for word, freq in zip(words, freqs):
            out.write(f"{word}\t{freq}\n")
    info = {
        "text": str(text),
        "floret": str(floret_path),
        "vocab": str(vocab_path),
        "params": {**params, "mode": "floret"},
        "train_seconds": round(seconds, 1),
        "floret_bytes": floret_path.stat().st_size,
        "n_words": len(words),
        "n_word_tokens": int(sum(freqs)),  # occurrences of those words, one "</s>" per line included
    }
    srsly.write_json(prefix + ".train.json", info)
    return info


@vectors_app.command("train")
def train_cli(
    # fmt: off
    text: Path = typer.Argument(..., help="Tokenized text from `vectors text`", exists=True, dir_okay=False),
    output_prefix: str = typer.Argument(..., help="Writes OUTPUT_PREFIX.floret, .vocab.tsv and .train.json"),
    dim: int = typer.Option(300, "--dim", help="Vector width"),
    epoch: int = typer.Option(5, "--epoch", help="Passes over the text"),
    bucket: int = typer.Option(50000, "--bucket", help="Rows of the hashed table (words and n-grams share them)"),
    minn: int = typer.Option(4, "--minn", help="Shortest character n-gram"),
    maxn: int = typer.Option(5, "--maxn", help="Longest character n-gram"),
    hash_count: int = typer.Option(2, "--hash-count", help="Rows each word / n-gram is hashed to"),
    min_count: int = typer.Option(5, "--min-count", help="Words seen fewer times are not trained as words"),
    threads: int = typer.Option(2, "--threads", help="Training threads"),
    model: FloretModel = typer.Option(FloretModel.cbow, "--model", help="cbow or skipgram"),
    # fmt: on
) -> None:
    """Train floret vectors on TEXT (spaCy floret demo defaults), with time and size."""
    if text.stat().st_size == 0:
        msg.fail(f"{text} is empty", exits=1)
    info = train_floret(
        text, output_prefix, dim=dim, epoch=epoch, bucket=bucket, minn=minn, maxn=maxn,
        hash_count=hash_count, min_count=min_count, threads=threads, model=model.value,
    )  # fmt: skip
    msg.good(
        f"Wrote {info['floret']} ({info['floret_bytes'] / 2**20:.1f} MiB) and {info['vocab']}",
        f"{info['n_words']:,} words with count >= {min_count}, {info['n_word_tokens']:,} occurrences (line ends included); "
        f"trained in {info['train_seconds']:.1f} s",
    )
    msg.text(f"Next: python -m spacy init vectors en {info['floret']} DIR --mode floret --attr LOWER")


def read_vocab(path: Path) -> Dict[str, int]:
    """The word counts of a PREFIX.vocab.tsv file, most frequent first."""
    counts: Dict[str, int] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        word, sep, count = line.partition("\t")
        if not sep or not word or not count.isdigit():
            raise CorpusFormatError(path, line_no, f"expected 'word<TAB>count', got {line!r}")
        counts[word] = int(count)
    return counts


def _unit_rows(table: numpy.ndarray) -> numpy.ndarray:
    table = numpy.asarray(table, dtype="float32")
    norms = numpy.linalg.norm(table, axis=1, keepdims=True)
    return table / numpy.maximum(norms, 1e-12)


def nearest_neighbours(
    vectors: Vectors, queries: List[str], candidates: List[str], n: int = 10
) -> Dict[str, List[Tuple[str, float]]]:
    """The n candidates with the highest cosine to each query (itself excluded).

    In floret mode every string has a vector (the mean of its n-gram rows), so
    candidates and queries are computed the same way; in default mode both must
    be keys of the table.
    """
    if vectors.mode == Mode.floret:
        cand_table = vectors.get_batch(candidates)
    else:
        candidates = [word for word in candidates if vectors.find(key=word) >= 0]
        cand_table = vectors.get_batch(candidates) if candidates else numpy.zeros((0, vectors.shape[1]))
    cand_unit = _unit_rows(cand_table)
    result: Dict[str, List[Tuple[str, float]]] = {}
    for query in queries:
        if vectors.mode != Mode.floret and vectors.find(key=query) < 0:
            result[query] = []
            continue
        sims = cand_unit @ _unit_rows(vectors.get_batch([query]))[0]
        order = numpy.argsort(-sims)
        result[query] = [(candidates[i], float(sims[i])) for i in order if candidates[i] != query][:n]
    return result


def format_neighbours(neighbours: Dict[str, List[Tuple[str, float]]], counts: Dict[str, int]) -> str:
    lines = []
    for query, pairs in neighbours.items():
        seen = f"{counts[query]:,} times in training" if query in counts else "not a training word"
        lines.append(f"{query} ({seen})")
        if not pairs:
            lines.append("  (no vector)")
        lines.extend(f"  {score:.3f}  {word}" for word, score in pairs)
    return "\n".join(lines) + "\n"


@vectors_app.command("neighbours")
def neighbours_cli(
    # fmt: off
    vectors_model: Path = typer.Argument(..., help="Pipeline with vectors (from `spacy init vectors`)", exists=True, file_okay=False),
    words: List[str] = typer.Argument(..., help="Query words"),
    n: int = typer.Option(10, "-n", help="Neighbours per word"),
    vocab: Optional[Path] = typer.Option(None, "--vocab", "-v", help="Floret mode: PREFIX.vocab.tsv from `vectors train`, the candidate words", exists=True, dir_okay=False),
    top: int = typer.Option(50000, "--top", help="Floret mode: compare against the TOP most frequent training words (0: all)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the lists to this file", dir_okay=False),
    # fmt: on
) -> None:
    """Print the cosine nearest neighbours of each WORD.

    Default-mode vectors compare against their keyed rows. Floret vectors have
    no keys: pass --vocab, and the TOP most frequent training words are
    embedded from their n-grams and compared.
    """
    import spacy

    nlp = spacy.load(vectors_model)
    vectors = nlp.vocab.vectors
    if vectors.shape[0] == 0:
        msg.fail(f"{vectors_model} has no vectors", exits=1)
    lower = vectors.attr == LOWER
    counts: Dict[str, int] = {}
    if vectors.mode == Mode.floret:
        if vocab is None:
            msg.fail("Floret vectors have no word list: pass --vocab PREFIX.vocab.tsv", exits=1)
        try:
            counts = read_vocab(vocab)
        except CorpusFormatError as err:
            msg.fail("Cannot read --vocab", str(err), exits=1)
        counts.pop(FASTTEXT_EOS, None)  # fastText's line-end word, never a token
        candidates = list(counts)[:top] if top else list(counts)
    else:
        candidates = [nlp.vocab.strings[key] for key in vectors.keys() if key in nlp.vocab.strings]
    queries = [word.lower() if lower else word for word in words]
    header = (
        f"# {vectors_model}: mode {vectors.mode}, shape {vectors.shape}, attr "
        f"{NAMES[vectors.attr]}; {len(candidates):,} candidate words; cosine\n"
    )
    text = header + format_neighbours(nearest_neighbours(vectors, queries, candidates, n), counts)
    print(text, end="")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf8")
        msg.good(f"Wrote {output}")
