"""Alembic environment: runs on the connection (and transaction) that ``migrations.py`` hands it.

Deliberately no ``logging.config.fileConfig``: it would replace wardbulk's redacting log setup.
``target_metadata`` is the shared ``Base``: an operation room's own tables (``<room>/tables.py``) join it
once ``processor.operations.registry`` is imported, as the models-versus-migrations test does.
"""

from alembic import context

from processor.adapters.database.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("wardbulk migrations run through `wardbulk init`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # Our caller always runs us inside one transaction (SQLite included: the engine emits BEGIN itself).
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
