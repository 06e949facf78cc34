"""Job graphs and entry points: the only place that wires streams."""
