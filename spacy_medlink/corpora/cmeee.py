"""CMeEE (CBLUE) Chinese medical nested NER: the JSON release and the CHIP-2020 lines.

Both formats use *inclusive* end offsets. The CMeEE train split circulates as
the CHIP-2020 task 1 text file (``text|||start    end    type|||...``) as well
as JSON, so the format is sniffed from the content rather than the file name,
and both give the same Docs. One Doc per sentence, tokenized by the ``nlp``
given (``spacy.blank("zh")``: spaCy's default Chinese segmenter is ``"char"``,
one token per character, and needs no extra package), so every entity aligns.

Doc contract for nested corpora: every entity in ``doc.spans[spans_key]``,
``doc.ents`` the outermost non-overlapping ones (``filter_spans``).
"""
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import filter_spans

from .report import ConversionReport, CorpusFormatError, examples_from_docs, file_stem, is_int, open_text

CMEEE_TYPES = ("dis", "sym", "dru", "equ", "pro", "bod", "ite", "mic", "dep")
# (start, inclusive end, type, entity text or None)
RawEntity = Tuple[int, int, str, Optional[str]]
# (line number, record index, text, entities)
RawRecord = Tuple[int, int, str, List[RawEntity]]


def create_cmeee_reader(
    path: Union[str, Path], spans_key: str = "nested", limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Registered as ``medlink.CMeEECorpus.v1`` (setup.cfg entry point)."""
    return CMeEECorpus(path, spans_key=spans_key, limit=limit)


class CMeEECorpus:
    """Iterate Examples from a CMeEE JSON or CHIP-2020 file, like spacy.training.Corpus.

    path: a .json, .json.gz, .txt or .txt.gz file.
    spans_key: the doc.spans key for all (nested) entities.
    limit: stop after this many sentences; 0 reads all.
    """

    def __init__(self, path: Union[str, Path], *, spans_key: str = "nested", limit: int = 0):
        self.path = Path(path)
        self.spans_key = spans_key
        self.limit = limit

    def __call__(self, nlp: Language) -> Iterator[Example]:
        report = ConversionReport(source=str(self.path))
        docs = read_cmeee(self.path, nlp, report, spans_key=self.spans_key)
        yield from examples_from_docs(nlp, docs, report, self.limit)


def read_cmeee(
    path: Union[str, Path], nlp: Language, report: ConversionReport, *, spans_key: str = "nested"
) -> Iterator[Doc]:
    """Read one Doc per sentence from a CMeEE JSON array or a CHIP-2020 text file.

    Empty entities (``end_idx == start_idx - 1``, two in train) are dropped and
    counted; an ``entity`` string that is not ``text[start:end+1]``, or an offset
    outside the text, raises CorpusFormatError.
    """
    path = Path(path)
    if not report.source:
        report.source = str(path)
    stem = file_stem(path)
    with open_text(path) as file_:
        text = file_.read()
    if text.lstrip().startswith("["):
        records: Iterable[RawRecord] = _iter_json(path, text)
    else:
        records = _iter_chip(path, text)
    for line, index, sentence, entities in records:
        report.documents_read += 1
        doc = nlp.make_doc(sentence)
        doc.user_data["doc_id"] = f"{stem}:{index}"
        spans = []
        seen = set()
        for start, end, label, entity in entities:
            report.mentions_read += 1
            where = f"{path}:{line}: record {index}, {label} {start}-{end}"
            if end == start - 1:
                report.drop("empty entity", where)
                continue
            if not 0 <= start <= end < len(sentence):
                raise CorpusFormatError(
                    path,
                    line,
                    f"record {index}: {label} offsets {start}-{end} (inclusive end) "
                    f"outside the text of {len(sentence)} characters",
                )
            if entity is not None and sentence[start : end + 1] != entity:
                raise CorpusFormatError(
                    path,
                    line,
                    f"record {index}: entity {entity!r} does not match "
                    f"text[{start}:{end}+1] = {sentence[start:end + 1]!r}",
                )
            if (start, end, label) in seen:
                report.drop("duplicate span (same start, end, type)", where)
                continue
            seen.add((start, end, label))
            span = doc.char_span(start, end + 1, label=label)
            if span is None:
                report.drop("does not align with tokens", where)
                continue
            spans.append(span)
            report.keep(label)
        set_nested_spans(doc, spans, spans_key, report, f"{path}:{line}: record {index}")
        report.documents_kept += 1
        yield doc


def set_nested_spans(doc: Doc, spans, spans_key: str, report: ConversionReport, where: str) -> None:
    """All spans in doc.spans[spans_key]; the outermost non-overlapping in doc.ents.

    ``filter_spans`` prefers the longest span, so doc.ents holds the outer
    entities; each entity left out of doc.ents is counted as a note.
    """
    spans = sorted(spans, key=lambda s: (s.start, -s.end, s.label_))
    doc.spans[spans_key] = spans
    outer = filter_spans(spans)
    doc.ents = outer
    in_ents = {(s.start, s.end, s.label) for s in outer}
    for span in spans:
        if (span.start, span.end, span.label) not in in_ents:
            report.note(
                "nested: kept in doc.spans only",
                f"{where}: {span.label_} {span.text!r} [{span.start_char}:{span.end_char}]",
            )


def _iter_json(path: Path, text: str) -> Iterator[RawRecord]:
    """Walk the top-level array one record at a time, so errors can name the line."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    line = 1 + text.count("\n", 0, pos)
    if text[pos : pos + 1] != "[":
        raise CorpusFormatError(path, line, "expected a JSON array of CMeEE records")
    last = pos
    pos = _skip_ws(text, pos + 1)
    index = 0
    while text[pos : pos + 1] != "]":
        line += text.count("\n", last, pos)
        last = pos
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise CorpusFormatError(path, err.lineno, f"record {index}: invalid JSON: {err.msg}")
        yield line, index, *_parse_json_record(path, line, index, record)
        index += 1
        pos = _skip_ws(text, pos)
        if text[pos : pos + 1] == ",":
            pos = _skip_ws(text, pos + 1)
        elif text[pos : pos + 1] != "]":
            line += text.count("\n", last, pos)
            last = pos
            raise CorpusFormatError(path, line, f"after record {index - 1}: expected ',' or ']'")


def _parse_json_record(path: Path, line: int, index: int, record) -> Tuple[str, List[RawEntity]]:
    where = f"record {index} (0-based, starting on this line)"
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise CorpusFormatError(path, line, f"{where}: expected an object with a 'text' string")
    raw_entities = record.get("entities", [])  # the v1 test file has no 'entities'
    if not isinstance(raw_entities, list):
        raise CorpusFormatError(path, line, f"{where}: 'entities' is not a list")
    entities = []
    for j, ent in enumerate(raw_entities):
        try:
            start, end, label = ent["start_idx"], ent["end_idx"], ent["type"]
            entity = ent.get("entity")
        except (KeyError, TypeError, AttributeError):
            raise CorpusFormatError(
                path, line, f"{where}: entity {j} needs 'start_idx', 'end_idx' and 'type': {ent!r}"
            )
        if not (is_int(start) and is_int(end) and isinstance(label, str) and label):
            raise CorpusFormatError(path, line, f"{where}: entity {j} is malformed: {ent!r}")
        if entity is not None and not isinstance(entity, str):
            raise CorpusFormatError(path, line, f"{where}: entity {j}: 'entity' is not a string")
        entities.append((start, end, label, entity))
    return record["text"], entities


def _iter_chip(path: Path, text: str) -> Iterator[RawRecord]:
    """CHIP-2020 task 1: ``text|||start    end    type|||...|||``, one sentence a line."""
    index = 0
    for line, row in enumerate(text.split("\n"), start=1):
        row = row.rstrip("\r")
        if not row.strip():
            continue
        if "|||" not in row:
            raise CorpusFormatError(path, line, "expected 'text|||start    end    type|||...'")
        sentence, *fields = row.split("|||")
        entities = []
        for field in fields:
            if not field.strip():
                continue
            parts = field.split()
            if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts[:2]):
                raise CorpusFormatError(
                    path, line, f"sentence {index}: expected 'start    end    type', got {field!r}"
                )
            entities.append((int(parts[0]), int(parts[1]), parts[2], None))
        yield line, index, sentence, entities
        index += 1




def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
