#!/usr/bin/python3
"""A stand-in for systemd's D-Bus Manager, for test_systemd_cgroup.py: owns
org.freedesktop.systemd1 on a private bus and does what systemd does for a
transient scope, on the host's real cgroup hierarchies: StartTransientUnit
makes the scope's node under its slice in the unified and name=systemd
hierarchies, moves the PIDs in and emits JobRemoved; StopUnit kills what is
in the scope, removes the nodes and emits JobRemoved; SetUnitProperties and
ResetFailedUnit answer NoSuchUnit for units it does not have. Like systemd,
StopUnit sends SIGTERM first and SIGKILL only after a timeout (logged as
"StopUnit-SIGKILL"), so a runtime that leaves processes in the scope is
seen.

Every call is appended to DIR/calls.jsonl as {"method", "args"} with each
property as [name, D-Bus type, value]. DIR/mode, read at each call, makes it
misbehave: "ok" (default), "failed" (the job ends "failed" once the scope
exists), "silent" (the scope is made, JobRemoved never sent), "error" (the
method call answers UnitExists: a running unit of that name), "stale" (a
failed unit of that name is loaded: UnitExists until ResetFailedUnit).

Usage: fake_systemd.py DIR   (DBUS_SYSTEM_BUS_ADDRESS names the bus)
"""
import json
import os
import signal
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MGR = "org.freedesktop.systemd1.Manager"
STOP_TIMEOUT = 3  # seconds between StopUnit's SIGTERM and its SIGKILL

TYPES = [(dbus.Boolean, "b"), (dbus.UInt64, "t"), (dbus.UInt32, "u"), (dbus.Int64, "x"),
         (dbus.Int32, "i"), (dbus.String, "s"), (dbus.Array, "a")]


def plain(v):
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, str):
        return str(v)
    return int(v)


def dtype(v):
    for cls, sig in TYPES:
        if isinstance(v, cls):
            return sig + (v.signature or "") if sig == "a" else sig
    return type(v).__name__


def hierarchies():
    """The unified and name=systemd mount points: the ones systemd moves a
    scope's processes into on a hybrid host (and memory, pids, ... when it
    accounts them; cvisor joins those itself)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a = line.split()
            sep = a.index("-")
            fstype, opts = a[sep + 1], a[sep + 3]
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in opts.split(",")):
                out.append(a[4])
    return out


def slice_path(s):
    """systemd's expansion: a-b.slice -> a.slice/a-b.slice; -.slice -> ''."""
    if s == "-.slice":
        return ""
    name = s[:-len(".slice")]
    parts = name.split("-")
    return "/".join("-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


class Manager(dbus.service.Object):
    def __init__(self, bus, d):
        super().__init__(bus, PATH)
        self.dir = d
        self.units = {}  # name -> relative cgroup path
        self.failed = set()  # "stale": failed units of an earlier container, until reset
        self.job = 0

    def mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                return f.read().strip() or "ok"
        except FileNotFoundError:
            return "ok"

    def log(self, method, *args):
        with open(os.path.join(self.dir, "calls.jsonl"), "a") as f:
            f.write(json.dumps({"method": method, "args": args}) + "\n")

    def props(self, props):
        return [[str(k), dtype(v), plain(v)] for k, v in props]

    def new_job(self):
        self.job += 1
        return self.job, dbus.ObjectPath(f"{PATH}/job/{self.job}")

    def finish(self, jid, job, unit, result):
        GLib.idle_add(lambda: self.JobRemoved(jid, job, unit, result) and False)

    @dbus.service.method(MGR, in_signature="", out_signature="")
    def Subscribe(self):
        self.log("Subscribe")

    @dbus.service.method(MGR, in_signature="ssa(sv)a(sa(sv))", out_signature="o")
    def StartTransientUnit(self, name, mode, props, aux):
        self.log("StartTransientUnit", str(name), str(mode), self.props(props), len(aux))
        behaviour = self.mode()
        if (behaviour == "stale" and str(name) not in self.failed and str(name) not in self.units
                and str(name) not in getattr(self, "failed_reset", set())):
            # A failed scope of that name is still loaded: UnitExists until
            # ResetFailedUnit collects it.
            self.failed.add(str(name))
        if str(name) in self.failed:
            raise dbus.exceptions.DBusException("Unit %s was already loaded or has a fragment file."
                                                % name, name="org.freedesktop.systemd1.UnitExists")
        if behaviour == "error":
            raise dbus.exceptions.DBusException("Unit %s was already loaded or has a fragment file."
                                                % name, name="org.freedesktop.systemd1.UnitExists")
        p = {str(k): v for k, v in props}
        rel = "/".join(x for x in (slice_path(str(p.get("Slice", "system.slice"))), str(name)) if x)
        for h in hierarchies():
            d = os.path.join(h, rel)
            os.makedirs(d, exist_ok=True)
            for pid in p.get("PIDs", []):
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(int(pid)))
        self.units[str(name)] = rel
        jid, job = self.new_job()
        if behaviour == "failed":
            self.finish(jid, job, name, "failed")
        elif behaviour != "silent":
            self.finish(jid, job, name, "done")
        return job

    @dbus.service.method(MGR, in_signature="sba(sv)", out_signature="")
    def SetUnitProperties(self, name, runtime, props):
        self.log("SetUnitProperties", str(name), bool(runtime), self.props(props))
        if str(name) not in self.units:
            raise dbus.exceptions.DBusException("Unit %s not loaded." % name,
                                                name="org.freedesktop.systemd1.NoSuchUnit")

    @dbus.service.method(MGR, in_signature="ss", out_signature="o")
    def StopUnit(self, name, mode):
        self.log("StopUnit", str(name), str(mode))
        rel = self.units.pop(str(name), None)
        if rel is None:
            raise dbus.exceptions.DBusException("Unit %s not loaded." % name,
                                                name="org.freedesktop.systemd1.NoSuchUnit")
        # As systemd: SIGTERM, then SIGKILL once TimeoutStopSec (90 s in
        # systemd, STOP_TIMEOUT here) has passed with processes left.
        hs = hierarchies()
        for h in hs:
            self.kill(os.path.join(h, rel), signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(self.pids(os.path.join(h, rel)) for h in hs):
            time.sleep(0.02)
        for h in hs:
            d = os.path.join(h, rel)
            if self.pids(d):
                self.log("StopUnit-SIGKILL", str(name))
            self.kill(d, signal.SIGKILL)
            for _ in range(200):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        jid, job = self.new_job()
        self.finish(jid, job, name, "done")
        return job

    @staticmethod
    def pids(d):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def kill(self, d, sig):
        for pid in self.pids(d):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    @dbus.service.method(MGR, in_signature="s", out_signature="")
    def ResetFailedUnit(self, name):
        self.log("ResetFailedUnit", str(name))
        if str(name) in self.failed:
            self.failed.discard(str(name))
            self.units.pop(str(name), None)
            self.failed_reset = getattr(self, "failed_reset", set()) | {str(name)}
            return
        if str(name) not in self.units:
            raise dbus.exceptions.DBusException("Unit %s not loaded." % name,
                                                name="org.freedesktop.systemd1.NoSuchUnit")

    @dbus.service.signal(MGR, signature="uoss")
    def JobRemoved(self, jid, job, unit, result):
        pass


def main():
    d = sys.argv[1]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(os.environ["DBUS_SYSTEM_BUS_ADDRESS"])
    mgr = Manager(bus, d)
    name = dbus.service.BusName(NAME, bus, do_not_queue=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    with open(os.path.join(d, "ready"), "w") as f:
        f.write(str(os.getpid()))
    loop.run()
    del name, mgr


if __name__ == "__main__":
    main()
