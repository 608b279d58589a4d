"""The qualification report of a run (``hil report RUN_DIR``): one self-contained HTML file.

``build`` is imported on first use: it pulls in matplotlib, which every ``hil`` command
would otherwise pay for at start.
"""

__all__ = ["build", "ReportError"]


def __getattr__(name: str):
    if name in __all__:
        from hil.measure.report import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
