"""The `rtml` commands, one module each: its name, its help, its arguments and its run
function. ``rtml.cli`` only builds the parser from them and dispatches."""

from __future__ import annotations

from rtml.cli.verbs import (
    backfill,
    bench,
    broker,
    cluster,
    demo,
    export,
    init,
    jobs,
    models,
    plan,
    produce,
    reports,
    run,
    setup,
    submit,
    train,
    ui,
)

# in the order `rtml --help` lists them
COMMANDS = (
    setup,
    demo,
    init,
    bench,
    broker,
    cluster,
    produce,
    train,
    export,
    models,
    plan,
    run,
    submit,
    backfill,
    jobs,
    reports,
    ui,
)
