"""The pg backend: the state in a PostgreSQL table, the lock a row that expires.

Terraform's pg backend holds session advisory locks, which PgBouncer's
transaction pooling breaks, and creates its tables under one global advisory
lock that collides across schemas (hashicorp/terraform#33217). Here the lock
is a row with its holder's info and an expiry that a thread of the holder
pushes forward while it holds it: a killed holder's row expires within
``lock_ttl``. A write is ``UPDATE … WHERE serial = <serial read>``, so even a
writer whose lock was broken cannot overwrite a newer state. Tables are made
on first use under a transaction-level advisory lock keyed by the schema.
"""

import os
import threading
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from l4plan.state.backend import Backend
from l4plan.state.duration import parse_duration
from l4plan.state.errors import StateError
from l4plan.state.locking import LockInfo
from l4plan.tls import is_loopback

CONNECT_TIMEOUT_SECONDS = 5
SHOWN_PARAMETERS = ("host", "port", "dbname", "user")


def encrypted_off_loopback(conn_str, environ):
    """``{"sslmode": "require"}`` when the server is not on this machine and
    neither conn_str nor $PGSSLMODE chose a mode: libpq's default ("prefer")
    would send the password in cleartext to a server without TLS."""
    try:
        given = conninfo_to_dict(conn_str)
    except psycopg.ProgrammingError:
        return {}
    if "sslmode" in given or "PGSSLMODE" in environ:
        return {}
    hosts = str(given.get("host") or environ.get("PGHOST") or "").split(",")
    local = all(h == "" or h.startswith("/") or is_loopback(h) for h in hosts)
    return {} if local else {"sslmode": "require"}


class PgBackend(Backend):
    """``backend "pg" { conn_str, schema_name, name, skip_schema_creation, lock_ttl }``."""

    kind = "pg"

    def __init__(self, settings, workdir):
        self.conn_str = settings.get("conn_str") or os.environ.get("PG_CONN_STR", "")
        self.schema = settings["schema_name"]
        self.name = settings["name"]
        self.skip_creation = settings["skip_schema_creation"]
        self.ttl = parse_duration(settings["lock_ttl"])
        self._connection = None
        self._ready = False
        self._keepers = {}

    def describe(self):
        """Where, without the password: libpq's parameters but that one."""
        try:
            shown = conninfo_to_dict(self.conn_str)
        except psycopg.ProgrammingError:
            shown = {}
        where = " ".join(f"{k}={shown[k]}" for k in SHOWN_PARAMETERS if shown.get(k))
        return f'backend "pg" ({where or "libpq defaults"}, schema {self.schema}, state {self.name})'

    def close(self):
        for keeper in list(self._keepers.values()):
            keeper.stop()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # --- connection -------------------------------------------------------

    def _connect(self):
        try:
            return psycopg.connect(
                self.conn_str,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                **encrypted_off_loopback(self.conn_str, os.environ),
            )
        except psycopg.Error as error:
            raise self._failed("cannot connect", error) from None

    def _failed(self, doing, error):
        detail = self._scrubbed(" ".join(str(error).split()) or type(error).__name__)
        return StateError(
            f"{self.describe()}: {doing}: {detail}; check conn_str (or PG_CONN_STR "
            f"and the PG* variables) and that the server is up"
        )

    def _scrubbed(self, text):
        """``text`` without the password, which libpq may echo with conn_str."""
        if self.conn_str:
            text = text.replace(self.conn_str, "(conn_str)")
        try:
            password = conninfo_to_dict(self.conn_str).get("password")
        except psycopg.ProgrammingError:
            password = None
        return text.replace(password, "***") if password else text

    @contextmanager
    def _cursor(self, doing):
        """A cursor on the one connection, made again when the server dropped it."""
        if self._connection is not None and self._connection.closed:
            self._connection = None
        if self._connection is None:
            self._connection = self._connect()
        try:
            with self._connection.cursor() as cursor:
                self._prepare(cursor)
                yield cursor
        except psycopg.OperationalError as error:
            self._connection.close()
            self._connection = None
            raise self._failed(doing, error) from None
        except psycopg.Error as error:
            raise self._failed(doing, error) from None

    def _prepare(self, cursor):
        if self._ready:
            return
        if self.skip_creation:
            cursor.execute(
                "SELECT to_regclass(%s), to_regclass(%s)",
                (f"{self.schema}.states", f"{self.schema}.locks"),
            )
            if None in cursor.fetchone():
                raise StateError(
                    f"{self.describe()}: the tables {self.schema}.states and "
                    f"{self.schema}.locks do not exist and skip_schema_creation is "
                    f"set; create them, or unset skip_schema_creation"
                )
        else:
            with cursor.connection.transaction():
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"l4plan schema {self.schema}",),
                )
                for statement in _CREATE:
                    cursor.execute(statement.format(schema=sql.Identifier(self.schema)))
        self._ready = True

    # --- state ------------------------------------------------------------

    def _load(self):
        with self._cursor("cannot read the state") as cursor:
            cursor.execute(
                self._sql("SELECT serial, data FROM {schema}.states WHERE name = %s"),
                (self.name,),
            )
            row = cursor.fetchone()
        return (None, None) if row is None else (row[1].encode("utf-8"), row[0])

    def _store(self, base, state, data):
        text = data.decode("utf-8")
        with self._cursor("cannot write the state") as cursor:
            if base.version is None:
                cursor.execute(
                    self._sql(
                        "INSERT INTO {schema}.states (name, serial, data) VALUES (%s, %s, %s) "
                        "ON CONFLICT (name) DO NOTHING"
                    ),
                    (self.name, state.serial, text),
                )
            else:
                cursor.execute(
                    self._sql(
                        "UPDATE {schema}.states SET serial = %s, data = %s "
                        "WHERE name = %s AND serial = %s"
                    ),
                    (state.serial, text, self.name, base.version),
                )
            if cursor.rowcount != 1:
                raise self._changed()
        return state.serial

    def _sql(self, text):
        return sql.SQL(text).format(schema=sql.Identifier(self.schema))

    # --- lock -------------------------------------------------------------

    def _try_lock(self, info):
        with self._cursor("cannot take the lock") as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.locks AS l (name, id, operation, who, created, expires) "
                    "VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (name) DO UPDATE SET id = excluded.id, "
                    "operation = excluded.operation, who = excluded.who, "
                    "created = excluded.created, expires = excluded.expires "
                    "WHERE l.expires < now() RETURNING id"
                ),
                (self.name, info.id, info.operation, info.who, info.created, self.ttl),
            )
            taken = cursor.fetchone() is not None
        if taken:
            self._keepers[info.id] = _Keeper(self, info)
        return taken

    def _unlock(self, info):
        keeper = self._keepers.pop(info.id, None)
        if keeper is not None:
            keeper.stop()
        self._delete_lock(info, "cannot release the lock")

    def read_lock(self):
        with self._cursor("cannot read the lock") as cursor:
            cursor.execute(
                self._sql(
                    "SELECT id, operation, who, created FROM {schema}.locks "
                    "WHERE name = %s AND expires >= now()"
                ),
                (self.name,),
            )
            row = cursor.fetchone()
        return None if row is None else LockInfo(*row)

    def _break_lock(self, info):
        self._delete_lock(info, "cannot remove the lock")

    def _delete_lock(self, info, doing):
        with self._cursor(doing) as cursor:
            cursor.execute(
                self._sql("DELETE FROM {schema}.locks WHERE name = %s AND id = %s"),
                (self.name, info.id),
            )

    def _refresh(self, connection, info):
        """Push the lock's expiry forward; False once it is no longer ours."""
        with connection.cursor() as cursor:
            cursor.execute(
                self._sql(
                    "UPDATE {schema}.locks SET expires = now() + make_interval(secs => %s) "
                    "WHERE name = %s AND id = %s"
                ),
                (self.ttl, self.name, info.id),
            )
            return cursor.rowcount == 1


class _Keeper:
    """A thread that keeps a held lock alive, on a connection of its own."""

    def __init__(self, backend, info):
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(backend, info), name="l4plan pg lock", daemon=True
        )
        self._thread.start()

    def _run(self, backend, info):
        connection = None
        while not self._stopped.wait(backend.ttl / 3):
            try:
                if connection is None or connection.closed:
                    connection = backend._connect()
                if not backend._refresh(connection, info):
                    return  # force-unlocked: the serial check still guards writes
            except (psycopg.Error, StateError):
                connection = None  # the server is away: try again next round
        if connection is not None:
            connection.close()

    def stop(self):
        self._stopped.set()
        self._thread.join()


_CREATE = (
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}"),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.states ("
        "name text PRIMARY KEY, serial bigint NOT NULL, data text NOT NULL)"
    ),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.locks ("
        "name text PRIMARY KEY, id text NOT NULL, operation text NOT NULL, "
        "who text NOT NULL, created text NOT NULL, expires timestamptz NOT NULL)"
    ),
)
