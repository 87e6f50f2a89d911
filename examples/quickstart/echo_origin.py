"""A TCP and UDP echo origin on 127.0.0.1:17000, for trying the quick start.

    python examples/quickstart/echo_origin.py
"""

import sys

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IHalfCloseableProtocol
from zope.interface import implementer


@implementer(IHalfCloseableProtocol)
class Echo(protocol.Protocol):
    """Echoes, and closes once the client has sent everything (half-close)."""

    def dataReceived(self, data):
        self.transport.write(data)

    def readConnectionLost(self):
        self.transport.loseConnection()

    def writeConnectionLost(self):
        pass


class DatagramEcho(protocol.DatagramProtocol):
    def datagramReceived(self, data, address):
        self.transport.write(data, address)


def main(port=17000):
    factory = protocol.Factory.forProtocol(Echo)
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.listenUDP(port, DatagramEcho(), interface="127.0.0.1")
    print(f"echo origin on 127.0.0.1:{port} (TCP and UDP); Ctrl-C stops it", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 17000)
