"""The local AWS emulator: moto server, with DynamoDB requests handled one at a time.

DynamoDB's transactions are serializable, and the platform's idempotency and ordering rest on
that. moto server answers requests on many threads and does not isolate a transaction from a
concurrent one (it can lose or half-apply writes), so this runs moto's own application behind
a lock for DynamoDB requests only; every other service stays concurrent (SQS long polls, for
instance).

moto also copies every table a transaction names before applying it (to roll back a cancelled
one), so a transaction's time and memory grow with the table: at 10,000 rows each took seconds
and the process grew past 13 GB. On AWS a transaction's cost does not depend on the table's
size. This keeps a copy of only the items the transaction touches and puts those back when it
is cancelled: the same outcome, at a cost that does not grow with the table.

With EPHEMERA_EMULATOR_TIMINGS set to a file, each request's service, action and time taken
(ms) are appended to it, one line each: benchmarks use it to tell where time goes.

With EPHEMERA_EMULATOR_CALLS set to a file, each call is appended to it as one JSON line: the
access key that signed it, the role session behind that key (when it came from AssumeRole),
and the IAM actions and resource ARNs AWS would authorize it against. The least-privilege tests
check those against each function's role. moto finds the action; `calls.py` the resources.

With --ready FILE, the port it listens on is written to FILE once it does: whoever started it
knows it is this process that answers, not another that took the port first.

Usage: emulator.py [-H HOST] [-p PORT] [--ready FILE]
"""
import argparse
import copy
import io
import os
import re
import signal
import sys
import threading
import time
from urllib.parse import parse_qs

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


class _CopyAllButTables:
    """`copy` for moto's DynamoDB backend: a table is not copied (its backup before a
    transaction is the table itself, and putting it back does nothing); all else is."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _touched(backend, transact_items):
    """(table name, key, the item as it is now or None) for each item the transaction writes."""
    touched = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table_name = op.get("TableName")
        if op_type == "ConditionCheck" or table_name not in backend.tables:
            continue
        table = backend.tables[table_name]
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        try:
            current = backend.get_item(table_name, key)
        except Exception:
            continue
        touched.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    return touched


def transact_write_items(self, transact_items):
    """moto's transaction, put back item by item when it is cancelled."""
    touched = _touched(self, transact_items)
    try:
        return _moto_transact_write_items(self, transact_items)
    except Exception:
        for table_name, key, before in reversed(touched):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before)
        raise


dynamodb_models.copy = _CopyAllButTables()
DynamoDBBackend.transact_write_items = transact_write_items


def _produced(app, environ, start_response):
    """The application's whole response, produced now (and the iterable closed)."""
    result = app(environ, start_response)
    try:
        return [b"".join(result)]
    finally:
        if hasattr(result, "close"):
            result.close()


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, the response fully produced inside."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return _produced(self.app, environ, start_response)


class Timings:
    """WSGI middleware: appends `service action ms` for each request to a file."""

    def __init__(self, app, path):
        self.app = app
        self.out = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    @staticmethod
    def operation(environ):
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target.replace(".", " ", 1) if "." in target else f"{target} -"
        auth = environ.get("HTTP_AUTHORIZATION", "")
        service = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
        service = service.group(1) if service else "unknown"
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            stream = environ["wsgi.input"]
            body = stream.read() if environ.get("wsgi.input_terminated") else stream.read(length)
            if body:
                # Put back for moto, whole, with its length.
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
            action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        return f"{service} {action[0] if action else environ['REQUEST_METHOD']}"

    def __call__(self, environ, start_response):
        operation = self.operation(environ)
        started = time.perf_counter()
        try:
            return _produced(self.app, environ, start_response)
        finally:
            ms = (time.perf_counter() - started) * 1000
            with self.lock:
                self.out.write(f"{operation} {ms:.2f}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5050)
    parser.add_argument("--ready", help="a file to write the port to once listening")
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    if os.environ.get("EPHEMERA_EMULATOR_CALLS"):
        import calls

        calls.record_to(os.environ["EPHEMERA_EMULATOR_CALLS"])
    app = SerializeDynamoDB(DomainDispatcherApplication(create_backend_app))
    if os.environ.get("EPHEMERA_EMULATOR_TIMINGS"):
        app = Timings(app, os.environ["EPHEMERA_EMULATOR_TIMINGS"])
    # Fails (and the process ends) if the port is taken.
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(str(server.port))
    server.serve_forever()


if __name__ == "__main__":
    main()
