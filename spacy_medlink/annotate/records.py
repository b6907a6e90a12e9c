"""What `annotate` reads: documents as records, from every input format users have.

Each reader yields `Record`s in file order and raises `CorpusFormatError`
(file and line) for a malformed record; `read_records` sniffs the format from
the content unless told, and `skip_bad` turns errors into counted skips.
Passages (PubTator's title and abstract, BioC passages, PubMed title and
abstract) are kept as offsets into the record's text, so writers can give
annotations back in the input's own coordinates.
"""
import json
import re
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..corpora.report import READ_ERRORS, CorpusFormatError, gzip_reason, is_gzip, open_text

FORMATS = ("pubtator", "bioc-xml", "bioc-json", "pubmed-xml", "jsonl", "text")
_PUBTATOR_LINE = re.compile(r"^[^|\s]+\|[ta]\|")


class Record(NamedTuple):
    id: str
    text: str
    source: str
    line: int  # line of the record in its file (PubMed XML: the article's number)
    passages: Tuple[Tuple[str, int], ...] = ()  # (passage type, offset into text)


class BadRecord(NamedTuple):
    source: str
    line: int
    reason: str


def sniff_format(path: Path) -> str:
    """The format of a file (or "text" for a folder), from its first bytes."""
    if path.is_dir():
        return "text"
    with open_text(path) as f:
        head = f.read(4096)
    stripped = head.lstrip()
    if stripped.startswith("<"):
        if "<collection" in head:
            return "bioc-xml"
        if "PubmedArticleSet" in head or "<PubmedArticle" in head:
            return "pubmed-xml"
        raise CorpusFormatError(path, 1, "XML that is neither a BioC collection nor a PubmedArticleSet")
    if stripped.startswith("{"):
        with open_text(path) as f:
            first = next((line for line in f if line.strip()), "")
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return "bioc-json"  # one JSON document over many lines
        return "bioc-json" if isinstance(obj, dict) and "documents" in obj else "jsonl"
    if stripped and _PUBTATOR_LINE.match(stripped.split("\n", 1)[0]):
        return "pubtator"
    return "text"


def read_records(paths: Sequence[Path], fmt: Optional[str] = None, *, id_field: str = "id",
                 text_field: str = "text", on_bad: Optional[Callable[[BadRecord], None]] = None) -> Iterator[Record]:
    """Records of every input in order. A malformed record raises, or, with
    `on_bad`, is handed to it (counted and listed by the caller) and skipped."""
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No input at {path}")
        kind = fmt or sniff_format(path)
        if kind not in FORMATS:
            raise ValueError(f"Unknown input format {kind!r} (one of {', '.join(FORMATS)})")
        readers = {
            "pubtator": _read_pubtator,
            "bioc-xml": _read_bioc,
            "bioc-json": lambda p, bad: _read_bioc(p, bad, json_format=True),
            "pubmed-xml": _read_pubmed,
            "jsonl": lambda p, bad: _read_jsonl(p, bad, id_field, text_field),
            "text": _read_text,
        }
        yield from readers[kind](path, on_bad)


def _fail(on_bad, error: CorpusFormatError) -> None:
    if on_bad is None:
        raise error
    on_bad(BadRecord(error.path, error.line, str(error).split(": ", 1)[-1]))


def _read_jsonl(path: Path, on_bad, id_field: str, text_field: str) -> Iterator[Record]:
    with open_text(path) as f:
        for i, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                _fail(on_bad, CorpusFormatError(path, i, f"not a JSON object ({err.msg})"))
                continue
            if not isinstance(obj, dict) or text_field not in obj or not isinstance(obj[text_field], str):
                _fail(on_bad, CorpusFormatError(path, i, f"no string field {text_field!r}"))
                continue
            yield Record(str(obj.get(id_field, f"{path.name}:{i}")), obj[text_field], str(path), i)


def _read_text(path: Path, on_bad) -> Iterator[Record]:
    files = sorted(p for p in path.rglob("*.txt")) if path.is_dir() else [path]
    for file in files:
        with open_text(file) as f:
            yield Record(file.stem, f.read(), str(file), 1)


def _read_pubtator(path: Path, on_bad) -> Iterator[Record]:
    from ..corpora.pubtator import iter_pubtator_texts

    for pmid, passages, line in iter_pubtator_texts(path):
        offsets, pos, parts = [], 0, []
        for kind, text in passages:
            offsets.append((kind, pos))
            parts.append(text)
            pos += len(text) + 1
        yield Record(pmid, " ".join(parts), str(path), line, tuple(offsets))


def _read_pubmed(path: Path, on_bad) -> Iterator[Record]:
    """PubmedArticleSet (baseline/update files, gzipped or not): PMID, title, abstract."""
    import gzip
    import xml.etree.ElementTree as ET

    opener = gzip.open if is_gzip(path) else open
    n = 0
    with opener(path, "rb") as f:  # type: ignore[operator]
        try:
            for _, elem in ET.iterparse(f, events=("end",)):
                if elem.tag != "PubmedArticle":
                    continue
                n += 1
                pmid = elem.findtext("MedlineCitation/PMID")
                if not pmid:
                    _fail(on_bad, CorpusFormatError(path, n, "PubmedArticle without MedlineCitation/PMID"))
                    elem.clear()
                    continue
                title = "".join(elem.find("MedlineCitation/Article/ArticleTitle").itertext()) \
                    if elem.find("MedlineCitation/Article/ArticleTitle") is not None else ""
                abstract = " ".join("".join(a.itertext()) for a in elem.iterfind("MedlineCitation/Article/Abstract/AbstractText"))
                passages: List[Tuple[str, int]] = [("t", 0)] + ([("a", len(title) + 1)] if abstract else [])
                yield Record(pmid.strip(), title + (" " + abstract if abstract else ""), str(path), n, tuple(passages))
                elem.clear()
        except ET.ParseError as err:
            raise CorpusFormatError(path, err.position[0], f"malformed XML ({err})") from None
        except READ_ERRORS as err:  # the XML parser decodes the text itself: only gzip's errors reach here
            raise CorpusFormatError(path, n + 1, f"{gzip_reason(err)}; {n} articles read before it") from None


def _read_bioc(path: Path, on_bad, json_format: bool = False) -> Iterator[Record]:
    """BioC XML or JSON (the `bioc` package): each document's passages at their own offsets."""
    try:
        import bioc
        from bioc import biocjson
    except ImportError:  # pragma: no cover - bioc is a dependency
        raise ImportError("Reading BioC needs the `bioc` package: pip install bioc") from None
    with open_text(path) as f:
        try:
            collection = biocjson.load(f) if json_format else bioc.load(f)
        except CorpusFormatError:  # bad bytes or gzip data, located by `open_text`
            raise
        except Exception as err:  # the bioc package raises many kinds
            raise CorpusFormatError(path, 1, f"not a BioC collection ({err})") from None
    for n, document in enumerate(collection.documents, start=1):
        text, passages = "", []
        for passage in document.passages:
            offset = int(passage.offset)
            if offset < len(text):
                _fail(on_bad, CorpusFormatError(path, n, f"document {document.id}: passage offset {offset} overlaps the one before"))
                break
            text += " " * (offset - len(text)) + (passage.text or "")
            passages.append((passage.infons.get("type", ""), offset))
        else:
            yield Record(str(document.id), text, str(path), n, tuple(passages))


def split_sections(text: str, max_chars: int) -> List[Tuple[int, str]]:
    """(offset, section) pieces of at most `max_chars`, cut at a paragraph
    break, else a line break, else a sentence end, else a space, else hard."""
    if len(text) <= max_chars:
        return [(0, text)]
    out, start = [], 0
    while start < len(text):
        end = min(start + max_chars, len(text))
        if end < len(text):
            window = text[start:end]
            for sep in ("\n\n", "\n", ". ", " "):
                cut = window.rfind(sep)
                if cut > max_chars // 4:
                    end = start + cut + len(sep)
                    break
        out.append((start, text[start:end]))
        start = end
    return out

