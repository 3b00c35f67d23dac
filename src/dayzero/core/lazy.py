"""Lazy package exports (PEP 562): a name is imported from its module on first access, so that
importing a package does not pay for its heavy dependencies (torch, transformers)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``; called from its ``__init__`` while it is being imported.
    exports
        Name -> the module it is imported from on first access.
    public
        The package's ``__all__`` (listed by ``dir()`` with what is imported already).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)``, to assign in the package::

            __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
