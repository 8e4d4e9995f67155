"""Data files shipped inside the package (mean-face template, sample images)."""
