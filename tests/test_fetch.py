"""Downloading a release from a local HTTP server: success, reuse, corruption, interruption."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from minnet import fetch
from minnet.data import DataConfig, load_dataset
from minnet.errors import MinnetError
from minnet.fetch import Archive, fetch_release

RATINGS = "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n2,10,4.0,835355493\n"


def make_zip(folder: str = "ml-latest-small") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/ratings.csv", RATINGS)
        zf.writestr(f"{folder}/README.txt", "a test release\n" * 2000)
    return buffer.getvalue()


class Server:
    """Serves ``files`` by name; ``mode`` corrupts or cuts short what it sends."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode = "ok"
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                server.requests.append(self.path)
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/movielens"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    srv = Server()
    body = make_zip()
    srv.files["ml-latest-small.zip"] = body
    record = Archive(len(body), hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest())
    monkeypatch.setitem(fetch.ARCHIVES, "ml-latest-small", record)
    monkeypatch.setenv("MINNET_MOVIELENS_URL", srv.url)
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_fetch_downloads_verifies_and_unpacks(server: Server, tmp_path: Path) -> None:
    folder = fetch_release("ml-latest-small", tmp_path / "data")

    assert folder == tmp_path / "data" / "ml-latest-small"
    assert (folder / "ratings.csv").read_text() == RATINGS
    assert leftovers(tmp_path / "data") == ["ml-latest-small"]
    assert server.requests == ["/movielens/ml-latest-small.zip"]


def test_fetch_reuses_a_release_already_in_place(server: Server, tmp_path: Path) -> None:
    fetch_release("ml-latest-small", tmp_path)
    fetch_release("ml-latest-small", tmp_path)

    assert len(server.requests) == 1


def test_zip_whose_folder_has_another_name_lands_under_the_release_name(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = make_zip("ml-10M100K")
    server.files["ml-10m.zip"] = body
    monkeypatch.setitem(fetch.ARCHIVES, "ml-10m", Archive(len(body), None, None))

    folder = fetch_release("ml-10m", tmp_path, verify=False)

    assert folder.name == "ml-10m" and (folder / "ratings.csv").is_file()
    assert leftovers(tmp_path) == ["ml-10m"]


def test_corrupted_download_is_refused_and_removed(server: Server, tmp_path: Path) -> None:
    server.mode = "corrupt"

    with pytest.raises(
        MinnetError, match=r"ml-latest-small.zip has sha256 [0-9a-f]{64}, expected"
    ):
        fetch_release("ml-latest-small", tmp_path)
    assert leftovers(tmp_path) == []


def test_interrupted_download_is_refused_and_removed(server: Server, tmp_path: Path) -> None:
    server.mode = "cut"

    with pytest.raises(MinnetError, match=r"ml-latest-small.zip (was interrupted|stopped after)"):
        fetch_release("ml-latest-small", tmp_path)
    assert leftovers(tmp_path) == []


def test_unverified_truncated_zip_is_refused_and_removed(server: Server, tmp_path: Path) -> None:
    server.files["ml-latest-small.zip"] = make_zip()[:-200]

    with pytest.raises(MinnetError, match="is not a readable zip"):
        fetch_release("ml-latest-small", tmp_path, verify=False)
    assert leftovers(tmp_path) == []


def test_interrupted_unpack_leaves_nothing_half_unpacked(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(self: zipfile.ZipFile, path: str) -> None:
        Path(path, "ml-latest-small").mkdir()
        Path(path, "ml-latest-small", "ratings.csv").write_text("1,2")
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "extractall", interrupt)

    with pytest.raises(KeyboardInterrupt):
        fetch_release("ml-latest-small", tmp_path)
    assert leftovers(tmp_path) == []


def test_zip_without_ratings_is_refused(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("something/else.txt", "x")
    server.files["ml-latest-small.zip"] = buffer.getvalue()

    with pytest.raises(MinnetError, match="unpacked to no ratings.csv or ratings.dat or u.data"):
        fetch_release("ml-latest-small", tmp_path, verify=False)
    assert leftovers(tmp_path) == []


def test_zip_with_an_unsafe_path_is_refused(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../evil/ratings.csv", RATINGS)
    server.files["ml-latest-small.zip"] = buffer.getvalue()

    with pytest.raises(MinnetError, match="unsafe path '../evil/ratings.csv'"):
        fetch_release("ml-latest-small", tmp_path / "data", verify=False)
    assert leftovers(tmp_path) == []  # not even the data directory it had to create


def test_offline_error_says_where_to_put_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MINNET_MOVIELENS_URL", f"http://127.0.0.1:{port}")

    with pytest.raises(MinnetError) as caught:
        fetch_release("ml-100k", tmp_path)
    message = str(caught.value)
    assert message.startswith(f"could not reach http://127.0.0.1:{port}/ml-100k.zip")
    assert f"unpack it so that {tmp_path / 'ml-100k'}/ holds its ratings file" in message
    assert "\n" not in message and leftovers(tmp_path) == []


def test_missing_file_on_the_server_is_an_http_error(server: Server, tmp_path: Path) -> None:
    with pytest.raises(MinnetError, match=r"ml-1m.zip answered HTTP 404"):
        fetch_release("ml-1m", tmp_path)


def test_release_without_a_checksum_needs_no_verify(server: Server, tmp_path: Path) -> None:
    server.files["ml-latest.zip"] = make_zip("ml-latest")

    with pytest.raises(MinnetError, match="no checksum is recorded for ml-latest.*--no-verify"):
        fetch_release("ml-latest", tmp_path)
    assert server.requests == []
    assert (fetch_release("ml-latest", tmp_path, verify=False) / "ratings.csv").is_file()


def test_unknown_release_cannot_be_fetched(tmp_path: Path) -> None:
    with pytest.raises(MinnetError, match="'ml-2m' cannot be downloaded; known releases: ml-100k"):
        fetch_release("ml-2m", tmp_path)


def test_every_official_release_has_a_checksum_but_ml_latest() -> None:
    for name, archive in fetch.ARCHIVES.items():
        assert archive.verifiable == (name != "ml-latest"), name
        assert archive.sha256 is None or len(archive.sha256) == 64
        assert archive.md5 is None or len(archive.md5) == 32


def test_load_dataset_fetches_when_absent(server: Server, tmp_path: Path) -> None:
    data = load_dataset(DataConfig(name="ml-latest-small"), tmp_path, fetch=True)

    assert len(data) == 2 and data.rating_range == (2.5, 4.0)
