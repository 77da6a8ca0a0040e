"""Reading a clock frequency as users write it (``240MHz``, ``0.24GHz``, ``4.1667ns``)."""

from __future__ import annotations

import re

from nnfpga.core.errors import UserError

_CLOCK_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(mhz|ghz|ns)?\s*$", re.IGNORECASE)


def parse_clock_mhz(text: str | float) -> float:
    """``240MHz``, ``0.24GHz``, ``4.1667ns`` or a bare number of MHz."""
    if isinstance(text, (int, float)):
        mhz = float(text)
    else:
        m = _CLOCK_RE.match(str(text))
        if not m:
            raise UserError(f"cannot read clock {text!r}; write it like 240MHz, 0.32GHz or 4ns")
        value, unit = float(m.group(1)), (m.group(2) or "mhz").lower()
        mhz = {"mhz": value, "ghz": value * 1000.0, "ns": 1000.0 / value if value else 0.0}[unit]
    if not 1.0 <= mhz <= 1500.0:
        raise UserError(f"clock {text!r} ({mhz:g} MHz) is outside the plausible 1-1500 MHz range")
    return mhz
