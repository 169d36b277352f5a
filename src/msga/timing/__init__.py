"""How long the grid takes: measured throughput (msga bench), the forecast before training on a
machine without a GPU, and the projection of the grid's wall time from measured figures."""
