"""What names, guards or records a step's work but cannot change what it computes: atomic writes,
the folder lock, interrupt handling, the failures the command line reports, provenance. No step's
code hash includes these files (msga.grid.codedeps), so an edit of one reruns nothing."""
