"""Augmentation ops: a registry of batched kernels with magnitude ranges (see ``space``)."""
from adaptaug.ops.space import OP_REGISTRY, OpSpace, OpSpec, get_op, list_ops, register_op

__all__ = ["OP_REGISTRY", "OpSpace", "OpSpec", "get_op", "list_ops", "register_op"]
