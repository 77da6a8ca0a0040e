"""The optimisation options that ``nnfpga compile`` and ``nnfpga config`` share."""

from __future__ import annotations

import argparse

from nnfpga.core.limits import MAX_COUNT
from nnfpga.core.errors import UserError


def count(text: str) -> int:
    """An argparse type: a whole number from 1 to `MAX_COUNT` (the config file's bound too)."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_COUNT:,}, got {text!r}") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_COUNT:,}, got {text!r}")
    return value


def budget(text: str) -> int:
    """An argparse type: a whole number from 0 to `MAX_COUNT` (``--max-dsp``: 0 builds
    every product without a DSP)."""
    return 0 if text.strip() == "0" else count(text)


def positive(text: str) -> float:
    """An argparse type: a finite number above zero."""
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def clock_note(text: str, verb: str) -> None:
    """A bare number of MHz is accepted (documented); say how it was read."""
    import sys
    try:
        float(text)
    except ValueError:
        return
    print(f"nnfpga {verb}: note: --clock {text} read as {text} MHz (write the unit, e.g. {text}MHz, "
          "to silence this)", file=sys.stderr)


def clock(text: str) -> str:
    """An argparse type: a clock nnfpga can read (`parse_clock_mhz`), kept as written."""
    from nnfpga.core.clock import parse_clock_mhz
    try:
        parse_clock_mhz(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def part(text: str) -> str:
    """An argparse type: a non-empty part name (`find_part` checks that it is known)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("names no FPGA part; give one such as xcvu9p or xcvu9p-flga2104-2L-e")
    return text


def add_optimisation_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--config", help="configuration file (YAML; see nnfpga config MODEL)")
    c.add_argument("--calibration", help="calibration samples (.npy, or .npz with x [and labels y]) for "
                                         "post-training quantisation and --trim")
    c.add_argument("--labels", help="labels of the calibration samples (.npy), for the auc metric")
    c.add_argument("--max-dsp", type=budget, help="DSP budget: choose reuse factors with the least latency "
                                                  "(0: every constant product as LUT shift-add logic, no DSP)")
    c.add_argument("--ii", type=count, help="initiation interval limit (cycles): choose reuse factors")
    c.add_argument("--event-rate", help="event rate to sustain, e.g. 40MHz (with --clock: an II limit)")
    c.add_argument("--trim", action="store_true", default=None,
                   help="narrow compiler-chosen types to the calibration data's range (saturating)")


def optimisation_kwargs(args: argparse.Namespace) -> dict:
    """The options as keyword arguments of `compile_model` / `make_config` (the
    calibration files read)."""
    from nnfpga.compiler.config import load_calibration
    x = y = None
    if args.calibration:
        x, y = load_calibration(args.calibration, args.labels)
    elif args.labels:
        raise UserError("--labels needs --calibration")
    return {"config": args.config, "calibration": x, "labels": y, "max_dsp": args.max_dsp, "ii": args.ii,
            "event_rate": args.event_rate, "trim": args.trim}
