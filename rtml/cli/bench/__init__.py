"""`rtml bench`: the product's pipeline against the engine floor and a naive design, on the
local broker and cluster, in one run (see ``rtml.cli.commands.bench``)."""
