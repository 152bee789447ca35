"""gynmri: deep-learning diagnosis on gynecologic MRI, from raw DICOM to a report."""

__version__ = "0.1.0"
