"""Where episodes run besides this process: `ray_exec` spreads a run over a Ray cluster."""
