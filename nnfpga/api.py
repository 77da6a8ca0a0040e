"""The Python API: the same verbs as the command line.

    import nnfpga
    result = nnfpga.compile("model.h5", target="xcvu9p", clock="240MHz", outdir="fw")
    result = nnfpga.compile(torch_module, example_input, target="xcvu9p", outdir="fw")
    y = nnfpga.emulate("fw", x)
    summary = nnfpga.verify("fw", x, sims=["verilator", "ghdl", "csim"])
    report = nnfpga.report("fw")

    # optimisation: a strict YAML config, post-training quantisation with calibration
    # data, pruning (in the config), reuse factors for a DSP budget or an II limit
    result = nnfpga.compile("model.h5", outdir="fw", config="nnfpga.yml", calibration=x_cal,
                            max_dsp=200)
    text = nnfpga.make_config("model.h5")            # a commented starting config
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnfpga.compiler.driver import CompileResult, compile_model, emulate_firmware, verify_firmware
from nnfpga.compiler.frontends.precision import Precision
from nnfpga.core.errors import UserError


def compile(model, example_input=None, *, target: str = "xcvu9p", clock: str | float = "240MHz",  # noqa: A001
            outdir: str | Path = "fw", precision: Precision | None = None, config=None,
            calibration: np.ndarray | None = None, labels: np.ndarray | None = None,
            max_dsp: int | None = None, ii: int | None = None, event_rate=None, trim: bool | None = None,
            reuse: int | None = None, dump_ir: str | Path | None = None, name: str | None = None,
            library: str | None = None, axi_stream: bool = False, bunch_crossing: bool = False,
            html: bool = False, weights: str | Path | None = None,
            max_multiplications: int | None = None, data=None, data_labels: np.ndarray | None = None,
            data_bank: np.ndarray | None = None) -> CompileResult:
    """Compile ``model`` (a .h5/.keras/.onnx/.pt path, a Keras model, an ONNX ModelProto or a
    PyTorch module).  ``weights``: the weights .h5 of a Keras .json architecture file given
    as ``model`` (``model.to_json()`` + ``model.save_weights``).  ``example_input`` (a tensor or array of one or more samples) fixes the
    input shape of a PyTorch module or TorchScript file, which is exported to ONNX with it.

    ``config``: a YAML file path (or a dict of the same content); ``calibration``: float
    samples for post-training quantisation / trimming (``labels`` for the auc metric);
    ``max_dsp`` / ``ii`` / ``event_rate`` (e.g. "40MHz"): reuse-factor selection;
    ``reuse``: one reuse factor for every layer (per-layer config entries override it);
    ``trim``: narrow types to the calibration data's range; ``name``: the core's name (top
    entity/module, prefix of its design units; default the model's), ``library``: its VHDL
    library (default ``nnfpga_<name>``); ``max_multiplications``: the size limit
    (`nnfpga.compiler.size_guard`).  Values the compiler had to
    change are in ``result.adjustments`` (and warned about).

    ``data``: samples (an array, or a .npy/.npz path as for ``--data``; ``data_labels`` /
    ``data_bank`` with an array) on which the golden fixed-point model and the source
    framework run; their comparison is ``result.report["data_accuracy"]`` (and in
    report.json/.md/.html)."""
    if example_input is not None:
        from nnfpga.compiler.frontends.pytorch import TorchModel
        model = TorchModel(model, example_input)
    from nnfpga.compiler.frontends.keras import with_weights
    model = with_weights(model, weights)
    samples = None
    if data is not None:
        from nnfpga.compiler.data_accuracy import as_data
        samples = as_data(data, data_labels, data_bank)
    return compile_model(model, target, clock, outdir, precision, dump_ir, config=config,
                         calibration=calibration, labels=labels, max_dsp=max_dsp, ii=ii,
                         event_rate=event_rate, trim=trim, reuse=reuse, name=name, library=library,
                         axi_stream=axi_stream, bunch_crossing=bunch_crossing, html=html,
                         max_multiplications=max_multiplications, data=samples)


def make_config(model, path: str | Path | None = None, *, config=None, calibration: np.ndarray | None = None,
                labels: np.ndarray | None = None, max_dsp: int | None = None, ii: int | None = None,
                event_rate=None, clock: str | float = "240MHz", trim: bool | None = None,
                precision: Precision | None = None, weights: str | Path | None = None) -> str:
    """A commented configuration file for ``model`` listing every layer with its current
    settings (written to ``path`` when given, which must not exist yet); returns the text.
    With calibration data or a DSP/II target the values the searches choose are written
    active, so compiling with the file reproduces them.  ``weights``: as for `compile`."""
    from nnfpga.compiler.config_template import config_text
    from nnfpga.compiler.frontends.keras import with_weights
    model = with_weights(model, weights)
    from nnfpga.core.clock import parse_clock_mhz
    if path is not None and Path(path).exists():
        raise UserError(f"{path}: exists; nnfpga config does not overwrite files")
    text = config_text(model, config=config, precision=precision, calibration=calibration, labels=labels,
                       max_dsp=max_dsp, ii=ii, event_rate=event_rate, clock_mhz=parse_clock_mhz(clock),
                       trim=trim)
    if path is not None:
        Path(path).write_text(text)
    return text


def emulate(outdir: str | Path, x: np.ndarray, bank: np.ndarray | None = None) -> np.ndarray:
    """``bank``: per sample its bank index, for a banked ensemble (compiled from a list of
    models)."""
    return emulate_firmware(outdir, x, bank)


def verify(outdir: str | Path, x: np.ndarray, sims: list[str] | None = None,
           bank: np.ndarray | None = None) -> dict:
    return verify_firmware(outdir, x, sims, bank=bank, source="samples given to nnfpga.verify")


def report(outdir: str | Path) -> dict:
    path = Path(outdir) / "report.json"
    if not path.exists():
        raise UserError(f"{outdir}: no report.json; run nnfpga compile first")
    return json.loads(path.read_text())
