"""The whole corpus of malformed data files and specs, through `minnet run`.

Each case must exit with code 2 and one line on stderr, and leave nothing under results/.
The command runs in-process (its `main`), so the corpus stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_data_corpus import CORPUS, FOLDER, write
from test_spec import BAD_SPECS, GOOD

from minnet.cli import main

SPEC = """
[study]
name = "corpus"
[data]
name = "{release}"
[training]
epochs = 1
[search]
padding = [0.5]
hidden = [[4]]
[final]
seeds = 0
"""


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: Path) -> tuple[int, str]:
    results = tmp_path / "results"
    code = main(
        ["-q", "run", str(spec), "--data-dir", str(tmp_path), "--results-dir", str(results)]
    )
    err = capsys.readouterr().err.strip()
    assert not results.exists(), f"left behind: {sorted(results.rglob('*'))}"
    return code, err


@pytest.mark.parametrize(
    ("filename", "content", "pattern"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_malformed_data_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, filename: str, content: str, pattern: str
) -> None:
    write(tmp_path, filename, content)
    spec = tmp_path / "corpus.toml"
    spec.write_text(SPEC.format(release=FOLDER[filename]))

    code, err = run(capsys, tmp_path, spec)

    assert code == 2 and "\n" not in err and re.search(pattern, err), err


@pytest.mark.parametrize(("edit", "pattern"), BAD_SPECS)
def test_malformed_spec_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, edit: tuple[str, str], pattern: str
) -> None:
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"{u},{i},4.0,1\n" for u in range(1, 20) for i in range(1, 20))
    )
    spec = tmp_path / "bad.toml"
    spec.write_text(GOOD.replace(*edit, 1))

    code, err = run(capsys, tmp_path, spec)

    assert code == 2 and "\n" not in err and re.search(pattern, err), err
    assert err.startswith("minnet: error: ") and str(spec) in err
