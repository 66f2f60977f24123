"""The optional HTTP gateway (``pip install chatmem[http]``, ``chatmem serve``).

As thin as the Python client: each route reads JSON, makes one ``api`` call,
and answers in the older system's envelope.  It decides nothing itself.
"""

from chatmem.gateway.app import create_app

__all__ = ["create_app"]
