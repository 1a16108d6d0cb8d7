"""Shards on a Dask cluster (extra `.[cluster]`): builds fan out to workers, and each shard is served
by an actor that holds it memory-mapped. Workers read and write the index folder at the same paths
as this machine (a shared filesystem, as on HPC or NFS clusters), so a shard whose worker dies is
reloaded on another one and the call retried.

`python -m qabot.cluster` starts a LocalCluster on 127.0.0.1 for trying this on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qabot.errors import ClusterError, ConfigError, QabotError
from qabot.shards import (
    ManifestRef,
    ShardBuilt,
    ShardJob,
    ShardsDamaged,
    ShardServer,
    load_manifest,
    shard_name,
    update_shard,
)
from qabot.store import CacheInvalid, IndexParams

try:
    from distributed import Client, LocalCluster, as_completed
except ImportError:  # pragma: no cover - the message is the point
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


class ShardActor:
    """One shard served on a worker (a Dask actor): the ShardServer's methods, called remotely."""

    def __init__(self, ref: ManifestRef, root: Any, number: int, params: IndexParams) -> None:
        try:
            manifest = load_manifest(ref.layout, root, params, ref)
        except CacheInvalid as exc:
            raise ShardsDamaged([number], f"manifest unreadable: {exc}") from None
        self.server = ShardServer.load(manifest, number, params)

    def search(self, *args: Any) -> Any:
        return self.server.search(*args)

    def details(self, *args: Any) -> Any:
        return self.server.details(*args)

    def sentences(self, *args: Any) -> Any:
        return self.server.sentences(*args)

    def doc_text(self, *args: Any) -> Any:
        return self.server.doc_text(*args)


class DaskShards:
    """The shards' actors; a call to an actor whose worker is gone reloads the shard elsewhere and retries."""

    def __init__(self, client: Client, ref: ManifestRef, root: Any, params: IndexParams, actors: Sequence) -> None:
        self.client, self.ref, self.root, self.params = client, ref, root, params
        self.actors = list(actors)
        self.n_shards = len(self.actors)
        self._reload_lock = threading.Lock()

    def call(self, method: str, requests: Mapping[int, tuple]) -> tuple[dict[int, Any], frozenset[int]]:
        results: dict[int, Any] = {}
        pending = dict(requests)
        for attempt in range(RELOADS + 1):
            started = {s: self._start(s, method, args) for s, args in pending.items()}
            lost = set()
            for s, future in started.items():
                try:
                    if future is None:
                        raise RuntimeError("actor lost")
                    results[s] = future.result(timeout=CALL_TIMEOUT)
                except LOST:
                    lost.add(s)
            if not lost or attempt == RELOADS:
                return results, frozenset(lost)
            self._reload({self._address(s) for s in lost} - {None}, lost)
            pending = {s: requests[s] for s in lost}
        return results, frozenset(pending)

    def _start(self, shard: int, method: str, args: tuple) -> Any:
        try:
            return getattr(self.actors[shard], method)(*args)
        except LOST:  # the actor's key is already known to be lost
            return None

    def _address(self, shard: int) -> str | None:
        return getattr(self.actors[shard], "_address", None)

    def _reload(self, addresses: set[str], shards: set[int]) -> None:
        """Load afresh the given shards, and every other shard that lived on the same lost workers."""
        with self._reload_lock:
            lost = shards | {s for s in range(self.n_shards) if self._address(s) in addresses}
            futures = {s: self._submit(s) for s in sorted(lost)}
            for s, future in futures.items():
                try:
                    self.actors[s] = future.result(timeout=LOAD_TIMEOUT)
                except (*LOST, ShardsDamaged):
                    continue  # the next call finds it lost again and tries once more

    def _submit(self, shard: int, worker: str | None = None) -> Any:
        placement = {"workers": [worker], "allow_other_workers": True} if worker else {}
        return self.client.submit(ShardActor, self.ref, self.root, shard, self.params, actor=True, pure=False,
                                  key=f"qabot-{shard_name(shard)}-{time.monotonic_ns()}", **placement)  # fmt: skip

    def close(self) -> None:
        self.client.close()


class DaskRunner:
    """Shard work on a Dask cluster: one task per shard to build, one actor per shard to serve."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, address: str) -> DaskRunner:
        return cls(connect(address))

    def workers(self) -> list[str]:
        return sorted(self.client.nthreads())

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
        except (*LOST, Exception) as exc:
            raise ClusterError(f"building the shards on the cluster failed ({exc.__class__.__name__}: {exc})") from None
        finally:
            for future in futures:
                future.release()

    def serve(self, manifest: Any, params: IndexParams) -> DaskShards:
        """An actor per shard, spread over the workers; ShardsDamaged names the shards that cannot load."""
        workers = self.workers()
        pool = DaskShards(self.client, manifest.ref, manifest.root, params, [])
        futures = [pool._submit(s, workers[s % len(workers)]) for s in range(len(manifest.shards))]
        actors, damaged, details = [], [], []
        for s, future in enumerate(futures):
            try:
                actors.append(future.result(timeout=LOAD_TIMEOUT))
            except ShardsDamaged as exc:
                damaged.append(s)
                details.append(str(exc))
            except LOST as exc:
                raise ClusterError(f"{shard_name(s)} could not be loaded on the cluster ({exc})") from None
        if damaged:
            raise ShardsDamaged(damaged, "; ".join(details))
        pool.actors, pool.n_shards = actors, len(actors)
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
