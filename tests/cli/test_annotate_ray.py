"""`annotate --backend ray` on a local Ray: the local backend's output, record for record, and an actor
killed mid-run is restarted with every document written exactly once."""
import pytest

ray = pytest.importorskip("ray")

from spacy_medlink.annotate.ray_backend import annotate_ray  # noqa: E402
from spacy_medlink.annotate.records import read_records  # noqa: E402
from spacy_medlink.annotate.run import annotate  # noqa: E402

from .test_annotate import _jsonl, _outputs, model  # noqa: E402,F401  (the ruler pipeline fixture)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=3,  # two actors and the readers
              include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture
def inputs(tmp_path) -> list:
    a = _jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": f"cisplatin and renal failure, case {i}"} for i in range(9)]
               + [{"id": "a-empty", "text": ""}])
    b = _jsonl(tmp_path / "b.jsonl", [{"id": f"b{i}", "text": "renal failure " * (i + 1)} for i in range(6)])
    return [a, b]


def test_same_output_as_local(local_ray, model, inputs, tmp_path):  # noqa: F811
    import spacy

    local = annotate(spacy.load(model), read_records(inputs), tmp_path / "local", chunk_size=4)
    summary = annotate_ray(str(model), inputs, tmp_path / "ray", chunk_size=4, n_actors=2, batch_size=3)
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    for key in ("read", "annotated", "empty", "chunks", "entities_per_type"):
        assert summary[key] == local[key], key
    # resume: the last chunk's manifest lost; the rerun writes only what is missing
    (tmp_path / "ray" / "part-00003.json").unlink()
    again = annotate_ray(str(model), inputs, tmp_path / "ray", chunk_size=4, n_actors=1, batch_size=3)
    assert again["resumed"] == 12 and again["annotated"] == 4 and again["read"] == 16
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


def test_killed_actor_is_retried(local_ray, model, inputs, tmp_path):  # noqa: F811
    flag = tmp_path / "killed"
    summary = annotate_ray(str(model), inputs, tmp_path / "out", chunk_size=5, n_actors=2, batch_size=2,
                           _fault={"id": "a5", "flag": str(flag)})
    assert flag.exists()  # the fault fired: one actor died mid-batch
    ids = [r["id"] for r in _outputs(tmp_path / "out")]
    assert ids == [f"a{i}" for i in range(9)] + ["a-empty"] + [f"b{i}" for i in range(6)]  # each exactly once, in order
    assert summary["annotated"] == 16
