"""`annotate`: every input format in, every output format out, nothing lost or written twice."""
import gzip
import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_medlink.annotate.records import read_records, sniff_format, split_sections
from spacy_medlink.annotate.run import annotate, done_chunks
from spacy_medlink.cli import app
from spacy_medlink.corpora.report import CorpusFormatError

PATTERNS = [{"label": "Chemical", "pattern": "cisplatin"},
            {"label": "Disease", "pattern": [{"LOWER": "renal"}, {"LOWER": "failure"}]}]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A ruler for entities and our KB linker for IDs: registered factories only, so fresh
    processes (Ray's workers) load it too."""
    from spacy.training import Example

    from spacy_medlink.kb.candidates import CandidateGenerator
    from spacy_medlink.kb.concept_kb import Concept, ConceptKB

    root = tmp_path_factory.mktemp("model")
    kb = ConceptKB()
    kb.add(Concept("D002945", "Cisplatin", (), ("Chemical",)))
    kb.add(Concept("D051437", "Renal Insufficiency", ("renal failure",), ("Disease",)))
    CandidateGenerator(kb).to_disk(root / "kb")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.add_pipe("medlink_kb_linker")
    nlp.config["initialize"]["components"]["medlink_kb_linker"] = {"kb_path": str(root / "kb")}
    doc = nlp.make_doc("cisplatin")
    nlp.initialize(lambda: [Example(doc, doc)])
    ruler.add_patterns(PATTERNS)  # after initialize, which starts the ruler empty
    nlp.to_disk(root / "pipeline")
    return root / "pipeline"


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf8")
    return path


def _outputs(out: Path):
    rows = []
    for part in sorted(out.glob("part-*.jsonl")):
        rows.extend(json.loads(line) for line in part.read_text(encoding="utf8").splitlines())
    return rows


def test_jsonl_in_and_out_with_offsets(model, tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [{"id": f"d{i}", "text": f"Cisplatin caused renal failure in case {i}."} for i in range(5)]
                 + [{"id": "empty", "text": "   "}])
    result = CliRunner().invoke(app, ["annotate", str(model), str(src), "-o", str(tmp_path / "out"), "--chunk-size", "2"])
    assert result.exit_code == 0, result.output
    rows = _outputs(tmp_path / "out")
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(5)] + ["empty"]
    text = "Cisplatin caused renal failure in case 0."
    assert [(e["text"], e["label"], e["kb_id"], text[e["start"]:e["end"]]) for e in rows[0]["entities"]] == \
        [("Cisplatin", "Chemical", "D002945", "Cisplatin"), ("renal failure", "Disease", "D051437", "renal failure")]
    assert rows[-1]["entities"] == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["read"] == 6 == summary["annotated"] and summary["empty"] == 1
    assert summary["entities_per_type"] == {"Chemical": 5, "Disease": 5} and summary["chunks"] == 3
    assert 0 <= summary["first_record_seconds"] <= summary["seconds"] and summary["steady_docs_per_s"] > 0


def test_malformed_record_names_file_and_line_or_is_counted(model, tmp_path):
    src = _jsonl(tmp_path / "bad.jsonl", [{"id": "a", "text": "cisplatin"}, "{not json", {"id": "c", "txt": "x"},
                                          {"id": "d", "text": "renal failure"}])
    result = CliRunner().invoke(app, ["annotate", str(model), str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and isinstance(result.exception, CorpusFormatError)
    assert str(result.exception).startswith(f"{src}:2:")
    result = CliRunner().invoke(app, ["annotate", str(model), str(src), "-o", str(tmp_path / "out2"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert summary["read"] == 4 and summary["annotated"] == 2 and summary["skipped"] == {"malformed": 2}
    listed = [json.loads(line) for line in (tmp_path / "out2" / "skipped.jsonl").read_text().splitlines()]
    assert [b["line"] for b in listed] == [2, 3] and "text" in listed[1]["reason"]


def test_resume_after_the_last_complete_chunk(model, tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": "cisplatin"} for i in range(7)])
    nlp = spacy.load(model)
    out = tmp_path / "out"
    annotate(nlp, read_records([src]), out, chunk_size=3)
    (out / "part-00001.json").unlink()  # as if killed after writing chunk 1's data, before its manifest
    (out / "part-00002.jsonl").unlink()
    summary = annotate(nlp, read_records([src]), out, chunk_size=3)
    assert summary["resumed"] == 3 and summary["annotated"] == 4 and summary["read"] == 7
    assert [r["id"] for r in _outputs(out)] == [str(i) for i in range(7)]  # each exactly once
    assert len(done_chunks(out)) == 3 and not list(out.glob("*.tmp"))
    changed = _jsonl(tmp_path / "changed.jsonl", [{"id": "x", "text": "cisplatin"}] * 7)
    with pytest.raises(ValueError, match="changed since the first run"):
        annotate(nlp, read_records([changed]), out, chunk_size=3)


def test_long_text_in_sections(model, tmp_path):
    text = ("Patients on cisplatin. " * 50 + "\n\n") * 20 + "Then renal failure."
    assert all(len(s) <= 500 for _, s in split_sections(text, 500))
    assert "".join(s for _, s in split_sections(text, 500)) == text
    src = _jsonl(tmp_path / "long.jsonl", [{"id": "long", "text": text}])
    summary = annotate(spacy.load(model), read_records([src]), tmp_path / "out", max_chars=500)
    assert summary["sectioned"] == 1
    ents = _outputs(tmp_path / "out")[0]["entities"]
    assert len(ents) == 1001 and all(text[e["start"]:e["end"]] == e["text"] for e in ents)
    assert ents[-1]["text"] == "renal failure"


def test_formats_sniffed_and_round_tripped(model, tmp_path):
    pubtator = tmp_path / "in.pubtator"
    pubtator.write_text("1|t|Cisplatin toxicity.\n1|a|It caused renal failure.\n1\t0\t9\tCisplatin\tChemical\tD002945\n\n"
                        "2|t|Nothing here.\n2|a|\n\n", encoding="utf8")
    pubmed = tmp_path / "pubmed.xml.gz"
    with gzip.open(pubmed, "wt", encoding="utf8") as f:
        f.write("<?xml version='1.0'?><PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>9</PMID><Article>"
                "<ArticleTitle>On cisplatin.</ArticleTitle><Abstract><AbstractText>Renal failure.</AbstractText>"
                "</Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>")
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("cisplatin", encoding="utf8")
    jsonl = _jsonl(tmp_path / "x.jsonl", [{"id": "j", "text": "renal failure"}])
    assert [sniff_format(p) for p in (pubtator, pubmed, folder, jsonl)] == ["pubtator", "pubmed-xml", "text", "jsonl"]
    records = list(read_records([pubtator, pubmed, folder, jsonl]))
    assert [(r.id, r.passages) for r in records] == [("1", (("t", 0), ("a", 20))), ("2", (("t", 0), ("a", 14))),
                                                    ("9", (("t", 0), ("a", 14))), ("a", ()), ("j", ())]
    assert records[2].text == "On cisplatin. Renal failure."
    nlp = spacy.load(model)
    annotate(nlp, read_records([pubtator]), tmp_path / "pt", fmt="pubtator")
    written = (tmp_path / "pt" / "part-00000.pubtator").read_text(encoding="utf8")
    assert written.startswith("1|t|Cisplatin toxicity.\n1|a|It caused renal failure.\n1\t0\t9\tCisplatin\tChemical\tD002945\n"
                              "1\t30\t43\trenal failure\tDisease\tD051437\n\n2|t|")
    # our PubTator output reads back as the same records
    again = list(read_records([tmp_path / "pt" / "part-00000.pubtator"]))
    assert [(r.id, r.text) for r in again] == [(r.id, r.text) for r in records[:2]]
    annotate(nlp, read_records([pubtator]), tmp_path / "bioc", fmt="bioc-xml")
    bioc_out = tmp_path / "bioc" / "part-00000.bioc.xml"
    assert sniff_format(bioc_out) == "bioc-xml"
    import bioc

    with bioc_out.open(encoding="utf8") as f:
        collection = bioc.load(f)
    passage = collection.documents[0].passages[1]
    ann = passage.annotations[0]
    assert (passage.offset, ann.text, ann.infons["identifier"], ann.locations[0].offset) == (20, "renal failure", "D051437", 30)
    assert [(r.id, r.text) for r in read_records([bioc_out])] == [(r.id, r.text) for r in records[:2]]


def test_two_processes_match_one(model, tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": "cisplatin and renal failure " * (i + 1)} for i in range(12)])
    nlp = spacy.load(model)
    annotate(nlp, read_records([src]), tmp_path / "one", chunk_size=5)
    annotate(nlp, read_records([src]), tmp_path / "two", chunk_size=5, n_process=2, batch_size=2)
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "two")
    # sections annotated by different workers land at their record's offsets
    annotate(nlp, read_records([src]), tmp_path / "one_s", chunk_size=5, max_chars=60)
    summary = annotate(nlp, read_records([src]), tmp_path / "two_s", chunk_size=5, n_process=2, batch_size=3,
                       max_chars=60)
    assert summary["sectioned"] > 0 and summary["annotated"] == 12
    assert _outputs(tmp_path / "one_s") == _outputs(tmp_path / "two_s")
    assert [e["start"] for e in _outputs(tmp_path / "two_s")[-1]["entities"]][-1] > 300


def test_unknown_formats(model, tmp_path):
    with pytest.raises(ValueError, match="output format"):
        annotate(spacy.load(model), [], tmp_path / "o", fmt="csv")
    src = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "x"}])
    with pytest.raises(ValueError, match="input format"):
        list(read_records([src], "csv"))
    with pytest.raises(FileNotFoundError):
        list(read_records([tmp_path / "missing.jsonl"]))


def test_benchmark_annotate_counts_cpu_per_setting(model, tmp_path):
    """Each setting's row says where the cores went, and a one-thread variant of one process
    is a second baseline for the speedups."""
    import typer

    from spacy_medlink.cli.benchmark_annotate import parse_setting

    assert parse_setting("local:1:1") == ("local", 1, 1) and parse_setting("ray:2") == ("ray", 2, None)
    with pytest.raises(typer.BadParameter):
        parse_setting("spark:2")
    src = tmp_path / "in.pubtator"
    src.write_text("".join(f"{i}|t|Cisplatin and renal failure {i}.\n{i}|a|Renal failure after cisplatin.\n\n"
                           for i in range(300)), encoding="utf8")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["benchmark", "annotate", str(model), "--data", str(src), "--output", str(out),
                                      "--settings", "local:1,local:1:1,local:2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [(r["input"], r["workers"], r["threads"]) for r in rows] == [
        (name, w, t) for name in ("pubtator", "pubmed-xml") for w, t in ((1, "default"), (1, 1), (2, "default"))]
    for r in rows:
        assert r["documents"] == 300 and r["cpu_seconds_main"] > 0 and r["cores_used"] > 0
        assert (r["cpu_seconds_workers"] > 0) == (r["workers"] == 2)
        assert r["speedup_vs_local_1"] > 0 and r["speedup_vs_local_1_threads_1"] > 0
