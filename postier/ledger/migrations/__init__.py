"""Alembic migrations of the ledger, shipped inside the package (run by ``ledger.db.upgrade``)."""
