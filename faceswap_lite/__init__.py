"""faceswap_lite: train face autoencoders with a weighted mix of pluggable reconstruction losses."""

__version__ = "0.1.0"

# In a source checkout, plugins/ and configs/ sit beside this package (pyproject.toml installs them
# as faceswap_lite.plugins and faceswap_lite.configs). When the checkout itself is imported (tests run
# from the repository root put it first on sys.path), let those subpackages resolve there too.
_here = __import__("pathlib").Path(__file__).resolve().parent
if not (_here / "plugins").is_dir() and (_here.parent / "plugins" / "__init__.py").is_file() \
        and (_here.parent / "pyproject.toml").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 - a package's __path__
del _here
