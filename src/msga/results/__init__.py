"""From the run folders to tables, figures and verdicts: each run file read by one bounded reader,
the state of every run, the aggregation, statistics, the paper's claims as tests, the figures, and
the tuned learning rates. Torch-free."""
