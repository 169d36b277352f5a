"""What to run, torch-free: params read and checked, the experiments, the grid of runs with their
resolved configurations and content keys, the code each step hashes, and every path the workflow
writes (msga.grid.paths)."""
