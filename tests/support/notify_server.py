#!/usr/bin/python3
"""A freedesktop notification server for tests: owns org.freedesktop.Notifications
on the session bus, answers GetCapabilities with argv[1] (comma-separated), and
prints each Notify call as one JSON line on stdout (what a person would see) and
each CloseNotification as "closed ID".
Prints "ready" once it owns the name. Needs python3-gi (Debian)."""
import json
import sys

from gi.repository import Gio, GLib

XML = """<node><interface name="org.freedesktop.Notifications">
<method name="GetCapabilities"><arg direction="out" type="as"/></method>
<method name="Notify"><arg type="s"/><arg type="u"/><arg type="s"/><arg type="s"/><arg type="s"/>
<arg type="as"/><arg type="a{sv}"/><arg type="i"/><arg direction="out" type="u"/></method>
<method name="CloseNotification"><arg type="u"/></method>
<method name="GetServerInformation"><arg direction="out" type="s"/><arg direction="out" type="s"/>
<arg direction="out" type="s"/><arg direction="out" type="s"/></method>
</interface></node>"""
caps = [c for c in (sys.argv[1] if len(sys.argv) > 1 else "body").split(",") if c]
next_id = [0]


def call(conn, sender, path, iface, method, params, inv):
    if method == "GetCapabilities":
        inv.return_value(GLib.Variant("(as)", (caps,)))
    elif method == "Notify":
        app, replaces, icon, summary, body, actions, hints, timeout = params.unpack()
        if replaces:
            nid = replaces
        else:
            next_id[0] += 1
            nid = next_id[0]
        print(json.dumps({"app": app, "replaces": replaces, "id": nid, "icon": icon, "summary": summary,
                          "body": body, "hints": {k: str(v) for k, v in hints.items()}, "timeout": timeout}),
              flush=True)
        inv.return_value(GLib.Variant("(u)", (nid,)))
    elif method == "CloseNotification":
        print(f"closed {params.unpack()[0]}", flush=True)
        inv.return_value(None)
    elif method == "GetServerInformation":
        inv.return_value(GLib.Variant("(ssss)", ("test", "lanchat", "1", "1.2")))
    else:
        inv.return_value(None)


def acquired(conn, name):
    print("ready", flush=True)


def bus_acquired(conn, name):
    conn.register_object("/org/freedesktop/Notifications", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0],
                         call, None, None)


Gio.bus_own_name(Gio.BusType.SESSION, "org.freedesktop.Notifications", Gio.BusNameOwnerFlags.NONE,
                 bus_acquired, acquired, lambda c, n: sys.exit(1))
GLib.MainLoop().run()
