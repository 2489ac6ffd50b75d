"""Host the reactor inside a Tkinter program's event loop.

Tk watches the reactor's descriptor with ``createfilehandler`` and calls
``run_once(0)`` when it is readable; ``after()`` honours the reactor's timers.
The window shows how many clients are connected to the reactor's echo server
and how many bytes it has moved, updated live.

With no display (no ``$DISPLAY``), Tk's event loop is driven without a
window: the same file handler and ``after()`` run in a ``tkinter.Tcl()``
interpreter, and the counts are printed instead.

Run:  python examples/embed_tkinter.py [--seconds N]
Try:  nc localhost <port it prints>
"""

import argparse
import os
import time
import tkinter

from reactor import Reactor
from reactor.conversations import serve


class ReactorInTk:
    """Drive ``reactor`` from a Tk (or headless Tcl) event loop."""

    def __init__(self, reactor, tk_app):
        self.reactor = reactor
        self.tk_app = tk_app
        self.timer = None
        self.fd = reactor.fileno()
        tk_app.tk.createfilehandler(self.fd, tkinter.READABLE, self.on_readable)
        self.reschedule()

    def on_readable(self, fd, mask):
        self.step()

    def step(self):
        self.timer = None
        self.reactor.run_once(0)
        self.reschedule()

    def reschedule(self):
        if self.timer is not None:
            self.tk_app.after_cancel(self.timer)
            self.timer = None
        delay = self.reactor.next_timeout()
        if delay is not None:
            self.timer = self.tk_app.after(max(1, int(delay * 1000)), self.step)

    def close(self):
        self.tk_app.tk.deletefilehandler(self.fd)
        if self.timer is not None:
            self.tk_app.after_cancel(self.timer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0, help="quit after N seconds")
    args = parser.parse_args()
    reactor = Reactor()
    listener = serve(reactor, "echo", "localhost", args.port, log=print)
    print(f"Socket port {listener.port}", flush=True)

    headless = not os.environ.get("DISPLAY")
    app = tkinter.Tcl() if headless else tkinter.Tk()
    bridge = ReactorInTk(reactor, app)
    label = None
    if not headless:
        app.title("reactor inside Tk")
        label = tkinter.Label(app, font=("TkFixedFont", 14), padx=20, pady=20)
        label.pack()

    def show():
        stats = reactor.stats()
        text = (f"clients: {stats['open_connections']}  bytes in: {stats['bytes_in']}  "
                f"out: {stats['bytes_out']}")
        if label is not None:
            label.config(text=text)
        else:
            print(text, flush=True)
        app.after(500, show)

    app.after(0, show)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        if headless:
            while deadline is None or time.monotonic() < deadline:
                app.tk.dooneevent(0)  # wait for the next Tcl event, like mainloop()
        else:
            if deadline is not None:
                app.after(int(args.seconds * 1000), app.destroy)
            app.mainloop()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.close()
        for transport in listener.connections:
            transport.abort()
        reactor.run_once(0)
        listener.close()
        reactor.close()


if __name__ == "__main__":
    main()
