"""``tdxctl``: answers an operator needs about a pulumi-tdx host, between stack runs.

Every command is a thin layer over the engine modules the provider uses, so there is one
implementation of each behaviour:

- ``list``: :func:`domain.list_all`, :func:`domain.instance_of` (our owner tag) and
  :mod:`introspect` (IP, SSH host port, vsock CID);
- ``pool-info`` / ``pool-cleanup``: :mod:`pool`, :mod:`ledger` (which volumes are ours, and
  which their stacks gave up), :mod:`disk_users` (which domains name which disk) and
  :mod:`volume` (``volumes_backed_by``, ``delete``); cleanup holds the pool through
  :mod:`exclusion`, like ``pulumi up`` does;
- ``delete``: :func:`domain.delete` (ACPI, bounded wait, force, undefine), one connection per
  thread; the overlays of deleted domains are released in the ledger (:func:`ledger.release`);
- ``host-check``: :func:`host.check_host`, the checks the provider runs at preview for a TD;
- ``measure``: :mod:`measure_cmd` over :mod:`measure`, the MRTD the TD preview shows;
- ``render``: :func:`render.render_inputs`, the preview checks and render of a TrustDomain.

Any other command runs ``virsh -c URI ...`` (as tdvirsh did).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libvirt
from lxml import etree

from tdx_provider import __version__, retry, validation
from tdx_provider.connection import DEFAULT_URI, connect, is_local_uri
from tdx_provider.errors import InputError, InUseError, TdxError
from tdx_provider.guest import domain, introspect
from tdx_provider.host import checks as host
from tdx_provider.metadata import Owner
from tdx_provider.storage import disk_users, exclusion, ledger, volume
from tdx_provider.storage import pool as pools
from tdx_provider.tdxctl import measure_cmd, tables

PROG = "tdxctl"
COMMANDS = frozenset({"list", "pool-info", "pool-cleanup", "delete", "host-check", "measure",
                      "render"})
VIRSH_COMMAND = "virsh"  # `tdxctl virsh list` reaches virsh's own commands that ours shadow
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NO_VIRSH = 127
DEFAULT_SHUTDOWN_TIMEOUT = 60  # seconds; a domain's own <ptdx:shutdown timeout> wins
MAX_PARALLEL_DELETES = 16

# What a display probe may run into (a domain that vanished, an unreadable tag, ...): the value
# then shows as '-' instead of ending the listing.
_PROBE_ERRORS = (libvirt.libvirtError, TdxError, OSError, ValueError, etree.LxmlError)

T = TypeVar("T")
Row = dict[str, Any]


def _probe(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except _PROBE_ERRORS:
        return None


def _emit(rows: Sequence[Row], columns: Sequence[tables.Column], as_json: bool,
          sizes: Sequence[str] = ()) -> None:
    if as_json:
        print(tables.to_json(rows))
        return
    shown = [{**row, **{key: tables.size(row.get(key)) for key in sizes}} for row in rows]
    print(tables.render(shown, columns))


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


# --- list ------------------------------------------------------------------------------------

LIST_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("state", "STATE"), ("ip", "IP"), ("ssh_port", "SSH PORT"),
    ("cid", "VSOCK CID"), ("overlay", "OVERLAY"), ("seed", "SEED"), ("owner", "OWNER"),
)


def _instance(dom: libvirt.virDomain) -> domain.Instance | None:
    """Our tag on the domain; None when it is not ours (or the tag cannot be read)."""
    return _probe(lambda: domain.instance_of(dom))


def domain_row(dom: libvirt.virDomain) -> Row:
    """One ``list`` row; anything that cannot be read is None."""
    instance = _instance(dom)
    active = bool(_probe(dom.isActive))
    return {
        "name": dom.name(),
        "state": _probe(lambda: domain.state_of(dom)),
        "ip": _probe(lambda: introspect.live_ip(dom)) if active else None,
        # The SSH port comes from a QEMU monitor command, which libvirt logs as tainting the
        # domain: only our own domains are asked.
        "ssh_port": _probe(lambda: introspect.live_ssh_port(dom)) if active and instance else None,
        "cid": _probe(lambda: introspect.live_cid(dom)) if active else None,
        "overlay": instance.overlay if instance else None,
        "seed": instance.seed if instance else None,
        "owner": str(instance.owner) if instance else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    with connect(args.uri) as conn:
        rows = [domain_row(dom) for dom in domain.list_all(conn)]
    _emit(rows, LIST_COLUMNS, args.json)
    return EXIT_OK


# --- pool-info -------------------------------------------------------------------------------

VOLUME_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("kind", "KIND"), ("capacity", "CAPACITY"),
    ("allocation", "ALLOCATION"), ("backing", "BACKING"), ("used_by", "USED BY"),
    ("owner", "OWNER"),
)
POOL_FIELDS: tuple[tables.Column, ...] = (
    ("name", "Pool"), ("state", "State"), ("path", "Path"), ("capacity", "Capacity"),
    ("allocation", "Allocation"), ("available", "Available"),
)


def _pools(conn: libvirt.virConnect, name: str | None) -> list[libvirt.virStoragePool]:
    if name is None:
        return sorted(conn.listAllStoragePools(0), key=lambda p: p.name())
    found = pools.lookup(conn, name)
    if found is None:
        raise TdxError(f"storage pool {name!r} does not exist on {conn.getURI()}")
    return [found]


def _read_ledger(pool: libvirt.virStoragePool) -> dict[str, ledger.Entry] | None:
    entries = _probe(lambda: ledger.read(pool))
    if entries is None:
        _fail(f"warning: cannot read the ledger of pool {pool.name()!r}; volume kinds unknown")
    return entries


def _kind(name: str, entries: Mapping[str, ledger.Entry] | None) -> str | None:
    if name == ledger.LEDGER_VOLUME:
        return "ledger"
    if name in ledger.INTERNAL_VOLUMES:
        return "lock"
    if entries is None:
        return None
    entry = entries.get(name)
    return entry.kind if entry else "other"


def _backing_name(conn: libvirt.virConnect, pool_name: str, path: str | None) -> str | None:
    """The backing volume as ``name`` (same pool) or ``pool/name``; the path if not a volume."""
    if not path:
        return None
    try:
        vol = conn.storageVolLookupByPath(path)
        holder = vol.storagePoolLookupByVolume().name()
    except libvirt.libvirtError:
        return path
    return vol.name() if holder == pool_name else f"{holder}/{vol.name()}"


def volume_row(conn: libvirt.virConnect, pool_name: str, vol: libvirt.virStorageVol,
               entries: Mapping[str, ledger.Entry] | None,
               domains: list[disk_users.DomainDisks] | None) -> Row | None:
    """One ``pool-info`` volume row; None when the volume vanished while we looked.
    ``domains``: every domain's disks (one scan for all rows); None when it could not be read."""
    info = _probe(lambda: volume.info(pool_name, vol))
    if info is None:
        return None
    entry = entries.get(info.name) if entries else None
    users = None if domains is None else [  # as a disk's source (BACKING shows the chains)
        d for d in domains if d.names(info.path, (pool_name, info.name))]
    return {
        "name": info.name,
        "kind": _kind(info.name, entries),
        "capacity": info.capacity,
        "allocation": info.allocation,
        "backing": _backing_name(conn, pool_name, info.backing_path),
        "used_by": sorted(d.name for d in users) if users is not None else None,
        "owner": entry.owner if entry else None,
    }


def pool_report(conn: libvirt.virConnect, pool: libvirt.virStoragePool) -> Row:
    """Pool state and sizes, and its volumes (None when the pool is not running)."""
    info = pools.read(conn, pool.name())  # refreshes a running pool
    if info is None:
        raise TdxError(f"storage pool {pool.name()!r} disappeared")
    volumes: list[Row] | None = None
    if info.state == "running":
        entries = _read_ledger(pool)
        listed = sorted(pool.listAllVolumes(0), key=lambda v: v.name())
        domains = _probe(lambda: disk_users.scan(conn))
        rows = (volume_row(conn, info.name, vol, entries, domains) for vol in listed)
        volumes = [row for row in rows if row is not None]
    return {
        "name": info.name, "state": info.state, "path": info.path, "autostart": info.autostart,
        "capacity": info.capacity, "allocation": info.allocation, "available": info.available,
        "volumes": volumes,
    }


def _print_pool(report: Row) -> None:
    width = max(len(label) for _key, label in POOL_FIELDS) + 2
    for key, label in POOL_FIELDS:
        value = report[key]
        shown = tables.size(value) if key in ("capacity", "allocation", "available") else value
        print(f"{label + ':':<{width}}{tables.cell(shown)}")
    print()
    volumes = report["volumes"]
    if volumes is None:
        print(f"(pool is {report['state']}: volumes are not listed; "
              f"`{PROG} pool-start {report['name']}` starts it)")
    elif not volumes:
        print("(no volumes)")
    else:
        _emit(volumes, VOLUME_COLUMNS, False, sizes=("capacity", "allocation"))


def cmd_pool_info(args: argparse.Namespace) -> int:
    with connect(args.uri) as conn:
        reports = [pool_report(conn, pool) for pool in _pools(conn, args.pool)]
    if args.json:
        print(tables.to_json(reports))
        return EXIT_OK
    for index, report in enumerate(reports):
        if index:
            print()
        _print_pool(report)
    if not reports:
        print("(no storage pools)")
    return EXIT_OK


# --- pool-cleanup ----------------------------------------------------------------------------

CLEANUP_COLUMNS: tuple[tables.Column, ...] = (
    ("action", "ACTION"), ("pool", "POOL"), ("volume", "VOLUME"), ("owner", "OWNER"),
    ("reason", "REASON"),
)


def _orphan_row(pool: str, name: str, entry: ledger.Entry, action: str,
                reason: str | None = None) -> Row:
    return {"action": action, "pool": pool, "volume": name, "owner": entry.owner,
            "reason": reason}


DECLARED = ("declared by its stack; `tdxctl pool-cleanup --owner PROJECT/STACK` removes it "
            "once that stack is gone")


def cleanup_pool(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                 dry_run: bool, owner: str | None = None) -> list[Row]:
    """Remove (or, dry, name) the orphaned overlays of the pool (and cloud-init seeds, by the
    same rules).

    An overlay is orphaned when the ledger lists it as ours, no domain uses it (running or
    defined; persistent or live definition; as a disk or in a backing chain), no volume is
    backed by it, and its stack gave it up: ``tdxctl delete`` released
    it with the domain that used it, or ``owner`` (``PROJECT[/STACK[/RESOURCE]]``) says that
    stack is gone. Anything else a stack declares is kept, even without a domain: a spare
    disk, or an overlay whose domain ``pulumi up`` has not made yet. Base images and volumes
    the ledger does not list are never candidates.

    The pass holds the pool (:func:`exclusion.pool_lock`), so it never sees a create half
    done, and :func:`volume.delete` re-checks users, so a domain defined meanwhile keeps its
    overlay.
    """
    name = pool.name()
    used = disk_users.scan(conn)  # outside the lock: no writer of the pool waits for it
    if dry_run:
        pools.read(conn, name)
        return _cleanup_rows(conn, pool, used, owner, dry_run=True)
    with exclusion.pool_lock(conn, name) as locked:
        retry.transient(lambda: locked.refresh(0))  # volumes removed out of band: no candidates
        return _cleanup_rows(conn, locked, used, owner, dry_run=False)


def _cleanup_rows(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                  used: list[disk_users.DomainDisks], owner: str | None,
                  dry_run: bool) -> list[Row]:
    name = pool.name()
    entries = ledger.read(pool)
    present = set(pools.volume_names(pool))
    rows = []
    for vol_name, entry in sorted(entries.items()):
        if entry.kind not in ledger.RELEASABLE or vol_name not in present:
            continue
        vol = volume.lookup(pool, vol_name)
        if vol is None:
            continue
        given_up = entry.released or (
            owner is not None and owner_matches(Owner.parse(entry.owner), owner))
        users = sorted(d.name for d in used if d.uses(vol.path(), (name, vol_name)))
        if users:  # in use: a given-up one is listed, so the operator sees why it stays
            if given_up:
                rows.append(_orphan_row(name, vol_name, entry, "kept",
                                        f"used by domain(s) {', '.join(users)}"))
            continue
        if not given_up:
            rows.append(_orphan_row(name, vol_name, entry, "kept", DECLARED))
            continue
        backed = volume.volumes_backed_by(conn, vol.path())
        if backed:
            rows.append(_orphan_row(name, vol_name, entry, "kept", f"backs {', '.join(backed)}"))
        elif dry_run:
            rows.append(_orphan_row(name, vol_name, entry, "would remove"))
        else:
            rows.append(_remove_orphan(conn, name, vol_name, entry))
    return rows


def _remove_orphan(conn: libvirt.virConnect, pool: str, name: str, entry: ledger.Entry) -> Row:
    try:
        volume.delete(conn, pool, name)
    except InUseError as exc:  # taken into use since we looked
        return _orphan_row(pool, name, entry, "kept", str(exc))
    except (libvirt.libvirtError, TdxError) as exc:
        return _orphan_row(pool, name, entry, "failed", str(exc))
    return _orphan_row(pool, name, entry, "removed")


def _cleanup_pools(conn: libvirt.virConnect, name: str | None) -> list[libvirt.virStoragePool]:
    selected = _pools(conn, name)
    if name is not None and not selected[0].isActive():
        raise TdxError(f"storage pool {name!r} is not running; `{PROG} pool-start {name}` "
                       "starts it")
    return [pool for pool in selected if pool.isActive()]


def cmd_pool_cleanup(args: argparse.Namespace) -> int:
    with connect(args.uri) as conn:
        rows = [row for pool in _cleanup_pools(conn, args.pool)
                for row in cleanup_pool(conn, pool, args.dry_run, args.owner)]
    failed = any(row["action"] == "failed" for row in rows)
    if args.json:
        print(tables.to_json(rows))
        return EXIT_FAILED if failed else EXIT_OK
    if rows:
        explained = any(row["reason"] for row in rows)
        _emit(rows, [c for c in CLEANUP_COLUMNS if explained or c[0] != "reason"], False)
    where = f"pool {args.pool}" if args.pool else "all running pools"
    if args.dry_run:
        count = sum(row["action"] == "would remove" for row in rows)
        print(f"{_plural(count, 'orphaned overlay')} would be removed from {where} "
              "(dry run: nothing changed)")
    else:
        count = sum(row["action"] == "removed" for row in rows)
        print(f"{_plural(count, 'orphaned overlay')} removed from {where}")
    return EXIT_FAILED if failed else EXIT_OK


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- delete ----------------------------------------------------------------------------------

DELETE_COLUMNS: tuple[tables.Column, ...] = (
    ("name", "NAME"), ("result", "RESULT"), ("seconds", "SECONDS"), ("owner", "OWNER"),
    ("error", "ERROR"),
)


@dataclass(frozen=True)
class Doomed:
    """A domain ``delete`` will tear down, with the ACPI timeout it gets."""

    name: str
    owner: Owner | None
    timeout: int
    overlay: str | None = None
    seed: str | None = None


def owner_matches(owner: Owner, pattern: str) -> bool:
    """``PROJECT``, ``PROJECT/STACK`` or ``PROJECT/STACK/RESOURCE`` (whole components)."""
    wanted = pattern.split("/", 2)
    return [owner.project, owner.stack, owner.resource][: len(wanted)] == wanted


def _doomed(dom: libvirt.virDomain, instance: domain.Instance | None,
            timeout: int | None) -> Doomed:
    if timeout is None:
        own = instance.shutdown_timeout if instance else None
        timeout = own if own is not None else DEFAULT_SHUTDOWN_TIMEOUT
    if instance is None:
        return Doomed(dom.name(), None, timeout)
    return Doomed(dom.name(), instance.owner, timeout, instance.overlay, instance.seed)


def select_for_delete(conn: libvirt.virConnect, args: argparse.Namespace) -> tuple[
        list[Doomed], list[str]]:
    """(what to delete, why not) for ``--all`` or the named domains; any problem stops all."""
    if args.all:
        chosen = []
        for dom in domain.list_all(conn):
            instance = _instance(dom)
            if instance and (args.owner is None or owner_matches(instance.owner, args.owner)):
                chosen.append(_doomed(dom, instance, args.timeout))
        return chosen, []
    chosen, problems = [], []
    for name in dict.fromkeys(args.domains):  # each once, in the order given
        dom = domain.lookup(conn, name)
        if dom is None:
            problems.append(f"no domain named {name!r} on {args.uri}")
            continue
        instance = domain.instance_of(dom)
        if instance is None and not args.force:
            problems.append(f"domain {name!r} was not created by pulumi-tdx; "
                            "add --force to delete it anyway")
            continue
        chosen.append(_doomed(dom, instance, args.timeout))
    return chosen, problems


def teardown(uri: str, doomed: Doomed) -> Row:
    """The provider's graceful teardown of one domain, on a connection of this thread."""
    row: Row = {"name": doomed.name, "owner": str(doomed.owner) if doomed.owner else None,
                "timeout": doomed.timeout, "result": "failed", "seconds": None, "error": None,
                "overlay_kept": None, "seed_kept": None}
    try:
        with connect(uri) as conn:
            dom = domain.lookup(conn, doomed.name)
            was_running = dom is not None and bool(_probe(dom.isActive))
            result = domain.delete(conn, doomed.name, doomed.timeout)
    except (libvirt.libvirtError, TdxError) as exc:
        row["error"] = str(exc)
        return row
    row["seconds"] = round(result.seconds, 1)
    if result.existed and doomed.owner is not None and doomed.overlay:
        row["overlay_kept"] = release_overlay(uri, doomed.overlay, doomed.name)
    if result.existed and doomed.owner is not None and doomed.seed:
        # its cloud-init seed is given up the same way
        row["seed_kept"] = release_overlay(uri, doomed.seed, doomed.name)
    if not result.existed:
        row["result"] = "gone"
    elif not was_running:
        row["result"] = "undefined"
    else:
        row["result"] = "graceful" if result.graceful else "forced"
    return row


def release_overlay(uri: str, path: str, deleted: str) -> str | None:
    """Mark the overlay (or cloud-init seed) of the domain ``deleted``, which ``delete``
    removed, as given up by its stack, so that ``pool-cleanup`` may remove it; None when done
    or already gone (its stack deleted it). While another domain uses it (persistent or live
    definition, as a disk or in a backing chain), or when that check or the release fails, it
    stays declared: the reason."""
    try:
        with connect(uri) as conn:
            try:
                vol = conn.storageVolLookupByPath(path)
                pool_name = vol.storagePoolLookupByVolume().name()
            except libvirt.libvirtError:
                return None  # gone
            users = [d.name for d in disk_users.users(conn, path, (pool_name, vol.name()))
                     if d.name != deleted]
            if users:
                return f"used by domain(s) {', '.join(users)}"
            with exclusion.pool_lock(conn, pool_name) as pool:
                ledger.release(pool, vol.name())
    except (libvirt.libvirtError, TdxError) as exc:
        return f"could not check its users or release it: {exc}"
    return None


def describe_teardown(row: Row) -> str:
    return _describe_outcome(row) + _describe_overlay(row)


def _describe_outcome(row: Row) -> str:
    name = row["name"]
    if row["result"] == "graceful":
        return f"{name}: stopped by ACPI after {row['seconds']:.1f} s, undefined"
    if row["result"] == "forced":
        return (f"{name}: no ACPI shutdown within {row['timeout']} s, forced off, undefined "
                f"({row['seconds']:.1f} s)")
    if row["result"] == "undefined":
        return f"{name}: was not running, undefined"
    if row["result"] == "gone":
        return f"{name}: already gone"
    return f"{name}: FAILED: {row['error']}"


def _describe_overlay(row: Row) -> str:
    kept = ((what, row.get(f"{what}_kept")) for what in ("overlay", "seed"))
    return "".join(f"; its {what} is not released: {why} (it stays declared by its stack)"
                   for what, why in kept if why)


def cmd_delete(args: argparse.Namespace) -> int:
    if args.owner is not None and not args.all:
        _fail("--owner narrows --all; name the domains or add --all")
        return EXIT_USAGE
    with connect(args.uri) as conn:
        chosen, problems = select_for_delete(conn, args)
    if problems:
        for problem in problems:
            _fail(problem)
        _fail("nothing was deleted")
        return EXIT_FAILED
    if not chosen:
        print("no domains of ours to delete" + (f" for owner {args.owner}" if args.owner else ""))
        return EXIT_OK
    if args.dry_run:
        planned: list[Row] = [{"name": d.name, "owner": str(d.owner) if d.owner else None,
                               "timeout": d.timeout, "result": "would delete"} for d in chosen]
        _emit(planned, (("name", "NAME"), ("result", "RESULT"), ("timeout", "ACPI TIMEOUT"),
                     ("owner", "OWNER")), args.json)
        return EXIT_OK
    rows = _teardown_in_parallel(args.uri, chosen, announce=not args.json)
    rows.sort(key=lambda row: row["name"])
    if args.json:
        print(tables.to_json(rows))
    elif any(doomed.overlay for doomed in chosen):
        print(f"overlays stay in their pools, released by their stacks; `{PROG} pool-cleanup` "
              "removes them")
    return EXIT_FAILED if any(row["result"] == "failed" for row in rows) else EXIT_OK


def _teardown_in_parallel(uri: str, chosen: Sequence[Doomed], announce: bool) -> list[Row]:
    rows = []
    with ThreadPoolExecutor(max_workers=min(len(chosen), MAX_PARALLEL_DELETES)) as executor:
        futures = [executor.submit(teardown, uri, doomed) for doomed in chosen]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            if announce:
                print(describe_teardown(row), flush=True)
    return rows


# --- host-check ------------------------------------------------------------------------------

HOST_COLUMNS: tuple[tables.Column, ...] = (
    ("status", "STATUS"), ("name", "CHECK"), ("needed", "NEEDED"), ("reason", "REASON"),
)


def host_report(uri: str, root: Path) -> host.HostReport:
    """``host.check_host``; when libvirt cannot be reached, the file checks and that reason."""
    local = is_local_uri(uri)
    try:
        with connect(uri) as conn:
            return host.check_host(conn, root, local=local)
    except TdxError as exc:
        files = [run(root) for _name, run in host.FILE_CHECKS] if local else []
        return host.HostReport([*files, host.Check("libvirt", "fail", str(exc))])


def cmd_host_check(args: argparse.Namespace) -> int:
    report = host_report(args.uri, args.root)
    rows = [{"name": c.name, "status": c.status, "required": c.required,
             "needed": "required" if c.required else "optional", "reason": c.reason}
            for c in report.checks]
    if args.json:
        print(tables.to_json([{k: v for k, v in row.items() if k != "needed"} for row in rows]))
    else:
        _emit(rows, HOST_COLUMNS, False)
        print()
        if report.tdx_ready:
            print("TDX trust domains can run on this host")
        else:
            blocking = ", ".join(check.name for check in report.failures())
            print(f"TDX trust domains cannot run on this host (blocked by: {blocking})")
    return EXIT_OK if report.tdx_ready else EXIT_FAILED


def cmd_render(args: argparse.Namespace) -> int:
    from tdx_provider.tdxctl import render

    uri = args.render_uri or (args.uri if args.uri != DEFAULT_URI else None)
    try:
        rendered = render.render_inputs(render.load_inputs(args.inputs), uri, args.root)
    except render.RenderInputError as exc:
        for failure in exc.failures:
            _fail(f"render: {failure}")
        return EXIT_FAILED
    for warning in rendered.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sys.stdout.write(rendered.xml)
    return EXIT_OK


# --- virsh passthrough -----------------------------------------------------------------------


def run_virsh(uri: str, args: Sequence[str]) -> int:
    """``virsh -c URI ARGS...`` as an argv (never through a shell); its exit code."""
    sys.stdout.flush()
    try:
        return subprocess.run(["virsh", "-c", uri, *args], check=False).returncode
    except FileNotFoundError:
        _fail("virsh is not installed (it comes with libvirt-clients)")
        return EXIT_NO_VIRSH


def take_uri(tokens: Sequence[str], uri: str = DEFAULT_URI) -> tuple[str, list[str]]:
    """Pull ``--uri X`` / ``--uri=X`` out of ``tokens``: (the last URI given, the rest)."""
    rest: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--uri" and index + 1 < len(tokens):
            uri = tokens[index + 1]
            index += 2
            continue
        if token.startswith("--uri="):
            uri = token.partition("=")[2]
        else:
            rest.append(token)
        index += 1
    return uri, rest


def passthrough(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """(uri, virsh args) when the command is not one of ours, else None (argparse decides)."""
    uri, head = DEFAULT_URI, list(argv)
    index = 0
    while index < len(head) and head[index].startswith("-"):
        index += 2 if head[index] == "--uri" else 1
    if index >= len(head) or head[index] in COMMANDS:
        return None
    uri, before = take_uri(head[:index])
    if before:  # options other than --uri before a foreign command: let argparse complain
        return None
    command = head[index]
    uri, after = take_uri(head[index + 1:], uri)
    return uri, after if command == VIRSH_COMMAND else [command, *after]


# --- argument parsing ------------------------------------------------------------------------


def _timeout(text: str) -> int:
    try:
        return validation.integer("--timeout", int(text), minimum=0, maximum=3600)
    except (ValueError, InputError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds from 0 to 3600") from exc


def _root(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return path


def build_parser() -> argparse.ArgumentParser:
    uri = argparse.ArgumentParser(add_help=False)
    uri.add_argument("--uri", default=argparse.SUPPRESS,
                     help=f"libvirt connection URI (default {DEFAULT_URI})")
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("--json", action="store_true", help="print a JSON list of objects")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate a pulumi-tdx host: list, inspect and clean up what the provider "
                    "created, and check TDX readiness.",
        epilog=f"Any other command (or `{VIRSH_COMMAND} ARGS...`) runs `virsh -c URI ARGS...`.",
    )
    parser.add_argument("--uri", default=DEFAULT_URI,
                        help=f"libvirt connection URI (default {DEFAULT_URI})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser(
        "list", parents=[uri, table], help="every domain on the host; ours show their owner")
    listing.set_defaults(handler=cmd_list)

    info = commands.add_parser(
        "pool-info", parents=[uri, table],
        help="pool state and sizes, and its volumes (kind, backing volume, user)")
    info.add_argument("pool", nargs="?", metavar="POOL", help="a pool name (default: every pool)")
    info.set_defaults(handler=cmd_pool_info)

    cleanup = commands.add_parser(
        "pool-cleanup", parents=[uri, table],
        help="delete our overlays that no domain (running or defined) uses")
    cleanup.add_argument("pool", nargs="?", metavar="POOL",
                         help="a pool name (default: every running pool)")
    cleanup.add_argument("--dry-run", action="store_true",
                         help="print what would be removed; change nothing")
    cleanup.add_argument("--owner", metavar="PROJECT[/STACK[/RESOURCE]]",
                         help="that stack is gone: its overlays no domain uses are orphans too")
    cleanup.set_defaults(handler=cmd_pool_cleanup)

    delete = commands.add_parser(
        "delete", parents=[uri, table],
        help="graceful teardown (ACPI, bounded wait, force, undefine), in parallel")
    delete.add_argument("domains", nargs="*", metavar="DOMAIN")
    delete.add_argument("--all", action="store_true", help="every domain of ours")
    delete.add_argument("--owner", metavar="PROJECT[/STACK[/RESOURCE]]",
                        help="with --all: only domains of this owner")
    delete.add_argument("--force", action="store_true",
                        help="also delete named domains that pulumi-tdx did not create")
    delete.add_argument("--timeout", type=_timeout, metavar="SECONDS",
                        help="ACPI wait before forcing off (default: the domain's own "
                             f"shutdown timeout, else {DEFAULT_SHUTDOWN_TIMEOUT})")
    delete.add_argument("--dry-run", action="store_true",
                        help="print what would be deleted; change nothing")
    delete.set_defaults(handler=cmd_delete)

    check = commands.add_parser(
        "host-check", parents=[uri, table],
        help="can this host run TDX trust domains? (exit status 0 only if so)")
    check.add_argument("--root", type=_root, default=Path("/"), metavar="DIR",
                       help="read /sys, /proc, /dev and /usr under DIR instead of / "
                            "(fixture trees, chroots)")
    check.set_defaults(handler=cmd_host_check)
    measure_cmd.add_parser(commands, [uri, table])

    render = commands.add_parser(
        "render", help="print the domain XML a TrustDomain with these inputs would define")
    render.add_argument("inputs", type=Path, metavar="INPUTS.json",
                        help="a JSON object of TrustDomain inputs (the SDK's keywords)")
    render.add_argument("--uri", dest="render_uri", default=None,
                        help="the host to render for (default: the inputs' uri, else "
                             f"{DEFAULT_URI})")
    render.add_argument("--root", type=_root, default=Path("/"), metavar="DIR",
                        help="host root for the TDX readiness warnings (as host-check)")
    render.set_defaults(handler=cmd_render)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "delete" and bool(args.domains) == bool(args.all):
        _fail("delete: name one or more domains, or give --all (not both)")
        return EXIT_USAGE
    try:
        validation.uri("--uri", args.uri)
    except InputError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    return args


def main(argv: list[str] | None = None) -> int:
    tokens = list(sys.argv[1:] if argv is None else argv)
    virsh = passthrough(tokens)
    if virsh is not None:
        return run_virsh(*virsh)
    args = _parse(build_parser(), tokens)
    if isinstance(args, int):
        return args
    try:
        return int(args.handler(args))
    except (TdxError, libvirt.libvirtError) as exc:
        _fail(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
