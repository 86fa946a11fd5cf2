"""wardbulk: a file-drop batch processor for hospital ward data.

Upstream systems drop CSV files into ``inbox/<operation>/``; wardbulk validates each file, applies it to
the ward database in one transaction and writes a result, an error report and a summary to the outbox.
"""

__version__ = "0.1.0"
