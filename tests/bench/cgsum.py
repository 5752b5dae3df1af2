#!/usr/bin/python3
"""cgsum.py CALLGRIND_OUT [N] - total instructions (Ir) of a callgrind run,
then the self cost per shared object, largest first (N of them, default 8):
where a process start spends its instructions (the dynamic loader, libc,
libcurl, ...). Needs a run with --compress-strings=no --compress-pos=no."""
import collections
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    per_obj = collections.Counter()
    total = None
    obj = "?"
    skip_next = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
            elif line.startswith("ob="):
                obj = line[3:]
            elif line.startswith("calls="):
                skip_next = True    # the next cost line is the call's inclusive cost
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                if skip_next:
                    skip_next = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    per_obj[obj] += int(fields[1])
    print(f"total {total}")
    for name, ir in per_obj.most_common(top):
        print(f"{ir} {name.rsplit('/', 1)[-1]}")


if __name__ == "__main__":
    main()
