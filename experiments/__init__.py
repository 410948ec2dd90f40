"""Studies behind the shipped model (not installed): run each from the repository root as
``python -m experiments.<name>``; results sit in experiments/results/, the log of decisions in experiments/LOG.md."""
