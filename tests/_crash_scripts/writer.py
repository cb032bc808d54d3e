"""A dastrax writer in its own process, for the crash and concurrency tests.

``python writer.py '<json>'`` makes data, persists a superrun or writes a run document
in the storage directory given, as the test process would (with ``"file_size_limit"``,
writing a larger file fails as on a full disk). With ``"pause"`` it stops at
a chosen point of the write — creating the file ``"signal"`` once it is there — so the
test can kill it with SIGKILL exactly there; with ``"go"`` it waits there until that
file exists and then carries on (two writers held at the same point, then released).

Pause points (the library is not changed; this script wraps a few calls in itself):

- ``{"at": "compute", "plugin": "Peaks", "start": t}``: in the plugin's ``compute`` of
  the chunk starting at ``t`` (earlier chunks are appended meanwhile);
- ``{"at": "read", "column": "data", "after": n}``: after ``n`` reads of stored blocks of
  that column (a persist streaming its data);
- ``{"at": "commit", "nth": k}``: at the ``k``-th commit of a group and later ones
  (all rows streamed, the metadata not yet written; the groups of one make or persist
  are committed together, so none of them is committed yet);
- ``{"at": "publish", "nth": k}``: at the rename of the ``k``-th group of a batch
  into place (the ones before it are committed);
- ``{"at": "rename"}``: at the rename of a complete group from its temporary folder to
  its key;
- ``{"at": "replace", "contains": "/runs/"}``: at the atomic replace of a run document.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

_lock = threading.Lock()
_counts: dict[str, int] = {}


def _count(name: str) -> int:
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        return _counts[name]


def _pause(signal_file: str, go_file: str | None) -> None:
    with _lock:
        if not os.path.exists(signal_file):
            with open(signal_file + ".part", "w") as f:
                f.write(str(os.getpid()))
            os.replace(signal_file + ".part", signal_file)
    while go_file is None or not os.path.exists(go_file):
        time.sleep(0.01)


def install_pause(pause: dict, signal_file: str, go_file: str | None) -> None:  # noqa: C901
    import dastrax.testutils

    import dastrax.load.plan
    import dastrax.storage

    def hold():
        _pause(signal_file, go_file)

    at = pause["at"]
    if at == "compute":
        cls = getattr(dastrax.testutils, pause["plugin"])
        original = cls.compute

        def compute(self, *args, start, end, **kwargs):
            if start == pause["start"]:
                hold()
            return original(self, *args, start=start, end=end, **kwargs)

        cls.compute = compute
    elif at == "read":
        from dastrax.storage.zarr.group import ZarrGroup

        original_read = ZarrGroup.read

        def read(self, field, *args, **kwargs):
            if field == pause["column"] and _count("read") > pause["after"]:
                hold()
            return original_read(self, field, *args, **kwargs)

        ZarrGroup.read = read
    elif at == "commit":
        from dastrax.storage.zarr.writer import ZarrGroupWriter

        original_stage = ZarrGroupWriter.stage  # the start of each group's commit

        def stage(self, meta):
            if _count("commit") >= pause["nth"]:
                hold()
            return original_stage(self, meta)

        ZarrGroupWriter.stage = stage
    elif at == "publish":  # the rename of the k-th group of a batch into place
        from dastrax.storage.zarr import writer as zarr_writer

        original_publish = zarr_writer._publish

        def publish(state, src, dst):
            if _count("publish") >= pause["nth"]:
                hold()
            return original_publish(state, src, dst)

        zarr_writer._publish = publish
    elif at == "rename":
        original_rename = os.rename

        def rename(src, dst, *args, **kwargs):
            folder = os.path.basename(os.path.dirname(str(src)))
            if folder.startswith(".tmp-") and os.path.basename(str(src)) == "group":
                hold()
            return original_rename(src, dst, *args, **kwargs)

        os.rename = rename
    elif at == "replace":
        original_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if pause["contains"] in str(dst):
                hold()
            return original_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif at == "link":  # the exclusive create of a new run document
        original_link = os.link

        def link(src, dst, *args, **kwargs):
            if pause["contains"] in str(dst):
                hold()
            return original_link(src, dst, *args, **kwargs)

        os.link = link
    else:
        raise SystemExit(f"unknown pause point {pause!r}")


def main(args: dict) -> None:
    if args.get("file_size_limit"):  # writes of larger files fail (EFBIG), as on a full disk
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = int(args["file_size_limit"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    if args.get("pause"):
        install_pause(args["pause"], args["signal"], args.get("go"))
    from dastrax.testutils import PeakClassification, Peaks, Records

    import dastrax

    st = dastrax.Context(
        storage=[dastrax.ZarrDirectory(args["storage"])],
        register=[Records, Peaks, PeakClassification],
        config=args.get("config") or {},
        progress=False,
    )
    action = args["action"]
    if action == "make":
        st.make(args["run_id"], args["targets"])
    elif action == "persist":
        st.persist_superrun(args["name"], args["targets"], args.get("chunk_target_size_mb"))
    elif action == "define_run":
        st.define_run(args["name"], args["data"], overwrite=args.get("overwrite", False))
    elif action == "write_run_metadata":
        st.write_run_metadata(args["run_id"], args["doc"])
    else:
        raise SystemExit(f"unknown action {action!r}")
    print("done", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
