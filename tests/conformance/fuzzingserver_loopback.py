"""Start ``wstest`` with its WebSocket listener bound to 127.0.0.1 only (Python 2.7).

``wstest -m fuzzingserver`` listens on every interface; this launcher,
run by the Python of ``.venv-autobahn``, makes autobahn's ``listenWS`` bind
the loopback interface, then runs ``wstest`` with the same arguments.
"""

import sys

from autobahn.twisted import websocket

_listen_ws = websocket.listenWS


def _listen_ws_loopback(factory, contextFactory=None, backlog=50, interface=""):
    return _listen_ws(factory, contextFactory, backlog, interface="127.0.0.1")


websocket.listenWS = _listen_ws_loopback

from autobahntestsuite.wstest import run  # noqa: E402  (after the patch above)

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    sys.exit(run())
