"""Readers for every kind of source: files and feeds in, normalised frames out.

Each reader is a pure function: it reads a file (or API response), validates it, and returns a
:class:`riskwatch.sources.report.ReadResult`. Nothing here touches the database;
``riskwatch.ingest`` writes what the readers return, in one transaction, with lineage.
"""
