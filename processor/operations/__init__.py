"""One module per operation type, behind one small interface (``Operation`` in ``base``)."""
