# CoAP server convenience: an endpoint (coap.endpoint.Endpoint, both roles) that starts with an empty
# resource tree, so unknown paths get 4.04. Resource and the handler conventions are in coap.endpoint.
from coap.endpoint import Endpoint, Resource  # noqa: F401  (Resource is part of this module's API)


class Server(Endpoint):
    def __init__(self, transport, szx=None, max_uploads=4):
        Endpoint.__init__(self, transport, szx, None, 32, max_uploads)
        self.resources = {}
