"""A differential table of odd HTTP/1.1 requests: the edge's HTTP layer against h11 and nginx."""
