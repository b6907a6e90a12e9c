"""Conservation accounting for converters: every annotation read is kept or
dropped with a reason, and the two add up."""
import gzip
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

MAX_EXAMPLES = 5
CORPUS_SUFFIXES = (".gz", ".json", ".jsonl", ".txt", ".iob2")


GZIP_MAGIC = b"\x1f\x8b"
# what reading a corpus file raises for bad bytes, or for gzip data cut short or corrupt
READ_ERRORS = (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile)


def is_gzip(path: Union[str, Path]) -> bool:
    """Whether the file's bytes are gzip data (whatever its name says)."""
    with Path(path).open("rb") as file_:
        return file_.read(2) == GZIP_MAGIC


def open_text(path: Union[str, Path], encoding: str = "utf8") -> "TextFile":
    """A corpus file opened as text, gunzipped when its bytes say so (not its name).
    Bytes that are not `encoding` text and gzip data cut short raise `CorpusFormatError`
    naming the file and line, not a bare UnicodeDecodeError or EOFError."""
    path = Path(path)
    opener = gzip.open if is_gzip(path) else open
    return TextFile(opener(path, "rt", encoding=encoding), path, encoding)  # type: ignore[operator]


class TextFile:
    """A text file from `open_text`: reads as the file it wraps, with read errors located."""

    def __init__(self, file_: IO[str], path: Path, encoding: str) -> None:
        self._file = file_
        self.path = path
        self.encoding = encoding

    def __enter__(self) -> "TextFile":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._file
        except READ_ERRORS as err:
            raise read_error(self.path, err, self.encoding) from None

    def __next__(self) -> str:
        try:
            return next(self._file)
        except READ_ERRORS as err:
            raise read_error(self.path, err, self.encoding) from None

    def read(self, size: int = -1) -> str:
        try:
            return self._file.read(size)
        except READ_ERRORS as err:
            raise read_error(self.path, err, self.encoding) from None

    def readline(self, size: int = -1) -> str:
        try:
            return self._file.readline(size)
        except READ_ERRORS as err:
            raise read_error(self.path, err, self.encoding) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def read_error(path: Union[str, Path], error: Exception, encoding: str = "utf8") -> "CorpusFormatError":
    """`error`, raised reading `path` as `encoding` text, as a `CorpusFormatError` at its line.
    A text reader decodes ahead of the line it returns, so the file is read again, line by
    line, to find the first line that does not decode or where the gzip data breaks off."""
    path = Path(path)
    line = 0
    with (gzip.open if is_gzip(path) else open)(path, "rb") as file_:  # type: ignore[operator]
        try:
            for line, raw in enumerate(file_, start=1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError as bad:
                    column = len(raw[: bad.start].decode(encoding)) + 1
                    return CorpusFormatError(path, line, f"not {_encoding_name(encoding)} text: byte "
                                             f"0x{raw[bad.start]:02x} at column {column} (convert the file "
                                             "to UTF-8, e.g. with iconv)")
        except (EOFError, zlib.error, gzip.BadGzipFile) as bad:
            return CorpusFormatError(path, line + 1, gzip_reason(bad))
    return CorpusFormatError(path, line, f"cannot be read as {_encoding_name(encoding)} text ({error})")


def gzip_reason(error: Exception) -> str:
    """What a gzip reading error means for a user."""
    if isinstance(error, EOFError):
        return "the gzip data ends early: the file is truncated (an interrupted download or copy?)"
    return f"corrupt gzip data ({error})"


def _encoding_name(encoding: str) -> str:
    import codecs

    name = codecs.lookup(encoding).name
    return "UTF-8" if name.startswith("utf-8") else name


def file_stem(path: Union[str, Path]) -> str:
    """"CMeEE_dev.json.gz" -> "CMeEE_dev": the name without corpus suffixes, for doc IDs."""
    name = Path(path).name
    while any(name.endswith(suffix) for suffix in CORPUS_SUFFIXES):
        name = name[: name.rindex(".")]
    return name


def is_int(value) -> bool:
    """An int offset (JSON booleans are ints to Python, and are not offsets)."""
    return isinstance(value, int) and not isinstance(value, bool)


class CorpusFormatError(ValueError):
    """Malformed corpus input; the message names the file and line."""

    def __init__(self, path: Union[str, Path], line: int, message: str):
        self.path = str(path)
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class ConversionReport:
    source: str = ""
    documents_read: int = 0
    documents_kept: int = 0
    mentions_read: int = 0
    mentions_kept: int = 0
    # reason -> count of mentions (or documents, prefixed "document: ") not kept
    dropped: Counter = field(default_factory=Counter)
    # reason -> count of annotations kept but changed (prefix stripped, ...)
    notes: Counter = field(default_factory=Counter)
    # reason -> first few "file:line: detail" locations
    examples: Dict[str, List[str]] = field(default_factory=dict)
    # label -> mentions kept
    labels: Counter = field(default_factory=Counter)

    def drop(self, reason: str, where: str = "") -> None:
        self.dropped[reason] += 1
        self._example(reason, where)

    def note(self, reason: str, where: str = "") -> None:
        self.notes[reason] += 1
        self._example(reason, where)

    def keep(self, label: str) -> None:
        self.mentions_kept += 1
        self.labels[label] += 1

    def _example(self, reason: str, where: str) -> None:
        if where:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < MAX_EXAMPLES:
                ex.append(where)

    @property
    def mentions_dropped(self) -> int:
        return sum(n for r, n in self.dropped.items() if not r.startswith("document: "))

    def is_balanced(self) -> bool:
        return self.mentions_read == self.mentions_kept + self.mentions_dropped

    def merge(self, other: "ConversionReport") -> "ConversionReport":
        self.documents_read += other.documents_read
        self.documents_kept += other.documents_kept
        self.mentions_read += other.mentions_read
        self.mentions_kept += other.mentions_kept
        self.dropped.update(other.dropped)
        self.notes.update(other.notes)
        self.labels.update(other.labels)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: MAX_EXAMPLES - len(mine)])
        return self

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "documents_read": self.documents_read,
            "documents_kept": self.documents_kept,
            "mentions_read": self.mentions_read,
            "mentions_kept": self.mentions_kept,
            "mentions_dropped": self.mentions_dropped,
            "dropped": dict(self.dropped),
            "notes": dict(self.notes),
            "labels": dict(self.labels),
            "examples": self.examples,
        }

    def format(self) -> str:
        lines = [
            f"{self.source}",
            f"  documents read {self.documents_read}, kept {self.documents_kept}",
            f"  mentions read {self.mentions_read}, kept {self.mentions_kept}, "
            f"not kept {self.mentions_dropped}",
        ]
        for label, n in sorted(self.labels.items()):
            lines.append(f"    kept {label}: {n}")
        for reason, n in sorted(self.dropped.items()):
            lines.append(f"  NOT KEPT ({n}): {reason}")
            lines.extend(f"      e.g. {w}" for w in self.examples.get(reason, []))
        for reason, n in sorted(self.notes.items()):
            lines.append(f"  changed ({n}): {reason}")
        return "\n".join(lines)

    def warn_if_dropped(self) -> None:
        """Used by readers inside `spacy train`, where nobody reads a report."""
        if self.dropped:
            summary = ", ".join(f"{n} {r}" for r, n in sorted(self.dropped.items()))
            warnings.warn(f"[spacy-medlink] {self.source}: not kept: {summary}")


def examples_from_docs(
    nlp: Language,
    docs: Iterable[Doc],
    report: ConversionReport,
    limit: int = 0,
    gold_tokens: bool = False,
) -> Iterator[Example]:
    """Gold Docs -> Examples, as `spacy.training.Corpus` yields them, for the
    registered readers; warns once about anything the reader did not keep.

    gold_tokens (bool): predict on the corpus tokens (pre-tokenized corpora,
        for comparison with published numbers) instead of `nlp.make_doc(text)`.
    """
    for i, doc in enumerate(docs):
        if limit and i >= limit:
            break
        if gold_tokens:
            words = [t.text for t in doc]
            predicted = Doc(nlp.vocab, words=words, spaces=[bool(t.whitespace_) for t in doc])
        else:
            predicted = nlp.make_doc(doc.text)
        yield Example(predicted, doc)
    report.warn_if_dropped()
