# CoAP server convenience: an endpoint (coap.endpoint.Endpoint, both roles) that starts with an empty
# resource tree, so unknown paths get 4.04. Resource and the handler conventions are in coap.serve (the server
# role, which a Server loads at once).
from coap.endpoint import Endpoint
from coap import serve
from coap.serve import Resource  # noqa: F401  (Resource is part of this module's API)


class Server(Endpoint):
    def __init__(self, transport, szx=None, max_uploads=4):
        Endpoint.__init__(self, transport, szx, None, 32, max_uploads)
        self.resources = {}
        self.serve = serve
