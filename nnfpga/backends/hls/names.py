"""C++ identifiers for a graph: one sanitised, unique id per node.

Every identifier the HLS backend derives from a node id (types, arrays, functions) is
listed in `DERIVED`; ids are chosen so that no two derived identifiers collide, and
none collides with the fixed names of the generated tree (``input_t``, ``N_IN``, ...).
"""

from __future__ import annotations

import re

from nnfpga.backends.rtl.names import bounded

#: Patterns of every identifier derived from a node id.
DERIVED = ("{id}_t", "{id}_acc_t", "{id}_weight_t", "{id}_bias_t", "{id}_index_t",
           "{id}_pre_t", "{id}_diff_t", "{id}_exp_t", "{id}_sum_t", "{id}_inv_index_t",
           "{id}_inv_t", "layer_{id}", "mac_{id}", "w_{id}", "b_{id}", "table_{id}",
           "inv_table_{id}", "{id}_out")

#: Names used by the generated tree itself.
FIXED_NAMES = {"input_t", "result_t", "N_IN", "N_OUT", "x", "y", "main", "nnfpga"}

CPP_KEYWORDS = set("""alignas alignof and and_eq asm auto bitand bitor bool break case catch char
char16_t char32_t class compl const constexpr const_cast continue decltype default delete do
double dynamic_cast else enum explicit export extern false float for friend goto if inline int
long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast return short signed sizeof static static_assert static_cast struct
switch template this thread_local throw true try typedef typeid typename union unsigned using
virtual void volatile wchar_t while xor xor_eq""".split())


def sanitize(name: str) -> str:
    """A C identifier close to ``name``: non-word characters (non-ASCII ones too) become
    ``_``; a long name keeps its start and a short hash (`rtl.names.bounded`), since the
    top function's name is also a file name."""
    ident = re.sub(r"\W", "_", name, flags=re.ASCII) or "_"
    if ident[0].isdigit():
        ident = "l" + ident
    return bounded(ident, name)


class Names:
    """Allocates node ids and the top function's name without collisions.  Identifiers
    are compared without regard to case: they also name files (``w_<id>.h``), and two
    names differing only in case would be one file on a case-insensitive file system."""

    def __init__(self, top: str) -> None:
        self.used: set[str] = {n.lower() for n in FIXED_NAMES}
        self.notes: list[str] = []
        ident = sanitize(top)
        if ident in CPP_KEYWORDS or ident in FIXED_NAMES or ident.startswith("layer_"):
            ident = ident + "_top"
        if ident != top:
            self.notes.append(f"top function of model {top!r} is named {ident!r} (a valid, free C++ name)")
        self.top = ident
        self.used.add(ident.lower())
        self.ids: dict[str, str] = {}

    def node_id(self, name: str) -> str:
        if name in self.ids:
            return self.ids[name]
        base = sanitize(name)
        ident, k = base, 1
        while self._derived(ident) & self.used or ident.lower() in self.used:
            k += 1
            ident = f"{base}_{k}"
        if ident != name:
            self.notes.append(f"layer {name!r} uses the C++ id {ident!r}")
        self.used |= self._derived(ident) | {ident.lower()}
        self.ids[name] = ident
        return ident

    @staticmethod
    def _derived(ident: str) -> set[str]:
        return {p.format(id=ident).lower() for p in DERIVED}
