"""Command modules of the `riskwatch` CLI, one per command group; registered in riskwatch.cli."""
