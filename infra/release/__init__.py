"""Releases of the app: the wheelhouse built on the operator's machine."""
