"""Renderers: pure figure functions (result -> Figure) shared by the HTML report and the dashboard."""
