"""Gather: a fixed re-arrangement of one sample's values, ``out_flat[i] = in_flat[index[i]]``
(row-major, NHWC).  Keras Permute and nearest-neighbour UpSampling1D/2D are built as one;
values are untouched (the type is the input's), so the firmware is wiring."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nnfpga.ir.ops.base import Op, TensorInfo, register


@register
@dataclass
class Gather(Op):
    op_type = "Gather"
    target_shape: tuple[int, ...] = ()
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def infer(self, ins: list[TensorInfo]) -> TensorInfo:
        (x,) = ins
        size, index = int(np.prod(x.shape)), np.asarray(self.index, dtype=np.int64).reshape(-1)
        if len(index) != int(np.prod(self.target_shape)):
            raise ValueError(f"Gather {self.name!r}: {len(index)} indices for the output shape {self.target_shape}")
        if len(index) and (index.min() < 0 or index.max() >= size):
            raise ValueError(f"Gather {self.name!r}: indices span [{index.min()}, {index.max()}]; the input "
                             f"{x.shape} has {size} values")
        self.index = index
        return TensorInfo(tuple(self.target_shape), x.type, x.lo, x.hi)

    def emulate(self, xs: list[np.ndarray], ins: list[TensorInfo]) -> np.ndarray:
        return self.forward(xs[0])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The re-arrangement of a batch (any dtype): the golden model's and the float network's."""
        return x.reshape(len(x), -1)[:, self.index].reshape((len(x), *self.target_shape))

    def params_json(self) -> dict:
        return {"target_shape": list(self.target_shape), "index": [int(i) for i in self.index]}

    @classmethod
    def params_from_json(cls, d: dict) -> dict:
        return {"target_shape": tuple(d["target_shape"]), "index": np.asarray(d["index"], dtype=np.int64)}


def permutation(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """(output shape, index) of transposing one sample of ``shape`` by ``axes``."""
    flat = np.arange(int(np.prod(shape))).reshape(shape).transpose(axes)
    return flat.shape, flat.reshape(-1)


def repetition(shape: tuple[int, ...], repeats: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """(output shape, index) of repeating each element ``repeats[k]`` times along axis k
    (nearest-neighbour upsampling)."""
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    for axis, r in enumerate(repeats):
        flat = np.repeat(flat, r, axis=axis)
    return flat.shape, flat.reshape(-1)
