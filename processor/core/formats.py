"""The CSV format of every operation type, kept for its importers: it now lives on the operation's
descriptor (``processor.core.operation_kinds``), where new code should import it from."""

from processor.core.operation_kinds import CsvFormat, format_of

__all__ = ["CsvFormat", "format_of"]
