"""The emulated arm64 Debian 12 root of `scripts/pi-check`: built once, cached, entered per
command in a mount namespace of its own.

    root = EmulatedRoot.ensure(cache_dir, log)          # debootstrap (cached by its recipe)
    root.run(["/usr/bin/python3", "-V"], cpu="cortex-a72", cpuinfo=path)

Each command runs as `unshare --mount` -> mount proc, sysfs and the board's /proc/cpuinfo ->
`chroot`, with a clean environment (only what is passed), so nothing is left mounted when it
ends, however it ends. Binaries of the root run through qemu-user via binfmt_misc (registered
here when the kernel has it unmounted), so children (mosquitto, the `edge-slm` script) run too.
Three traps measured here: without /sys, LiteRT's cpuinfo cannot count the processors and
XNNPACK is silently off (other kernels, other numbers); with the host's x86 /proc/cpuinfo and
/sys, LiteRT segfaults at model load; qemu's default CPU (`max`) advertises SME and XNNPACK
then computes wrong results (so `cpu` is a Pi's core unless the caller wants that).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

#: Bump to rebuild every cached root (a change of how roots are made).
RECIPE_VERSION = 1
SUITE = "bookworm"
"""Debian 12 = Raspberry Pi OS Bookworm, the system docs/raspberry-pi.md supports."""
ARCH = "arm64"
PACKAGES = ("python3", "python3-venv", "mosquitto")
"""Debian packages of the root besides minbase: Python 3.11 with venv/ensurepip, the broker."""
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU = "qemu-aarch64"
READY = ".pi-check-ready"
"""Written into a root when debootstrap finished: a root without it is half-built."""
DEBOOTSTRAP_TIMEOUT_S = 1800
"""Longest wait for debootstrap (about 3 minutes here)."""
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENTER = ('root=$1; cpuinfo=$2; shift 2; mount -t proc proc "$root/proc" && '
          'mount -t sysfs sysfs "$root/sys" && mount --bind "$cpuinfo" "$root/proc/cpuinfo" '
          '&& exec chroot "$root" "$@"')
"""Run by /bin/sh inside `unshare --mount`: the mounts live and die with the command."""


class PiCheckError(RuntimeError):
    """A step of pi-check cannot go on (says what to install or do)."""


Log = Callable[[str], None]


def debian_mirror(sources: Sequence[Path] = (Path("/etc/apt/sources.list"),
                                             Path("/etc/apt/sources.list.d"))) -> str:
    """The Debian mirror this machine's apt uses (one-line or deb822 sources), else the
    default one."""
    files: List[Path] = []
    for s in sources:
        files += sorted(s.glob("*.list")) + sorted(s.glob("*.sources")) if s.is_dir() else [s]
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for block in re.split(r"\n\s*\n", text):
            one = re.search(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", block, re.M)
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M | re.I)
            suites = re.search(r"^Suites:\s*(.+)$", block, re.M | re.I)
            if one and one.group(2).split("-")[0] == SUITE and "security" not in one.group(1):
                return one.group(1)
            if uris and suites and SUITE in suites.group(1).split() \
                    and "security" not in uris.group(1):
                return uris.group(1)
    return DEFAULT_MIRROR


def need_tools() -> None:
    """PiCheckError unless this runs as root with the host tools it needs."""
    if os.geteuid() != 0:
        raise PiCheckError("pi-check needs root (debootstrap, chroot, mount): run it with sudo")
    missing = [t for t in ("debootstrap", "unshare", "chroot", "qemu-aarch64-static")
               if shutil.which(t, path=PATH) is None]
    if missing:
        raise PiCheckError(f"missing {', '.join(missing)}: apt-get install qemu-user-static "
                           "binfmt-support debootstrap")


def ensure_binfmt(log: Log) -> None:
    """binfmt_misc mounted and qemu-aarch64 registered (with the F flag, so that it works
    inside a chroot); PiCheckError when the kernel refuses."""
    if not (BINFMT / "register").exists():
        log("mounting binfmt_misc")
        run_host(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                 "cannot mount binfmt_misc (the kernel or container does not allow it)")
    entry = BINFMT / QEMU
    if not entry.exists() and shutil.which("update-binfmts", path=PATH):
        run_host(["update-binfmts", "--enable", QEMU], "update-binfmts --enable qemu-aarch64")
    if not entry.exists():
        raise PiCheckError(f"{entry} is not registered: apt-get install binfmt-support "
                           "qemu-user-static")
    text = entry.read_text()
    if not text.startswith("enabled") or not re.search(r"^flags:.*F", text, re.M):
        raise PiCheckError(f"{entry} must be enabled with the F (fix binary) flag:\n{text}")


def run_host(cmd: List[str], what: str, timeout: float = 600) -> str:
    """Run a host command; PiCheckError with its output when it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env={"PATH": PATH, "LANG": "C.UTF-8"})
    if out.returncode != 0:
        raise PiCheckError(f"{what} failed ({out.returncode}): "
                           f"{(out.stderr or out.stdout)[-2000:]}")
    return out.stdout


def _mounted_under(folder: Path) -> List[str]:
    prefix = str(folder.resolve()) + "/"
    with open("/proc/mounts", encoding="utf-8") as fh:
        return [ln.split()[1] for ln in fh if (ln.split()[1] + "/").startswith(prefix)]


def remove_root(folder: Path) -> None:
    """Delete a root folder, refusing while anything is mounted inside it."""
    mounts = _mounted_under(folder)
    if mounts:
        raise PiCheckError(f"{folder} has mounts ({', '.join(mounts[:3])}): unmount them first")
    shutil.rmtree(folder, ignore_errors=True)


class EmulatedRoot:
    """An arm64 Debian root folder and how to run commands in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def recipe(mirror: str) -> Dict[str, object]:
        """What a root is made of (its cache key)."""
        return {"recipe": RECIPE_VERSION, "suite": SUITE, "arch": ARCH, "mirror": mirror,
                "variant": "minbase", "packages": list(PACKAGES)}

    @classmethod
    def ensure(cls, cache: Path, log: Log, rebuild: bool = False) -> "EmulatedRoot":
        """The cached root of this recipe, built with debootstrap when missing (other
        recipes' roots are removed)."""
        mirror = debian_mirror()
        recipe = cls.recipe(mirror)
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"root-{key}"
        for old in list(cache.glob("root-*")) + list(cache.glob("partial-*")):
            if old != path or rebuild:
                log(f"removing {old.name} (another recipe, half-built, or --rebuild)")
                remove_root(old)
        if (path / READY).exists():
            log(f"root: cached {path} ({SUITE} {ARCH}, {mirror})")
            return cls(path)
        partial = cache / f"partial-{key}"
        log(f"root: debootstrap {SUITE} {ARCH} from {mirror} with {', '.join(PACKAGES)} "
            "(a few minutes, once)")
        t0 = time.monotonic()
        run_host(["debootstrap", f"--arch={ARCH}", "--variant=minbase",
                  "--include=" + ",".join(PACKAGES), SUITE, str(partial), mirror],
                 "debootstrap", timeout=DEBOOTSTRAP_TIMEOUT_S)
        (partial / READY).write_text(json.dumps(recipe) + "\n")
        partial.rename(path)
        log(f"root: built in {time.monotonic() - t0:.0f} s")
        return cls(path)

    def run(self, cmd: Sequence[str], cpuinfo: Path, cpu: Optional[str],
            env: Optional[Dict[str, str]] = None, stdin: Optional[bytes] = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """Run `cmd` (paths inside the root) with only `env` (and PATH, HOME, LANG) set;
        QEMU_CPU=`cpu`, or qemu's default CPU model when None."""
        clean = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        if cpu is not None:
            clean["QEMU_CPU"] = cpu
        argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", _ENTER,
                "sh", str(self.path), str(cpuinfo), *cmd]
        return subprocess.run(argv, input=stdin, capture_output=True, env=clean,
                              timeout=timeout)

    def put(self, src: Path, inside: str) -> str:
        """Copy a host file into the root; its path inside."""
        dest = self.path / inside.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return inside


# -- the checkout as a wheel, and the host's pins ------------------------------------------

def build_wheel(repo: Path, out: Path, log: Log) -> Path:
    """`pip wheel --no-deps` of the working tree (tracked and untracked files that git does
    not ignore, copied first: a stale build/ folder never leaks into the wheel)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=repo, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="pi-check-src-") as tmp:
        src = Path(tmp) / "src"
        if listed.returncode == 0:
            for name in listed.stdout.decode().split("\0"):
                if name and (repo / name).is_file():
                    (src / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(repo / name, src / name)
        else:  # not a git checkout: the folder less what git would ignore anyway
            shutil.copytree(repo, src, ignore=shutil.ignore_patterns(
                ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__"))
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.whl"):
            old.unlink()
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                               str(src), "-w", str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            raise PiCheckError(f"pip wheel of the checkout failed: {done.stderr[-2000:]}")
    wheels = sorted(out.glob("edge_slm-*.whl"))
    if len(wheels) != 1:
        raise PiCheckError(f"expected one edge_slm wheel in {out}, found {wheels}")
    log(f"wheel: {wheels[0].name} ({wheels[0].stat().st_size:,} bytes) from the checkout")
    return wheels[0]


def host_pins(wheel: Path) -> List[str]:
    """`name==version` of the wheel's runtime requirements and theirs, as installed on this
    host: the root gets the same numpy, LiteRT, ... as the x86 answers it is compared with."""
    import zipfile
    from importlib import metadata

    try:
        from packaging.markers import default_environment
        from packaging.requirements import Requirement
    except ImportError:  # pip carries its own copy
        from pip._vendor.packaging.markers import default_environment  # type: ignore
        from pip._vendor.packaging.requirements import Requirement  # type: ignore

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8")
    env = dict(default_environment(), extra="")
    todo = [Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines()
            if line.startswith("Requires-Dist:")]
    pins: Dict[str, str] = {}
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in pins:
            continue
        try:
            pins[name] = metadata.version(name)
            todo += [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            pins[name] = ""  # not on the host: left to pip
    return sorted(f"{n}=={v}" for n, v in pins.items() if v)


def pip_env(root: EmulatedRoot) -> Dict[str, str]:
    """What pip inside the root needs of the host's settings: its CA bundle (copied in: this
    network may sit behind its own certificate authority) and its index (http(s) only: a
    file:// index of the host is not in the root)."""
    def host_setting(env_name: str, key: str) -> str:
        if os.environ.get(env_name):
            return os.environ[env_name]
        got = subprocess.run([sys.executable, "-m", "pip", "config", "get", key],
                             capture_output=True, text=True)
        return got.stdout.strip() if got.returncode == 0 else ""

    out = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1",
           "PIP_DEFAULT_TIMEOUT": "120"}
    cert = (host_setting("PIP_CERT", "global.cert") or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if Path(cert).is_file():
        out["PIP_CERT"] = root.put(Path(cert), "/etc/pi-check/host-ca.crt")
    index = host_setting("PIP_INDEX_URL", "global.index-url")
    out["PIP_INDEX_URL"] = index if index.startswith(("http://", "https://")) \
        else "https://pypi.org/simple"
    extra = [u for u in host_setting("PIP_EXTRA_INDEX_URL", "global.extra-index-url").split()
             if u.startswith(("http://", "https://"))]
    if extra:
        out["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    return out
