"""PyTorch frontend: live ``nn.Module``s and TorchScript files, through torch's ONNX exporter.

A module is exported to ONNX in memory (the TorchScript-based exporter, ``dynamo=False``:
it needs no package beyond torch, handles ScriptModules and takes a fraction of a second;
the dynamo exporter is the fallback when it fails and onnxscript is installed), with a
dynamic batch axis, and compiled by the ONNX frontend.  Users keep PyTorch's NCHW layout.

Files: only TorchScript archives (``torch.jit.save``) are read, with ``torch.jit.load``.
They are recognised without unpickling anything: a TorchScript archive is a zip file with
a ``code/`` directory and ``constants.pkl``.  Everything else -- a state dict or a whole
module saved with ``torch.save`` (a pickle, which can run arbitrary code when loaded and,
for a state dict, holds no architecture) -- is refused with an explanation; to say which
it is, it is only ever read with ``torch.load(weights_only=True)``, which builds tensors
and containers and nothing else.  A traced TorchScript file records its example input's
shape; a scripted one does not, and needs ``example_input``.

A TorchScript archive is code: exporting it runs its methods (and ``torch.jit.load``
restores whatever its ``__setstate__`` does).  So it is loaded only when the user says
the file is trusted: ``--trust-model-code`` on the command line, in Python
``TorchModel(path, trust_code=True)`` or ``with trusting_model_code(): ...``; otherwise it
is refused before torch is imported.  Files larger than `MAX_TORCH_BYTES` are refused
unread.

torch is imported only here, and only when a PyTorch model is compiled.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnfpga.compiler.frontends.model_file import check_model_file
from nnfpga.core.errors import UserError

#: The ONNX opset the export asks for (inside the ONNX frontend's supported 13-26).
EXPORT_OPSET = 17

#: Largest .pt/.pth file read, on disk and unpacked (bytes): a trigger network's
#: TorchScript archive is well under a megabyte.
MAX_TORCH_BYTES = 64 * 1024 * 1024

_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("nnfpga_trust_model_code", default=False)

_ADVICE = ("save the model as TorchScript (torch.jit.save(torch.jit.trace(model, example), path)), export it "
           "with torch.onnx.export, or pass the module itself: nnfpga.compile(module, example_input)")


@dataclass
class TorchModel:
    """A PyTorch module (or a TorchScript file's path) and an example input fixing its shape."""

    module: Any
    example_input: Any = None
    trust_code: bool = False

    @property
    def name(self) -> str:
        if isinstance(self.module, (str, Path)):
            return Path(self.module).stem
        return type(self.module).__name__


@contextlib.contextmanager
def trusting_model_code(trust: bool = True) -> Iterator[None]:
    """Within the block, TorchScript files (code) may be loaded and run (``--trust-model-code``)."""
    token = _TRUSTED.set(trust)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_torch_model(obj) -> bool:
    """True for a `TorchModel` or a torch ``nn.Module`` (never imports torch itself)."""
    if isinstance(obj, TorchModel):
        return True
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def torch_to_ir(source, precision=None):
    """A PyTorch module, `TorchModel` or TorchScript path as an unquantised IR graph."""
    from nnfpga.compiler.frontends.onnx import onnx_to_ir
    tm = source if isinstance(source, TorchModel) else TorchModel(source)
    if isinstance(tm.module, (str, Path)) and Path(tm.module).suffix.lower() in (".pt", ".pth"):
        path = Path(tm.module)
        module, example = load_torchscript(path, tm.example_input, trusted=tm.trust_code or _TRUSTED.get())
        where = str(path)
    elif is_torch_model(tm.module):
        module, example, where = tm.module, tm.example_input, f"PyTorch model {tm.name!r}"
        if example is None:
            raise UserError(f"{where}: a PyTorch module needs an example input to fix its input shape: "
                            "nnfpga.compile(module, example_input, ...)")
    else:
        what = tm.module if isinstance(tm.module, (str, Path)) else f"a {type(tm.module).__name__}"
        raise UserError(f"example_input is only used for PyTorch models (modules and .pt/.pth TorchScript "
                        f"files); got {what}")
    model = export_onnx(module, example, where)
    return onnx_to_ir(model, precision, where=where, name=tm.name)


# ----------------------------------------------------------------------------- files
def check_torchscript(path: Path) -> None:
    """Refuse anything that is not a TorchScript archive, without running any of it."""
    check_model_file(path, "a TorchScript archive (.pt/.pth)", MAX_TORCH_BYTES)
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a TorchScript archive: {_not_zip(path)}. Instead, {_ADVICE}")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable TorchScript archive ({e}); the file is truncated or "
                        "corrupt") from None
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_TORCH_BYTES:
        raise UserError(f"{path}: the archive unpacks to {unpacked} bytes, more than the {MAX_TORCH_BYTES} "
                        "bytes nnfpga reads from a PyTorch model file")
    names = [i.filename for i in infos]
    has_code = any("/code/" in n or n.startswith("code/") for n in names)
    has_constants = any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names) and not (has_code and has_constants):
        raise UserError(f"{path}: a zip archive that is neither TorchScript nor a torch.save() file (it has no "
                        f"code/ or data.pkl). Instead, {_ADVICE}")
    if not (has_code and has_constants):
        raise UserError(f"{path}: a torch.save() archive, not TorchScript: {_saved_contents(path)}. Instead, "
                        f"{_ADVICE}")


def _not_zip(path: Path) -> str:
    """What a file that is not a zip archive is, for the refusal."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "the file is empty"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return f"it is a plain pickle (pickle.dump, or torch.save without the zip format): {_pickle_contents(path)}"
    if head.startswith(b"PK"):
        return "it starts like a zip archive but has no readable directory: the file is truncated or corrupt"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "it is a text file"
    return "it is neither a zip archive nor a pickle (random bytes, or a truncated or corrupt file)"


#: What a pickled state dict may name: its containers and torch's tensor rebuilders.
_STATE_DICT_GLOBALS = ("collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
                       "torch.")

_PICKLE_STRINGS = ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                   "SHORT_BINSTRING")


def _pickle_globals(path: Path) -> list[str]:
    """The classes and functions a plain pickle file would import, read from its opcodes
    (pickletools only parses; nothing is imported or called).  torch's legacy format is a
    few pickles in a row followed by raw tensor data: parsing stops at the first non-pickle."""
    import pickletools
    names: list[str] = []
    strings: list[str] = []
    with open(path, "rb") as f:
        for _ in range(4):
            try:
                for op, arg, _pos in pickletools.genops(f):
                    if op.name in _PICKLE_STRINGS:
                        strings.append(str(arg))
                    elif op.name == "GLOBAL":
                        names.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        names.append(f"{strings[-2]}.{strings[-1]}")
            except Exception:  # noqa: BLE001 (the raw data after the pickles, or a corrupt file)
                break
    return list(dict.fromkeys(names))


def _pickle_contents(path: Path) -> str:
    why = ("a state dict holds only weights, and nnfpga needs the architecture too; nnfpga never unpickles "
           "such files, which can run arbitrary code")
    names = _pickle_globals(path)
    odd = [n for n in names if not n.startswith(_STATE_DICT_GLOBALS)]
    if names and not odd:
        return f"it looks like a state dict (tensors only); {why}"
    if odd:
        return f"unpickling it would import and call {', '.join(odd[:4])}; {why}"
    return f"it holds plain Python data, not a model; {why}"


def _saved_contents(path: Path) -> str:
    """What a torch.save file holds, read with torch's weights-only unpickler (it builds
    tensors and plain containers, and refuses any other object instead of creating it)."""
    import torch
    why = ("a state dict holds only weights, and nnfpga needs the architecture too; nnfpga never fully "
           "unpickles such files, which can run arbitrary code")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 (UnpicklingError for any object beyond tensors and containers)
        return f"it pickles Python objects (a whole module?), which only a full unpickling could read; {why}"
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = ", ".join(str(k) for k in list(obj)[:4]) + (", ..." if len(obj) > 4 else "")
        return f"it holds a state dict of {len(obj)} tensors ({keys}); {why}"
    return f"it holds a {type(obj).__name__}, not a model; {why}"


def load_torchscript(path: Path, example_input=None, trusted: bool = False):
    """(ScriptModule, example input); the shape comes from the traced inputs when not given.
    ``trusted``: the user allows the archive's code to run (refused otherwise)."""
    check_torchscript(path)
    if not trusted:
        raise UserError(f"{path}: a TorchScript archive holds code, and compiling it runs that code (torch.jit.load "
                        "and the export to ONNX execute the model's methods); nnfpga runs code from a model file "
                        "only when told to: pass --trust-model-code (Python: TorchModel(path, trust_code=True)) "
                        "if you trust where the file comes from, or export the model to ONNX yourself "
                        "(torch.onnx.export) and compile the .onnx file")
    import torch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            module = torch.jit.load(str(path), map_location="cpu", _restore_shapes=example_input is None)
    except Exception as e:  # noqa: BLE001 (torch raises RuntimeError, ValueError, ...)
        raise UserError(f"{path}: cannot load the TorchScript archive ({type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    if example_input is not None:
        return module, example_input
    inputs = list(module.graph.inputs())[1:]  # the first is the module itself
    sizes = None
    if len(inputs) == 1:
        try:
            sizes = inputs[0].type().sizes()
        except (AttributeError, RuntimeError):
            sizes = None
    if not sizes or any(s is None for s in sizes):
        raise UserError(f"{path}: the TorchScript file records no input shape (a scripted module, or more "
                        "than one input); pass one: nnfpga.compile(path, example_input=...), or trace the "
                        "model (torch.jit.trace) before saving it")
    return module, torch.zeros(sizes)


# ----------------------------------------------------------------------------- export
def export_onnx(module, example_input, where: str):
    """The module as an ``onnx.ModelProto`` (batch axis dynamic), exported in memory."""
    import onnx
    import torch
    try:
        x = example_input if isinstance(example_input, torch.Tensor) else \
            torch.as_tensor(np.asarray(example_input, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: example_input must be one tensor or array of samples ({e})") from None
    x = x.detach().to(torch.float32)
    if x.dim() < 2:
        raise UserError(f"{where}: the example input has shape {tuple(x.shape)}; give a batch of samples "
                        "(batch axis first)")
    training = module.training
    module.eval()
    try:
        try:
            return onnx.load_from_string(_export(module, x, dynamo=False))
        except Exception as legacy:  # noqa: BLE001
            import importlib.util
            if isinstance(module, torch.jit.ScriptModule) or importlib.util.find_spec("onnxscript") is None:
                raise _export_error(where, legacy) from None
            try:
                return onnx.load_from_string(_export(module, x, dynamo=True))
            except Exception:  # noqa: BLE001 (report the first exporter's reason)
                raise _export_error(where, legacy) from None
    finally:
        module.train(training)


def _export(module, x, dynamo: bool) -> bytes:
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        if not dynamo:
            buf = io.BytesIO()
            torch.onnx.export(module, (x,), buf, dynamo=False, opset_version=EXPORT_OPSET,
                              input_names=["input"], output_names=["output"], do_constant_folding=True,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            return buf.getvalue()
        program = torch.onnx.export(module, (x,), dynamo=True, opset_version=max(EXPORT_OPSET, 18),
                                    input_names=["input"], output_names=["output"], verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
        return program.model_proto.SerializeToString()


def _export_error(where: str, e: Exception) -> UserError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return UserError(f"{where}: PyTorch could not export the model to ONNX ({type(e).__name__}: {msg})")
