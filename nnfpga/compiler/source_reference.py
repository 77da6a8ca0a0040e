"""The source framework's own prediction on the user's samples: the reference of
``--data`` (`nnfpga.compiler.data_accuracy`).

Keras / QKeras run in tf_keras (with QKeras's custom objects), Keras 3 ``.keras`` archives
in Keras 3, ONNX in onnxruntime, PyTorch in torch (a TorchScript file only with
``--trust-model-code``, as for compiling it).  Each framework is imported here and only
when samples are given: compiling never imports one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from nnfpga.core.errors import UserError

#: Samples per framework call.
BATCH = 4096


def source_outputs(model, x: np.ndarray, bank: np.ndarray | None, where: str) -> tuple[np.ndarray, str]:
    """(outputs of ``model`` on ``x``, flattened per sample; the framework's name and
    version).  ``model``: a path, a `KerasJson`, a live model, or a list (a banked
    ensemble: model ``b`` runs on the samples of bank ``b``).  ``where`` names the samples."""
    if isinstance(model, (list, tuple)):
        if bank is None:
            raise UserError(f"{where}: a banked ensemble needs the samples' bank indices ('bank' in the .npz)")
        out: np.ndarray | None = None
        against = ""
        for b, member in enumerate(model):
            rows = np.nonzero(bank == b)[0]
            if len(rows) == 0:
                continue
            y, against = _outputs(member, x[rows], where)
            if out is None:
                out = np.zeros((len(x), y.shape[1]))
            out[rows] = y
        assert out is not None  # check_bank gave every sample a bank
        return out, against
    return _outputs(model, x, where)


def _outputs(model, x: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    y, against = _run(model, x32, where)
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(len(x), -1), against


def _run(model, x: np.ndarray, where: str):
    from nnfpga.compiler.frontends.keras import KerasJson
    from nnfpga.compiler.frontends.pytorch import TorchModel, is_torch_model
    if isinstance(model, KerasJson):
        return _keras_json(model, x)
    if isinstance(model, TorchModel):
        return _torch(model.module, x, where, model.trust_code)
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise UserError(f"{path}: the source model is gone (no such file); --data runs the source framework "
                            "on the samples, so it needs the model file; compile again with nnfpga compile MODEL "
                            "... --data FILE")
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return _onnx(path.read_bytes(), x, where)
        if suffix in (".pt", ".pth"):
            return _torch(path, x, where)
        if suffix == ".keras":
            return _keras3(path, x, where)
        return _keras_file(path, x, where)
    if type(model).__name__ == "ModelProto":
        return _onnx(model.SerializeToString(), x, where)
    if is_torch_model(model):
        return _torch(model, x, where)
    if hasattr(model, "predict") and hasattr(model, "get_config"):
        return _predict(model, x, where), _keras_name()
    raise UserError(f"--data: cannot run a {type(model).__name__} to compare with; give a model file or a "
                    "Keras / PyTorch / ONNX model")


def _framework_error(where: str, framework: str, e: Exception) -> UserError:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return UserError(f"{where}: {framework} could not run the source model on the samples "
                     f"({type(e).__name__}: {text[:300]})")


# ----------------------------------------------------------------------------- Keras
def _tf_keras():
    # tf.keras must be Keras 2 (tf_keras) for QKeras; the switch is read when TensorFlow is imported
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras
    return tf_keras


def _keras_name() -> str:
    tk = sys.modules.get("tf_keras")
    return f"Keras (tf_keras {tk.__version__})" if tk is not None else "Keras"


def _custom_objects() -> dict:
    _tf_keras()
    from qkeras.utils import _add_supported_quantized_objects
    objects: dict = {}
    _add_supported_quantized_objects(objects)
    return objects


def _predict(model, x: np.ndarray, where: str) -> np.ndarray:
    try:
        return model.predict(x, batch_size=BATCH, verbose=0)
    except Exception as e:  # noqa: BLE001 (TensorFlow raises many kinds)
        raise _framework_error(where, "Keras", e) from None


def _keras_file(path: Path, x: np.ndarray, where: str):
    keras = _tf_keras()
    try:
        model = keras.models.load_model(str(path), custom_objects=_custom_objects(), compile=False)
    except Exception as e:  # noqa: BLE001
        raise _framework_error(str(path), "tf_keras (loading the model)", e) from None
    return _predict(model, x, where), _keras_name()


def _keras_json(model, x: np.ndarray):
    keras = _tf_keras()
    where = str(model)
    try:
        net = keras.models.model_from_json(Path(model.architecture).read_text(), custom_objects=_custom_objects())
        net.load_weights(str(model.weights))
    except Exception as e:  # noqa: BLE001
        raise _framework_error(where, "tf_keras (loading the model)", e) from None
    return _predict(net, x, where), _keras_name()


def _keras3(path: Path, x: np.ndarray, where: str):
    try:
        import keras
        model = keras.saving.load_model(str(path), compile=False)
        y = model.predict(x, batch_size=BATCH, verbose=0)
    except Exception as e:  # noqa: BLE001
        raise _framework_error(where, "Keras 3", e) from None
    return y, f"Keras {keras.__version__}"


# ----------------------------------------------------------------------------- ONNX, PyTorch
def _onnx(data: bytes, x: np.ndarray, where: str):
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        y = np.concatenate([sess.run(None, {name: x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])
    except Exception as e:  # noqa: BLE001 (onnxruntime's own exception types)
        raise _framework_error(where, "onnxruntime", e) from None
    return y, f"onnxruntime {ort.__version__}"


def _torch(module, x: np.ndarray, where: str, trusted: bool = False):
    import torch

    from nnfpga.compiler.frontends.pytorch import _TRUSTED, load_torchscript
    if isinstance(module, (str, Path)):
        # refused without --trust-model-code, exactly as compiling it is
        module, _ = load_torchscript(Path(module), torch.from_numpy(x[:1]), trusted=trusted or _TRUSTED.get())
    try:
        with torch.no_grad():
            y = np.concatenate([module(torch.from_numpy(x[i:i + BATCH])).numpy() for i in range(0, len(x), BATCH)])
    except Exception as e:  # noqa: BLE001
        raise _framework_error(where, "PyTorch", e) from None
    return y, f"PyTorch {torch.__version__}"


# ----------------------------------------------------------------------------- a tree's model
def source_model_of(outdir: Path):
    """The model files an output tree was compiled from (its run.json's ``models``; a list
    for a banked ensemble), for ``nnfpga report OUTDIR --data``; a `UserError` when they
    are unknown or gone."""
    import json

    from nnfpga.compiler.frontends.keras import KerasJson
    from nnfpga.compiler.output_dir import RUN_RECORD
    path = Path(outdir) / RUN_RECORD
    redo = ("run the source framework yourself, or compile again with the samples: nnfpga compile MODEL ... "
            "--data FILE")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        models = record["models"]
        weights = record.get("weights") or [None] * len(models)
        if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)
                and isinstance(weights, list) and len(weights) == len(models)):
            raise ValueError("no list of model paths")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot tell which model {outdir} was compiled from ({e}); {redo}") from None
    out = []
    for m, w in zip(models, weights):
        if not Path(m).is_absolute():
            raise UserError(f"{outdir} was compiled from a model given in Python ({m}), not a file: --data cannot "
                            f"run it again; pass data= to nnfpga.compile, or {redo}")
        for f in (m, w):
            if f is not None and not Path(f).is_file():
                raise UserError(f"{f}: the model {outdir} was compiled from is gone (run.json names it); --data "
                                f"runs the source framework on the samples and needs it; {redo}")
        out.append(KerasJson(m, w) if isinstance(w, str) else m)
    return out[0] if len(out) == 1 else out
