"""The pure core: CSV reading from text streams, row models and results. No file or database I/O."""
