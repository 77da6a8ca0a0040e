"""The op set: one op per module.  Importing this package registers every op.

`activation_functions` is the Activation op's table of functions: what each one is
(float meaning, error-bound rule, signedness, what passes may do with it)."""

from nnfpga.ir.ops.activation import Activation  # noqa: F401
from nnfpga.ir.ops.banked_dense import BankedDense  # noqa: F401
from nnfpga.ir.ops.base import OP_CLASSES, Op, TensorInfo  # noqa: F401
from nnfpga.ir.ops.batchnorm import BatchNorm  # noqa: F401
from nnfpga.ir.ops.conv2d import Conv2D  # noqa: F401
from nnfpga.ir.ops.dense import Dense  # noqa: F401
from nnfpga.ir.ops.gather import Gather  # noqa: F401
from nnfpga.ir.ops.input import Input  # noqa: F401
from nnfpga.ir.ops.maxpool2d import MaxPool2D  # noqa: F401
from nnfpga.ir.ops.quantize import Quantize  # noqa: F401
from nnfpga.ir.ops.reshape import Reshape  # noqa: F401
from nnfpga.ir.ops.scale_shift import ScaleShift  # noqa: F401
from nnfpga.ir.ops.merge import Add, Concatenate  # noqa: F401
