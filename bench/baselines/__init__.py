"""The older Node.js design, the benchmark's baseline: schema, pgbench script, psycopg port."""
