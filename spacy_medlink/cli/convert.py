"""`convert`: a raw corpus file to a DocBin (.spacy) and its conversion report.

Like `spacy convert`, but every corpus format keeps the concept IDs, nested
spans and relations (``store_user_data=True``), and nothing is lost quietly:
the report saying what was read, kept, changed and not kept (with the reason)
is printed and written next to the DocBin as ``<name>.report.json``.
"""
import itertools
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import srsly
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from ..corpora.report import ConversionReport, CorpusFormatError
from ._app import app

_SUFFIXES = (".gz", ".txt", ".json", ".jsonl", ".iob2", ".PubTator")


class CorpusFormat(str, Enum):
    pubtator = "pubtator"
    cmeee = "cmeee"
    genia = "genia"
    ccks2019 = "ccks2019"
    craft = "craft"
    brat = "brat"
    ddi = "ddi"


# stand-off formats read from the release as downloaded: a folder or an archive, one split at a time
_STANDOFF = ("craft", "brat", "ddi")


class Misaligned(str, Enum):
    expand = "expand"
    drop = "drop"


class MultiType(str, Enum):
    error = "error"
    first = "first"


@app.command("convert")
def convert_cli(
    # fmt: off
    input_path: Path = typer.Argument(..., help="Corpus file (.gz is read too); craft, brat, ddi: the release folder or its .tar.gz / .zip", exists=True),
    output_dir: Path = typer.Argument(..., help="Output directory (created if missing)", file_okay=False),
    file_format: CorpusFormat = typer.Option(..., "--format", "-f", help="Input format"),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Output file stem (default: the input name without suffixes, plus _SPLIT)"),
    label_map: Optional[str] = typer.Option(None, "--label-map", "-l", help="pubtator, craft, brat, ddi: type -> label, as a preset (ncbi), a JSON object or a .json file (default for craft, brat, ddi: the documented cross-corpus map; map a type to \"\" to leave it out, counted)"),
    split: Optional[str] = typer.Option(None, "--split", "-s", help="genia (JSONL): keep one split only (train, dev, test); ccks2019: train (records 0-799) or dev (800-999); craft: train, dev, test; brat: the folder of the split (e.g. test, devel); ddi: train, test, ddi_test"),
    misaligned: Misaligned = typer.Option(Misaligned.expand, "--misaligned", "-m", help="pubtator: widen mentions that split a token to token boundaries, or drop them"),
    lenient: bool = typer.Option(False, "--lenient", help="pubtator: drop and count malformed mention lines instead of stopping"),
    drop_duplicates: bool = typer.Option(False, "--drop-duplicates", help="pubtator: drop a document whose PMID was seen before (default keeps it, as the official counts do)"),
    pmids: Optional[Path] = typer.Option(None, "--pmids", help="pubtator: keep only the documents whose PMID this file lists (one a line, e.g. MedMentions' corpus_pubtator_pmids_dev.txt); the others, and listed PMIDs not found, are counted", exists=True, dir_okay=False),
    multi_type: MultiType = typer.Option(MultiType.error, "--multi-type", help="pubtator: a mention with several types ('T038,T058', MedMentions full) stops the conversion, or keeps its first type (counted)"),
    limit: int = typer.Option(0, "--limit", help="Stop after this many docs (0: all), e.g. for a smoke run"),
    base: Optional[Path] = typer.Option(None, "--base", "-b", help="Pipeline whose tokenizer to use (default: the biomedical tokenizer; blank 'zh' for cmeee)"),
    # fmt: on
) -> None:
    """Convert a PubTator, CMeEE, GENIA or CCKS 2019 file to OUTPUT_DIR/NAME.spacy and NAME.report.json."""
    if file_format != CorpusFormat.pubtator:
        given = {
            "--label-map": label_map is not None and file_format not in _STANDOFF,
            "--misaligned": misaligned != Misaligned.expand,
            "--lenient": lenient,
            "--drop-duplicates": drop_duplicates,
            "--pmids": pmids is not None,
            "--multi-type": multi_type != MultiType.error,
        }
        for option, is_given in given.items():
            if is_given:
                msg.fail(f"{option} only applies to --format pubtator", exits=1)
    if split is not None and file_format not in (CorpusFormat.genia, CorpusFormat.ccks2019, *_STANDOFF):
        msg.fail("--split only applies to --format genia, ccks2019, craft, brat and ddi", exits=1)
    if file_format in _STANDOFF and split is None:
        msg.fail(f"--format {file_format.value} reads one split of the release: give --split", exits=1)
    if input_path.is_dir() and file_format not in _STANDOFF:
        msg.fail(f"{input_path} is a folder: --format {file_format.value} reads one file", exits=1)
    nlp = _tokenizer_nlp(file_format, base)
    report = ConversionReport(source=str(input_path))
    try:
        docs = _read(
            file_format,
            input_path,
            nlp,
            report,
            label_map=label_map,
            split=split,
            misaligned=misaligned.value,
            strict=not lenient,
            duplicates="drop" if drop_duplicates else "keep",
            pmids=pmids,
            multi_type=multi_type.value,
        )
        if limit > 0:
            docs = itertools.islice(docs, limit)  # lazily: the report counts only what was read
        doc_bin = DocBin(store_user_data=True, docs=docs)
    except (CorpusFormatError, ValueError) as err:
        msg.fail("Conversion failed", str(err), exits=1)
    stem = name or default_stem(input_path, split)
    output_dir.mkdir(parents=True, exist_ok=True)
    output_path = output_dir / f"{stem}.spacy"
    report_path = output_dir / f"{stem}.report.json"
    doc_bin.to_disk(output_path)
    srsly.write_json(report_path, report.to_dict())
    print(report.format())
    if not report.is_balanced():  # a reader bug, never a data problem
        msg.fail("Report does not balance: mentions read != kept + not kept", exits=1)
    skipped_mentions = 0
    if pmids is not None:
        from ..corpora.pubtator import LISTED_MISSING, NOT_LISTED, NOT_LISTED_MENTION

        skipped_mentions = report.dropped[NOT_LISTED_MENTION]
        msg.info(f"{report.dropped[NOT_LISTED]} documents ({skipped_mentions} mentions) skipped: not in {pmids}")
        if report.dropped[LISTED_MISSING]:
            msg.warn(f"{report.dropped[LISTED_MISSING]} PMIDs listed in {pmids} not found in {input_path}")
    if report.mentions_dropped > skipped_mentions:
        msg.warn(f"{report.mentions_dropped - skipped_mentions} mentions not kept (reasons above)")
    msg.good(f"Wrote {len(doc_bin)} docs to {output_path}", f"Report: {report_path}")


def default_stem(input_path: Path, split: Optional[str] = None) -> str:
    """"CDR_TrainingSet.PubTator.txt" -> "CDR_TrainingSet"; a split is appended."""
    stem = input_path.name
    while any(stem.endswith(suffix) for suffix in _SUFFIXES):
        stem = stem[: stem.rindex(".")]
    return f"{stem}_{split}" if split else stem


def _tokenizer_nlp(file_format: CorpusFormat, base: Optional[Path]) -> Language:
    import spacy

    if base is not None:
        return spacy.load(base)
    if file_format in (CorpusFormat.cmeee, CorpusFormat.ccks2019):
        return spacy.blank("zh")  # one token per character: every entity aligns
    from ..tokenizer import biomed_nlp

    return biomed_nlp("en")


def _label_map(label_map: Optional[str]):
    from ..corpora.pubtator import resolve_label_map

    return resolve_label_map(label_map)


def _read(
    file_format: CorpusFormat,
    path: Path,
    nlp: Language,
    report: ConversionReport,
    *,
    label_map: Optional[str],
    split: Optional[str],
    misaligned: str,
    strict: bool,
    duplicates: str,
    pmids: Optional[Path] = None,
    multi_type: str = "error",
) -> Iterator[Doc]:
    # Readers are imported here so that one missing format never breaks the others.
    if file_format == CorpusFormat.pubtator:
        from ..corpora.pubtator import read_pubtator

        return read_pubtator(
            path,
            nlp,
            report,
            label_map=label_map,
            misaligned=misaligned,
            strict=strict,
            duplicates=duplicates,
            pmids=pmids,
            multi_type=multi_type,
        )
    if file_format == CorpusFormat.craft:
        from ..corpora.craft import read_craft

        return read_craft(path, nlp, report, split=split or "test", label_map=_label_map(label_map))
    if file_format == CorpusFormat.brat:
        from ..corpora.brat import read_brat

        return read_brat(path, nlp, report, folder=split or "test", label_map=_label_map(label_map))
    if file_format == CorpusFormat.ddi:
        from ..corpora.ddi import read_ddi

        return read_ddi(path, nlp, report, split=split or "test", label_map=_label_map(label_map))
    if file_format == CorpusFormat.cmeee:
        from ..corpora.cmeee import read_cmeee

        return read_cmeee(path, nlp, report)
    if file_format == CorpusFormat.ccks2019:
        from ..corpora.ccks2019 import read_ccks2019

        return read_ccks2019(path, nlp, report, split=split)
    if ".iob2" in path.suffixes:
        if split is not None:
            raise ValueError("--split applies to the GENIA JSONL; an .iob2 file is one split already")
        from ..corpora.genia import read_genia_iob2

        return read_genia_iob2(path, nlp, report)
    from ..corpora.genia import read_genia

    return read_genia(path, nlp, report, split=split)
