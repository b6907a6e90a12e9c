"""Stand-off corpora (text + character-offset mentions) into Docs, and the
archives they ship in.

CRAFT (Knowtator XML), BioNLP shared tasks (brat ``.a1``) and DDI (XML with
sentence offsets) all reduce to one shape: a document text and mentions as
``(start, end, label, kb_id)`` character offsets. `make_doc` turns that into a
Doc the way the PubTator reader does (spans in ``doc.spans[spans_key]``, the
non-overlapping ones in ``doc.ents``, misaligned mentions widened or dropped,
each counted) and also keeps every mapped mention at its original offsets in
``doc.user_data["medlink_gold"]``. Scorers that must not depend on our
tokenizer (the cross-corpus benchmark) read those offsets; training reads
``doc.ents``.

`Archive` reads a corpus as it is downloaded: a ``.tar.gz``, a ``.zip`` or the
folder it unpacks to, so that the converters need no manual extraction step.
"""
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from .report import ConversionReport

GOLD_KEY = "medlink_gold"


class Mention(NamedTuple):
    start: int
    end: int
    label: str
    kb_id: str
    where: str  # file:line or file:annotation id, for the report


class Archive:
    """Read-only view of a corpus archive (.tar.gz / .tgz / .tar / .zip) or folder.

    Member names are '/'-separated paths relative to the archive root; a
    folder gives the same names as the archive it was unpacked from.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such corpus file or folder")
        self._tar: Optional[tarfile.TarFile] = None
        self._zip: Optional[zipfile.ZipFile] = None
        name = self.path.name.lower()
        if self.path.is_dir():
            self._names = sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
        elif name.endswith((".tar.gz", ".tgz", ".tar")):
            self._tar = tarfile.open(self.path)
            self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
            self._names = sorted(self._members)
        elif name.endswith(".zip"):
            self._zip = zipfile.ZipFile(self.path)
            self._names = sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        else:
            raise ValueError(f"{self.path}: expected a folder, .tar.gz, .tgz, .tar or .zip")

    def names(self, contains: str = "", suffix: str = "") -> List[str]:
        return [n for n in self._names if contains in n and n.endswith(suffix) and "/." not in n
                and not n.startswith(".") and "__MACOSX" not in n]

    def read_bytes(self, name: str) -> bytes:
        if self._tar is not None:
            handle = self._tar.extractfile(self._members[name])
            assert handle is not None
            return handle.read()
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def read_text(self, name: str) -> str:
        data = self.read_bytes(name)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise ValueError(f"{self.path}:{name}:{line}: not UTF-8 ({err.reason} at byte {err.start})") from None

    def open_text(self, name: str) -> io.StringIO:
        return io.StringIO(self.read_text(name))

    def where(self, name: str) -> str:
        return f"{self.path.name}:{name}"


def make_doc(
    nlp: Language,
    doc_id: str,
    text: str,
    mentions: Iterable[Mention],
    report: ConversionReport,
    *,
    misaligned: str = "expand",
    spans_key: str = "mentions",
) -> Doc:
    """A Doc of `text` with `mentions` (already mapped to labels; a mention
    with an empty label must be dropped by the caller, counted).

    Every mention is kept in ``user_data["medlink_gold"]`` as
    ``[start, end, label, kb_id]``. Spans: aligned to the tokenizer's
    boundaries, or widened to them ("expand", a note) or dropped ("drop"); a
    widened mention that then swallows a neighbour the corpus kept apart is
    dropped from the spans (it stays in the gold offsets). ``doc.ents`` holds
    the non-overlapping spans (longest first, as spaCy's filter_spans).
    Documents are counted by the caller (one article may give several Docs).
    """
    doc = nlp.make_doc(text)
    doc.user_data["doc_id"] = doc_id
    gold: List[List] = []
    aligned: List[Tuple[Mention, Span]] = []
    expanded: List[Tuple[Mention, Span]] = []
    for mention in mentions:
        report.mentions_read += 1
        gold.append([mention.start, mention.end, mention.label, mention.kb_id])
        span = doc.char_span(mention.start, mention.end, label=mention.label, kb_id=mention.kb_id)
        if span is not None:
            aligned.append((mention, span))
            continue
        if misaligned == "drop":
            report.drop("not aligned to token boundaries", f"{mention.where}: {text[mention.start:mention.end]!r}")
            continue
        span = doc.char_span(mention.start, mention.end, label=mention.label, kb_id=mention.kb_id,
                             alignment_mode="expand")
        if span is None or len(span) == 0:
            report.drop("no token inside the mention", mention.where)
            continue
        expanded.append((mention, span))
    kept = list(aligned)
    for mention, span in expanded:
        clash = any(
            span.start < other.end and other.start < span.end
            and not (mention.start < o.end and o.start < mention.end)
            for o, other in kept
        )
        if clash:
            report.drop("expanded to token boundaries, then overlapped another mention", mention.where)
            continue
        report.note("expanded to token boundaries",
                    f"{mention.where}: {text[mention.start:mention.end]!r} -> {span.text!r}")
        kept.append((mention, span))
    kept.sort(key=lambda item: (item[0].start, item[0].end))
    doc.spans[spans_key] = [span for _, span in kept]
    ents = filter_spans([span for _, span in kept])
    chosen = {(e.start, e.end, e.label) for e in ents}
    for mention, span in kept:
        report.keep(span.label_)
        key = (span.start, span.end, span.label)
        if key in chosen:
            chosen.discard(key)
        else:
            report.note("overlapping mention kept in doc.spans only", mention.where)
    doc.ents = ents
    doc.user_data[GOLD_KEY] = sorted(gold)
    return doc


def gold_mentions(doc: Doc) -> List[Tuple[int, int, str, str]]:
    """The original-offset gold mentions of a converted Doc, or its ents
    (for corpora converted without them, e.g. PubTator)."""
    if GOLD_KEY in doc.user_data:
        return [(int(s), int(e), str(label), str(kb)) for s, e, label, kb in doc.user_data[GOLD_KEY]]
    spans = doc.spans.get("mentions", doc.ents)
    return [(span.start_char, span.end_char, span.label_, span.kb_id_) for span in spans]


def split_paragraphs(text: str, min_chars: int = 1) -> Iterator[Tuple[int, int]]:
    """(start, end) of the blank-line-separated paragraphs of `text`, for
    full texts too long to be one Doc (a mention never spans a blank line
    in the corpora we read; one that does is counted by the caller)."""
    start = 0
    length = len(text)
    while start < length:
        end = text.find("\n\n", start)
        if end == -1:
            end = length
        chunk = text[start:end]
        if len(chunk.strip()) >= min_chars:
            left = start + (len(chunk) - len(chunk.lstrip()))
            right = start + len(chunk.rstrip())
            yield left, right
        start = end + 2


def label_for(type_: str, label_map: Dict[str, str], where: str, report: ConversionReport) -> Optional[str]:
    """The label of a corpus type: a type mapped to "" is left out on purpose
    (counted); a type the map lacks is an error, since it would otherwise
    become a new class or vanish silently."""
    if type_ not in label_map:
        raise ValueError(f"{where}: type {type_!r} is not in the label map {sorted(label_map)}")
    label = label_map[type_]
    if not label:
        report.mentions_read += 1
        report.drop(f"type {type_!r} mapped to no label", where)
        return None
    return label
