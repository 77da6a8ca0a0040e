"""`acyclic_pass`: run a pass over a whole RTL description with the cycle collector paused."""

from __future__ import annotations

import functools
import gc
from typing import Callable, TypeVar

_F = TypeVar("_F", bound=Callable)


def acyclic_pass(fn: _F) -> _F:
    """Run ``fn`` (a pass over a whole description: the lowering, a printer, the estimator) with
    Python's cycle collector paused.  Such a pass allocates tens of thousands of objects
    and no reference cycles (reference counting frees all of it), while each full
    collection it would trigger re-scans the whole description (measured on a
    10k-parameter model: one in the VHDL printer and one in the estimator, 0.1 s each)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()
    return run  # type: ignore[return-value]
