"""DAVIS-C: the corrupted DAVIS-2017 benchmark (reader, synthetic sample, corruptions, HDF5 store)."""
__version__ = "0.1.0"
