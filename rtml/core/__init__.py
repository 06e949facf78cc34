"""rtml's core: what every layer may import, importing nothing else of the project (errors,
the typed config and its parsing, paths)."""
