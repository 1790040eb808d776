"""Checks of a resolved method before any work: its options fit the model, and its code is trusted.

* :func:`check_options` checks every ``load``, ``segment`` and ``ttt_params`` setting (preset, ``--config``
  and ``--set`` alike): ``segment`` options by the model's own check (the family contract,
  :meth:`models.base.VOSModel.options`: the one check of a segment option), the others -- and the
  ``segment`` options of a plugin model outside the contract -- against the signature of the function that
  receives them (the model's builder from :mod:`models.registry`, ``models.ttt.adapt`` or the family's own
  TTT).  An unknown name, or a value of the wrong type (``--set k=abc`` for ``k: int``), is a
  :class:`harness.methods.MethodError` raised before ``run.json`` is written, so a typo never reaches a
  unit nor locks the results folder to a bad value.
* :func:`check_plugin`: a ``model: package.module:function`` target imports (runs) that module.  Such a
  target is refused unless it was named on the command line (``--set model=pkg.mod:load``) or the user
  passed ``--allow-plugin``: a ``--config`` file must not run code nobody asked for.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Iterable, Mapping

from harness.methods import MethodError, parse_set

__all__ = ["check_options", "check_plugin"]

_NOT_CHECKED = ("frames", "first_mask", "masks", "vos", "checkpoint", "device", "self", "seed")


def _hint_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")


def _hints(func: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {}


def _check_call(func: Callable, options: Mapping[str, Any], section: str, where: str,
                defaults: Mapping[str, Any] | None = None, strict: bool = False) -> list[str]:
    """Problems of passing ``options`` as keyword arguments to ``func``.  A name taken through ``**kwargs``
    is checked against ``defaults`` when given; otherwise it is refused with ``strict`` (the registry's
    models reject unknown options) and left to the callee without."""
    from models.base import value_fits

    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    hints = _hints(func)
    params = sig.parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and n not in _NOT_CHECKED]
    problems = []
    for name, value in options.items():
        if name in params and params[name].kind in (params[name].POSITIONAL_OR_KEYWORD, params[name].KEYWORD_ONLY):
            hint = hints.get(name, inspect.Parameter.empty)
            if hint is inspect.Parameter.empty and params[name].default not in (inspect.Parameter.empty, None):
                hint = type(params[name].default)
        elif var_kw and defaults is not None and name in defaults:
            if defaults[name] is None:
                continue
            hint = type(defaults[name])
        elif var_kw and defaults is None and not strict:
            continue  # taken through **kwargs of a plugin model: the callee checks it
        else:
            known = named + sorted(n for n in (defaults or {}) if n not in named)
            problems.append(f"{section}.{name}: not an option of {where} (options: {', '.join(known) or 'none'})")
            continue
        if not value_fits(value, hint):
            problems.append(f"{section}.{name}={value!r}: {where} expects {_hint_text(hint)}")
    return problems


def _loader_function(model: str) -> Callable | None:
    from models.registry import builder

    try:
        return builder(model)
    except KeyError:
        return None


def _check_segment(vos: Any, options: Mapping[str, Any], registry: bool) -> list[str]:
    """Problems of the ``segment`` options: a model of the family contract (:mod:`models.base`) checks them
    itself, one by one so that every problem is listed; another (a plugin) by its ``segment`` signature."""
    from models.base import OptionError

    checker = getattr(vos, "options", None)
    if callable(checker) and callable(getattr(vos, "check_options", None)):
        problems = []
        for name, value in options.items():
            try:
                checker({name: value})
            except OptionError as exc:
                problems.append(f"segment.{exc}")
        return problems
    segment = getattr(vos, "segment", None)
    if not callable(segment):
        return []
    model_defaults = getattr(vos, "config", None)
    model_defaults = model_defaults if isinstance(model_defaults, Mapping) else None
    return _check_call(segment, options, "segment", f"{type(vos).__name__}.segment", model_defaults,
                       strict=registry)


def check_options(config: Mapping[str, Any], vos: Any = None, ttt: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`MethodError` listing every setting that does not fit the model (see module doc).
    Without ``vos`` only the ``load`` options are checked (before the model is built)."""
    problems: list[str] = []
    loader = _loader_function(str(config["model"]))
    if loader is not None:
        problems += _check_call(loader, config.get("load") or {}, "load", f"{config['model']} loader")
    if vos is None:
        if problems:
            raise MethodError("settings that do not fit the model (nothing was run or written): "
                              + "; ".join(problems))
        return
    from models.registry import is_plugin

    problems += _check_segment(vos, config.get("segment") or {}, registry=not is_plugin(config["model"]))
    user_ttt = config.get("ttt_params") or {}
    if ttt is not None and user_ttt:
        hook = getattr(vos, "test_time_adapt", None)
        if callable(hook):  # a family's own protocol (models.base.OwnTTT): its ttt module's adapt
            own = getattr(getattr(vos, "ttt_module", None), "adapt", hook)
            problems += _check_call(own, user_ttt, "ttt_params", f"{type(vos).__name__}.test_time_adapt")
        else:
            from models import ttt as ttt_mod

            problems += _check_call(ttt_mod.adapt, user_ttt, "ttt_params", "models.ttt.adapt", strict=True)
    if problems:
        raise MethodError("settings that do not fit the model (nothing was run or written): "
                          + "; ".join(problems))


def check_plugin(model: str, overrides: Iterable[str], allow_plugin: bool, origin: str = "the method config"
                 ) -> None:
    """Refuse a ``package.module:function`` model target that nobody asked for on the command line."""
    if ":" not in str(model) or allow_plugin:
        return
    for item in overrides:
        try:
            parts, value = parse_set(item)
        except MethodError:
            continue
        if parts == ["model"] and value == model:
            return
    from models.registry import available_models

    raise MethodError(f"{origin} names the model {model!r}: a 'package.module:function' model imports that "
                      "module, i.e. runs its code. If you trust it, pass --allow-plugin (or name it on the "
                      f"command line: --set model={model}); registry models: {', '.join(available_models())}")
