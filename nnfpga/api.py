"""The Python API: the same verbs as the command line.

    import nnfpga
    result = nnfpga.compile("model.h5", target="xcvu9p", clock="240MHz", outdir="fw")
    result = nnfpga.compile(torch_module, example_input, target="xcvu9p", outdir="fw")
    y = nnfpga.emulate("fw", x)
    summary = nnfpga.verify("fw", x, sims=["verilator", "ghdl", "csim"])
    report = nnfpga.report("fw")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnfpga.compiler.driver import CompileResult, compile_model, emulate_firmware, verify_firmware
from nnfpga.compiler.errors import UserError
from nnfpga.compiler.frontends.keras import Precision


def compile(model, example_input=None, *, target: str = "xcvu9p", clock: str | float = "240MHz",
            outdir: str | Path = "fw", precision: Precision | None = None) -> CompileResult:  # noqa: A001
    """Compile ``model`` (a .h5/.keras/.onnx/.pt path, a Keras model, an ONNX ModelProto or a
    PyTorch module).  ``example_input`` (a tensor or array of one or more samples) fixes the
    input shape of a PyTorch module or TorchScript file, which is exported to ONNX with it."""
    if example_input is not None:
        from nnfpga.compiler.frontends.pytorch import TorchModel
        model = TorchModel(model, example_input)
    return compile_model(model, target, clock, outdir, precision)


def emulate(outdir: str | Path, x: np.ndarray) -> np.ndarray:
    return emulate_firmware(outdir, x)


def verify(outdir: str | Path, x: np.ndarray, sims: list[str] | None = None) -> dict:
    return verify_firmware(outdir, x, sims)


def report(outdir: str | Path) -> dict:
    path = Path(outdir) / "report.json"
    if not path.exists():
        raise UserError(f"{outdir}: no report.json; run nnfpga compile first")
    return json.loads(path.read_text())
