"""`assets`: put the corpora and vocabularies where project.yml expects them.

`spacy project assets` can download a URL and check an MD5, but the official
releases are zips, tarballs and wheels whose members we need, some sources
publish a newer version at the same URL, and offline machines have a local copy.
So each asset in project.yml also names the ``file`` the project uses, the
archive ``member`` to extract, and the ``sha256`` of that file (``sha256_content``
for the decompressed bytes of a .gz we recompress ourselves). This command takes
the file from ``--local`` when it is there, else extracts it from what
`spacy project assets` downloaded, and always verifies it.
"""
import gzip
import hashlib
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import srsly
import typer
from wasabi import msg

from ._app import app


def sha256_of(path: Path, decompress: bool = False) -> str:
    digest = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(asset: Dict, path: Path) -> bool:
    if asset.get("sha256") and sha256_of(path) == asset["sha256"]:
        return True
    if asset.get("sha256_content") and path.suffix == ".gz":
        return sha256_of(path, decompress=True) == asset["sha256_content"]
    return not asset.get("sha256") and not asset.get("sha256_content")


def _extract(archive: Path, member: str, target: Path) -> None:
    if zipfile.is_zipfile(archive):  # .zip and .whl
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            fh = tf.extractfile(member)
            if fh is None:
                raise KeyError(member)
            data = fh.read()
    else:
        raise ValueError(f"{archive}: not a zip, wheel or tar archive")
    if target.suffix == ".gz" and not member.endswith(".gz"):
        with gzip.GzipFile(target, "wb", compresslevel=9, mtime=0) as gz:
            gz.write(data)
    else:
        target.write_bytes(data)


def fetch_asset(asset: Dict, root: Path, local: Optional[Path]) -> str:
    """Make ``asset['file']`` exist and verify it. Returns how it got there."""
    target = root / asset["file"]
    rel = Path(asset["file"]).relative_to("assets")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and _verified(asset, target):
        return "present"
    if local is not None and (local / rel).exists():
        shutil.copyfile(local / rel, target)
        how = f"copied from {local / rel}"
    else:
        download = root / asset["dest"] if asset.get("dest") else None
        if download is None or not download.exists():
            where = asset.get("url") or asset.get("description", "no public URL")
            raise FileNotFoundError(
                f"{asset['file']}: not in --local and not downloaded. Run `spacy project assets` "
                f"(source: {where}) or pass --local with a folder holding {rel}."
            )
        if asset.get("member"):
            _extract(download, asset["member"], target)
            how = f"extracted {asset['member']} from {download}"
        else:
            if download != target:
                shutil.copyfile(download, target)
            how = f"from {download}"
    if not _verified(asset, target):
        problem = f"{target}: sha256 does not match project.yml ({how})"
        if asset.get("versioned_url"):
            msg.warn(problem + "; the URL serves the current release, so numbers may differ from ours")
        else:
            target.unlink()
            raise ValueError(problem)
    return how


@app.command("assets")
def assets_cli(
    project: Path = typer.Option(Path("project.yml"), "--project", "-p", help="project.yml with the asset list"),
    local: Optional[Path] = typer.Option(None, "--local", "-l", help="Folder with a local copy (e.g. ../shared/data); used when it exists"),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated dataset folders to fetch (e.g. ncbi_disease,ctd)"),
) -> None:
    """Copy or extract the project's data into assets/ and verify every sha256."""
    config = srsly.read_yaml(project)
    root = project.parent
    if local is not None and not local.exists():
        msg.info(f"--local {local} does not exist: using downloaded assets")
        local = None
    wanted: Optional[List[str]] = only.split(",") if only else None
    failures = 0
    for asset in config.get("assets", []):
        if "file" not in asset:
            continue
        dataset = Path(asset["file"]).parts[1]
        if wanted is not None and dataset not in wanted:
            continue
        try:
            how = fetch_asset(asset, root, local)
            msg.good(f"{asset['file']}: {how}")
        except (FileNotFoundError, ValueError, KeyError) as err:
            failures += 1
            msg.fail(str(err))
    if failures:
        raise typer.Exit(1)
