"""A disk cache of optimised ONNX Runtime graphs, so a process does not re-optimise its model.

Creating a CPU ``InferenceSession`` at ``graph_optimization="all"`` runs ONNX Runtime's
graph optimiser at every process start: for the default model (int8-stored weights)
that is constant folding of the weights to float32 plus the attention, LayerNorm and
GELU fusions, most of the session's creation time. A session of the model saves the
optimised graph here, with its weights in an external data file that onnxruntime maps
into memory; later sessions load it with optimisation off, which gives the same graph
and the same outputs in about a third of the time (docs/ai.md has the figures).

Layout: ``<cache dir>/<key>/`` holding ``model.onnx`` (the graph), ``model.onnx.data``
(the weights) and ``manifest.json``. ``key`` digests everything the optimised graph
depends on (:func:`cache_fields`): the source model (the card's sha256, or an xxh3 of
the file, plus its size and mtime), the onnxruntime version, the providers, the
optimisation level and the CPU (vendor, model and feature flags: an ``all``-level
graph may hold layouts for this CPU's vector width). The manifest repeats those fields
and records the size and xxh3-128 of every file; each load checks them all, so a
damaged, truncated or stale entry is deleted and rebuilt, never loaded.

An entry is built at the second session of its key (the first only leaves a marker),
so a model loaded once, by a one-off script or a test with its own home, costs neither
build time nor disk. A new entry is checked before it is published: the saved graph is
loaded and run on a probe input next to the session built from the original model, and
kept only when every output agrees within 1e-6 (otherwise the key is recorded as
unusable and the model keeps loading from its original file). Entries are written in a
private temporary directory and renamed into place, so a reader never sees half an
entry; directories are 0700, files 0600. xxh3 detects damage, not tampering: whoever can
write this private directory can already change the user's files.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.ai._providers import SessionConfig

__all__ = ["GRAPH_FILE", "SessionCache", "cache_fields", "file_digest"]

FORMAT = 1
GRAPH_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
MANIFEST_FILE = "manifest.json"
#: Largest difference allowed between the saved graph's outputs and the original's.
PROBE_TOLERANCE = 1e-6
#: Build directories a crashed process left behind are removed after this long.
_STALE_BUILD_S = 3600.0

_log = logging.getLogger("magray.ai.session_cache")

#: Creates a session from a model path and ``SessionOptions`` (raising magray errors).
CreateSession = Callable[[Path, Any], Any]


def file_digest(path: Path) -> str:
    """xxh3-128 of a file's bytes (read through mmap: about 10 ms for 90 MB)."""
    import xxhash

    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return xxhash.xxh3_128(b"").hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return xxhash.xxh3_128(view).hexdigest()


def _cpu_fingerprint() -> str:
    """This CPU's architecture, vendor, model and feature flags, digested."""
    import platform

    import xxhash

    parts = [platform.system(), platform.machine()]
    wanted = {"vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part"}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                if key.strip() in wanted:
                    parts.append(f"{key.strip()}={value.strip()}")
    except OSError:
        parts.append(platform.processor())
    return xxhash.xxh3_64("\n".join(parts).encode()).hexdigest()


def cache_fields(
    source: Path, *, providers: list[str], graph_optimization: str, model_sha256: str | None
) -> dict[str, Any]:
    """What the optimised graph of ``source`` depends on (the cache key's inputs).

    Raises:
        OSError: ``source`` cannot be read.
    """
    import onnxruntime

    path = Path(source).resolve()
    st = path.stat()
    checksum = f"sha256:{model_sha256}" if model_sha256 else f"xxh3:{file_digest(path)}"
    return {
        "format": FORMAT,
        "source": str(path),
        "source_checksum": checksum,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "onnxruntime": onnxruntime.__version__,
        "providers": list(providers),
        "graph_optimization": graph_optimization,
        "cpu": _cpu_fingerprint(),
    }


def _key(fields: dict[str, Any]) -> str:
    import xxhash

    return xxhash.xxh3_128(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _count(result: str) -> None:
    from magray.common.metrics import default_registry

    default_registry().counter("ai.session_cache", result=result).inc()


class SessionCache:
    """Optimised graphs of CPU sessions under ``root`` (see the module docstring).

    Args:
        root: The cache directory (created 0700 on first use).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def load(
        self,
        source: Path,
        *,
        config: SessionConfig,
        providers: list[str],
        model_sha256: str | None,
        create: CreateSession,
    ) -> Any:
        """A session of ``source``: from a verified cache entry, else built and cached.

        Errors about the original model (a corrupt file) surface as ``create`` raises
        them; problems of the cache itself only cost the cache.
        """
        try:
            fields = cache_fields(
                source,
                providers=providers,
                graph_optimization=config.graph_optimization,
                model_sha256=model_sha256,
            )
        except OSError:
            return create(source, config.session_options())
        entry = self.root / _key(fields)
        state = self._check(entry, fields)
        if state == "ok":
            try:
                session = create(entry / GRAPH_FILE, _plain_options(config))
            except Exception as exc:
                _log.warning("cached ONNX graph %s does not load (%s); rebuilding it", entry, exc)
                state = "damaged"
            else:
                _count("hit")
                return session
        if state == "missing" and not self._seen_before(entry):
            _count("first")  # one-off processes (and tests) never pay for the cache
            return create(source, config.session_options())
        if state == "unusable":
            _count("unusable")
            return create(source, config.session_options())
        if state == "damaged":
            _count("damaged")
            _remove(entry)
        else:
            _count("miss")
        return self._build(source, entry, fields, config, create)

    # ------------------------------------------------------------------ internals
    def _seen_before(self, entry: Path) -> bool:
        """Whether a session of this key was made before; marks it made if not.

        The entry is built at the second use of a key, so a model loaded once (a
        one-off script, a test with its own home) costs no build time and no disk.
        """
        from magray.common import paths

        marker = self.root / f".seen-{entry.name}"
        if marker.exists():
            return True
        try:
            paths.ensure_dir(self.root)
            marker.touch(mode=0o600)
        except OSError:
            pass  # an unwritable cache: never built, the original model is used
        return False

    def _check(self, entry: Path, fields: dict[str, Any]) -> str:
        """``ok``, ``unusable``, ``missing`` or ``damaged`` (anything not proven intact)."""
        if not entry.is_dir():
            return "missing"
        try:
            manifest = json.loads((entry / MANIFEST_FILE).read_text(encoding="utf-8"))
            if manifest.get("fields") != fields:
                raise ValueError("the manifest describes another model or runtime")
            if not manifest.get("usable"):
                return "unusable"
            files = manifest["files"]
            if GRAPH_FILE not in files:
                raise ValueError(f"the manifest lists no {GRAPH_FILE}")
            for name, meta in files.items():
                path = entry / name
                if path.stat().st_size != meta["size"]:
                    raise ValueError(f"{name} has {path.stat().st_size} bytes, not {meta['size']}")
                if file_digest(path) != meta["xxh3_128"]:
                    raise ValueError(f"{name}'s checksum does not match")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("cached ONNX graph %s is damaged (%s); rebuilding it", entry, exc)
            return "damaged"
        return "ok"

    def _build(
        self,
        source: Path,
        entry: Path,
        fields: dict[str, Any],
        config: SessionConfig,
        create: CreateSession,
    ) -> Any:
        from magray.common import paths

        try:
            paths.ensure_dir(self.root)
            build = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        except OSError as exc:
            _log.info("ONNX graph cache %s is not writable (%s)", self.root, exc)
            return create(source, config.session_options())
        try:
            options = config.session_options()
            options.optimized_model_filepath = str(build / GRAPH_FILE)
            options.add_session_config_entry(
                "session.optimized_model_external_initializers_file_name", DATA_FILE
            )
            options.add_session_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
            )
            try:
                session = create(source, options)
            except Exception:
                # Saving may be what failed (a full disk): retry without it, so an
                # error left is the model's own.
                return create(source, config.session_options())
            try:
                self._publish(
                    build, entry=entry, fields=fields, session=session, config=config, create=create
                )
                self._prune(fields, keep=entry)
            except Exception as exc:  # the cache is an optimisation, never a failure
                _log.info("could not cache the optimised graph of %s: %s", source, exc)
            return session
        finally:
            shutil.rmtree(build, ignore_errors=True)

    def _publish(
        self,
        build: Path,
        *,
        entry: Path,
        fields: dict[str, Any],
        session: Any,
        config: SessionConfig,
        create: CreateSession,
    ) -> None:
        from magray.common.fs import atomic_write_text, fsync_dir

        files: dict[str, dict[str, Any]] = {}
        for path in sorted(build.iterdir()):
            os.chmod(path, 0o600)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            files[path.name] = {"size": path.stat().st_size, "xxh3_128": file_digest(path)}
        try:
            problem = _probe_difference(session, create(build / GRAPH_FILE, _plain_options(config)))
        except Exception as exc:  # a saved graph that does not load or run is not kept
            problem = f"the saved graph fails: {exc}"
        manifest: dict[str, Any] = {"fields": fields, "usable": problem is None}
        if problem is None:
            manifest["files"] = files
        else:
            _log.warning("the optimised graph of %s is not cached: %s", fields["source"], problem)
            for name in files:
                (build / name).unlink()
            manifest["reason"] = problem
        atomic_write_text(build / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
        fsync_dir(build)
        try:
            os.rename(build, entry)
        except OSError:
            if not entry.is_dir():
                raise
            return  # another process published the same entry first
        fsync_dir(self.root)

    def _prune(self, fields: dict[str, Any], *, keep: Path) -> None:
        """Remove entries of the same model file made stale by a changed model, runtime or
        CPU, entries whose model file is gone (a removed user model), and build
        directories a crashed process left behind."""
        same = ("source_checksum", "source_size", "source_mtime_ns", "onnxruntime", "cpu")
        for path in self.root.iterdir():
            if path == keep:
                continue
            if path.name.startswith(".seen-"):
                if (self.root / path.name.removeprefix(".seen-")).is_dir():
                    path.unlink(missing_ok=True)  # built: the marker has done its job
                continue
            if path.name.startswith(".build-"):
                if time.time() - path.stat().st_mtime > _STALE_BUILD_S:
                    _remove(path)
                continue
            if not path.is_dir():
                continue
            try:
                other = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))["fields"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # checked (and replaced) when its own key is looked up
            source = other.get("source")
            stale = source == fields["source"] and any(other.get(k) != fields[k] for k in same)
            if stale or not (isinstance(source, str) and Path(source).is_file()):
                _remove(path)


def _plain_options(config: SessionConfig) -> Any:
    """The session's options with optimisation off: the cached graph is already optimised."""
    import onnxruntime

    options = config.session_options()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def _probe_feeds(session: Any) -> dict[str, Any]:
    """A small deterministic input for any graph of integer/float tensors (batch 2, 8 tokens)."""
    import numpy as np

    kinds = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
    }
    feeds: dict[str, Any] = {}
    for spec in session.get_inputs():
        if spec.type not in kinds:
            raise ValueError(f"input {spec.name!r} has type {spec.type}, which no probe covers")
        shape = [
            d if isinstance(d, int) and d > 0 else (2 if axis == 0 else 8)
            for axis, d in enumerate(spec.shape)
        ]
        size = int(np.prod(shape)) if shape else 1
        values: Any
        if "mask" in spec.name:
            values = np.ones(size)
        elif "type" in spec.name:
            values = np.zeros(size)
        elif kinds[spec.type] in (np.int64, np.int32):
            values = np.arange(size) % 3 + 1  # ids 1-3 exist in any vocabulary
        else:
            values = np.linspace(-1.0, 1.0, size)
        feeds[spec.name] = values.astype(kinds[spec.type]).reshape(shape)
    return feeds


def _probe_difference(original: Any, cached: Any) -> str | None:
    """``None`` when both sessions give the same outputs on a probe, else what differs."""
    import numpy as np

    feeds = _probe_feeds(original)
    expected = original.run(None, feeds)
    actual = cached.run(None, feeds)
    if len(expected) != len(actual):
        return f"{len(actual)} outputs instead of {len(expected)}"
    for index, (first, second) in enumerate(zip(expected, actual, strict=True)):
        want, got = np.asarray(first), np.asarray(second)
        if want.shape != got.shape:
            return f"output {index} has shape {got.shape}, not {want.shape}"
        if want.size and float(np.max(np.abs(want - got))) > PROBE_TOLERANCE:
            return f"output {index} differs by {float(np.max(np.abs(want - got))):.3g}"
    return None


def _remove(path: Path) -> None:
    """Delete an entry: renamed aside first, so no reader finds it half deleted."""
    aside = path.with_name(f".build-removed-{path.name}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError:
        aside = path
    shutil.rmtree(aside, ignore_errors=True)
