"""The command line (bayesmix.cli): ``bayesmix fit`` and its error messages; the installed script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import bayesmix as bx
from bayesmix.cli import main

SMALL = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def stamps_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "stamps.csv"
    bx.datasets.load("stamps").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "sleepstudy.csv"
    bx.datasets.load("sleepstudy").to_csv(path, index=False)
    return path


def _lines_with(out: str, *words: str) -> list[str]:
    return [line for line in out.splitlines() if all(w in line for w in words)]


@pytest.mark.slow
def test_fit_stamps_mixture_prints_tables_and_saves(
    stamps_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance item: bayesmix fit "thickness ~ 1" stamps.csv --k 3."""
    out_path = tmp_path / "posterior.nc"
    assert main(["fit", "thickness ~ 1", str(stamps_csv), "--k", "3", *SMALL, "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    blocks = [
        "Posterior summary",
        "Diagnostics:",
        "Posterior beside the maximum likelihood",
        "Class probabilities",
    ]
    positions = [out.index(b) for b in blocks]
    assert positions == sorted(positions)  # in this order
    # the class-probability table: posterior beside ML, one row per class, columns aligned
    table = out[out.index("Class probabilities") :].splitlines()
    header = table[1]
    assert header.split() == ["probability", "sd", "lower", "upper", "ml", "ml_se", "ml_lower", "ml_upper"]
    rows = table[3:6]
    assert [r.split()[0] for r in rows] == ["1", "2", "3"]
    assert all(len(r) == len(header) for r in rows)  # right-aligned under the header
    for name in ("Intercept[1]", "sigma[3]", "class[3]:Intercept"):
        # a row in the summary and one in the comparison (the diagnostics may name it too)
        assert len([line for line in out.splitlines() if line.startswith(f"{name} ")]) == 2
    assert f"Saved the fit to {out_path}" in out
    loaded = bx.load(out_path)
    assert isinstance(loaded, bx.MixtureFit) and loaded.spec.k == 3
    assert loaded.settings.draws == 100 and loaded.settings.random_seed == 1
    assert list(loaded.summary().index)[:2] == ["Intercept[1]", "sigma[1]"]


@pytest.mark.slow
def test_fit_hierarchical_with_group_by(
    sleep_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", "Reaction ~ Days", str(sleep_csv), "--group-by", "Subject", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "bx.hierarchical('Reaction ~ Days + (1 | Subject)', data, family='gaussian')" in out
    assert _lines_with(out, "sd(Intercept|Subject)")
    assert _lines_with(out, "mean", "estimate", "diff_sd")  # Bayes beside the REML fit
    assert "Class probabilities" not in out and "Saved the fit" not in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["y ~ x", "{missing}"], "data file .* not found: check the path"),
        (["y ~ x", "{garbled}"], "could not read .* as CSV"),
        (["thickness ~ (", "{stamps}"], "could not read the formula"),
        (["thick ~ 1", "{stamps}"], r"uses column\(s\) \['thick'\] that are not in the data"),
        (["thickness ~ 1", "{stamps}", "--k", "0"], "the number of classes must be at least 1"),
        (["thickness ~ 1", "{stamps}", "--k", "2", "--group-by", "g"], "do not take: drop one"),
        (["thickness ~ 1", "{stamps}", "--family", "foo"], "unknown family 'foo'"),
        (["thickness ~ 1", "{stamps}", "--draws", "0"], "draws must be >= 1"),
    ],
)
def test_mistakes_give_one_line_and_status_2(
    args: list[str], message: str, stamps_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(b'a,b\n1,2\n"open quote,3\n')
    paths = {"missing": str(tmp_path / "absent.csv"), "garbled": str(garbled), "stamps": str(stamps_csv)}
    assert main(["fit", *(a.format(**paths) for a in args), "--no-progress"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesmix: error: "), err
    assert "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]


def test_argument_errors_exit_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "y ~ x"])  # no data file
    assert exit_info.value.code == 2
    assert "DATA.csv" in capsys.readouterr().err


def test_installed_script_help() -> None:
    """The ``bayesmix`` console script ([project.scripts]) and ``python -m bayesmix.cli``."""
    script = Path(sys.executable).parent / "bayesmix"
    assert script.is_file(), "pip install -e . puts the bayesmix script beside the interpreter"
    for command in ([str(script), "fit", "--help"], [sys.executable, "-m", "bayesmix.cli", "fit", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        for option in ("--k", "--family", "--group-by", "--draws", "--tune", "--chains", "--seed", "--out"):
            assert option in done.stdout
        assert "--no-progress" in done.stdout and "FORMULA" in done.stdout and "DATA.csv" in done.stdout
