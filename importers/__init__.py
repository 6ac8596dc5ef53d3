"""Importers: one module per corpus, each with ``find_candidates(data_dir, sets, options)``
returning the (audio, transcript) candidates of each set; util.data.feeding.read_data_sets checks
them and builds the DataSets."""
