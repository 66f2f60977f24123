"""chatmem's benchmark (``make bench``, ``python -m bench --help``).

Measures, in one run on one cluster: new guest sessions per second through
``api.create_or_get_session`` against the older Node.js design and against a
bare insert (pgbench, and a Python view); claim latency as the table grows;
and what register/login cost beyond bcrypt.  See bench/README.md.
"""
