"""Regenerate ``stylize_magenta_golden.npz``: the official Magenta graph run with known weights.

Needs, in one environment, this toolkit (torch) and TensorFlow + tf-slim (+ tf_keras for TF >= 2.16),
plus a checkout of github.com/magenta/magenta (only ``magenta/models/arbitrary_image_stylization`` and
``magenta/models/image_stylization`` are imported; the losses module is not needed)::

    python tests/data/make_stylize_golden.py --magenta path/to/magenta --styles tests/data/davis_c_styles

Recorded with TensorFlow 2.21.0 (v1 graph mode, CPU), tf-slim 1.1.0, magenta@526d3eb1.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np


def official_outputs(magenta: Path, weights: dict[str, np.ndarray], cases: dict[str, tuple[np.ndarray, np.ndarray]]):
    sys.path.insert(0, str(magenta))
    try:   # tf-slim imports tf_keras.legacy_tf_layers, which newer tf_keras keeps under src/
        import tf_keras.src.legacy_tf_layers as legacy
        sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
        for m in pkgutil.iter_modules(legacy.__path__):
            sys.modules.setdefault(f"tf_keras.legacy_tf_layers.{m.name}",
                                   importlib.import_module(f"tf_keras.src.legacy_tf_layers.{m.name}"))
    except ImportError:
        pass
    losses = "magenta.models.arbitrary_image_stylization.arbitrary_image_stylization_losses"
    sys.modules.setdefault(losses, types.ModuleType(losses))   # only used when adds_losses=True
    import tensorflow.compat.v1 as tf
    tf.disable_v2_behavior()
    from magenta.models.arbitrary_image_stylization import arbitrary_image_stylization_build_model as bm

    out = {}
    for case, (content, style) in cases.items():
        with tf.Graph().as_default():
            c = tf.placeholder(tf.float32, [1, None, None, 3])
            s = tf.placeholder(tf.float32, [1, None, None, 3])
            image, _, _, embedding = bm.build_model(c, s, trainable=False, is_training=False, adds_losses=False)
            variables = {v.op.name: v for v in tf.global_variables()}
            assert len(variables) == 359, len(variables)
            with tf.Session() as sess:
                for name, v in variables.items():
                    v.load(weights[name], sess)
                o, e = sess.run([image, embedding], {c: content[None] / np.float32(255), s: style[None] / np.float32(255)})
        out[f"out_{case}"], out[f"emb_{case}"] = o, e.reshape(1, -1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--magenta", type=Path, required=True, help="magenta repository checkout")
    ap.add_argument("--styles", type=Path, required=True, help="folder with the official 1.png..4.png")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("stylize_magenta_golden.npz"))
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from davis_c.stylize import StyleNet, read_style_image, torch_to_tf_variables
    from davis_c.stylize.transfer import _content_digest

    net = StyleNet(seed=3)
    rng = np.random.default_rng(5)
    style_b = read_style_image(args.styles / "2.png")
    style_a = np.ascontiguousarray(cv2.resize(style_b, (150, 100), interpolation=cv2.INTER_AREA))
    content_a = (cv2.resize(rng.random((12, 17, 3)).astype(np.float32), (67, 50)) * 255).round().astype(np.uint8)
    content_b = (cv2.resize(rng.random((10, 10, 3)).astype(np.float32), (61, 45)) * 255).round().astype(np.uint8)
    outs = official_outputs(args.magenta, torch_to_tf_variables(net.state_dict()),
                            {"a": (content_a, style_a), "b": (content_b, style_b)})
    import tensorflow as tf
    meta = {"produced_by": f"magenta build_model(trainable=False, is_training=False), TensorFlow {tf.__version__} v1 mode",
            "weights": "davis_c.stylize.StyleNet(seed=3)", "style_b": "davis_c_styles/2.png at full size"}
    np.savez_compressed(args.out, content_a=content_a, style_a=style_a, content_b=content_b, **outs,
                        weights_digest=np.array(_content_digest(net.state_dict())), meta=np.array(json.dumps(meta)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
