"""adaptaug: adaptive data augmentation. AugNet watches the model train and picks the augmentations."""
__version__ = "0.1.0"

from adaptaug.augment import AugPlan, apply_plan  # noqa: E402
from adaptaug.ops import OpSpace, OpSpec, get_op, list_ops, register_op  # noqa: E402
from adaptaug.policies import (  # noqa: E402
    AugNetConfig, AugNetPolicy, NoAugment, RandAugment, StandardAugment, TrivialAugment, build_policy,
)

__all__ = ["__version__", "AugPlan", "apply_plan", "OpSpace", "OpSpec", "get_op", "list_ops", "register_op",
           "AugNetConfig", "AugNetPolicy", "NoAugment", "RandAugment", "StandardAugment", "TrivialAugment",
           "build_policy"]
