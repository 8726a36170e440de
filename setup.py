"""setuptools entry point: the project metadata is in pyproject.toml; this only adds the
opt-in compiled core (``TACT_COMPILE=1``, see tact_build.py)."""

from setuptools import setup

from tact_build import ext_modules

setup(ext_modules=ext_modules())
