"""Alembic environment of the diagnostics store: runs on the connection the store hands over."""

from alembic import context

from cvn_assets.diagnostics.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table="cvn_alembic_version")
with context.begin_transaction():
    context.run_migrations()
