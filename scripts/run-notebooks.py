"""Execute every notebook under a directory, in memory, and report each one's wall time.

Usage: ``python scripts/run-notebooks.py notebooks``

Each ``*.ipynb`` (checkpoint copies excluded) runs top to bottom in a fresh
``python3`` kernel of the interpreter running this script, with the notebook's
own directory as the working directory. Outputs stay in memory: the files on
disk are never rewritten, so they stay stored without outputs. The exit status
is 0 when every notebook ran, 1 when any cell failed (its error is printed),
2 for a usage or kernel-setup problem. ``make notebooks`` sets
``BAYESMIX_FAST=1`` so that bayesmix draws fewer samples.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import NoReturn

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

KERNEL = "python3"
TIMEOUT_S = 600
#: argv[0] values that jupyter_client replaces by the running interpreter (sys.executable)
_PLAIN_PYTHON = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def _setup_error(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def check_kernel() -> None:
    """Exit with advice unless the ``python3`` kernel runs this interpreter.

    ipykernel installs a ``python3`` kernelspec under ``sys.prefix/share/jupyter/kernels``
    whose command is plain ``python``, which jupyter_client replaces by ``sys.executable``.
    A ``python3`` kernelspec elsewhere (another environment's) can shadow it; the notebooks
    would then run without this environment's packages, so this is an error.
    """
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        _setup_error(
            f"no Jupyter kernel named {KERNEL!r}: install ipykernel into this environment ({sys.prefix})"
        )
    command = spec.argv[0] if spec.argv else ""
    if command in _PLAIN_PYTHON:
        return
    # Same environment = same bin directory. Symlinks are not followed: a virtual
    # environment's python links to the base interpreter, which lacks its packages.
    found = shutil.which(command) or command
    if Path(os.path.abspath(found)).parent != Path(os.path.abspath(sys.executable)).parent:
        _setup_error(
            f"the {KERNEL!r} kernelspec found ({spec.resource_dir}) runs {command}, not this interpreter "
            f"({sys.executable}). Remove that kernelspec, or set JUPYTER_PREFER_ENV_PATH=1 so that this "
            "environment's kernelspec comes first."
        )


def find_notebooks(root: Path) -> list[Path]:
    """All notebooks under ``root`` in a stable order, checkpoint copies excluded."""
    return sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def run_notebook(path: Path) -> tuple[float, str | None]:
    """Execute one notebook in memory; return its wall time and the error text (None on success)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        return time.perf_counter() - start, str(err)
    return time.perf_counter() - start, None


def main(argv: list[str]) -> int:
    """Run every notebook under ``argv[1]``; return the exit status."""
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} DIRECTORY", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if not root.is_dir():
        print(f"{root} is not a directory", file=sys.stderr)
        return 2
    notebooks = find_notebooks(root)
    if not notebooks:
        print(f"no notebooks under {root}", file=sys.stderr)
        return 2
    check_kernel()
    failed = []
    for path in notebooks:
        wall, error = run_notebook(path)
        print(f"{'ok  ' if error is None else 'FAIL'} {path}  {wall:6.1f} s", flush=True)
        if error is not None:
            failed.append(path)
            print(error, file=sys.stderr, flush=True)
    if failed:
        print(
            f"{len(failed)} of {len(notebooks)} notebooks failed: {', '.join(map(str, failed))}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
