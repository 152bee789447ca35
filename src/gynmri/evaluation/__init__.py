"""Evaluation (rules `evaluate`, `evaluate_selection`, `fusion`, `readers`): slice -> patient ->
ensemble scores, confusion counts and metrics, intervals and tests, clinical fusion, readers."""
