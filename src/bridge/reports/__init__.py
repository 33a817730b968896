"""Rendering of service results: HTML, CSV, XLSX, JSON and terminal tables."""
