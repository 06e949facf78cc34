"""The model store: the registry and the metadata of each version. Below the rest of the
logic (the serving gate in udfs/ reads it; training and export in models/ write it); it
imports only the core."""
