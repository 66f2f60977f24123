"""The optional HTTP gateway (``pip install chatmem[http]``, ``chatmem serve``).

As thin as the Python client: each route reads JSON, makes one ``api`` call,
and answers in the older system's envelope.  It decides nothing itself.

FastAPI serves every route and the OpenAPI document; the six chat routes a
page calls all day are answered without its per-request layers by
chatmem.gateway.fast_path, with the same answers (bench/README.md, 7).
"""

from chatmem.gateway.app import create_app

__all__ = ["create_app"]
