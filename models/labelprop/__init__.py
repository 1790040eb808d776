"""k-NN label propagation (the CRW evaluation protocol) as a VOS model.

``propagate`` reproduces the official CRW propagation from given feature maps; ``load`` builds
the model behind ``models.load_model("labelprop", encoder="pixels"|"resnet18", ...)``.
"""
from models.labelprop.model import ENCODERS, LabelPropagation, load
from models.labelprop.propagation import propagate, propagate_soft

__all__ = ["propagate", "propagate_soft", "load", "LabelPropagation", "ENCODERS"]
