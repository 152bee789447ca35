"""Input and output: DICOM discovery, volumes, annotations, the slice tables, the cases table and
the keyed pseudonyms that stand for patients and series."""
