"""The model-family contract: what every VOS model of the toolkit offers, in one layout.

A family is a package ``models/<family>/`` with

* ``model.py``: the user-facing class, a subclass of its network and of :class:`VOSModel`, and
  ``load(checkpoint=None, device=None, **load_options)`` (registered by name in :mod:`models.registry`);
* ``ttt.py``: its test-time-training hooks (module functions, see :class:`TTTHooks` / :class:`OwnTTT`).

:class:`VOSModel` gives every family the same ``segment``:

    segment(frames uint8 (T, H, W, 3), masks, *, progress=False, **options) -> float32 (K+1, T, H, W)

``masks`` is a first-frame label map or ``{frame: label map}`` (:mod:`models.inputs`); the output has
background first, then the objects in sorted label order, 0 before an object's first frame.  ``options``
are checked once, by :meth:`VOSModel.options`, against the family's declared options (a dataclass of
defaults and types, :attr:`VOSModel.Options`): an unknown name or a value of the wrong type raises
:class:`OptionError` naming the option.  The harness calls the same check before any work.  ``segment``
runs in eval mode and restores the mode the model was in.

TTT hooks (used by :func:`models.ttt.adapt`) live in the family's ``ttt.py`` and are reached through the
methods of :class:`TTTHooks` (gradient TTT: tt-MCC / tt-Ent / tt-AE) or :class:`OwnTTT` (a family that
runs its own protocol, as label propagation).  Shared math lives beside this module: :mod:`models.aggregate`,
:mod:`models.imagenet`, :mod:`models.padding`, :mod:`models.groupconv`, :mod:`models.readout`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import numbers
import types
import typing
from typing import Any, ClassVar, Iterator, Mapping, Protocol, runtime_checkable

import numpy as np

__all__ = ["VOSModel", "TTTHooks", "OwnTTT", "OptionError", "SegmentModel", "declared_options",
           "option_defaults", "check_options", "value_fits"]


class OptionError(TypeError, ValueError):
    """A segment option the family does not declare, or a value that does not fit it.  ``option`` names it,
    and the message starts with it (``top_k='a': XMem expects int``).  Both a TypeError (as Python's own
    keyword check) and a ValueError."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@runtime_checkable
class SegmentModel(Protocol):
    """The structural interface the harness needs from any model, a plugin included."""

    def eval(self) -> Any: ...

    def segment(self, frames: np.ndarray, masks: Any, **options: Any) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------ option checks
def value_fits(value: Any, hint: Any) -> bool:
    """Whether a (YAML-typed or Python) value fits a type annotation (unknown annotations accept anything)."""
    import inspect

    if hint is inspect.Parameter.empty or hint is Any or hint is None and value is None:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is not None:
        hint = origin
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple, typing.Sequence):
        return isinstance(value, (list, tuple))
    if hint in (dict, typing.Mapping):
        return isinstance(value, Mapping)
    return True  # a class YAML cannot produce (torch.dtype, Path ...): left to the callee


def _hint_text(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def declared_options(options_class: type) -> dict[str, tuple[Any, Any]]:
    """{name: (default, type hint)} of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(options_class)
    return {f.name: (f.default, hints[f.name]) for f in dataclasses.fields(options_class)}


def option_defaults(options_class: type) -> dict[str, Any]:
    """{name: default} of an options dataclass."""
    return {name: default for name, (default, _) in declared_options(options_class).items()}


def check_options(options_class: type, options: Mapping[str, Any], family: str) -> dict[str, Any]:
    """``options`` as a dict after checking every name and value against ``options_class``; raises
    :class:`OptionError` naming the first option that does not fit."""
    declared = declared_options(options_class)
    for name, value in options.items():
        if name not in declared:
            raise OptionError(f"{name}: not an option of {family} (options: {', '.join(declared)})", name)
        hint = declared[name][1]
        if not value_fits(value, hint):
            raise OptionError(f"{name}={value!r}: {family} expects {_hint_text(hint)}", name)
    return dict(options)


# ------------------------------------------------------------------------------------------ the base class
class VOSModel:
    """Mixin of every family's model class (put it after the network: ``class XMem(XMemNet, VOSModel)``).

    A family sets :attr:`family`, :attr:`Options` (a dataclass: the declared segment options with their
    defaults and types) and implements ``_segment(frames, masks, options, *, progress)`` (``options`` checked,
    the model in eval mode); its ``__init__`` calls :meth:`_init_options` with
    the options given at load time.  The options in force are ``self.config``.
    """

    #: the family's name in messages ("XMem", "Cutie", ...)
    family: ClassVar[str] = "model"
    #: the declared segment options: a dataclass whose fields are the options, with defaults and types
    Options: ClassVar[type]
    config: dict[str, Any]

    def _init_options(self, options: Mapping[str, Any]) -> None:
        self.config = self.check_options({**option_defaults(self.Options), **options})

    @classmethod
    def _adjust_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Family-specific spellings and value rules, before the generic check (identity here)."""
        return options

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The one check of segment options (names and types); returns the options as a dict."""
        return check_options(cls.Options, cls._adjust_options(dict(options)), cls.family)

    def options(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options in force with ``overrides`` on top, checked."""
        return self.check_options({**self.config, **(overrides or {})})

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Eval mode inside the block; the previous train/eval mode is restored after it."""
        was_training = self.training  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.train(was_training)  # type: ignore[attr-defined]

    def segment(self, frames: np.ndarray, masks: Any, *, progress: bool = False, **options: Any) -> np.ndarray:
        """frames uint8 (T, H, W, 3) RGB; masks: a first-frame label map (H, W) or ``{frame: label map}``
        (:mod:`models.inputs`) -> float32 (K+1, T, H, W) probabilities (background first, objects in sorted
        label order, 0 before an object's first frame).  ``options`` override the model's options for this
        call (see :attr:`Options`); ``progress`` shows a bar over the frames where the family has one."""
        cfg = self.options(options)
        with self.eval_mode():
            return self._segment(frames, masks, cfg, progress=progress)


class TTTHooks:
    """The gradient-TTT hooks of :mod:`models.ttt` (tt-MCC / tt-Ent / tt-AE), delegated to the family's
    ``ttt.py`` (:attr:`ttt_module`), which defines ``prepare(model, frames)``,
    ``pseudo_labels(model, images, first_labels, options)``, ``FREEZE_GROUPS`` (or ``freeze_groups(model)``),
    ``cycle(model, batch, backwards=...)``, ``single(model, batch)`` and optionally ``sample_indices`` / ``max_sampled_frames``
    (samples of another shape than the STCN triplets) and ``PAD`` (default 16)."""

    #: the family's ``ttt.py`` module
    ttt_module: ClassVar[types.ModuleType]

    @property
    def ttt_pad(self) -> int:
        """Frames and masks of TTT samples are zero-padded to multiples of this (``ttt_module.PAD``, 16)."""
        return getattr(self.ttt_module, "PAD", 16)

    def prepare(self, frames: np.ndarray):
        """uint8 (T, H, W, 3) -> (T, 3, H, W) network input on the model's device."""
        return self.ttt_module.prepare(self, frames)

    def ttt_pseudo_labels(self, images, first_labels, **segment_options: Any):
        """Standard inference on prepared frames -> (T, H, W) uint8 class maps; mode restored."""
        import torch

        cfg = self.options(segment_options)  # type: ignore[attr-defined]
        with torch.no_grad(), self.eval_mode():  # type: ignore[attr-defined]
            return self.ttt_module.pseudo_labels(self, images, first_labels, cfg)

    def ttt_freeze_groups(self) -> dict[str, list[str]]:
        """Family freezing tokens -> parameter-name prefixes: ``ttt_module.freeze_groups(model)`` where the
        groups depend on the network, else ``ttt_module.FREEZE_GROUPS``."""
        groups = getattr(self.ttt_module, "freeze_groups", None)
        groups = groups(self) if callable(groups) else self.ttt_module.FREEZE_GROUPS
        return {k: list(v) for k, v in groups.items()}

    def ttt_cycle(self, batch: dict, *, backwards: bool = True):
        """tt-MCC / tt-Ent forward (and backward) passes."""
        return self.ttt_module.cycle(self, batch, backwards=backwards)

    def ttt_single(self, batch: dict):
        """tt-AE pass on frame 0."""
        return self.ttt_module.single(self, batch)

    def ttt_sample_indices(self, n_frames: int, num_frames: int, max_jump: int, rng: np.random.Generator) -> list[int]:
        """Frame indices of one TTT sample (the family's sampler, else STCN's triplets)."""
        from models.ttt import sampler

        return getattr(self.ttt_module, "sample_indices", sampler.sample_indices)(n_frames, num_frames, max_jump, rng)

    def ttt_max_sampled_frames(self, num_frames: int, max_jump: int) -> int:
        """How many leading frames :meth:`ttt_sample_indices` can reach (the frames TTT prepares)."""
        from models.ttt import sampler

        return getattr(self.ttt_module, "max_sampled_frames", sampler.max_sampled_frames)(num_frames, max_jump)


class OwnTTT:
    """A family that runs its own test-time training: ``ttt_module.adapt(model, frames, first_mask, **params)``
    does the whole job and :func:`models.ttt.adapt` hands it every parameter."""

    ttt_module: ClassVar[types.ModuleType]

    def test_time_adapt(self, frames: np.ndarray, first_mask: np.ndarray, **params: Any):
        return self.ttt_module.adapt(self, frames, first_mask, **params)
