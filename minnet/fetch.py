"""Download an official MovieLens zip, check it, and unpack it atomically.

``fetch_release("ml-1m", Path("data"))`` downloads
``https://files.grouplens.org/datasets/movielens/ml-1m.zip`` into a temporary file in
``data/``, checks its size and recorded checksums, unpacks it into a temporary folder
there, and only then renames that folder to ``data/ml-1m``. Whatever fails or is
interrupted on the way, the temporaries are removed, so ``data/`` never holds a half
release. A release already in place is reused without touching the network.

Set ``$MINNET_MOVIELENS_URL`` (or pass ``base_url``) to fetch from a mirror.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from minnet.errors import MinnetError

log = logging.getLogger(__name__)

BASE_URL_ENV = "MINNET_MOVIELENS_URL"
BASE_URL = "https://files.grouplens.org/datasets/movielens"
RATINGS_FILES = ("ratings.csv", "ratings.dat", "u.data")
TIMEOUT_S = 60
BLOCK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """What an official zip must look like: its size and digests, where recorded."""

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None or self.md5 is not None


# Sizes and sha256 from tensorflow/datasets (tensorflow_datasets/url_checksums/movielens.txt);
# md5 from GroupLens's own <name>.zip.md5 files as quoted in many public download scripts.
# ml-10m's sha256 and size come from a public script that also checks the official md5.
# ml-32m has only the official md5 and size. ml-latest is rebuilt by GroupLens from time
# to time, so no checksum can be recorded for it.
ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive(
        4_924_029,
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "0e33842e24a9c977be4e0107933c0723",
    ),
    "ml-1m": Archive(
        5_917_549,
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "c4d9eecfca2ab87c1945afe126590906",
    ),
    "ml-10m": Archive(
        65_566_137,
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
        "ce571fd55effeba0271552578f2648bd",
    ),
    "ml-20m": Archive(
        198_702_078,
        "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        "cd245b17a1ae2cc31bb14903e1204af3",
    ),
    "ml-25m": Archive(
        261_978_986,
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        "6b51fb2759a8657d3bfcbfc42b592ada",
    ),
    "ml-32m": Archive(238_950_008, None, "d472be332d4daa821edc399621853b57"),
    "ml-latest-small": Archive(
        978_202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"
    ),
    "ml-latest": Archive(),
}


def fetch_release(
    name: str,
    data_dir: str | os.PathLike[str],
    base_url: str | None = None,
    *,
    verify: bool = True,
    progress: bool | None = None,
) -> Path:
    """Make sure ``data_dir/name`` holds the release ``name``, downloading it if absent.

    Args:
        name: an official release, one of ``ARCHIVES`` (``ml-100k``, ``ml-25m``, ...).
        data_dir: the data directory; it is created if missing.
        base_url: where ``<name>.zip`` lives; default ``$MINNET_MOVIELENS_URL`` or GroupLens.
        verify: check the zip against its recorded checksum (``--no-verify`` turns this
            off; needed for ``ml-latest``, which has none).
        progress: show a progress bar; ``None`` shows it only on a terminal.

    Returns:
        The release folder, ``data_dir/name``.
    """
    if name not in ARCHIVES:
        known = ", ".join(ARCHIVES)
        raise MinnetError(f"dataset {name!r} cannot be downloaded; known releases: {known}")
    root = Path(data_dir)
    target = root / name
    if target.is_dir():
        if _holds_ratings(target):
            log.info("reusing %s", target)
            return target
        raise MinnetError(
            f"{target} exists but holds no {' or '.join(RATINGS_FILES)}; remove it and fetch again"
        )
    archive = ARCHIVES[name]
    if verify and not archive.verifiable:
        raise MinnetError(
            f"no checksum is recorded for {name} (GroupLens updates it in place); "
            "fetch it with --no-verify to accept whatever the server sends"
        )

    base = (base_url or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/")
    url = f"{base}/{name}.zip"
    # One hidden working folder beside the target holds the zip and its unpacked files,
    # so a single rename publishes the release and a single removal cleans up.
    created = [p for p in (root, *root.parents) if not p.exists()]  # to remove on failure
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".partial"))
    except OSError as e:
        raise MinnetError(f"cannot write into the data directory {root} ({e})") from None
    published = False
    try:
        part = work / f"{name}.zip"
        _download(url, part, name, target, progress)
        if verify:
            _verify(part, archive, url)
        folder = _unpack(part, work / "unpacked", url)
        try:
            os.replace(folder, target)
        except OSError as e:
            if not _holds_ratings(target):  # else another process just put it there
                raise MinnetError(f"could not move the release into {target} ({e})") from None
        published = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not published and created:  # a failed download leaves no empty data directory
            shutil.rmtree(created[-1], ignore_errors=True)
    log.info("unpacked %s into %s", url, target)
    return target


def _download(url: str, part: Path, name: str, target: Path, progress: bool | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, part.open("wb") as out:
            length = response.headers.get("Content-Length", "")
            expected = int(length) if length.isdigit() else None
            received = _copy(response, out, expected, name, progress)
    except urllib.error.HTTPError as e:
        raise MinnetError(
            f"{url} answered HTTP {e.code} ({e.reason}); check the release name or ${BASE_URL_ENV}"
        ) from None
    except urllib.error.URLError as e:
        raise MinnetError(
            f"could not reach {url} ({e.reason}); without network, download {name}.zip "
            f"elsewhere and unpack it so that {target}/ holds its ratings file"
        ) from None
    except (OSError, http.client.HTTPException) as e:
        raise MinnetError(
            f"download of {url} was interrupted ({type(e).__name__}: {e}); run the fetch again"
        ) from None
    if expected is not None and received != expected:
        raise MinnetError(
            f"download of {url} stopped after {received} of {expected} bytes; run the fetch again"
        )


def _copy(
    response: BinaryIO, out: BinaryIO, expected: int | None, name: str, progress: bool | None
) -> int:
    received = 0
    disable = None if progress is None else not progress
    with tqdm(
        total=expected, unit="B", unit_scale=True, desc=f"{name}.zip", disable=disable
    ) as bar:
        while block := response.read(BLOCK):
            out.write(block)
            received += len(block)
            bar.update(len(block))
    return received


def _verify(part: Path, archive: Archive, url: str) -> None:
    size = part.stat().st_size
    if archive.size is not None and size != archive.size:
        raise MinnetError(
            f"{url} sent {size} bytes, expected {archive.size}; the download is incomplete or "
            "not the official zip, so run the fetch again"
        )
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with part.open("rb") as f:
        while block := f.read(BLOCK):
            sha256.update(block)
            md5.update(block)
    for kind, digest, want in (("sha256", sha256, archive.sha256), ("md5", md5, archive.md5)):
        if want is not None and digest.hexdigest() != want:
            raise MinnetError(
                f"{url} has {kind} {digest.hexdigest()}, expected {want}; the download is "
                "corrupted or not the official zip, so run the fetch again"
            )


def _unpack(part: Path, unpack: Path, url: str) -> Path:
    """Extract the zip into ``unpack``; return the folder that holds the ratings file."""
    try:
        with zipfile.ZipFile(part) as zf:
            for member in zf.namelist():
                inner = PurePosixPath(member)
                if inner.is_absolute() or ".." in inner.parts:
                    raise MinnetError(
                        f"{url} holds the unsafe path {member!r}; refusing to unpack"
                    )
            unpack.mkdir()
            zf.extractall(unpack)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as e:
        raise MinnetError(f"{url} is not a readable zip ({e}); run the fetch again") from None
    except OSError as e:
        raise MinnetError(f"could not unpack {url} into {unpack.parent} ({e})") from None
    entries = [p for p in unpack.iterdir() if p.name != "__MACOSX"]
    folder = entries[0] if len(entries) == 1 and entries[0].is_dir() else unpack
    if not _holds_ratings(folder):
        raise MinnetError(
            f"{url} unpacked to no {' or '.join(RATINGS_FILES)}; it is not a MovieLens release"
        )
    return folder


def _holds_ratings(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RATINGS_FILES)
