"""Reading an offline W&B run's own file (``run-<id>.wandb``) in the tests: the run's id, group,
job_type, tags, config and saved files, as W&B recorded them.

The file is W&B's record log: a 7-byte header (``:W&B``, magic, version), then LevelDB-log blocks
of 32 KiB whose records (crc32, length, type: full, first, middle, last) hold protobuf
``wandb.proto.wandb_internal_pb2.Record`` messages; the installed W&B has no reader of its own."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768


def records(path):
    """Every ``Record`` of the ``.wandb`` file at ``path``, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    buf = Path(path).read_bytes()
    assert buf[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, parts = 7, []
    while pos + 7 <= len(buf):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos:pos + 7])
        if length == 0 and kind == 0:  # the zero padding at a block's end
            pos += left
            continue
        parts.append(buf[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last part of one
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def offline_run(run_folder, wait_s: float = 30.0) -> dict:
    """``{"id", "group", "job_type", "tags", "config", "files"}`` of the offline W&B run in
    ``run_folder`` (``.../wandb/offline-run-*``). W&B's service process writes the file on its own
    time: on a loaded machine the run record can land after ``wandb.finish`` has returned, so the
    file is read again until it holds one (at most ``wait_s`` seconds)."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        run = _read_run(run_folder)
        if "id" in run or time.monotonic() > deadline:
            return run
        time.sleep(0.5)


def _read_run(run_folder) -> dict:
    (path,) = Path(run_folder).glob("*.wandb")
    run = {"config": {}, "files": []}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, group=r.run_group, job_type=r.job_type, tags=list(r.tags))
            run["config"].update({item.key: json.loads(item.value_json) for item in r.config.update})
        elif kind == "config":
            run["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "files":
            run["files"] += [f.path for f in record.files.files]
    return run
