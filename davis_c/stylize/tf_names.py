"""TensorFlow variable name -> PyTorch state-dict name, and the pure (TF-free) weight conversion.

The table :data:`TF_TO_TORCH` lists all 359 variables of Magenta's arbitrary-stylization model
(Inception trunk, bottleneck, 26 style heads, transformer) with their TF shapes.  Conversion is
then only a lookup plus a layout change per kind of tensor:

* ``conv``   HWIO ``[kh, kw, in, out]`` -> OIHW (axes 3, 2, 0, 1);
* ``linear`` a 1x1 conv on the pooled vector ``[1, 1, in, out]`` -> Linear ``[out, in]``;
* ``vector`` biases and batch-norm vectors, copied.

Reading TensorFlow files is done elsewhere (:mod:`davis_c.convert_style_weights`), so this module
and its tests need no TensorFlow.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np
import torch

from .architecture import CONTRACT, EMBEDDING_DIM, EXPAND, INCEPTION_CONVS, RESIDUAL, STYLE_LAYERS, TRUNK_CHANNELS, Conv
from .network import style_layer_key

__all__ = ["TFVariable", "TF_TO_TORCH", "N_VARIABLES", "N_FLOATS", "ConversionError",
           "tf_to_torch_state_dict", "torch_to_tf_variables"]

N_VARIABLES = 359
N_FLOATS = 11_005_826


class TFVariable(NamedTuple):
    torch_name: str
    tf_shape: tuple[int, ...]
    kind: str   # "conv" | "linear" | "vector"


class ConversionError(ValueError):
    """The TF variables do not form the expected checkpoint (missing / mis-shaped tensors)."""


def _conv_bn(tf_scope: str, torch_scope: str, conv: Conv, with_bn: bool = True) -> dict[str, TFVariable]:
    rows = {f"{tf_scope}/weights": TFVariable(f"{torch_scope}.weight", (conv.kh, conv.kw, conv.cin, conv.cout), "conv")}
    if with_bn:
        for tf_leaf, torch_leaf in (("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            rows[f"{tf_scope}/BatchNorm/{tf_leaf}"] = TFVariable(f"{torch_scope}.bn.{torch_leaf}", (conv.cout,), "vector")
    return rows


def _linear(tf_scope: str, torch_scope: str, cin: int, cout: int) -> dict[str, TFVariable]:
    return {
        f"{tf_scope}/weights": TFVariable(f"{torch_scope}.weight", (1, 1, cin, cout), "linear"),
        f"{tf_scope}/biases": TFVariable(f"{torch_scope}.bias", (cout,), "vector"),
    }


def _build_table() -> dict[str, TFVariable]:
    table: dict[str, TFVariable] = {}
    for scope, conv in INCEPTION_CONVS:
        table.update(_conv_bn(f"InceptionV3/{scope}", "InceptionV3." + scope.replace("/", "."), conv))
    table.update(_linear("Conv", "bottleneck", TRUNK_CHANNELS, EMBEDDING_DIM))
    for layer, channels in STYLE_LAYERS:
        key = style_layer_key(layer)
        table.update(_linear(f"style_params/{layer}/StyleNorm/Conv", f"style_params.{key}.beta", EMBEDDING_DIM, channels))
        table.update(_linear(f"style_params/{layer}/StyleNorm/Conv_1", f"style_params.{key}.gamma", EMBEDDING_DIM, channels))
    for conv in CONTRACT:
        table.update(_conv_bn(f"transformer/contract/{conv.name}", f"transformer.contract.{conv.name}", conv))
    for r in RESIDUAL:
        for k in (1, 2):
            conv = Conv(f"conv{k}", 3, 3, 128, 128)
            table.update(_conv_bn(f"transformer/residual/{r}/conv{k}", f"transformer.residual.{r}.conv{k}", conv, False))
    for conv, _ in EXPAND:
        table.update(_conv_bn(f"transformer/expand/{conv.name}/conv", f"transformer.expand.{conv.name}.conv", conv, False))
    return table


#: every TF variable name of the model -> (our name, TF shape, kind).
TF_TO_TORCH: dict[str, TFVariable] = _build_table()


def _strip(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def tf_to_torch_state_dict(variables: Mapping[str, np.ndarray], source: str = "TF variables") -> dict[str, torch.Tensor]:
    """Convert TF-named arrays to our float32 state dict.

    Names may carry the ``:0`` suffix of ``tf.Variable.name``.  Variables that are not part of the
    model (global step, optimiser slots, VGG loss network ...) are ignored; any missing or
    mis-shaped model variable is an error naming it.
    """
    arrays = {_strip(k): v for k, v in variables.items()}
    missing = sorted(set(TF_TO_TORCH) - set(arrays))
    if missing:
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
        raise ConversionError(f"{source}: {len(missing)} of the {N_VARIABLES} model variables are missing: {shown}")
    state: dict[str, torch.Tensor] = {}
    bad = []
    for tf_name, (torch_name, shape, kind) in TF_TO_TORCH.items():
        a = np.asarray(arrays[tf_name])
        if a.shape != shape:
            bad.append(f"{tf_name}: {a.shape} (expected {shape})")
            continue
        a = a.astype(np.float32, copy=False)
        if kind == "conv":
            a = a.transpose(3, 2, 0, 1)
        elif kind == "linear":
            a = a[0, 0].T
        state[torch_name] = torch.from_numpy(np.ascontiguousarray(a))
    if bad:
        raise ConversionError(f"{source}: wrong shapes: " + "; ".join(bad[:8]))
    n = sum(t.numel() for t in state.values())
    if len(state) != N_VARIABLES or n != N_FLOATS:   # guards the table itself
        raise ConversionError(f"{source}: converted {len(state)} tensors / {n} floats, expected {N_VARIABLES} / {N_FLOATS}")
    return state


def torch_to_tf_variables(state: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Inverse of :func:`tf_to_torch_state_dict` (round-trip checks, exporting back to TF names)."""
    out = {}
    for tf_name, (torch_name, _, kind) in TF_TO_TORCH.items():
        a = state[torch_name].detach().cpu().numpy()
        if kind == "conv":
            a = a.transpose(2, 3, 1, 0)
        elif kind == "linear":
            a = a.T[None, None]
        out[tf_name] = np.ascontiguousarray(a)
    return out
