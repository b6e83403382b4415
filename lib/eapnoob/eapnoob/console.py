# The OOB step on the device itself (RFC 9140 section 3.3): show the peer -> server OOB message as URL text and as a
# QR code on the console (or hand it to a display callback), and take a server -> peer message typed on the console
# or PUT to a local CoAP resource.
#
#   con = Console(peer, on_accept=device.kick)      # kick: start the Completion Exchange now
#   con.show(now)                                   # prints the URL and its QR code (eapnoob.qr), once per Noob
#   con.feed(line)                                  # a line typed on the console
#   con.route(ep)                                   # GET /noob/oob: the URL; PUT /noob/oob: a typed message


class Console:
    def __init__(self, peer, on_accept=None, display=None, qr=True):
        """display(url, lines): shows the OOB message (default: print the URL, then the QR code's text lines; lines
        is an iterator, and raises ValueError for a URL too long for a version 1-6 code);
        qr=False leaves the QR code out (its module is then never loaded)."""
        self.peer = peer
        self.on_accept = on_accept
        self.display = display
        self.qr = qr
        self.shown = None

    def show(self, now):
        """Show the current peer -> server OOB message if it is new; returns it (None outside Waiting, Dirp 1)."""
        url = self.peer.oob_message(now)
        if url and url != self.shown:
            self.shown = url
            lines = ()
            if self.qr:
                try:
                    from eapnoob import qr
                    lines = qr.text(url)  # a generator: one line in memory at a time
                except MemoryError:  # no room for the encoder: the URL text alone, never nothing
                    pass
            if not self.display:
                print("OOB", url)
            try:
                if self.display:
                    self.display(url, lines)
                else:
                    for line in lines:
                        print(line)
            except (ValueError, MemoryError):  # too long for versions 1-6, or no room: the URL text is shown
                pass
        return url

    def feed(self, text):
        """A server -> peer OOB message the user typed: True if the peer accepted it."""
        text = text.strip()
        if not text or not self.peer.accept_oob(text):
            return False
        if self.on_accept:
            self.on_accept()
        return True

    def route(self, ep, path="/noob/oob"):
        def get(req):
            url = self.peer.oob_message(_now())
            return url.encode() if url else (132, b"no OOB message to show")

        def put(req):
            try:
                text = bytes(req.payload).decode()
            except UnicodeError:
                return 128, b"not UTF-8"
            return (68, b"") if self.feed(text) else (128, b"OOB message not accepted")

        ep.route(path, get=get, put=put, max_body=600)


def _now():
    from time import time
    return int(time())
