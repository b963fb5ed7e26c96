# The real-time path is a small C module compiled by cffi at install time;
# setuptools only exposes cffi_modules through setup().
from setuptools import setup

setup(cffi_modules=["jacknet/rt/_build.py:ffibuilder"])
