"""The checkpoint helpers moved to the ground floor (:mod:`common.checkpoint`: the style network of
``davis_c`` loads its weights with them too); this name re-exports them for the model families."""
from __future__ import annotations

from common.checkpoint import CheckpointError, check_state_dict, load_strict, read_state_dict, sha256_of

__all__ = ["CheckpointError", "read_state_dict", "check_state_dict", "load_strict", "sha256_of"]
