"""The optimisation options that ``nnfpga compile`` and ``nnfpga config`` share."""

from __future__ import annotations

import argparse

from nnfpga.core.errors import UserError


def add_optimisation_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--config", help="configuration file (YAML; see nnfpga config MODEL)")
    c.add_argument("--calibration", help="calibration samples (.npy, or .npz with x [and labels y]) for "
                                         "post-training quantisation and --trim")
    c.add_argument("--labels", help="labels of the calibration samples (.npy), for the auc metric")
    c.add_argument("--max-dsp", type=int, help="DSP budget: choose reuse factors with the least latency")
    c.add_argument("--ii", type=int, help="initiation interval limit (cycles): choose reuse factors")
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
