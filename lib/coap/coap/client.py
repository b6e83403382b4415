# CoAP client convenience: an endpoint (coap.endpoint.Endpoint, both roles) made for requests: requests with
# retransmission and timeouts, Block-wise both ways, Observe. It serves nothing until a resource is added
# (requests to it get RST), and then it is a server too. Client is Endpoint itself (a subclass would cost RAM):
# Client(transport, szx=None, timeout=None).
from coap.endpoint import Endpoint as Client  # noqa: F401  (Client is this module's API)
