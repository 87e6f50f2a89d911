"""The etcd backend: the state under ``PREFIX NAME``, the lock a key on a lease.

The lock key ``PREFIX NAME.lock`` holds the holder's info and is bound to a
lease that a thread of the holder keeps alive; when the holder dies the
lease expires within ``lock_ttl`` and etcd deletes the key. Taking the lock
is a txn that puts the key only if it does not exist. A write is a txn
comparing the state key's mod_revision with the one read.

The state is stored gzipped: etcd refuses a request over 1.5 MiB, about 180
applications of 30 rules as JSON, and about 5,000 gzipped. A value that is
not gzip (put by hand with etcdctl) is read as JSON.
"""

import threading

from l4plan import etcd
from l4plan.state.backend import Backend
from l4plan.state.duration import parse_duration
from l4plan.state.errors import StateError
from l4plan.state.locking import LockInfo


class EtcdBackend(Backend):
    """``backend "etcd" { endpoints, prefix, name, lock_ttl, username, password, ca_file, cert_file, key_file }``."""

    kind = "etcd"

    def __init__(self, settings, workdir):
        self.endpoints = list(settings["endpoints"])
        self.key = settings["prefix"] + settings["name"]
        self.lock_key = self.key + ".lock"
        self.ttl = parse_duration(settings["lock_ttl"])
        try:
            self.client = etcd.client_of(settings, workdir)
        except etcd.EtcdError as error:
            raise StateError(f"{self.describe()}: {error}") from None
        self._keepers = {}

    def describe(self):
        return f'backend "etcd" ({", ".join(self.endpoints)}, key {self.key})'

    def close(self):
        for keeper in list(self._keepers.values()):
            keeper.stop()

    def _call(self, doing, call, *args):
        try:
            return call(*args)
        except etcd.EtcdError as error:
            raise StateError(
                f"{self.describe()}: {doing}: {error}; check the endpoints, the "
                f"credentials and that etcd is up"
            ) from None

    # --- state ------------------------------------------------------------

    def _load(self):
        kv = self._call("cannot read the state", self.client.get, self.key)
        if kv is None:
            return None, 0
        try:
            return etcd.unpack(kv["value"]), kv["mod_revision"]
        except (OSError, EOFError) as error:
            raise self._corrupt(f"its gzip data is broken ({error})") from None

    def _store(self, base, state, data):
        compare = [etcd.revision_is(self.key, "MOD", base.version)]
        succeeded, answer = self._call(
            "cannot write the state", self.client.txn, compare, [etcd.put(self.key, etcd.pack(data))]
        )
        if not succeeded:
            raise self._changed()
        return int(answer["header"]["revision"])

    # --- lock -------------------------------------------------------------

    def _try_lock(self, info):
        lease = self._call("cannot take the lock", self.client.grant, self.ttl)
        succeeded, _ = self._call(
            "cannot take the lock",
            self.client.txn,
            [etcd.revision_is(self.lock_key, "CREATE", 0)],
            [etcd.put(self.lock_key, info.to_json(), lease)],
        )
        if not succeeded:
            self._call("cannot take the lock", self.client.revoke, lease)
            return False
        self._keepers[info.id] = _Keeper(self.client, lease, self.ttl)
        return True

    def _unlock(self, info):
        keeper = self._keepers.pop(info.id, None)
        if keeper is not None:
            keeper.stop()
            # The key is bound to the lease: revoking it deletes the key, and
            # leaves alone a lock another holder took after a force-unlock.
            self._call("cannot release the lock", self.client.revoke, keeper.lease)

    def read_lock(self):
        kv = self._call("cannot read the lock", self.client.get, self.lock_key)
        if kv is None:
            return None
        try:
            return LockInfo.from_json(kv["value"].decode("utf-8"))
        except (ValueError, KeyError, TypeError):
            raise StateError(
                f"{self.describe()}: the lock key {self.lock_key} does not hold "
                f"l4plan lock info; delete it with etcdctl if no l4plan runs"
            ) from None

    def _break_lock(self, info):
        kv = self._call("cannot remove the lock", self.client.get, self.lock_key)
        if kv is not None:
            compare = [etcd.revision_is(self.lock_key, "MOD", kv["mod_revision"])]
            self._call("cannot remove the lock", self.client.txn, compare, [etcd.delete(self.lock_key)])


class _Keeper:
    """A thread that keeps a lock's lease alive while it is held."""

    def __init__(self, client, lease, ttl):
        self.lease = lease
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, ttl), name="l4plan etcd lock", daemon=True
        )
        self._thread.start()

    def _run(self, client, ttl):
        while not self._stopped.wait(ttl / 3):
            try:
                if not client.keep_alive(self.lease):
                    return  # expired: the revision check still guards writes
            except etcd.EtcdError:
                pass  # etcd is away: try again next round

    def stop(self):
        self._stopped.set()
        self._thread.join()
