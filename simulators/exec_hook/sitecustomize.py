"""``devicectl sim exec``'s startup hook: the simulated radio in place of bleak's default one.

``sim exec`` puts this file's directory first on the child's ``PYTHONPATH``, so every Python
interpreter in the child's process tree imports it at startup (``site`` imports the first
``sitecustomize`` on ``sys.path``). It does two things:

* it runs the ``sitecustomize`` it hides (the next one on ``sys.path``), as if this one were not
  there;
* if ``DEVICECTL_SIM_EXEC`` holds a spec, it waits for the program to import bleak and then has
  :func:`simulators.exec.install` replace bleak's default backends with the simulated radio.

Waiting costs nothing in an interpreter that never imports bleak (a tool the program starts),
and such an interpreter need not have devicectl installed. One that does import bleak but cannot
load the simulators fails at ``import bleak`` with a message saying so: it never reaches the
real radio silently. Kept small and free of devicectl imports for that reason.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_ENV_VAR = "DEVICECTL_SIM_EXEC"  # simulators.exec.ENV_VAR; not imported, see above
_HERE = os.path.dirname(os.path.realpath(__file__))


def _chain() -> ModuleType | None:
    """Run the next ``sitecustomize`` on ``sys.path`` (the user's or the distribution's)."""
    others = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _PatchAfter(importlib.abc.Loader):
    """bleak's own loader, then the simulated radio, before anyone else sees bleak."""

    def __init__(self, loader: importlib.abc.Loader, watcher: _BleakWatcher) -> None:
        self._loader = loader
        self._watcher = watcher

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader (importlib.resources and tracebacks ask it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            from simulators.exec import install_from_environment
        except ImportError as exc:
            raise ImportError(
                f"devicectl sim exec: this Python ({sys.executable}) cannot load devicectl's "
                f"simulators ({exc}); run the program with a Python that has devicectl installed"
            ) from exc
        install_from_environment()
        # Only now: had anything failed, a second ``import bleak`` must fail the same way.
        self._watcher.remove()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _BleakWatcher(importlib.abc.MetaPathFinder):
    """Finds bleak the usual way, through the other finders, and wraps its loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "bleak":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchAfter(spec.loader, self)
                return spec
        return None

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


if os.environ.get(_ENV_VAR) is not None and "bleak" not in sys.modules:
    sys.meta_path.insert(0, _BleakWatcher())
_chained = _chain()
