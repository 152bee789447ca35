"""Tumour localisation: slices and centre from a segmentation network's probability maps."""
