"""Compiling a rule pack, one section family per module.

Each family gets what it needs as arguments and reports problems to a shared
:class:`~engine.pack.compile.issues.Issues`; :func:`engine.pack.loader.load_pack` runs them
in order (an error never stops the run, so that all of them are reported at once).
"""
