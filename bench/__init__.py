"""chatmem's benchmark (``make bench``, ``python -m bench --help``).

Measures, in one run on one cluster: new guest sessions per second through
``api.create_or_get_session`` against the older Node.js design and against a
bare insert (pgbench, and a Python view); claim latency as the table grows;
what register/login cost beyond bcrypt; and what new sessions keep while
connections spray logins (issue 10).  See bench/README.md.
"""
