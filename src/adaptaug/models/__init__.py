"""Primary models trained under augmentation. Each exposes ``classifier``, its last linear layer."""
from adaptaug.models.cnn import SeedCNN
from adaptaug.models.tagger import BiLSTMTagger
from adaptaug.models.lstm import BiLSTMClassifier

__all__ = ["BiLSTMClassifier", "BiLSTMTagger", "SeedCNN"]
