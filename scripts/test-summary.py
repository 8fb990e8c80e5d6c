#!/usr/bin/env python3
"""Count test results from meson's JSON test logs.

A test that speaks TAP (the cmocka unit tests, the e2e scripts) counts once per
"ok"/"not ok" line; any other test counts once. A TAP test whose program failed
without a "not ok" line (a crash, a timeout) counts one more failure. Prints
failures and skip reasons, then "N passed, N failed, N skipped"; exits 1 if
anything failed.
"""
import json
import re
import sys

TAP = re.compile(r"^(ok|not ok)\b(.*?)(#\s*SKIP\b(.*))?$", re.IGNORECASE)
BAD = ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")


def main(logs):
    passed = failed = skipped = 0
    notes = []
    for path in logs:
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError as e:
            print(f"test-summary: {path}: {e.strerror}")
            failed += 1
            continue
        for line in lines:
            t = json.loads(line)
            name, result = t["name"], t["result"]
            tap = [m for m in map(TAP.match, (t.get("stdout") or "").splitlines()) if m]
            if not tap:
                if result == "SKIP":
                    skipped += 1
                    notes.append(f"SKIPPED: {name}")
                elif result in BAD:
                    failed += 1
                    notes.append(f"FAILED: {name} ({result})")
                else:
                    passed += 1
                continue
            for m in tap:
                what = f"{name}:{m.group(2).strip(' -')}"
                if m.group(3):
                    skipped += 1
                    notes.append(f"SKIPPED: {what}: {m.group(4).strip()}")
                elif m.group(1) == "ok":
                    passed += 1
                else:
                    failed += 1
                    notes.append(f"FAILED: {what}")
            if result in BAD and all(m.group(1) == "ok" for m in tap):
                failed += 1
                notes.append(f"FAILED: {name} ({result} after its last test)")
    for n in notes:
        print(n)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
