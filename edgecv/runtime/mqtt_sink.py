"""Events to an MQTT broker: ``--events mqtt://[user@]host[:1883]/topic`` (or ``mqtts://`` with TLS): the same
JSON objects the JSON-lines sink writes, one message each, QoS 1 (at least once: after a broker restart a message
that was in flight may arrive twice; ``frame`` and ``t`` tell them apart).

- **Credentials** never travel in the URI or the logs: the password comes from an environment variable
  (``?password_env=VAR``, default ``EDGECV_MQTT_PASSWORD`` when a user is given) or a file (``?password_file=PATH``);
  a password written into the URI is refused. A broker that refuses the credentials is one clear line and no
  retries (a wrong password does not become a reconnect storm).
- **TLS** (``mqtts://``, port 8883): ``?ca=CA.pem`` (default: the system's CAs), ``&cert=CLIENT.pem&key=CLIENT.key``
  for a client certificate.
- **A broker that is down** (at start or later) loses nothing up to ``?queue=N`` messages (default 10000): paho
  keeps them and sends them on reconnect (backoff 1 -> 30 s); past the bound new messages are dropped and counted
  (``summary()['dropped']``, in the telemetry).

Needs ``paho-mqtt`` (``pip install 'edgecv[mqtt]'``).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgecv._deps import require
from edgecv.errors import EdgecvError
from edgecv.runtime.sinks import result_event

log = logging.getLogger(__name__)
SCHEMES = ("mqtt://", "mqtts://")


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    topic: str
    tls: bool
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    queue: int = 10_000

    @property
    def safe_uri(self) -> str:
        """The URI without anything secret, for messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.topic}"

    def password(self) -> str | None:
        if self.password_file:
            path = Path(self.password_file)
            if not path.is_file():
                raise EdgecvError(f"{self.safe_uri}: password_file {path} does not exist")
            return path.read_text().strip()
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise EdgecvError(f"{self.safe_uri}: the environment variable {self.password_env} (the password) is not set")
            return value
        return None


def parse_mqtt_uri(uri: str) -> MqttTarget:
    parts = urlsplit(uri)
    tls = parts.scheme == "mqtts"
    if parts.password is not None:
        raise EdgecvError(
            f"{parts.scheme}://{parts.hostname}: a password in the URI would show in process lists and "
            "logs; pass ?password_env=VAR or ?password_file=PATH"
        )
    topic = parts.path.lstrip("/")
    if not parts.hostname or not topic:
        raise EdgecvError(f"{uri.split('?')[0]}: an MQTT events URI is mqtt://[user@]host[:port]/topic")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = {"password_env", "password_file", "ca", "cert", "key", "queue"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise EdgecvError(f"{parts.hostname}: unknown MQTT URI options {unknown} (known: {', '.join(sorted(known))})")
    if not tls and any(k in query for k in ("ca", "cert", "key")):
        raise EdgecvError(f"{parts.hostname}: ca/cert/key are TLS options: use mqtts://")
    username = parts.username
    password_env = query.get("password_env") or ("EDGECV_MQTT_PASSWORD" if username and "password_file" not in query else None)
    return MqttTarget(
        parts.hostname,
        parts.port or (8883 if tls else 1883),
        topic,
        tls,
        username,
        password_env,
        query.get("password_file"),
        query.get("ca"),
        query.get("cert"),
        query.get("key"),
        int(query.get("queue", 10_000)),
    )


def _tls_precheck(t: MqttTarget, timeout_s: float = 3.0) -> None:
    """A certificate the broker's is not signed by (or a client certificate it refuses) is a setting to fix, not an
    outage to wait out: one line now, instead of paho retrying the handshake forever. An unreachable broker passes
    (it may come up later)."""
    import socket

    context = ssl.create_default_context(cafile=t.ca)
    if t.cert:
        context.load_cert_chain(t.cert, t.key)
    try:
        with socket.create_connection((t.host, t.port), timeout=timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=t.host):
                pass
    except ssl.SSLCertVerificationError as exc:
        raise EdgecvError(
            f"{t.safe_uri}: the broker's TLS certificate is not trusted ({exc.verify_message}); pass its CA with ?ca=CA.pem"
        ) from None
    except ssl.SSLError as exc:
        raise EdgecvError(f"{t.safe_uri}: TLS handshake failed ({exc.reason}); check ?cert= and ?key=") from None
    except OSError:
        pass  # not reachable now: the sink queues and reconnects


class MqttSink:
    """``write(frame, result)`` / ``event(dict)`` publish JSON; ``close`` gives queued messages ``flush_s`` to go."""

    def __init__(self, uri: str, connect_wait_s: float = 3.0, flush_s: float = 1.0):
        mqtt = require("paho.mqtt.client", "mqtt", "--events mqtt://")
        self.target, self.flush_s = parse_mqtt_uri(uri), flush_s
        t = self.target
        self.published = self.dropped = self.reconnects = 0
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refused: str | None = None
        self._ever_connected = False
        self._queue_full = mqtt.MQTT_ERR_QUEUE_SIZE
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgecv-{os.getpid()}", clean_session=True)
        self.client.enable_logger(logging.getLogger("edgecv.mqtt.paho"))  # at debug level, never the password
        if t.username:
            self.client.username_pw_set(t.username, t.password())
        if t.tls:
            _tls_precheck(t)
            self.client.tls_set(ca_certs=t.ca, certfile=t.cert, keyfile=t.key, cert_reqs=ssl.CERT_REQUIRED)
        self.client.max_queued_messages_set(t.queue)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        try:
            self.client.connect_async(t.host, t.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise EdgecvError(f"{t.safe_uri}: {exc}") from None
        self.client.loop_start()
        self._answered.wait(connect_wait_s)
        self._check()
        if not self._connected.is_set():
            log.warning("%s: broker not reachable yet; events are queued (up to %d) and sent when it is", t.safe_uri, t.queue)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            client.disconnect()  # deliberate: paho stops reconnecting (no retry storm on a wrong password)
        else:
            if self._ever_connected:
                self.reconnects += 1
                log.warning("%s: reconnected to the broker", self.target.safe_uri)
            self._ever_connected = True
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set():
            log.warning("%s: lost the broker (%s); queueing events", self.target.safe_uri, reason_code)
        self._connected.clear()

    def _check(self) -> None:
        if self._refused:
            t = self.target
            where = f"file {t.password_file}" if t.password_file else f"${t.password_env}"
            hint = (
                f"check the user name and the password ({where})"
                if t.username
                else "the broker wants a user name and a password (mqtt://USER@host/topic)"
            )
            raise EdgecvError(f"{self.target.safe_uri}: the broker refused the connection ({self._refused}); {hint}")

    def write(self, frame, result) -> None:
        self.event(result_event(frame, result))

    def event(self, data: dict[str, Any]) -> None:
        self._check()
        info = self.client.publish(self.target.topic, json.dumps({"t": round(time.time(), 3), **data}), qos=1)
        if info.rc == self._queue_full:  # the bound is reached while the broker is away
            self.dropped += 1
        else:
            self.published += 1

    def summary(self) -> dict[str, Any]:
        return {
            "broker": self.target.safe_uri,
            "published": self.published,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "queued_at_end": self._queued(),
        }

    def _queued(self) -> int:
        return len(getattr(self.client, "_out_messages", {}))

    def close(self) -> None:
        deadline = time.monotonic() + self.flush_s
        while self._connected.is_set() and self._queued() and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self._queued()
        if left:
            log.warning("%s: %d event(s) not delivered at exit (broker away)", self.target.safe_uri, left)
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "MqttSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
