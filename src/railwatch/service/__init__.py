"""The railwatch service: ``store`` keeps every run, event and job in a database (SQLite or
PostgreSQL, schema managed by Alembic), ``jobs`` runs the four modules on queued inputs, ``app``
serves the HTTP API, ``dashboard`` shows the events, and ``report`` writes a run's report.
"""
