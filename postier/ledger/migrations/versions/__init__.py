"""One module per schema revision; Alembic loads them by file, this makes them package data."""
