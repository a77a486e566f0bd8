"""nutpie's compiled models, kept for reuse by later fits of the same structure.

Compiling a model is often most of a fit's wall time: nutpie's numba backend spends about
9 s in LLVM on a sleepstudy-sized model, whatever the data size. bayesmix builds its
hierarchical models with their data in shared variables (``pm.Data``), so two models that
differ only in their data have the same graph; the second numba fit of such a model takes
the compiled model of the first and swaps the data in (``CompiledModel.with_data``).

Two exceptions, both measured to cost more than they save: a response whose family has
terms in the response alone (Poisson's log y!, the binomial coefficient, lognormal's
log y) is a constant, so that those terms are folded once rather than evaluated at every
gradient (:data:`bayesmix.build.model.SHARED_RESPONSE`); and JAX models are compiled with
their data frozen in and are not kept, since JAX compiles in 1-3 s and XLA's code for
frozen data is several times faster.

"Same structure" is checked, not assumed: the log-density and the deterministics of the two
models must be equal graphs (:func:`pytensor.graph.basic.equal_computations`, which
compares constants by value) once their value variables and shared variables are paired
by name; the coordinates, the data shapes and dtypes, and the compile options must match.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import equal_computations
from pytensor.graph.traversal import graph_inputs

__all__ = ["CACHE_SIZE", "Compiled", "GraphCache", "clear_cache", "compile_model"]

#: compiled models kept per process (least recently used dropped first)
CACHE_SIZE = 16


class GraphCache[T]:
    """Values kept per computation graph: an equal graph finds the value stored for another.

    Two graphs are equal when :func:`~pytensor.graph.basic.equal_computations` says so once
    their inputs are paired in order; ``key`` (any hashable summary of the graph, such as
    its inputs' types) narrows the comparisons. At most ``size`` keys are kept, the least
    recently used dropped first. Safe to use from several threads.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, list[tuple[list[Any], list[Any], T]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, outputs: list[Any], inputs: list[Any]) -> T | None:
        """The value stored for a graph equal to ``outputs`` of ``inputs``, or None."""
        with self._lock:
            for cached_outputs, cached_inputs, value in self._entries.get(key, []):
                if len(cached_inputs) == len(inputs) and equal_computations(
                    outputs, cached_outputs, in_xs=inputs, in_ys=cached_inputs
                ):
                    self._entries.move_to_end(key)
                    return value
        return None

    def put(self, key: Hashable, outputs: list[Any], inputs: list[Any], value: T) -> None:
        """Store ``value`` for the graph ``outputs`` of ``inputs``."""
        with self._lock:
            self._entries.setdefault(key, []).append((outputs, inputs, value))
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled model and how it was obtained."""

    model: Any  # nutpie's CompiledModel
    backend: str
    compile_time: float
    reused: bool


_CACHE: GraphCache[Any] = GraphCache(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every compiled model (the next fit of each structure compiles again)."""
    _CACHE.clear()


def _structure(model: pm.Model) -> tuple[tuple[Any, ...], list[Any], list[Any], dict[str, np.ndarray]]:
    """A hashable key, the graphs to compare, their inputs (paired by name) and the data values."""
    outputs = [model.logp(), *model.replace_rvs_by_values(model.deterministics)]
    shared = sorted(
        (v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)), key=lambda v: str(v.name)
    )
    # dimension lengths are shared variables too; they are part of the key through the coords
    names = {str(v.name) for v in model.data_vars}
    data = {str(v.name): np.asarray(v.get_value(borrow=True)) for v in shared if str(v.name) in names}
    key = (
        tuple((v.name, str(v.type)) for v in model.value_vars),
        tuple(v.name for v in model.deterministics),
        tuple((name, value.shape, value.dtype.str) for name, value in data.items()),
        tuple((name, tuple(map(str, values))) for name, values in model.coords.items()),
    )
    return key, outputs, [*model.value_vars, *shared], data


def _data_names(compiled: Any) -> set[str]:
    """Names of the shared variables a compiled model takes as data (both nutpie backends)."""
    if hasattr(compiled, "shared_var_keys"):  # numba
        return {str(var.name) for var in compiled.shared_var_keys}
    return set(compiled._shared_data)  # jax: nutpie keeps them by name


def compile_model(
    model: pm.Model,
    backend: str,
    *,
    fallback: str = "numba",
    initial_point: dict[str, Any] | None = None,
    reuse: bool = True,
) -> Compiled:
    """Compile ``model`` with nutpie under ``backend`` (``"numba"``, ``"jax"`` or ``"auto"``).

    With ``reuse``, a numba model compiled earlier in this process with the same structure
    is taken, with this model's data swapped in. ``"auto"`` takes such a model when there is
    one and otherwise compiles under ``fallback``. ``initial_point`` starts every chain
    there, without nutpie's random jitter; such compiled models are not cached (their
    initial point is part of them).
    """
    import nutpie

    structure, outputs, inputs, data = _structure(model)
    # JAX compiles in 1-3 s, and with the data frozen into the graph XLA specializes on them:
    # measured 0.9 ms against 3.6 ms per gradient for a Poisson GLMM of 100k rows. So JAX
    # models are frozen and compiled each time; numba models (9 s and more of LLVM) are reused.
    reuse = reuse and initial_point is None
    key = ("numba", *structure)
    if reuse and backend in ("numba", "auto"):
        cached = _CACHE.get(key, outputs, inputs)
        if cached is not None:
            start = time.perf_counter()
            known = _data_names(cached)
            compiled = cached.with_data(**{k: v for k, v in data.items() if k in known})
            return Compiled(compiled, "numba", time.perf_counter() - start, reused=True)
    if backend == "auto":
        backend = fallback
    reuse = reuse and backend == "numba"
    options: dict[str, Any] = {"backend": backend, "freeze_model": backend == "jax"}
    if backend == "jax":
        options["gradient_backend"] = "jax"
    if initial_point is not None:
        options.update(initial_points=initial_point, jitter_rvs=set())
    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, **options)
    elapsed = time.perf_counter() - start
    if reuse:
        _CACHE.put(key, outputs, inputs, compiled)
    return Compiled(compiled, backend, elapsed, reused=False)
