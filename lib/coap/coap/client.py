# CoAP client convenience: an endpoint (coap.endpoint.Endpoint, both roles) made for requests: requests with
# retransmission and timeouts, Block-wise both ways, Observe. It serves nothing until a resource is added
# (requests to it get RST), and then it is a server too.
from coap.endpoint import Endpoint


class Client(Endpoint):
    def __init__(self, transport, szx=None, timeout=None):
        Endpoint.__init__(self, transport, szx, timeout)
