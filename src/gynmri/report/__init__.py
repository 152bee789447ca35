"""Report (rules `*_figure`, `report_html`): figures and the self-contained HTML page."""
