#!/usr/bin/env python3
"""TAP: the test guests contain none of the instructions the build machines'
KVM instruction emulator cannot run in ring 0 (see DEVELOPERS.md).

Usage: check_insns.py OBJDUMP GUEST.elf...
"""
import re
import subprocess
import sys

FORBIDDEN = re.compile(r"\t(int3|ud[0-2]|xsave\w*|xrstor\w*|cmpxchg16b|popcnt|clac|stac|"
                       r"fnclex|endbr64|endbr32|vzeroupper)\b")


def main(objdump, elfs):
    print(f"1..{len(elfs)}")
    failed = 0
    for n, elf in enumerate(elfs, 1):
        p = subprocess.run([objdump, "-d", "--no-show-raw-insn", elf], capture_output=True, text=True)
        bad = [line.strip() for line in p.stdout.splitlines() if FORBIDDEN.search(line)]
        ok = p.returncode == 0 and not bad
        print(f"{'ok' if ok else 'not ok'} {n} - {elf.rsplit('/', 1)[-1]} has no forbidden instructions")
        for line in (bad or p.stderr.splitlines())[:10] if not ok else []:
            print(f"# {line}")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
