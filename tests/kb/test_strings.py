import numpy
import pytest

from spacy_medlink.kb import strings as strings_module
from spacy_medlink.kb.strings import StringTable, save_array, table_arrays, table_from

WORDS = ["breast cancer", "", "β-carotene", "Crohn's disease", "breast cancer", "腫瘍", "x"]


def test_access_and_lookup():
    table = StringTable.from_strings(WORDS)
    assert len(table) == len(WORDS) and list(table) == WORDS and table == WORDS
    assert [table[i] for i in range(len(WORDS))] == WORDS and table[-1] == "x" and table[1:3] == WORDS[1:3]
    # a duplicate answers with its first row
    assert [table.index(w) for w in WORDS] == [0, 1, 2, 3, 0, 5, 6]
    assert table.index("breast") == -1 and "breast" not in table and "腫瘍" in table
    with pytest.raises(IndexError):
        table[len(WORDS)]


def test_hash_collisions_are_checked(monkeypatch):
    monkeypatch.setattr(strings_module, "hash_string", lambda text: 7)
    table = StringTable.from_strings(WORDS)
    assert [table.index(w) for w in WORDS] == [0, 1, 2, 3, 0, 5, 6] and table.index("nope") == -1


def test_brute_force_lookup():
    rng = numpy.random.default_rng(0)
    words = ["".join(rng.choice(list("abcé "), size=rng.integers(0, 6))) for _ in range(2000)]
    table = StringTable.from_strings(words)
    first = {}
    for i, w in enumerate(words):
        first.setdefault(w, i)
    assert all(table.index(w) == i for w, i in first.items())
    assert all(table.index(w + "zz") == -1 for w in list(first)[:50])


def test_saved_and_memory_mapped(tmp_path):
    table = StringTable.from_strings(WORDS)
    for name, array in table_arrays("t", table).items():
        save_array(tmp_path / f"{name}.npy", array)
    arrays = {p.stem: numpy.load(p, mmap_mode="r", allow_pickle=False) for p in tmp_path.glob("*.npy")}
    loaded = table_from("t", arrays)
    assert loaded.hashes is None  # the lookup is not saved: built when first asked
    assert isinstance(loaded.data, numpy.memmap) and loaded == table and loaded.index("腫瘍") == 5
    empty = StringTable.from_strings([])
    assert len(empty) == 0 and list(empty) == [] and empty.index("a") == -1
    assert set(table_arrays("t", table)) == {"t_data", "t_ends"}
    plain = StringTable.from_strings(WORDS, index=False)
    assert plain.hashes is None and plain.index("x") == 6 and plain.hashes is not None
