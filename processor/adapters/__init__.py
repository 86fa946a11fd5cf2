"""Adapters: the file system, the database, the watcher and the scheduler. Only these do I/O."""
