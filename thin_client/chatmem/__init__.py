"""chatmem: a PostgreSQL conversation store where guest chats survive sign-up.

All behaviour lives in the SQL functions of schema ``api``; this package only
starts a local PostgreSQL when asked, applies migrations, and calls the API.
"""

__version__ = "0.1.0"
