import hashlib
import json
import tracemalloc
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from spacy_medlink.kb import synthetic
from spacy_medlink.kb.builders import mesh_tree_types
from spacy_medlink.kb.sources.mesh_xml import read_mesh_xml
from spacy_medlink.kb.sources.umls import read_umls

TINY = 0.0005  # 15 descriptors, 162 SCRs, 4,000 English MRCONSO rows


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic.write_sources(folder, scale=TINY, seed=0)
    return folder


def test_sources_deterministic_for_a_seed(sources, tmp_path):
    synthetic.write_sources(tmp_path / "same", scale=TINY, seed=0)
    synthetic.write_sources(tmp_path / "other", scale=TINY, seed=1)
    assert _digest(tmp_path / "same") == _digest(sources)
    other = _digest(tmp_path / "other")
    assert other.keys() == _digest(sources).keys()
    assert all(other[name] != digest for name, digest in _digest(sources).items())


def test_sources_counts_and_formats(sources):
    counts = synthetic.write_sources(sources / "again", scale=TINY, seed=0)
    desc = ElementTree.parse(sources / "desc2025.xml").getroot()
    supp = ElementTree.parse(sources / "supp2025.xml").getroot()
    assert desc.tag == "DescriptorRecordSet" and supp.tag == "SupplementalRecordSet"
    assert len(desc) == counts["mesh_descriptors"]["records"] == round(synthetic.FULL_DESCRIPTORS * TINY)
    assert len(supp) == counts["mesh_supplementals"]["records"] == round(synthetic.FULL_SUPPLEMENTALS * TINY)
    assert (sources / "desc2025.xml").stat().st_size == counts["mesh_descriptors"]["bytes"]
    for record in desc:
        assert record.findtext("DescriptorUI").startswith("D")
        assert record.find("TreeNumberList/TreeNumber") is not None
        preferred = record.find("ConceptList/Concept[@PreferredConceptYN='Y']/TermList/Term/String")
        assert preferred.text == record.findtext("DescriptorName/String")
    uis = {r.findtext("DescriptorUI") for r in desc}
    for record in supp:
        mapped = [e.text for e in record.iterfind("HeadingMappedToList/HeadingMappedTo/DescriptorReferredTo/DescriptorUI")]
        assert mapped and all(ui.lstrip("*") in uis for ui in mapped)
    rows = (sources / "META" / "MRCONSO.RRF").read_text(encoding="utf8").splitlines()
    assert len(rows) == counts["umls"]["mrconso_rows"]
    assert all(len(row.split("|")) == 19 and row.endswith("|") for row in rows)
    english = [row for row in rows if row.split("|")[1] == "ENG"]
    assert len(english) == counts["umls"]["english_rows"] == round(synthetic.FULL_UMLS_ENGLISH_ROWS * TINY)
    assert 0.2 < counts["umls"]["non_english_rows"] / len(rows) < 0.4
    assert 0.02 < sum(row.split("|")[16] != "N" for row in english) / len(english) < 0.1
    cuis = [row.split("|")[0] for row in rows]
    assert cuis == sorted(cuis)
    sty = (sources / "META" / "MRSTY.RRF").read_text(encoding="utf8").splitlines()
    assert all(len(row.split("|")) == 7 for row in sty)
    assert {row.split("|")[0] for row in sty} == set(cuis)


def test_mesh_reader_parses_the_generated_files(sources):
    kb, _, descriptor_types = read_mesh_xml(sources / "desc2025.xml")
    kb, _, _ = read_mesh_xml(sources / "supp2025.xml", kb=kb, descriptor_types=descriptor_types)
    expected = {}
    for record in ElementTree.parse(sources / "desc2025.xml").getroot():
        types = mesh_tree_types(t.text for t in record.iterfind("TreeNumberList/TreeNumber"))
        if types:
            expected[record.findtext("DescriptorUI")] = (record.findtext("DescriptorName/String"), types)
    for record in ElementTree.parse(sources / "supp2025.xml").getroot():
        mapped = [e.text.lstrip("*") for e in
                  record.iterfind("HeadingMappedToList/HeadingMappedTo/DescriptorReferredTo/DescriptorUI")]
        if any(descriptor_types.get(ui) for ui in mapped):
            expected[record.findtext("SupplementalRecordUI")] = (record.findtext("SupplementalRecordName/String"), ())
    assert set(kb.concept_ids) == set(expected)
    for ui, (name, types) in expected.items():
        assert kb[ui].name == name
        assert not types or set(kb[ui].types) == set(types)


def test_umls_reader_parses_the_generated_files(sources):
    kb, _ = read_umls(sources / "META")
    preferred = {}
    for row in (sources / "META" / "MRCONSO.RRF").read_text(encoding="utf8").splitlines():
        f = row.split("|")
        if f[1] == "ENG" and f[16] == "N" and (f[2], f[4], f[6]) == ("P", "PF", "Y"):
            preferred.setdefault(f[0], f[14])
    assert len(kb) == len(preferred)
    assert all(kb[f"UMLS:{cui}"].name == name for cui, name in preferred.items())
    st21pv, _ = read_umls(sources / "META", semantic_types=["st21pv"])
    assert 0 < len(st21pv) < len(kb)
    assert len({t for c in st21pv for t in c.types}) <= 21


@pytest.mark.slow
def test_umls_generator_memory_does_not_grow_with_the_file(tmp_path):
    peaks = []
    for rows in (5_000, 20_000):
        tracemalloc.start()
        synthetic.write_umls(tmp_path / str(rows), rows)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.2 * peaks[0]


def test_benchmark_reuses_the_files_of_its_scale_and_seed(tmp_path):
    from spacy_medlink.cli.benchmark_kb import _sources

    first = _sources(tmp_path, TINY, 0, echo=lambda _: None)
    assert not first["reused"]
    mtime = (tmp_path / "desc2025.xml").stat().st_mtime_ns
    again = _sources(tmp_path, TINY, 0, echo=lambda _: None)
    assert again["reused"] and again["counts"] == first["counts"]
    assert (tmp_path / "desc2025.xml").stat().st_mtime_ns == mtime
    assert not _sources(tmp_path, TINY, 1, echo=lambda _: None)["reused"]


@pytest.mark.slow
def test_benchmark_kb_build_cli(tmp_path):
    from spacy_medlink.cli import app

    output = tmp_path / "report.json"
    args = ["benchmark", "kb", "--build", "--scale", str(TINY), "--scispacy-concepts", "150", "--ef-construction", "50",
            "--output", str(output)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    assert list(report["scales"]) == [f"{TINY:g}"]
    entry = report["scales"][f"{TINY:g}"]
    assert entry["files"]["desc2025.xml"]["records"] == round(synthetic.FULL_DESCRIPTORS * TINY)
    for source in ("mesh", "umls"):
        for table in ("parse_only", "kb_build", "index_build"):
            stage = entry[table][source]
            assert "error" not in stage and "stopped" not in stage, stage
            assert stage["peak_rss_mib"] > 0 and stage["seconds"] >= 0
        assert entry["kb_build"][source]["concepts"] > 0
        assert entry["parse_only"][source]["records_added"] == entry["kb_build"][source]["records_added"]
        assert entry["index_build"][source]["names"] > 0
    assert report["settings"]["umls_semantic_types"] == ["st21pv"]
    comparison = report["scispacy_comparison"]
    assert comparison["medlink"]["concepts"] == comparison["scispacy"]["concepts"] == 150
    assert comparison["seconds_ratio_scispacy_over_medlink"] > 0
    assert [row["scale"] for row in report["summary"]["mesh"]] == [TINY]
    assert report["machine"]["cores"] >= 1
