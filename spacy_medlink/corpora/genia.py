"""GENIA term corpus 3.02, nested biomedical NER with the usual 5 types.

Two inputs:
- ``genia_term_3.02_sentences.jsonl(.gz)``: one sentence a line, derived from the
  official XML, with exact end-exclusive character offsets for every ``<cons>``.
  Tokenized by the ``nlp`` given (the project passes the biomedical English
  tokenizer); entities that do not fall on token boundaries are expanded to
  them, and counted. This is the input for training.
- ``genia.{dev,test}.iob2(.gz)``: the Finkel & Manning / Lu & Roth preprocessing
  (tokens given, 4 IOB2 label layers, outermost first) that published nested-NER
  numbers use; read only to compare with them.

The split is contiguous by sentence (train 0-15022, dev 15023-16691, test
16692-18545); the reader filters on the file's ``split`` field and checks that
each split is one contiguous block.
"""
import json
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from .cmeee import set_nested_spans
from .report import ConversionReport, CorpusFormatError, examples_from_docs, file_stem, is_int, open_text

GENIA_SPLITS = ("train", "dev", "test")
GENIA_TYPES = ("DNA", "RNA", "protein", "cell_line", "cell_type")
NO_TYPE = "no 5-class type: coordination or unclassified"


def create_genia_reader(
    path: Union[str, Path], split: Optional[str] = None, spans_key: str = "nested", limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Registered as ``medlink.GeniaCorpus.v1`` (setup.cfg entry point).

    A path with ``.iob2`` in its name is read with ``read_genia_iob2`` (gold
    tokens, no split filter); anything else as the sentence JSONL.
    """
    return GeniaCorpus(path, split=split, spans_key=spans_key, limit=limit)


class GeniaCorpus:
    """Iterate Examples from the GENIA JSONL (or iob2) file, like spacy.training.Corpus."""

    def __init__(
        self,
        path: Union[str, Path],
        *,
        split: Optional[str] = None,
        spans_key: str = "nested",
        limit: int = 0,
    ):
        self.path = Path(path)
        self.split = split
        self.spans_key = spans_key
        self.limit = limit
        self.is_iob2 = _is_iob2(self.path)
        if self.is_iob2 and split is not None:
            raise ValueError(f"{self.path}: an iob2 file holds one split; leave split unset")
        _check_split(split)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        report = ConversionReport(source=str(self.path))
        if self.is_iob2:
            docs = read_genia_iob2(self.path, nlp, report, spans_key=self.spans_key)
        else:
            docs = read_genia(self.path, nlp, report, split=self.split, spans_key=self.spans_key)
        # IOB2 keeps the gold tokens, as the published numbers do
        yield from examples_from_docs(nlp, docs, report, self.limit, gold_tokens=self.is_iob2)


def read_genia(
    path: Union[str, Path],
    nlp: Language,
    report: ConversionReport,
    *,
    split: Optional[str] = None,
    spans_key: str = "nested",
) -> Iterator[Doc]:
    """Read one Doc per sentence of the GENIA JSONL, optionally one split only.

    Entities without a 5-class ``type`` (coordinations, other classes) and exact
    duplicates (same start, end and type, e.g. two GENIA classes collapsing to
    one) are dropped and counted; misaligned ones are expanded to token
    boundaries with a note.
    """
    _check_split(split)
    path = Path(path)
    if not report.source:
        report.source = str(path) if split is None else f"{path} ({split})"
    finished: List[str] = []
    with open_text(path) as file_:
        for line, row in enumerate(file_, start=1):
            if not row.strip():
                continue
            try:
                record = json.loads(row)
            except json.JSONDecodeError as err:
                raise CorpusFormatError(path, line, f"invalid JSON: {err}")
            text, entities = _parse_record(path, line, record)
            part = record["split"]
            if not finished or finished[-1] != part:
                if part in finished:
                    raise CorpusFormatError(
                        path, line, f"split {part!r} resumes after {finished[-1]!r}: not contiguous"
                    )
                finished.append(part)
            if split is not None and part != split:
                continue
            yield _make_doc(path, line, record, text, entities, nlp, report, spans_key)


def _make_doc(path, line, record, text, entities, nlp, report, spans_key) -> Doc:
    report.documents_read += 1
    doc = nlp.make_doc(text)
    doc.user_data["doc_id"] = str(record["id"])
    doc.user_data["pmid"] = str(record.get("pmid", ""))
    seen_chars = set()
    seen_tokens = set()
    spans = []
    for start, end, label in entities:
        report.mentions_read += 1
        where = f"{path}:{line}: {label} {text[start:end]!r} [{start}:{end}]"
        if label is None:
            report.drop(NO_TYPE, where)
            continue
        if (start, end, label) in seen_chars:
            report.drop("exact duplicate (same start, end, type)", where)
            continue
        seen_chars.add((start, end, label))
        span = doc.char_span(start, end, label=label)
        if span is None:
            span = doc.char_span(start, end, label=label, alignment_mode="expand")
            if span is None:
                report.drop("does not align with tokens", where)
                continue
            if (span.start, span.end, label) in seen_tokens:
                report.drop("misaligned: expanding it duplicates another span", where)
                continue
            report.note("misaligned: expanded to token boundaries", f"{where} -> {span.text!r}")
        elif (span.start, span.end, label) in seen_tokens:
            # an earlier misaligned entity expanded onto this one
            report.drop("misaligned: expanding it duplicates another span", where)
            continue
        seen_tokens.add((span.start, span.end, label))
        spans.append(span)
        report.keep(label)
    set_nested_spans(doc, spans, spans_key, report, f"{path}:{line}")
    report.documents_kept += 1
    return doc


def _parse_record(path: Path, line: int, record) -> Tuple[str, List[Tuple[int, int, Optional[str]]]]:
    if not isinstance(record, dict):
        raise CorpusFormatError(path, line, "expected a JSON object")
    for key in ("id", "text", "split", "entities"):
        if key not in record:
            raise CorpusFormatError(path, line, f"missing {key!r}")
    text = record["text"]
    if not isinstance(text, str) or not isinstance(record["entities"], list):
        raise CorpusFormatError(path, line, "'text' must be a string and 'entities' a list")
    if record["split"] not in GENIA_SPLITS:
        raise CorpusFormatError(path, line, f"split {record['split']!r} not in {GENIA_SPLITS}")
    entities = []
    for j, ent in enumerate(record["entities"]):
        if not isinstance(ent, dict) or not {"start", "end", "type"} <= ent.keys():
            raise CorpusFormatError(path, line, f"entity {j} needs 'start', 'end' and 'type'")
        start, end, label = ent["start"], ent["end"], ent["type"]
        if not (is_int(start) and is_int(end) and 0 <= start < end <= len(text)):
            raise CorpusFormatError(
                path,
                line,
                f"entity {j}: offsets {start!r}-{end!r} outside the text of {len(text)} characters",
            )
        if "text" in ent and text[start:end] != ent["text"]:
            raise CorpusFormatError(
                path,
                line,
                f"entity {j}: {ent['text']!r} does not match text[{start}:{end}] = {text[start:end]!r}",
            )
        if label is not None and label not in GENIA_TYPES:
            raise CorpusFormatError(
                path, line, f"entity {j}: type {label!r} not in {GENIA_TYPES} or null"
            )
        entities.append((start, end, label))
    return text, entities


def read_genia_iob2(
    path: Union[str, Path], nlp: Language, report: ConversionReport, *, spans_key: str = "nested"
) -> Iterator[Doc]:
    """Read the layered IOB2 files (token, then one label column per nesting level).

    Tokens are given, so Docs are built from them (``Doc(vocab, words=...)``,
    a space after every token). The same span with the same type in two layers
    is dropped as a duplicate; an ``I-`` that continues nothing starts an entity,
    with a note.
    """
    path = Path(path)
    if not report.source:
        report.source = str(path)
    stem = file_stem(path)
    index = 0
    rows: List[Tuple[int, List[str]]] = []
    n_columns = 0
    with open_text(path) as file_:
        for line, row in enumerate(file_, start=1):
            row = row.rstrip("\r\n")
            if row.strip():
                columns = row.split("\t")
                if len(columns) < 2 or not columns[0]:
                    raise CorpusFormatError(path, line, "expected a token and TAB-separated IOB2 labels")
                if n_columns and len(columns) != n_columns:
                    raise CorpusFormatError(
                        path, line, f"{len(columns)} columns where earlier lines have {n_columns}"
                    )
                n_columns = len(columns)
                rows.append((line, columns))
                continue
            if rows:
                yield _iob2_doc(path, stem, index, rows, nlp, report, spans_key)
                index += 1
                rows = []
    if rows:
        yield _iob2_doc(path, stem, index, rows, nlp, report, spans_key)


def _iob2_doc(path, stem, index, rows, nlp, report, spans_key) -> Doc:
    report.documents_read += 1
    first_line = rows[0][0]
    doc = Doc(nlp.vocab, words=[columns[0] for _, columns in rows])
    doc.user_data["doc_id"] = f"{stem}:{index}"
    spans = []
    seen = set()
    for layer in range(1, len(rows[0][1])):
        for start, end, label in _decode_iob2(path, rows, layer, report):
            report.mentions_read += 1
            where = f"{path}:{rows[start][0]}: layer {layer} {label} tokens {start}-{end}"
            if (start, end, label) in seen:
                report.drop("duplicate span across label layers", where)
                continue
            seen.add((start, end, label))
            spans.append(Span(doc, start, end, label=label))
            report.keep(label)
    set_nested_spans(doc, spans, spans_key, report, f"{path}:{first_line}")
    report.documents_kept += 1
    return doc


def _decode_iob2(path, rows, layer, report) -> List[Tuple[int, int, str]]:
    entities = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, (line, columns) in enumerate(rows):
        tag = columns[layer]
        if tag == "O":
            prefix, tag_label = "O", None
        elif tag[:2] in ("B-", "I-") and len(tag) > 2:
            prefix, tag_label = tag[0], tag[2:]
        else:
            raise CorpusFormatError(path, line, f"label {tag!r} in column {layer + 1} is not O, B-X or I-X")
        if prefix == "I" and tag_label == label:
            continue
        if start is not None:
            entities.append((start, i, label))
            start, label = None, None
        if prefix == "I":
            report.note("IOB2: I- continuing nothing read as B-", f"{path}:{line}: {tag}")
        if prefix != "O":
            start, label = i, tag_label
    if start is not None:
        entities.append((start, len(rows), label))
    return entities


def _check_split(split: Optional[str]) -> None:
    if split is not None and split not in GENIA_SPLITS:
        raise ValueError(f"split must be one of {GENIA_SPLITS} or None, not {split!r}")



def _is_iob2(path: Path) -> bool:
    return ".iob2" in path.suffixes
