"""The test servers' shared start: bind 127.0.0.1:PORT (0 = any free port), publish the port in PORT_FILE
atomically (written to a temp name, then renamed, so a reader never sees a partial number), serve forever."""
import os
from http.server import ThreadingHTTPServer


def serve(handler, port, port_file, state):
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.state = state
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()
