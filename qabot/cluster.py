"""Shards on a Dask cluster (extra `.[cluster]`): builds fan out to workers, and each shard is served
by an actor that holds it memory-mapped. Workers read and write the index folder at the same paths
as this machine (a shared filesystem, as on HPC or NFS clusters), so a shard whose worker dies is
reloaded on another one and the call retried.

`python -m qabot.cluster` starts a LocalCluster on 127.0.0.1 for trying this on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qabot.errors import ClusterError, ConfigError, QabotError
from qabot.generations import CacheInvalid
from qabot.shard_server import ShardServer
from qabot.shards import (
    Manifest,
    ManifestRef,
    ShardBuilt,
    ShardJob,
    ShardsDamaged,
    global_idf,
    load_manifest,
    shard_name,
    update_shard,
)
from qabot.store import IndexParams

try:
    from distributed import Client, LocalCluster, as_completed
except ImportError:
    raise ConfigError("--cluster needs the cluster extra: pip install -e '.[cluster]'") from None

# Every wait on the cluster is bounded (seconds).
CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 60.0  # one shard's search or fetch; far above what a shard of 10M sentences needs
LOAD_TIMEOUT = 300.0  # loading (and verifying) one shard on a worker
BUILD_TIMEOUT = 6 * 3600.0  # the whole build; a shard of 10M sentences takes minutes
RELOADS = 3  # attempts to reload a lost shard before an answer goes without it
DEFAULT_PORT = 8786
# The errors of a call whose worker went away (as opposed to a bug, which is raised).
LOST = (OSError, TimeoutError, RuntimeError, asyncio.CancelledError)


def connect(address: str) -> Client:
    """A client of the scheduler at address; ClusterError (one line) when it cannot be reached."""
    # Dask logs each failed attempt and lost worker; the user gets one line from us instead.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, direct_to_workers=True)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({reason}); start one "
            "(README, 'Past one machine') or leave out --cluster"
        ) from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterError(f"the Dask scheduler at {address} has no workers ({exc.__class__.__name__})") from None
    return client


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> None:
    """Let this worker's malloc reuse freed memory rather than hand it back to the system at once.

    Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold
    at 128 kB: every posting-list temporary of a search is then mapped, faulted in and unmapped, and
    a shard searches 3x slower than in one process. Explicit thresholds restore reuse.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 128 << 20)


class ShardGroup:
    """The shards one worker serves (a Dask actor), so that a question costs one call per worker.

    A shard that cannot be loaded (damaged, or gone from the shared folder) is left out and named
    in `damaged`; calls for it get no result.
    """

    def __init__(self, ref: ManifestRef, root: Path, numbers: Sequence[int], params: IndexParams) -> None:
        keep_freed_memory()
        self.servers: dict[int, ShardServer] = {}
        self.damaged: dict[int, str] = {}
        try:
            manifest = load_manifest(ref.layout, root, params, ref)
        except CacheInvalid as exc:
            self.damaged = {number: f"manifest unreadable: {exc}" for number in numbers}
            return
        idf = global_idf(manifest)
        for number in numbers:
            try:
                self.servers[number] = ShardServer.load(manifest, number, params, idf)
            except ShardsDamaged as exc:
                self.damaged[number] = str(exc)

    def failures(self) -> dict[int, str]:
        return self.damaged

    def call(self, method: str, requests: Mapping[int, tuple]) -> dict[int, Any]:
        return {s: getattr(self.servers[s], method)(*args) for s, args in requests.items() if s in self.servers}


class DaskShards:
    """Shard groups served by actors, one group per worker; a call to an actor whose worker is gone
    reloads its shards elsewhere and retries."""

    prefetch = True  # a round trip costs more than reading ahead the candidates' neighbours and text

    def __init__(self, client: Client, ref: ManifestRef, root: Path, params: IndexParams,
                 groups: Sequence[tuple[int, ...]], actors: Sequence) -> None:  # fmt: skip
        self.client, self.ref, self.root, self.params = client, ref, root, params
        self.groups, self.actors = list(groups), list(actors)
        self.group_of = {s: g for g, numbers in enumerate(self.groups) for s in numbers}
        self.n_shards = len(self.group_of)
        self._reload_lock = threading.Lock()

    def call(self, method: str, requests: Mapping[int, tuple]) -> tuple[dict[int, Any], frozenset[int]]:
        by_group: dict[int, dict[int, tuple]] = {}
        for s, args in requests.items():
            by_group.setdefault(self.group_of[s], {})[s] = args
        results: dict[int, Any] = {}
        pending = set(by_group)
        for attempt in range(RELOADS + 1):
            lost = set()
            for g, outcome in self._round(method, by_group, sorted(pending)).items():
                if isinstance(outcome, LOST):
                    lost.add(g)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    results.update(outcome)
            if not lost or attempt == RELOADS:
                break
            self._reload(lost)
            pending = lost
        return results, frozenset(requests) - results.keys()

    def _round(self, method: str, by_group: Mapping[int, dict[int, tuple]], groups: list[int]) -> dict[int, Any]:
        """One call to each group's actor, all in flight at once, awaited on the client's event loop
        (one hand-off between threads per round, not two per call); each group's result or error."""

        async def one(group: int) -> Any:
            future = self._start(group, method, by_group[group])
            if future is None:
                raise RuntimeError("actor lost")
            return await asyncio.wait_for(future, CALL_TIMEOUT)

        async def fan_out() -> list:
            return await asyncio.gather(*(one(group) for group in groups), return_exceptions=True)

        try:
            outcomes = self.client.sync(fan_out, callback_timeout=CALL_TIMEOUT + CONNECT_TIMEOUT)
        except LOST as exc:
            outcomes = [exc] * len(groups)
        return dict(zip(groups, outcomes, strict=True))

    def _start(self, group: int, method: str, requests: dict[int, tuple]) -> Any:
        try:
            # On the worker's event loop, not its actor thread: two thread hand-offs fewer per call.
            return self.actors[group].call(method, requests, separate_thread=False)
        except LOST:  # the actor's key is already known to be lost
            return None

    def _reload(self, groups: set[int]) -> None:
        """Load afresh the given groups, and every other group that lived on the same lost workers."""
        with self._reload_lock:
            addresses = {getattr(self.actors[g], "_address", None) for g in groups} - {None}
            lost = groups | {g for g, actor in enumerate(self.actors) if getattr(actor, "_address", None) in addresses}
            futures = {g: self.submit(self.groups[g]) for g in sorted(lost)}
            for g, future in futures.items():
                try:
                    self.actors[g] = future.result(timeout=LOAD_TIMEOUT)
                except LOST:
                    continue  # the next call finds it lost again and tries once more

    def submit(self, numbers: tuple[int, ...], worker: str | None = None) -> Any:
        """A future of a new ShardGroup actor for these shards (on `worker` when it is alive)."""
        placement = {"workers": [worker], "allow_other_workers": True} if worker else {}
        return self.client.submit(ShardGroup, self.ref, self.root, numbers, self.params, actor=True, pure=False,
                                  key=f"qabot-shards-{numbers[0]}-{time.monotonic_ns()}", **placement)  # fmt: skip

    def close(self) -> None:
        self.client.close()


class DaskRunner:
    """Shard work on a Dask cluster: one task per shard to build, one actor per worker to serve."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, address: str) -> DaskRunner:
        return cls(connect(address))

    def workers(self) -> list[str]:
        """The workers' addresses (asked of the scheduler, within CALL_TIMEOUT)."""
        try:
            identity = self.client.sync(self.client.scheduler.identity, callback_timeout=CALL_TIMEOUT)
        except LOST as exc:
            raise ClusterError(f"the Dask scheduler did not list its workers ({exc.__class__.__name__})") from None
        return sorted(identity["workers"])

    def default_shards(self) -> int:
        return max(1, len(self.workers()))

    def update_shards(self, jobs: Sequence[ShardJob], done: Callable[[ShardBuilt], None]) -> None:
        """Build or refresh each shard on a worker (a killed worker's shard is retried elsewhere)."""
        if not jobs:
            return
        futures = [
            self.client.submit(update_shard, job, key=f"qabot-build-{shard_name(job.number)}-{time.monotonic_ns()}",
                               pure=False, retries=RELOADS)
            for job in jobs
        ]
        try:
            for future in as_completed(futures, loop=self.client.loop, timeout=BUILD_TIMEOUT):
                done(future.result())
        except QabotError:
            raise
        except (Exception, asyncio.CancelledError) as exc:
            raise ClusterError(f"building the shards on the cluster failed ({exc.__class__.__name__}: {exc})") from None
        finally:
            for future in futures:
                future.release()

    def serve(self, manifest: Manifest, params: IndexParams) -> DaskShards:
        """The shards dealt round-robin to the workers, each worker's served by one actor;
        ShardsDamaged names the shards that cannot be loaded."""
        workers = self.workers()
        groups = [tuple(range(w, len(manifest.shards), len(workers))) for w in range(len(workers))]
        groups = [numbers for numbers in groups if numbers]
        pool = DaskShards(self.client, manifest.ref, manifest.root, params, groups, [])
        futures = [pool.submit(numbers, worker) for numbers, worker in zip(groups, workers, strict=False)]
        try:
            pool.actors = [future.result(timeout=LOAD_TIMEOUT) for future in futures]
            failures = [actor.failures().result(timeout=CALL_TIMEOUT) for actor in pool.actors]
        except LOST as exc:
            raise ClusterError(f"the shards could not be loaded on the cluster ({exc.__class__.__name__})") from None
        damaged = {s: detail for failed in failures for s, detail in failed.items()}
        if damaged:
            raise ShardsDamaged(sorted(damaged), "; ".join(damaged[s] for s in sorted(damaged)))
        return pool

    def close(self) -> None:
        self.client.close()


def serve_local_cluster(workers: int, port: int, ready: Callable[[str], None] = print) -> int:
    """Run a LocalCluster on 127.0.0.1 until SIGINT or SIGTERM; workers are processes of one thread."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with LocalCluster(host="127.0.0.1", scheduler_port=port, n_workers=workers, threads_per_worker=1,
                      processes=True, dashboard_address=None) as cluster:  # fmt: skip
        ready(f"Dask scheduler at {cluster.scheduler_address} with {workers} workers (Ctrl-C stops it)")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qabot.cluster",
                                     description="Run a Dask LocalCluster on 127.0.0.1 for qabot --cluster.")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"scheduler port ({DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        return serve_local_cluster(args.workers, args.port)
    except OSError as exc:
        print(f"qabot: error: cannot start the cluster on 127.0.0.1:{args.port} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
