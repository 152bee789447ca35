"""Inference: `gynmri predict` on a new exam, the run's manifest, Grad-CAM explanations."""
