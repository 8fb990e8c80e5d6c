"""TAP output shared by the e2e scripts: one numbered ok/not ok line per check,
the failing check's detail as # comments, and the plan line at the end."""
import sys

_count = 0
_failed = 0


def tap(ok, name, detail=""):
    """Report one check; returns ok, so that later checks can depend on it."""
    global _count, _failed
    _count += 1
    _failed += not ok
    print(f"{'ok' if ok else 'not ok'} {_count} - {name}")
    if not ok and detail:
        for line in detail.splitlines()[-60:]:
            print(f"# {line}")
    sys.stdout.flush()
    return ok


def skip(name, reason):
    global _count
    _count += 1
    print(f"ok {_count} - {name} # SKIP {reason}")
    sys.stdout.flush()


def plan():
    """Print the plan line (after the checks); returns how many checks failed."""
    print(f"1..{_count}")
    return _failed
