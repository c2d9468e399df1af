"""A small Kubernetes API client (stdlib only): bearer token, server-side apply, list, watch.

Server-side apply is what `kubectl apply --server-side` sends: a PATCH of the manifest's own
YAML text as application/apply-patch+yaml, with a field manager and fieldValidation=Strict, so
an unknown or duplicated field is an error, as the issue asks.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
FIELD_MANAGER = "llmpack-conformance"
BACKGROUND = "?propagationPolicy=Background"


class ApiError(Exception):
    """The API server (or an admission webhook behind it) refused a request."""

    def __init__(self, status: int, body: Obj, method: str, path: str) -> None:
        self.status, self.body = status, body
        self.message = str(body.get("message", body))
        super().__init__(f"{method} {path}: {status} {self.message}")


@dataclass(frozen=True)
class Resource:
    path: str          # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool

    def url(self, namespace: str | None, name: str | None = None) -> str:
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{self.path}{ns}/{self.plural}" + (f"/{name}" if name else "")


class Kube:
    def __init__(self, server: str, token: str, ca_file: Path) -> None:
        self.server, self.token = server, token
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self._resources: dict[tuple[str, str], Resource] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str = "application/json", timeout: float = 60) -> Obj:
        request = urllib.request.Request(self.server + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=timeout) as response:
                data = response.read()
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                detail = json.loads(text)
            except ValueError:
                detail = {"message": text.decode(errors="replace")}
            raise ApiError(err.code, detail, method, path) from None
        return json.loads(data) if data else {}

    # --- discovery -----------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        if key not in self._resources:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for item in self.request("GET", path)["resources"]:
                if "/" not in item["name"]:
                    self._resources[(api_version, item["kind"])] = Resource(path, item["name"], item["namespaced"])
        if key not in self._resources:
            raise KeyError(f"the API server serves no {kind} in {api_version}")
        return self._resources[key]

    def forget_discovery(self) -> None:
        """CRDs changed (another KServe release): look kinds up again."""
        self._resources.clear()

    def url_of(self, obj: Obj) -> str:
        meta = obj["metadata"]
        return self.resource(obj["apiVersion"], obj["kind"]).url(meta.get("namespace"), meta["name"])

    # --- verbs ---------------------------------------------------------------------------------

    def apply(self, manifest: str | Obj, dry_run: bool = False) -> Obj:
        """Server-side apply of one manifest (YAML text as rendered, or an object), strict, forced."""
        obj = yaml.safe_load(manifest) if isinstance(manifest, str) else manifest
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict", "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", f"{self.url_of(obj)}?{urllib.parse.urlencode(query)}",
                            text.encode(), "application/apply-patch+yaml")

    def create(self, obj: Obj, dry_run: bool = False) -> Obj:
        meta = obj["metadata"]
        query = "?fieldValidation=Strict" + ("&dryRun=All" if dry_run else "")
        url = self.resource(obj["apiVersion"], obj["kind"]).url(meta.get("namespace"))
        return self.request("POST", url + query, json.dumps(obj).encode())

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.request("GET", self.resource(api_version, kind).url(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> Obj:
        return self.request("GET", self.resource(api_version, kind).url(namespace))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Delete now: Background propagation, as there is no garbage collector here to clear the
        orphan finalizer that Jobs get by default."""
        try:
            self.request("DELETE", self.resource(api_version, kind).url(namespace, name) + BACKGROUND)
        except ApiError as err:
            if err.status != 404:
                raise

    def delete_all(self, api_version: str, kind: str, namespace: str) -> None:
        """deletecollection: there is no garbage collector here (no kube-controller-manager)."""
        self.request("DELETE", self.resource(api_version, kind).url(namespace) + BACKGROUND)

    def wait_gone(self, api_version: str, kind: str, namespace: str | None, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.get(api_version, kind, namespace, name) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} {namespace}/{name} still exists after {timeout:.0f} s")
            time.sleep(0.2)

    def watch(self, api_version: str, kind: str, resource_version: str, seconds: float) -> Iterator[Obj]:
        """Every event on `kind` in all namespaces after resource_version, for `seconds`."""
        query = urllib.parse.urlencode({"watch": "1", "resourceVersion": resource_version,
                                        "allowWatchBookmarks": "false", "timeoutSeconds": str(int(seconds))})
        request = urllib.request.Request(f"{self.server}{self.resource(api_version, kind).url(None)}?{query}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, context=self.context, timeout=seconds + 30) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


@dataclass(frozen=True)
class Event:
    type: str          # ADDED, MODIFIED, DELETED
    obj: Obj
    at: float          # time.monotonic() when received


class Watcher:
    """Records every event of one kind (all namespaces) from a resourceVersion on, in a thread,
    re-watching in short windows so that stop() returns promptly."""

    WINDOW = 3   # seconds per watch request

    def __init__(self, kube: Kube, api_version: str, kind: str) -> None:
        self.kube, self.api_version, self.kind = kube, api_version, kind
        self.version = kube.list(api_version, kind)["metadata"]["resourceVersion"]
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for event in self.kube.watch(self.api_version, self.kind, self.version, self.WINDOW):
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch of {self.kind} failed: {event['object']}")
                    obj = event["object"]
                    self.version = obj["metadata"]["resourceVersion"]
                    self.events.append(Event(event["type"], obj, time.monotonic()))
        except BaseException as err:  # reported by stop()
            self.error = err

    def stop(self) -> list[Event]:
        self._stop.set()
        self._thread.join(timeout=self.WINDOW + 30)
        if self.error is not None:
            raise self.error
        return list(self.events)

    def latest(self) -> dict[tuple[str, str], Obj]:
        """The last version seen of every object (namespace, name), deleted ones included."""
        return {(e.obj["metadata"]["namespace"], e.obj["metadata"]["name"]): e.obj for e in list(self.events)}

    def wait_for(self, names: set[tuple[str, str]], timeout: float) -> set[tuple[str, str]]:
        """Wait until every (namespace, name) was seen; returns those still missing after timeout."""
        deadline = time.monotonic() + timeout
        while (missing := names - set(self.latest())) and time.monotonic() < deadline and self.error is None:
            time.sleep(0.2)
        return missing
