"""Alembic environment for semsearch's own schema.

Run from code (``semsearch.migrate``): the caller passes an open SQLAlchemy
connection in ``config.attributes["connection"]``.
"""

from alembic import context

connection = context.config.attributes["connection"]
# the version table lives in semsearch's schema, apart from the app's own alembic_version
connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS semsearch")
context.configure(
    connection=connection,
    target_metadata=None,
    version_table="alembic_version",
    version_table_schema="semsearch",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
