"""Hands-on labs on the running stack: one folder per lab (README.md, lab.py), a shared library
(lablib.py) and the command line (__main__.py). See labs/README.md."""
