import pytest

from spacy_medlink.ids import normalize_kb_id, split_kb_id


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("D009369", "D009369"),
        ("MESH:C535662", "C535662"),
        (" D008661", "D008661"),
        ("OMIM:106210 ", "OMIM:106210"),
        ("omim:106210", "OMIM:106210"),
        ("D001943|D010051", "D001943|D010051"),
        ("D004829+D003294", "D004829+D003294"),
        ("D002544|-1", "D002544"),
        ("-1", ""),
        ("-", ""),
        ("MESH:D000001,MESH:D000002", "D000001|D000002"),
        ("C000623891", "C000623891"),
    ],
)
def test_normalize_kb_id(raw, expected):
    assert normalize_kb_id(raw)[0] == expected


def test_normalize_kb_id_notes_every_change():
    _, notes = normalize_kb_id(" MESH:D1|-1")
    assert "whitespace stripped from ID" in notes
    assert "MESH: prefix stripped" in notes
    assert "nil part of a composite ID dropped" in notes
    assert normalize_kb_id("D1")[1] == []


def test_split_kb_id():
    assert split_kb_id("D1|D2+OMIM:3") == {"D1", "D2", "OMIM:3"}
    assert split_kb_id("") == frozenset()
