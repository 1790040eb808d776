"""The one registry of model families: name -> builder (the way SAM 2's ``build_sam.py`` maps config names to
builders).  A builder is ``load(checkpoint=None, device=None, **load_options) -> model`` (the family's
``model.py``); it is imported only when its name is asked for, so ``import models`` loads no family.

:func:`builder` also resolves a ``package.module:function`` target (a plugin model, see
``examples/plugin_model.py``): the harness, its option checks and ``load_model`` all go through it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["MODELS", "register", "builder", "load_model", "available_models", "is_plugin"]

#: model name -> "module:function" of its builder
MODELS: dict[str, str] = {
    "stcn": "models.stcn.model:load",
    "xmem": "models.xmem.model:load",
    "cutie": "models.cutie.model:load",
    "labelprop": "models.labelprop.model:load",
    "eosvos": "models.eosvos.model:load",
    "sam2.1_hiera_t": "models.sam2.model:load_sam2_1_hiera_t",
    "sam2.1_hiera_s": "models.sam2.model:load_sam2_1_hiera_s",
    "sam2.1_hiera_b+": "models.sam2.model:load_sam2_1_hiera_b_plus",
    "sam2.1_hiera_l": "models.sam2.model:load_sam2_1_hiera_l",
    "sam2_hiera_t": "models.sam2.model:load_sam2_hiera_t",
    "sam2_hiera_s": "models.sam2.model:load_sam2_hiera_s",
    "sam2_hiera_b+": "models.sam2.model:load_sam2_hiera_b_plus",
    "sam2_hiera_l": "models.sam2.model:load_sam2_hiera_l",
}


def register(name: str, target: str) -> None:
    """Add (or replace) model ``name`` with builder ``target`` = ``"package.module:function"``."""
    if ":" in name:
        raise ValueError(f"a model name may not contain ':' (that spells a plugin target), got {name!r}")
    if target.count(":") != 1:
        raise ValueError(f"builder target must be 'package.module:function', got {target!r}")
    MODELS[name] = target


def available_models() -> list[str]:
    return sorted(MODELS)


def is_plugin(name: str) -> bool:
    """Whether ``name`` is a ``package.module:function`` target rather than a registered name."""
    return ":" in str(name)


def builder(name: str) -> Callable[..., Any]:
    """The builder of model ``name`` (a registered name or a ``package.module:function`` target).

    Raises KeyError for an unknown name (the message lists the registered ones); importing the module of a
    target raises what that import raises.
    """
    target = name if is_plugin(name) else MODELS.get(name)
    if target is None:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())} "
                       "(or 'package.module:function')")
    module, func = target.split(":", 1)
    loader = getattr(importlib.import_module(module), func, None)
    if not callable(loader):
        raise KeyError(f"model target {target!r}: {module} has no function {func!r}")
    return loader


def load_model(name: str, checkpoint: Any = None, device: Any = None, **config: Any):
    """Build model ``name`` and load ``checkpoint`` (a path or a state dict) strictly.

    ``checkpoint=None`` builds the network with untrained weights (use :func:`models.golden_init` for the
    reproducible recipe the tests rely on).
    """
    try:
        load = builder(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    return load(checkpoint=checkpoint, device=device, **config)
