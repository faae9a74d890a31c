#!/usr/bin/env python3
"""A real S3-compatible server on loopback for the test suite (moto).

moto checks a conditional put's precondition and writes in two unguarded
steps, so under concurrency two writers can both win. Every mutating request
(PUT/POST/DELETE) here takes one process-wide lock, which makes conditional
writes linearizable (see ../shared/notes/s3-test-server.md).

Usage: s3_server.py --port PORT --bucket NAME [--ready-file PATH]
"""
import argparse
import os
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

WRITE_LOCK = threading.Lock()


def serialised(app):
    def wrapper(environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("PUT", "POST", "DELETE"):
            return app(environ, start_response)
        with WRITE_LOCK:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            return [body]

    return wrapper


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--ready-file")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    import boto3

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{args.port}", region_name="us-east-1")
    for bucket in args.bucket:
        s3.create_bucket(Bucket=bucket)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(str(os.getpid()))
    thread.join()


if __name__ == "__main__":
    main()
