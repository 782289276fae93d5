"""Name → network class, so that a manifest entry can build its network from a small dict."""
from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

_ARCHS: dict[str, type[nn.Module]] = {}
T = TypeVar("T", bound=type[nn.Module])


def register_arch(name: str) -> Callable[[T], T]:
    def add(cls: T) -> T:
        if name in _ARCHS:
            raise ValueError(f"architecture {name!r} registered twice")
        _ARCHS[name] = cls
        return cls

    return add


def build_arch(name: str, **options: object) -> nn.Module:
    _import_archs()
    try:
        cls = _ARCHS[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(_ARCHS)}") from None
    return cls(**options)


def _import_archs() -> None:
    # Imported here, not at module top, so that registering stays free of import cycles.
    from . import ffdnet_arch, lpips_arch, rrdbnet_arch, span_arch, srvgg_arch  # noqa: F401
