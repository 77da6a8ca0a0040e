"""The package version.  It lives at the bottom, not in ``nnfpga/__init__.py``, because
the backends stamp it into every generated file and must not import the package root
(which re-exports the API, i.e. the compiler)."""

__version__ = "0.1.0"
