"""What every HTTP answer of the edge shares, whichever path made it (not stages of the pipeline).

- ``request_id.py``: the ``X-Request-ID`` of a request, the client's when well formed.
- ``client_address.py``: the client's address (``X-Forwarded-For`` from trusted proxies only).
- ``cors.py``: the CORS allowlist, preflights and the headers of actual responses.
- ``response_headers.py``: the security headers and gzip of a response.

The stages that use them are in ``edge/pipeline/``; the WebSocket and REST paths use them too.
"""
