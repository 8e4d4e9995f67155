"""Measuring trained runs: the metric panel on held-out faces (``evaluate``) and loss-mix comparisons
(``compare``)."""
