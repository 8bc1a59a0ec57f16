"""Reports (HTML, PDF, Markdown) and their plots."""
