"""k-NN label propagation (the CRW evaluation protocol) as a VOS model.

``propagate`` reproduces the official CRW propagation from given feature maps; ``load`` builds
the model behind ``models.load_model("labelprop", encoder="pixels"|"resnet18", ...)``;
``propagate_keypoints`` / ``propagate_parts`` run CRW's JHMDB pose and VIP part protocols with such a model.
"""
from models.labelprop.model import ENCODERS, LabelPropagation, load
from models.labelprop.parts import propagate_parts
from models.labelprop.pose import propagate_keypoints
from models.labelprop.propagation import propagate, propagate_soft

__all__ = ["propagate", "propagate_soft", "propagate_keypoints", "propagate_parts", "load", "LabelPropagation", "ENCODERS"]
