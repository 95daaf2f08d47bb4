"""Alembic environment: runs on the connection that `storage.database.migrate` hands over."""

from alembic import context
from sqlmodel import SQLModel

from vardkoll.server.storage import registry_tables, tables  # noqa: F401  (register the tables)
from vardkoll.server.storage import job_tables  # noqa: F401  (the jobs' tables)
from vardkoll.server.storage import enrollment_tables  # noqa: F401  (enrollment codes)
from vardkoll.server.storage import config_tables  # noqa: F401  (remote config versions)
from vardkoll.server.storage import access_tables  # noqa: F401  (the access log)
from vardkoll.server.storage import alert_tables  # noqa: F401  (alert rules, subscriptions, deliveries)
from vardkoll.server.storage import report_tables  # noqa: F401  (the monthly national report)
from vardkoll.server.storage import sign_in_tables  # noqa: F401  (sign-in roles and attempts)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
