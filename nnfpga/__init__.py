"""nnfpga: trained neural networks to bit-exact trigger-FPGA firmware."""

from nnfpga.core.version import __version__  # noqa: F401


def __getattr__(name):
    # The API verbs are imported lazily so `import nnfpga.ir` stays light.
    if name in ("compile", "emulate", "verify", "report", "make_config"):
        from nnfpga import api
        return getattr(api, name)
    raise AttributeError(name)
