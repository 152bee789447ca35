"""Tumour-slice detection (rules `train_detector`, `predict_auto`): a detector that selects and
crops the tumour slices of a series without annotation."""
