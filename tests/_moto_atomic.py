"""moto's S3 server, with conditional writes made atomic as they are on S3.

moto checks ``If-None-Match: *`` and then stores the object as two steps, unlocked, in a
threaded server: two racing create-if-absent writes can both succeed (seen with two test
processes on two cores), where S3 lets exactly one win. dastrax's exclusive run-document
create relies on S3's guarantee, so the test server serialises object writes (puts and
multipart completions) to give it. Run as ``python tests/_moto_atomic.py -H HOST -p PORT``.
"""

from __future__ import annotations

import functools
import sys
import threading

from moto import server
from moto.s3.responses import S3Response

_WRITES = threading.Lock()


def _atomic(method):
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with _WRITES:
            return method(self, *args, **kwargs)

    return locked


for _name in ("put_object", "_key_response_post", "complete_multipart_upload"):
    if hasattr(S3Response, _name):
        setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    server.main(sys.argv[1:])
