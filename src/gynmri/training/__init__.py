"""Training (rules `folds`, `train`, `predict`): patient-level folds, the MobileNetV2, on-device
augmentation and class-balanced sampling, the training loop, checkpoints and weights."""
