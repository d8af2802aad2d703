"""Primary models trained under augmentation. Each exposes ``classifier``, its last linear layer."""
from adaptaug.models.cnn import SeedCNN

__all__ = ["SeedCNN"]
