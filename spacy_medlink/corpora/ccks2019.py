"""CCKS 2019 task 1 (Yidu-S4K): Chinese clinical records, six flat entity types.

JSON lines ``{"originalText": str, "entities": [{"label_type", "start_pos",
"end_pos", ...}]}``, with 0-based code-point offsets and an *exclusive*
``end_pos``. One Doc per record, tokenized by the ``nlp`` given
(``spacy.blank("zh")``: one token per character, so every entity aligns).

The official release has train (1,000 records) and test (379). The dev
split is the project's rule (SOURCES.md §9): the first 800 train records
train, the last 200 are dev. ``split`` picks one; ``None`` reads the whole
file. Entities go to ``doc.spans[spans_key]`` and, as the corpus is flat,
to ``doc.ents`` too (the outermost, as for the nested corpora, in case a
record overlaps itself). Spans are kept as released where the tokens allow; a space at the edge of a span is part
of the neighbouring token, so such a span (87 in train, 21 in test) is
trimmed to its characters and counted as changed in the report: a
prediction can only ever match the trimmed span, so against the official
answers those 21 test spans are a ceiling of 21 / 6,002.
"""
import json
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from .cmeee import set_nested_spans
from .report import ConversionReport, CorpusFormatError, examples_from_docs, file_stem, is_int, open_text

CCKS2019_TYPES = ("解剖部位", "疾病和诊断", "药物", "实验室检验", "影像检查", "手术")
CCKS2019_SPLITS = ("train", "dev")
DEV_START = 800  # train records [0, 800) train, [800, 1000) dev


def create_ccks2019_reader(
    path: Union[str, Path], split: Optional[str] = None, spans_key: str = "nested", limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Registered as ``medlink.CCKS2019Corpus.v1`` (setup.cfg entry point).

    split: "train" (records 0-799 of the train file), "dev" (800-999) or
    None (every record: the test file, or all of train).
    """
    return CCKS2019Corpus(path, split=split, spans_key=spans_key, limit=limit)


class CCKS2019Corpus:
    """Iterate Examples from a CCKS 2019 JSON-lines file, like spacy.training.Corpus."""

    def __init__(
        self, path: Union[str, Path], *, split: Optional[str] = None, spans_key: str = "nested", limit: int = 0
    ):
        if split is not None and split not in CCKS2019_SPLITS:
            raise ValueError(f"split must be one of {CCKS2019_SPLITS} or None, not {split!r}")
        self.path = Path(path)
        self.split = split
        self.spans_key = spans_key
        self.limit = limit

    def __call__(self, nlp: Language) -> Iterator[Example]:
        report = ConversionReport(source=str(self.path))
        docs = read_ccks2019(self.path, nlp, report, split=self.split, spans_key=self.spans_key)
        yield from examples_from_docs(nlp, docs, report, self.limit)


def read_ccks2019(
    path: Union[str, Path],
    nlp: Language,
    report: ConversionReport,
    *,
    split: Optional[str] = None,
    spans_key: str = "nested",
) -> Iterator[Doc]:
    """One Doc per record (of the split). Malformed JSON, a missing field or
    an offset outside the text raises CorpusFormatError naming the line;
    records outside the split are counted as skipped documents."""
    path = Path(path)
    if not report.source:
        report.source = str(path)
    with open_text(path, encoding="utf-8-sig") as file_:
        for index, row in enumerate(_lines(path, file_)):
            line, text = row
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise CorpusFormatError(path, line, f"record {index}: invalid JSON: {err.msg}")
            sentence, entities = _parse(path, line, index, record)
            report.documents_read += 1
            in_split = split is None or (split == "train") == (index < DEV_START)
            if not in_split:
                report.drop(f"document: outside split {split!r}", f"{path}:{line}: record {index}")
                report.mentions_read += len(entities)
                report.dropped["outside the split (with its document)"] += len(entities)
                continue
            doc = nlp.make_doc(sentence)
            doc.user_data["doc_id"] = f"{file_stem(path)}:{index}"
            spans, seen = [], set()
            for start, end, label in entities:
                report.mentions_read += 1
                where = f"{path}:{line}: record {index}, {label} {start}-{end}"
                if (start, end, label) in seen:
                    report.drop("duplicate span (same start, end, type)", where)
                    continue
                seen.add((start, end, label))
                span = doc.char_span(start, end, label=label)
                mention = sentence[start:end]
                if span is None and mention.strip() and mention != mention.strip():
                    # a space at the edge belongs to the neighbouring token
                    span = doc.char_span(start, end, label=label, alignment_mode="contract")
                    if span is not None:
                        report.note("space at the edge trimmed, to align with tokens", where)
                if span is None:
                    report.drop("does not align with tokens", where)
                    continue
                spans.append(span)
                report.keep(label)
            set_nested_spans(doc, spans, spans_key, report, f"{path}:{line}: record {index}")
            report.documents_kept += 1
            yield doc


def _parse(path: Path, line: int, index: int, record):
    where = f"record {index}"
    if not isinstance(record, dict) or not isinstance(record.get("originalText"), str):
        raise CorpusFormatError(path, line, f"{where}: expected an object with an 'originalText' string")
    text = record["originalText"]
    raw = record.get("entities", [])
    if not isinstance(raw, list):
        raise CorpusFormatError(path, line, f"{where}: 'entities' is not a list")
    entities = []
    for j, ent in enumerate(raw):
        try:
            start, end, label = ent["start_pos"], ent["end_pos"], ent["label_type"]
        except (KeyError, TypeError):
            raise CorpusFormatError(path, line, f"{where}: entity {j} needs 'start_pos', 'end_pos' and 'label_type': {ent!r}")
        if not (is_int(start) and is_int(end) and isinstance(label, str) and label):
            raise CorpusFormatError(path, line, f"{where}: entity {j} is malformed: {ent!r}")
        if not 0 <= start < end <= len(text):
            raise CorpusFormatError(
                path, line, f"{where}: {label} offsets {start}-{end} (exclusive end) outside the text of {len(text)} characters"
            )
        entities.append((start, end, label))
    return text, entities


def _lines(path: Path, file_) -> Iterator:
    for line, text in enumerate(file_, start=1):
        if text.strip():
            yield line, text
