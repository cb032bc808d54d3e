"""``python strax_import.py STRAX_DIR DEST``: import strax data into a ZarrDirectory in its
own process (the kill test SIGKILLs it mid-import), printing the report as JSON."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dastrax.storage import StraxDirectory, ZarrDirectory
from dastrax.write.strax_import import import_strax  # noqa: E402

report = import_strax(StraxDirectory(sys.argv[1]), ZarrDirectory(sys.argv[2]), progress=True)
print(
    json.dumps(
        {k: [i.name for i in getattr(report, k)] for k in ("converted", "skipped", "failed")}
    )
)
