"""Importers: one module per corpus, each with ``read_data_sets(...)`` returning DataSets."""
