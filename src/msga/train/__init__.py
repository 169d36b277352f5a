"""Training: one run's configuration and the packed data in, its folder of results out (msga.train.loop)."""
