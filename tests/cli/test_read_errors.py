"""Input files that cannot be read: a clear error naming the file and line, from `annotate`,
`convert` and every corpus reader, never a bare UnicodeDecodeError or click's "Aborted"."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_medlink.annotate.records import read_records
from spacy_medlink.cli import app
from spacy_medlink.corpora.ccks2019 import read_ccks2019
from spacy_medlink.corpora.cmeee import read_cmeee
from spacy_medlink.corpora.genia import read_genia, read_genia_iob2
from spacy_medlink.corpora.pubtator import read_pubtator
from spacy_medlink.corpora.report import ConversionReport, CorpusFormatError, open_text

from .test_annotate import model  # noqa: F401  (the ruler pipeline fixture)

LATIN1 = "first line\nsecond: café au lait\nthird\n".encode("latin1")  # 0xe9 on line 2


def _latin1(path: Path) -> Path:
    path.write_bytes(LATIN1)
    return path


def _truncated_gz(path: Path, text: str) -> Path:
    data = gzip.compress(text.encode("utf8"))
    path.write_bytes(data[: len(data) // 2])
    return path


def _jsonl_text(n: int) -> str:
    return "".join(json.dumps({"id": str(i), "text": f"cisplatin case {i} " + "x" * 100}) + "\n" for i in range(n))


def _pubmed_text(n: int) -> str:
    articles = "".join(f"<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>On cisplatin {i}."
                       "</ArticleTitle></Article></MedlineCitation></PubmedArticle>" for i in range(n))
    return f"<?xml version='1.0'?><PubmedArticleSet>{articles}</PubmedArticleSet>"


@pytest.mark.parametrize("encoding", ["utf8", "utf-8-sig"])
def test_bad_bytes_name_file_line_and_column(tmp_path, encoding):
    path = _latin1(tmp_path / "latin1.txt")
    with pytest.raises(CorpusFormatError) as err, open_text(path, encoding=encoding) as f:
        list(f)
    assert str(err.value).startswith(f"{path}:2: not UTF-8 text: byte 0xe9 at column 12")
    assert (err.value.path, err.value.line) == (str(path), 2)
    with pytest.raises(CorpusFormatError, match=":2: not UTF-8"), open_text(path, encoding=encoding) as f:
        f.read()


def test_truncated_gzip_names_file_and_line(tmp_path):
    text = _jsonl_text(500)
    path = _truncated_gz(tmp_path / "in.jsonl.gz", text)
    with pytest.raises(CorpusFormatError, match="ends early: the file is truncated") as err, open_text(path) as f:
        for _ in f:
            pass
    assert err.value.path == str(path) and 1 < err.value.line <= text.count("\n")
    whole = tmp_path / "whole.jsonl.gz"
    whole.write_bytes(gzip.compress(text.encode("utf8")))
    with open_text(whole) as f:
        assert f.read() == text


@pytest.mark.parametrize("reader,lang", [(read_pubtator, "en"), (read_cmeee, "zh"), (read_genia, "en"),
                                         (read_genia_iob2, "en"), (read_ccks2019, "zh")])
def test_corpus_readers_name_file_and_line(tmp_path, reader, lang):
    path = _latin1(tmp_path / ("corpus.iob2" if reader is read_genia_iob2 else "corpus.txt"))
    with pytest.raises(CorpusFormatError) as err:
        list(reader(path, spacy.blank(lang), ConversionReport()))
    assert str(err.value).startswith(f"{path}:2: not UTF-8 text")


def test_convert_reports_file_and_line(tmp_path):
    src = _truncated_gz(tmp_path / "corpus.pubtator.gz",
                        "".join(f"{i}|t|Cisplatin {i}.\n{i}|a|Renal failure.\n\n" for i in range(2000)))
    result = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "out"), "--format", "pubtator"])
    output = " ".join(result.output.split())  # unwrapped
    assert result.exit_code == 1 and f"{src}:" in output and "the file is truncated" in output
    src = _latin1(tmp_path / "corpus.pubtator")
    result = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "out"), "--format", "pubtator"])
    assert result.exit_code == 1 and f"{src}:2: not UTF-8 text" in " ".join(result.output.split())


def test_annotate_names_file_and_line(model, tmp_path):  # noqa: F811
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("cisplatin", encoding="utf8")
    bad = _latin1(folder / "b.txt")
    jsonl = _truncated_gz(tmp_path / "in.jsonl.gz", _jsonl_text(2000))
    pubmed = _truncated_gz(tmp_path / "pubmed.xml.gz", _pubmed_text(3000))
    for src, start, reason in [(folder, f"{bad}:2:", "not UTF-8 text"), (jsonl, f"{jsonl}:", "truncated"),
                               (pubmed, f"{pubmed}:", "truncated")]:
        for count in ("--count", "--no-count"):
            result = CliRunner().invoke(app, ["annotate", str(model), str(src), "-o", str(tmp_path / "out"), count])
            assert result.exit_code != 0 and isinstance(result.exception, CorpusFormatError), (src, result.output)
            assert str(result.exception).startswith(start) and reason in str(result.exception)
    assert " articles read before it" in str(result.exception)


def test_bioc_reader_keeps_the_location(tmp_path):
    """The BioC parser calls our reader: its error comes through, not "not a BioC collection"."""
    path = tmp_path / "in.bioc.xml"
    path.write_bytes(b"<?xml version='1.0' encoding='UTF-8'?>\n<collection><source/><date/><key/>\n<document><id>1"
                     b"</id><passage><offset>0</offset><text>caf\xe9</text></passage></document></collection>\n")
    with pytest.raises(CorpusFormatError, match=r"in\.bioc\.xml:3: not UTF-8 text: byte 0xe9"):
        list(read_records([path], "bioc-xml"))


def test_command_line_prints_the_error_not_a_traceback(model, tmp_path):  # noqa: F811
    src = _truncated_gz(tmp_path / "in.jsonl.gz", _jsonl_text(2000))
    result = subprocess.run([sys.executable, "-m", "spacy_medlink", "annotate", str(model), str(src),
                             "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {src}:") and "truncated" in result.stderr
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr + result.stdout
