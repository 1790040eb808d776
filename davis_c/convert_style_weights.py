"""Convert the official stylization weights (TensorFlow) to a plain PyTorch state dict, once.

DAVIS-C's style1..style4 come from Magenta's arbitrary-image-stylization network.  Its weights are
published as a TF1 checkpoint (Magenta ``arbitrary_style_transfer.tar.gz``) and as the TF-Hub
SavedModel ``magenta/arbitrary-image-stylization-v1-256/2`` that the official generator calls.
This tool reads either with TensorFlow (``pip install -e ".[convert]"``; imported only here, never at
run time), maps the 359 variables to our names (:mod:`davis_c.stylize.tf_names`) and writes
``style_net.pt`` for ``davis_c.build --style-weights``.

Examples::

    python -m davis_c.convert_style_weights --src arbitrary_style_transfer.tar.gz --out style_net.pt
    python -m davis_c.convert_style_weights --src arbitrary_style_transfer/model.ckpt --out style_net.pt
    python -m davis_c.convert_style_weights --src path/to/saved_model_dir --out style_net.pt
    python -m davis_c.convert_style_weights --src https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2 --out style_net.pt
    python -m davis_c.convert_style_weights --src variables.npz --out style_net.pt   # TF-named arrays, no TF needed
"""
from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.cli import cli_main, prog
from davis_c.stylize.network import StyleNet
from davis_c.stylize.tf_names import N_FLOATS, N_VARIABLES, TF_TO_TORCH, ConversionError, tf_to_torch_state_dict
from davis_c.stylize.transfer import atomic_torch_save
from common.checkpoint import load_strict, sha256_of

__all__ = ["read_tf_variables", "convert", "main"]

TF_HINT = 'reading TensorFlow files needs TensorFlow: pip install -e ".[convert]" (or pip install tensorflow)'


def _import_tf() -> Any:
    try:
        import tensorflow as tf  # noqa: PLC0415 -- optional extra, only for this one-time step
    except ImportError as exc:
        raise ConversionError(f"{TF_HINT} ({exc})") from None
    return tf


def _read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """TF1 checkpoint: read only the model's variables by graph name (ignores optimiser/VGG tensors)."""
    tf = _import_tf()
    reader = tf.train.load_checkpoint(prefix)
    names = reader.get_variable_to_shape_map()
    return {name: reader.get_tensor(name) for name in names if name in TF_TO_TORCH}


def _read_saved_model(path: str) -> dict[str, np.ndarray]:
    """TF2 SavedModel: its files key variables by object-graph ids, so ask TF for (name, value)."""
    tf = _import_tf()
    obj = tf.saved_model.load(path)
    variables = getattr(obj, "variables", None)
    if variables is None:
        raise ConversionError(f"{path}: the loaded SavedModel has no `variables` list (not the TF-Hub "
                              "arbitrary-image-stylization module?)")
    return {v.name: v.numpy() for v in variables}


def _resolve_hub(handle: str) -> str:
    try:
        import tensorflow_hub as hub  # noqa: PLC0415
    except ImportError:
        raise ConversionError(f"--src {handle}: downloading a TF-Hub handle needs tensorflow_hub "
                              "(pip install tensorflow tensorflow_hub), or download and unpack the model yourself") from None
    return hub.resolve(handle)


def read_tf_variables(src: str | Path, _workdir: Path | None = None) -> dict[str, np.ndarray]:
    """TF-named arrays from a checkpoint prefix/folder, a SavedModel folder, a .tar.gz of either,
    a TF-Hub handle (URL), or an ``.npz`` of TF-named arrays."""
    text = str(src)
    if text.startswith(("http://", "https://")):
        return read_tf_variables(_resolve_hub(text))
    path = Path(src)
    if path.suffix == ".npz" and path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    if path.is_file() and tarfile.is_tarfile(path):
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(path) as tar:
            if hasattr(tarfile, "data_filter"):   # Python >= 3.10.12: refuse unsafe members
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
            return read_tf_variables(_find_model(Path(tmp), path))
    if path.is_dir():
        path = _find_model(path, path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _read_saved_model(str(path))
    if Path(f"{path}.index").is_file():
        return _read_checkpoint(str(path))
    raise ConversionError(f"--src {src}: not a TF checkpoint prefix (no {path}.index), SavedModel folder, "
                          ".tar.gz, TF-Hub URL or .npz")


def _find_model(folder: Path, source: Path) -> Path:
    """The SavedModel folder or checkpoint prefix inside an unpacked folder (searched recursively)."""
    saved = sorted(p.parent for p in folder.rglob("saved_model.pb"))
    if saved:
        return saved[0]
    index = sorted(folder.rglob("*.index"))
    if len(index) == 1:
        return index[0].with_suffix("")
    if not index:
        raise ConversionError(f"{source}: no saved_model.pb and no checkpoint (*.index) found inside")
    raise ConversionError(f"{source}: several checkpoints inside ({', '.join(p.name for p in index)}); pass the prefix")


def convert(src: str | Path, out: str | Path) -> dict[str, Any]:
    """Read ``src``, convert, check it loads strictly into the network, write ``out`` atomically."""
    variables = read_tf_variables(src)
    state = tf_to_torch_state_dict(variables, source=str(src))
    load_strict(StyleNet(seed=None), state, str(src))
    out = Path(out)
    atomic_torch_save(state, out)
    ignored = sorted({k[:-2] if k.endswith(":0") else k for k in variables} - set(TF_TO_TORCH))
    return {"out": str(out), "tensors": len(state), "floats": int(sum(t.numel() for t in state.values())),
            "ignored": ignored, "sha256": sha256_of(out)}


@cli_main("davis_c.convert_style_weights", "nothing half-written is kept; rerun the same command")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("davis_c.convert_style_weights", "davis-c-convert-style-weights"),
        description="Convert the Magenta / TF-Hub arbitrary-image-stylization weights (used by DAVIS-C "
                    "style1..style4) to a PyTorch state dict. Needs TensorFlow for TF inputs (pip install -e \".[convert]\").",
        epilog="Get the weights: Magenta checkpoint https://storage.googleapis.com/download.magenta.tensorflow.org/"
               "models/arbitrary_style_transfer.tar.gz, or the TF-Hub model "
               "magenta/arbitrary-image-stylization-v1-256/2 (now on Kaggle Models).")
    parser.add_argument("--src", required=True,
                        help="checkpoint prefix (…/model.ckpt) or its folder, SavedModel folder, .tar.gz of either, "
                             "TF-Hub URL, or .npz of TF-named arrays")
    parser.add_argument("--out", default="style_net.pt", help="output state dict (default: style_net.pt)")
    args = parser.parse_args(argv)
    try:
        info = convert(args.src, args.out)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['out']}: {info['tensors']} tensors, {info['floats']:,} floats "
          f"(expected {N_VARIABLES} / {N_FLOATS:,}); sha256 {info['sha256']}")
    if info["ignored"]:
        print(f"ignored {len(info['ignored'])} variables that are not part of the model "
              f"(e.g. {', '.join(info['ignored'][:3])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
