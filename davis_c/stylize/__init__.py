"""DAVIS-C's neural styles ``style1..style4``: a PyTorch port of Magenta's arbitrary-image-stylization
network (the TF-Hub module ``magenta/arbitrary-image-stylization-v1-256/2`` the official generator
calls), the official colour preservation, and the corruption callables the builder plugs in.

Weights are converted once from TensorFlow with ``python -m davis_c.convert_style_weights``;
nothing here needs TensorFlow.
"""
from .colour import preserve_colour, to_uint8
from .network import StyleNet, crop_output, output_size
from .tf_names import TF_TO_TORCH, tf_to_torch_state_dict, torch_to_tf_variables
from .transfer import (
    OFFICIAL_STYLE_MD5, STYLES, StyleCorruption, StyleCorruptions, StyleTransfer, best_device, describe_style_setup,
    load_style_corruptions,
    load_style_weights, read_style_image, save_random_style_weights,
)

__all__ = [
    "load_style_corruptions", "describe_style_setup", "StyleTransfer", "StyleCorruption", "StyleCorruptions", "StyleNet",
    "preserve_colour", "to_uint8", "crop_output", "output_size", "TF_TO_TORCH", "tf_to_torch_state_dict",
    "torch_to_tf_variables", "load_style_weights", "save_random_style_weights", "read_style_image",
    "best_device", "STYLES", "OFFICIAL_STYLE_MD5",
]
