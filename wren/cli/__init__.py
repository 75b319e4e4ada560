"""The `wren` command line: sits on top of the offline pipeline and the serving tiers."""
