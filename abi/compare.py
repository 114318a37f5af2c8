#!/usr/bin/python3
"""abi/compare.py - compare two abidw dumps of libtrain and say which
version numbers the difference needs (doc/abi.md, `make abi-check`).

Usage: compare.py BASE_LIB BASE_PLUGIN CUR_LIB CUR_PLUGIN BASE_VERSIONS \
           CURRENT:REVISION:AGE MAJOR.MINOR HEADER_DIR

BASE_LIB/CUR_LIB are dumps of libtrain.so (abidw --headers-dir
sdk/include/train), BASE_PLUGIN/CUR_PLUGIN dumps of abi/probe.so (a plugin
whose exported descriptor carries the plugin structs).  BASE_VERSIONS is
abi/versions.  Exit status: 0 when the version numbers say at least what
the changes need, 1 when they do not, 2 on a usage or input error.

Every change is one of:
  added        an exported function or variable, an enumerator, a new type,
               a field appended to a struct that carries `struct_size`, a
               reserved slot (or a NULL-for-now `void *` field) given a
               meaning: old users keep working (libtool: current+1, age+1;
               plugin ABI, if plugins can see it: minor+1);
  incompatible anything else: a removal, a changed signature, a changed
               field, a field appended to a struct without `struct_size`
               (a caller allocates it, so its size is part of the ABI)
               (libtool: current+1, age 0, so a new SONAME; plugin ABI, if
               plugins can see it: major+1, minor 0).
Whether plugins can see a change: everything in the plugin probe, and
whatever is declared in a header other than the host-only ones below.
Only names and layouts are compared, never abidw's type ids, so dumps made
by other compilers or flags compare equal when the ABI is the same.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

# Headers for programs that host libtrain, which plugins do not include
# (doc/abi.md).  Every other public header is part of the plugin ABI.
HOST_ONLY_HEADERS = {"train.h", "cache.h", "rasa_recipe.h", "rasa_validate.h"}

ADDED, INCOMPATIBLE = "added", "incompatible"

# The public headers (basename -> text) and where each exported function is
# declared: DWARF gives a function's definition (a .c file), and which
# header declares it decides whether plugins see it.
HEADERS = {}
DECLARED = {}


def read_headers(folder):
    for f in sorted(os.listdir(folder)):
        if f.endswith(".h"):
            with open(os.path.join(folder, f)) as fh:
                text = fh.read()
            HEADERS[f] = text
            for mt in re.finditer(r"TRAIN_API\b[^;{}]*?\b(train_\w+)\s*\(", text, re.S):
                line = text.count("\n", 0, mt.start(1)) + 1
                DECLARED.setdefault(mt.group(1), f"{f}:{line}")


class Dump:
    """One abidw file: its exported functions and variables, and the named
    types of the public headers with their layouts."""

    def __init__(self, path):
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            raise SystemExit(f"abi/compare.py: {path}: {e}")
        self.path = path
        self.types = {}     # id -> element
        self.funcs = {}     # symbol -> (signature, where)
        self.vars = {}      # symbol -> (type, where)
        self.named = {}     # "struct X" / "enum X" / "typedef X" -> (layout, where)
        # The defined function symbols.  abidw ties a symbol to the first
        # DWARF subprogram of that name it meets; when that is a declaration
        # in a file that only calls the function, the function-decl it keeps
        # has no elf-symbol-id, so such decls are matched here by name.
        self.elf_funcs = {e.get("name") for s in root.iter("elf-function-symbols")
                          for e in s.iter("elf-symbol") if e.get("is-defined") == "yes"}
        for el in root.iter():
            tid = el.get("id")
            if tid is not None and el.tag != "elf-symbol":
                # Keep the full definition over a declaration-only one.
                if tid not in self.types or self.types[tid].get("declaration-only") == "yes":
                    self.types[tid] = el
        for instr in root.iter("abi-instr"):
            self._scan(instr)

    @staticmethod
    def where(el):
        f, line = el.get("filepath"), el.get("line")
        return f"{f}:{line}" if f and line else (f or "?")

    def tstr(self, tid, depth=0):
        """A type's spelling, independent of ids."""
        if tid is None:
            return "?"
        el = self.types.get(tid)
        if el is None or depth > 40:
            return "?"
        tag, d = el.tag, depth + 1
        if tag == "type-decl":
            return el.get("name")
        if tag == "pointer-type-def":
            return self.tstr(el.get("type-id"), d) + " *"
        if tag == "reference-type-def":
            return self.tstr(el.get("type-id"), d) + " &"
        if tag == "qualified-type-def":
            q = " ".join(k for k in ("const", "volatile", "restrict") if el.get(k) == "yes")
            inner = self.tstr(el.get("type-id"), d)
            # `T *const` for a qualified pointer, `const T` otherwise.
            return f"{inner} {q}" if inner.endswith("*") else f"{q} {inner}".strip()
        if tag == "typedef-decl":
            return el.get("name")
        if tag in ("class-decl", "union-decl"):
            kw = "union" if tag == "union-decl" else "struct"
            if el.get("is-anonymous") == "yes":
                return f"{kw} {{{self.members_str(el, d)}}}"
            return f"{kw} {el.get('name')}"
        if tag == "enum-decl":
            return f"enum {el.get('name')}"
        if tag == "array-type-def":
            dims = "".join(f"[{s.get('length')}]" for s in el.iter("subrange"))
            return self.tstr(el.get("type-id"), d) + dims
        if tag == "function-type":
            return self.sig(el, d)
        return tag

    def sig(self, el, depth=0):
        params = []
        ret = "void"
        for c in el:
            if c.tag == "parameter":
                params.append("..." if c.get("is-variadic") == "yes"
                              else self.tstr(c.get("type-id"), depth + 1))
            elif c.tag == "return":
                ret = self.tstr(c.get("type-id"), depth + 1)
        return f"{ret} ({', '.join(params) or 'void'})"

    def members(self, el, depth=0):
        out = []
        for dm in el.findall("data-member"):
            v = dm.find("var-decl")
            if v is None:
                continue
            out.append((v.get("name"), int(dm.get("layout-offset-in-bits", "0")),
                        self.tstr(v.get("type-id"), depth + 1), self.where(v)))
        return out

    def members_str(self, el, depth):
        return "; ".join(f"{t} {n}@{o}" for n, o, t, _ in self.members(el, depth))

    def _scan(self, instr):
        for el in instr.iter():
            tag = el.tag
            if tag == "function-decl" and el.get("elf-symbol-id"):
                sym = el.get("elf-symbol-id")
                self.funcs[sym] = (self.sig(el), DECLARED.get(sym, self.where(el)))
            elif tag == "function-decl" and el.get("name") in self.elf_funcs \
                    and el.get("name") not in self.funcs:
                sym = el.get("name")
                self.funcs[sym] = (self.sig(el), DECLARED.get(sym, self.where(el)))
            elif tag == "var-decl" and el.get("elf-symbol-id"):
                self.vars[el.get("elf-symbol-id")] = (self.tstr(el.get("type-id")), self.where(el))
            elif header_of(self.where(el)) not in HEADERS:
                continue  # a type of libtrain's sources or of a library it uses
            elif tag in ("class-decl", "union-decl") and el.get("name") \
                    and el.get("is-anonymous") != "yes" and el.get("declaration-only") != "yes":
                kw = "union" if tag == "union-decl" else "struct"
                self.named[f"{kw} {el.get('name')}"] = (
                    ("struct", int(el.get("size-in-bits", "0")), self.members(el)), self.where(el))
            elif tag == "enum-decl" and el.get("name") and el.get("is-anonymous") != "yes":
                enums = {e.get("name"): e.get("value") for e in el.findall("enumerator")}
                self.named[f"enum {el.get('name')}"] = (("enum", enums), self.where(el))
            elif tag == "typedef-decl" and el.get("name"):
                self.named[f"typedef {el.get('name')}"] = (
                    ("typedef", self.tstr(el.get("type-id"))), self.where(el))


def header_of(where):
    return where.split(":")[0].rsplit("/", 1)[-1]


def compare(base, cur, in_probe):
    """[(kind, plugin_visible, in_lib, where, text)] for the changes from
    base to cur.  in_lib: libtrain.so's -version-info must say it (not for a
    plugin-visible struct that carries struct_size growing compatibly:
    doc/plugin-abi.md, "appending a field to a descriptor struct ... moves
    only the plugin ABI minor")."""
    out = []

    def note(kind, where, text, sized=False):
        visible = in_probe or header_of(where) not in HOST_ONLY_HEADERS
        in_lib = not in_probe and not (sized and kind == ADDED and visible)
        out.append((kind, visible, in_lib, where, text))

    for what, b, c in (("function", base.funcs, cur.funcs), ("variable", base.vars, cur.vars)):
        for name in sorted(b.keys() - c.keys()):
            note(INCOMPATIBLE, b[name][1], f"{what} {name} removed")
        for name in sorted(c.keys() - b.keys()):
            note(ADDED, c[name][1], f"{what} {name} added: {c[name][0]}")
        for name in sorted(b.keys() & c.keys()):
            if b[name][0] != c[name][0]:
                note(INCOMPATIBLE, c[name][1],
                     f"{what} {name} changed: was {b[name][0]}, now {c[name][0]}")

    for name in sorted(base.named.keys() - cur.named.keys()):
        note(INCOMPATIBLE, base.named[name][1], f"{name} removed from the public ABI")
    for name in sorted(cur.named.keys() - base.named.keys()):
        note(ADDED, cur.named[name][1], f"{name} added")
    for name in sorted(base.named.keys() & cur.named.keys()):
        (bl, _), (cl, where) = base.named[name], cur.named[name]
        if bl == cl:
            continue
        if bl[0] != cl[0]:
            note(INCOMPATIBLE, where, f"{name} changed kind")
        elif bl[0] == "typedef":
            note(INCOMPATIBLE, where, f"{name} changed: was {bl[1]}, now {cl[1]}")
        elif bl[0] == "enum":
            for e in sorted(bl[1].keys() - cl[1].keys()):
                note(INCOMPATIBLE, where, f"{name}: enumerator {e} removed")
            for e in sorted(bl[1].keys() & cl[1].keys()):
                if bl[1][e] != cl[1][e]:
                    note(INCOMPATIBLE, where,
                         f"{name}: enumerator {e} changed value from {bl[1][e]} to {cl[1][e]}")
            for e in sorted(cl[1].keys() - bl[1].keys()):
                note(ADDED, where, f"{name}: enumerator {e} = {cl[1][e]} added")
        else:
            sized = any(mb[0] == "struct_size" for mb in bl[2])
            for kind, text in struct_changes(name, bl, cl):
                note(kind, where, text, sized)
    return out


def struct_changes(name, bl, cl):
    _, bsize, bm = bl
    _, csize, cm = cl
    has_size = any(m[0] == "struct_size" for m in bm)
    changes = []
    # Members that stay as they were: same name, offset and type, in order.
    common = 0
    while common < min(len(bm), len(cm)) and bm[common][:3] == cm[common][:3]:
        common += 1
    rest_b, rest_c = bm[common:], cm[common:]
    if not rest_b:
        # Only appended members (or only a size change).
        if csize != bsize and not rest_c:
            return [(INCOMPATIBLE, f"{name}: size changed from {bsize // 8} to {csize // 8} bytes")]
        for n, o, t, w in rest_c:
            if has_size:
                changes.append((ADDED, f"{name}: member {t} {n} appended at byte {o // 8} "
                                       f"(the struct carries struct_size)"))
            else:
                changes.append((INCOMPATIBLE, f"{name}: member {t} {n} appended at byte {o // 8}; "
                                              f"{name} has no struct_size field, so its size "
                                              f"({bsize // 8} -> {csize // 8} bytes) is part of the ABI"))
        return changes
    first = rest_b[0]
    # Reserved room given a meaning: the struct keeps its size and only what
    # lies from the old `reserved` member on changes.
    if has_size and first[0].startswith("reserved") and csize == bsize:
        added = [m for m in rest_c if not m[0].startswith("reserved")]
        return [(ADDED, f"{name}: reserved room at byte {first[1] // 8} now holds "
                        f"{', '.join(f'{t} {n}' for n, _, t, _ in added) or 'less reserve'} "
                        f"(size unchanged: {csize // 8} bytes)")]
    # A NULL-for-now `void *` field given its type (doc/plugin-abi.md: "meanings
    # for fields that were reserved and documented as zero/NULL for now").
    if (has_size and rest_c and first[0] == rest_c[0][0] and first[1] == rest_c[0][1]
            and "void" in first[2] and first[2].endswith("*") and rest_c[0][2].endswith("*")
            and [m[:3] for m in bm[common + 1:]] == [m[:3] for m in cm[common + 1:len(bm)]]
            and csize >= bsize):
        # (members compared without their header lines, which move when
        # the field's comment grows)
        changes.append((ADDED, f"{name}: member {first[0]} ({first[2]}, NULL so far) now typed "
                               f"{rest_c[0][2]}"))
        for n, o, t, w in cm[len(bm):]:
            changes.append((ADDED, f"{name}: member {t} {n} appended at byte {o // 8}"))
        return changes
    b_names = {m[0]: m for m in bm}
    c_names = {m[0]: m for m in cm}
    moved = []
    for n, o, t, w in rest_b:
        if n not in c_names:
            changes.append((INCOMPATIBLE, f"{name}: member {n} removed"))
        else:
            cn = c_names[n]
            if cn[2] != t:
                changes.append((INCOMPATIBLE, f"{name}: member {n} changed type from {t} to {cn[2]}"))
            if cn[1] != o:
                moved.append((n, o // 8, cn[1] // 8))
    if moved:
        n, o, co = moved[0]
        more = f", and {len(moved) - 1} members after it moved too" if len(moved) > 1 else ""
        changes.append((INCOMPATIBLE, f"{name}: member {n} moved from byte {o} to byte {co}{more}"))
    for n, o, t, w in rest_c:
        if n not in b_names:
            changes.append((INCOMPATIBLE, f"{name}: member {t} {n} inserted at byte {o // 8} "
                                          f"(only appending at the end is compatible)"))
    if not changes:
        changes.append((INCOMPATIBLE, f"{name}: layout changed"))
    return changes


def read_versions(path):
    lt, plug = None, None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 2 and w[0] == "libtool":
                lt = tuple(int(x) for x in w[1].split(":"))
            elif len(w) == 2 and w[0] == "plugin":
                plug = tuple(int(x) for x in w[1].split("."))
    if not lt or len(lt) != 3 or not plug or len(plug) != 2:
        raise SystemExit(f"abi/compare.py: {path}: no 'libtool C:R:A' and 'plugin M.m' lines")
    return lt, plug


def main(argv):
    if len(argv) != 9:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    read_headers(argv[8])
    base_lib, base_plug, cur_lib, cur_plug = (Dump(p) for p in argv[1:5])
    (c0, r0, a0), (M0, m0) = read_versions(argv[5])
    c, r, a = (int(x) for x in argv[6].split(":"))
    M, m = (int(x) for x in argv[7].split("."))

    changes = compare(base_lib, cur_lib, False) + compare(base_plug, cur_plug, True)
    # The same change is often seen in both dumps; say it once.
    merged = {}
    for k, v, lib, w, t in changes:
        if (k, t) in merged:
            _, v0, lib0, w0, _ = merged[(k, t)]
            merged[(k, t)] = (k, v or v0, lib or lib0, w0, t)
        else:
            merged[(k, t)] = (k, v, lib, w, t)
    changes = list(merged.values())

    lib_incompat = any(k == INCOMPATIBLE and lib for k, v, lib, w, t in changes)
    lib_added = any(k == ADDED and lib for k, v, lib, w, t in changes)
    plug_incompat = any(k == INCOMPATIBLE and v for k, v, lib, w, t in changes)
    plug_added = any(k == ADDED and v for k, v, lib, w, t in changes)

    print(f"abi-check: baseline libtool {c0}:{r0}:{a0} (libtrain.so.{c0 - a0}), plugin ABI {M0}.{m0}")
    print(f"abi-check: this tree libtool {c}:{r}:{a} (libtrain.so.{c - a}), plugin ABI {M}.{m}")
    if not changes:
        print("abi-check: the ABI is the baseline's: no change to libtrain.so's public interface "
              "or to the plugin descriptor")
    for k, v, lib, w, t in changes:
        scope = ("libtrain.so and plugin ABI" if v and lib else "plugin ABI only" if v
                 else "libtrain.so only (host API)")
        print(f"  {w}: {k}: {t}  [{scope}]")

    errors = []
    soname0, soname = c0 - a0, c - a
    if c < c0 or (c == c0 and (a != a0)):
        errors.append(f"-version-info {c}:{r}:{a} is not a step forward from the baseline's "
                      f"{c0}:{r0}:{a0}")
    if lib_incompat:
        if not (c > c0 and soname > soname0):
            errors.append(
                "libtrain.so changed incompatibly, so its SONAME must change (libtool rules 2 and 4): "
                f"set LT_CURRENT={c0 + 1}, LT_REVISION=0, LT_AGE=0 in configure.ac "
                f"(libtrain.so.{soname0} -> libtrain.so.{c0 + 1}); debian/: rename libtrain{soname0} "
                f"to libtrain{c0 + 1} and start its symbols file again")
    elif lib_added:
        if not (c > c0 and (soname == soname0 and a - a0 == c - c0 or soname > soname0)):
            errors.append(
                "interfaces were added to libtrain.so, so -version-info must say so (libtool rules 2 "
                f"and 3): set LT_CURRENT={c0 + 1}, LT_REVISION=0, LT_AGE={a0 + 1} in configure.ac "
                f"(the SONAME stays libtrain.so.{soname0}); one bump covers every addition until "
                "the next baseline")
        elif soname != soname0:
            print(f"abi-check: note: the SONAME changed ({soname0} -> {soname}) though the "
                  "changes are compatible additions; current+1 and age+1 would have kept it")
    elif (c, a) != (c0, a0):
        print(f"abi-check: note: -version-info moved ({c0}:{r0}:{a0} -> {c}:{r}:{a}) but the ABI "
              "is the baseline's")

    if (M, m) < (M0, m0):
        errors.append(f"the plugin ABI {M}.{m} is older than the baseline's {M0}.{m0}")
    elif plug_incompat:
        if M <= M0:
            errors.append(
                "what plugins see changed incompatibly: the plugin ABI major must move "
                f"(TRAIN_ABI_MAJOR {M0} -> {M0 + 1}, TRAIN_ABI_MINOR 0 in sdk/include/train/plugin.h); "
                "every plugin must then be rebuilt (doc/plugin-abi.md)")
    elif plug_added:
        if not (M > M0 or (M == M0 and m > m0)):
            errors.append(
                "plugins can see the additions, so the plugin ABI minor must move "
                f"(TRAIN_ABI_MINOR {m0} -> {m0 + 1} in sdk/include/train/plugin.h): a plugin "
                f"built for {M0}.{m0 + 1} may use them, and an older host must refuse it")
    elif (M, m) != (M0, m0) and not changes:
        print(f"abi-check: note: the plugin ABI moved ({M0}.{m0} -> {M}.{m}) but the ABI "
              "is the baseline's")

    if errors:
        for e in errors:
            print(f"abi-check: FAIL: {e}")
        print("abi-check: after the bump, `make abi-check` passes; `make abi-baseline` then "
              "records the new ABI as the baseline (at a release, or when the bump is committed)")
        return 1
    if changes:
        print("abi-check: PASS: the version numbers cover these changes "
              "(`make abi-baseline` records them as the new baseline)")
    else:
        print("abi-check: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
