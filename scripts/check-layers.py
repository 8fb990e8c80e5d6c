#!/usr/bin/env python3
"""Enforce the dependency rule of docs/ARCHITECTURE.md on src/:

    util <- core <- devices, pci, virtio, backends, tools <- board (arch/x86) <- vmm <- cli, api

A file may include headers of its own layer and of the layers below it,
never above. Prints TAP; exits 1 on a violation.
"""
import os
import re
import sys

CORE = {"bus", "memory", "irq", "thread", "ioloop", "device", "config", "exit_status", "timeline"}
LAYERS = ["util", "core", "devices", "board", "vmm", "cli"]


def layer_of(path):
    """Layer name of a path relative to src/, or None if it is not layered."""
    parts = path.split("/")
    top = parts[0]
    if top == "util":
        return "util"
    if top == "vmm":
        stem = os.path.splitext(parts[-1])[0]
        return "core" if stem in CORE else "vmm"
    if top in ("devices", "pci", "virtio", "backends", "tools"):
        return "devices"
    if top == "arch":
        return "board"
    if top in ("cli", "api") or path == "main.c":
        return "cli"
    return None


INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    bad = []
    files = 0
    for root, _, names in os.walk(src):
        for n in sorted(names):
            if not n.endswith((".c", ".h")):
                continue
            full = os.path.join(root, n)
            rel = os.path.relpath(full, src)
            mine = layer_of(rel)
            if mine is None:
                bad.append(f"{rel}: not in any layer (add its directory to scripts/check-layers.py)")
                continue
            files += 1
            with open(full, encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                theirs = layer_of(inc)
                if theirs is None:
                    bad.append(f"{rel}: includes \"{inc}\", which is in no layer")
                elif LAYERS.index(theirs) > LAYERS.index(mine):
                    bad.append(f"{rel} ({mine}) includes \"{inc}\" ({theirs}): dependencies point down only")
    print("1..1")
    if bad:
        print(f"not ok 1 - {files} files follow the layer rule")
        for b in bad:
            print(f"# {b}")
        return 1
    print(f"ok 1 - {files} files follow the layer rule ({' <- '.join(LAYERS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
