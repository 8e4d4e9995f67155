"""faceswap_lite: train face autoencoders with a weighted mix of pluggable reconstruction losses."""

__version__ = "0.1.0"
