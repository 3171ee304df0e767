#!/usr/bin/env python3
"""Builds the fuzzers' starting corpora in fuzz/corpus/<target>/ from the
committed seeds (fuzz/seeds/), the project's example threads and test mails,
and, when present, the shared hostile-mail corpus (../shared/corpus/mime).
The archive target gets a zip and cabs holding a CBS log, and every archive
fixture of tests/fixtures/archives (its first byte picks the name the walker
sees: see fuzzing::archive); the event_log target gets the Windows-written
System.evtx of tests/fixtures/eventlogs and an XML export of events."""
import gzip, io, os, shutil, struct, sys, zipfile, zlib

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
corpus = os.path.join(here, "corpus")

def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def files(folder):
    for root, _, names in os.walk(folder):
        for n in sorted(names):
            yield os.path.join(root, n)

for target in os.listdir(os.path.join(here, "seeds")):
    for path in files(os.path.join(here, "seeds", target)):
        put(target, os.path.basename(path), open(path, "rb").read())

mails = list(files(os.path.join(repo, "examples"))) + list(files(os.path.join(repo, "tests", "fixtures", "mail")))
shared = os.path.join(repo, "..", "shared", "corpus", "mime")
if os.path.isdir(shared):
    mails += [p for p in files(shared) if not p.endswith((".md", ".txt"))]
for i, path in enumerate(p for p in mails if p.endswith((".eml", ".msg")) or "mime" in p):
    raw = open(path, "rb").read()
    put("mail", f"m{i:03}", raw)
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"subject:"):
            put("subject", f"s{i:03}", line[8:].strip())
            break

cbs = open(os.path.join(here, "seeds", "log_cbs", "cbs.log"), "rb").read()
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("Logs/CBS/CBS.log", cbs)
    z.writestr("Logs/DISM/dism.log", open(os.path.join(here, "seeds", "log_dism", "dism.log"), "rb").read())
put("archive", "zip", b"\x00" + buf.getvalue())

def cab(name, data):
    """One folder, one file, no compression (typeCompress 0)."""
    name_z = name.encode() + b"\x00"
    header_len, folder_len = 36, 8
    file_len = 16 + len(name_z)
    data_off = header_len + folder_len + file_len
    total = data_off + 8 + len(data)
    header = b"MSCF" + struct.pack("<IIIIIBBHHHHH", 0, total, 0, header_len + folder_len, 0, 3, 1, 1, 1, 0, 0, 0)
    folder = struct.pack("<IHH", data_off, 1, 0)
    entry = struct.pack("<IIHHHH", len(data), 0, 0, 0x5656, 0x0000, 0x20) + name_z
    block = struct.pack("<IHH", 0, len(data), len(data)) + data
    return header + folder + entry + block

def mszip_cab(files):
    """One MSZIP folder (typeCompress 1) of 32 KiB blocks holding every file
    in turn, so that a file spans blocks and blocks refer to earlier ones."""
    data = b"".join(d for _, d in files)
    blocks, window = [], b""
    for at in range(0, len(data), 0x8000):
        chunk = data[at:at + 0x8000]
        c = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=window) if window else zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = b"CK" + c.compress(chunk) + c.flush()
        blocks.append((packed, len(chunk)))
        window = (window + chunk)[-0x8000:]
    entries, start = b"", 0
    for name, d in files:
        entries += struct.pack("<IIHHHH", len(d), start, 0, 0x5656, 0x0000, 0x20) + name.encode() + b"\x00"
        start += len(d)
    header_len, folder_len = 36, 8
    data_off = header_len + folder_len + len(entries)
    body = b"".join(struct.pack("<IHH", 0, len(p), n) + p for p, n in blocks)
    total = data_off + len(body)
    header = b"MSCF" + struct.pack("<IIIIIBBHHHHH", 0, total, 0, header_len + folder_len, 0, 3, 1, 1, len(files), 0, 0, 0)
    folder = struct.pack("<IHH", data_off, len(blocks), 1)
    return header + folder + entries + body

put("archive", "cab", b"\x01" + cab("CBS.log", cbs))
put("archive", "cab-mszip", b"\x01" + mszip_cab([("CBS.log", cbs * 100), ("DISM.log", cbs[:500])]))
fixtures = os.path.join(repo, "tests", "fixtures")
for i, path in enumerate(files(os.path.join(fixtures, "archives"))):
    if not path.endswith(".md"):
        put("archive", "fixture-" + os.path.basename(path), bytes([i % 5]) + open(path, "rb").read())
put("event_log", "system-evtx", gzip.decompress(open(os.path.join(fixtures, "eventlogs", "System.evtx.gz"), "rb").read()))
ns = "http://schemas.microsoft.com/win/2004/08/events/event"
put("event_log", "setup-xml", (
    "<?xml version=\"1.0\"?><Events><Event xmlns='%s'><System><Provider Name='Microsoft-Windows-Servicing'/>"
    "<EventID>3</EventID><Level>2</Level><TimeCreated SystemTime='2023-03-17T09:03:35.1Z'/><Channel>Setup</Channel>"
    "</System><UserData><CbsPackageChangeState><PackageIdentifier>KB5023696</PackageIdentifier>"
    "<ErrorCode>0x800f0922</ErrorCode></CbsPackageChangeState></UserData></Event></Events>" % ns).encode())
print(sum(len(os.listdir(os.path.join(corpus, t))) for t in os.listdir(corpus)), "seed inputs in", corpus)
