"""Preprocessing (rule `ingest`): naming series, harmonizing them onto canonical grids, QC.
The same functions read a new exam in `gynmri predict`."""
