"""`python3 -m independent_issuer --connect HOST:PORT --token-file FILE`: runs every scenario once.

Prints one summary line `independent issuer: OK, N checks, M sessions` and exits 0, or
prints the first discrepancy and exits 1.
"""

import argparse
import sys
import time

from .issuer import Discrepancy, Issuer
from .scenarios import Run
from .wire import Connection, ProtocolError, SksError, connect


def main():
    parser = argparse.ArgumentParser(prog="independent_issuer")
    parser.add_argument("--connect", required=True, help="address of `sks serve` (HOST:PORT)")
    parser.add_argument("--token-file", required=True,
                        help="the 0600 token file `sks serve --listen` requires")
    args = parser.parse_args()
    started = time.monotonic()
    conn = Connection(connect(args.connect, args.token_file))
    run = None
    try:
        run = Run(Issuer(conn))
        run.all()
    except (Discrepancy, SksError, ProtocolError) as e:
        checks = run.c.passed if run else 0
        print(f"independent issuer: DISCREPANCY after {checks} checks: {e}", flush=True)
        raise SystemExit(1) from None
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    print(f"independent issuer: OK, {run.c.passed} checks, {run.sessions} sessions, "
          f"{elapsed:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
