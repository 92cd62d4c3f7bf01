"""The offline demo: sample catalog, generated product photos, a fixture search server, contact sheet.

``python -m demo`` (``make demo``) runs the whole pipeline end to end on the embedded default.
"""
