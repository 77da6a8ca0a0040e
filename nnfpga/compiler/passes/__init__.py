"""Compiler passes: plain functions ``(graph, options) -> graph``, one per module,
run in the order `PIPELINE` declares (the IR can be dumped after each)."""
