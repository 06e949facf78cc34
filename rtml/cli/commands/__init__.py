"""The `rtml` subcommands, one module per area."""
