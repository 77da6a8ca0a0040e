"""Serialisation helpers for ops that carry float weights, quantisers and integers."""

from __future__ import annotations

import numpy as np

from nnfpga.ir.quant import QuantArray, Quantizer


def arr_json(a: np.ndarray | None) -> dict | None:
    if a is None:
        return None
    return {"shape": list(a.shape), "data": np.asarray(a, dtype=np.float64).reshape(-1).tolist()}


def arr_from_json(d: dict | None) -> np.ndarray | None:
    if d is None:
        return None
    return np.asarray(d["data"], dtype=np.float64).reshape(d["shape"])


def weights_json(op) -> dict:
    return {"kernel": arr_json(op.kernel), "bias": arr_json(op.bias),
            "kernel_quantizer": op.kernel_quantizer.to_json() if op.kernel_quantizer else None,
            "bias_quantizer": op.bias_quantizer.to_json() if op.bias_quantizer else None,
            "kernel_q": op.kernel_q.to_json() if op.kernel_q else None,
            "bias_q": op.bias_q.to_json() if op.bias_q else None,
            "reuse_factor": op.reuse_factor}


def weights_from_json(d: dict) -> dict:
    return {"kernel": arr_from_json(d["kernel"]), "bias": arr_from_json(d["bias"]),
            "kernel_quantizer": Quantizer.from_json(d["kernel_quantizer"]),
            "bias_quantizer": Quantizer.from_json(d["bias_quantizer"]),
            "kernel_q": QuantArray.from_json(d["kernel_q"]) if d["kernel_q"] else None,
            "bias_q": QuantArray.from_json(d["bias_q"]) if d["bias_q"] else None,
            "reuse_factor": int(d.get("reuse_factor", 1))}
