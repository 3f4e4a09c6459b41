"""Harnesses that measure Postier from outside: throughput (`make bench`), the ledger at
scale (`make bench-scale`) and fault scenarios (`make chaos`). Not part of the shipped package."""
