"""The ``chatmem`` command line: a shell over the client and the tooling."""
