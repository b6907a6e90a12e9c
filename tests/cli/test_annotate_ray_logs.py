"""`annotate --backend ray` runs without Ray's deprecation warnings and without its error line
about actor constructor arguments in the object store."""
import warnings

import pytest

ray = pytest.importorskip("ray")

from ray.util.annotations import RayDeprecationWarning  # noqa: E402

from spacy_medlink.annotate.ray_backend import annotate_ray  # noqa: E402

from .test_annotate import _jsonl, _outputs, model  # noqa: E402,F401  (the ruler pipeline fixture)
from .test_annotate_ray import local_ray  # noqa: E402,F401


def test_no_deprecation_warning_or_error_line(local_ray, model, tmp_path, capfd):  # noqa: F811
    src = _jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": f"cisplatin and renal failure {i}"} for i in range(7)])
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = annotate_ray(str(model), [src], tmp_path / "out", chunk_size=3, n_actors=2, batch_size=2)
    assert summary["annotated"] == 7 and [r["id"] for r in _outputs(tmp_path / "out")] == [str(i) for i in range(7)]
    assert not [w for w in caught if issubclass(w.category, RayDeprecationWarning)]
    err = capfd.readouterr().err
    assert "constructor arguments in the object store" not in err
    assert "deprecated" not in err.lower(), err
