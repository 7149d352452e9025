#!/usr/bin/env python3
"""Independent implementation of the RFC 8548 §3.3 key schedule, used to produce the known
answers that src/keys.rs checks. Uses only Python's hmac/hashlib (RFC 5869 written out)."""
import hashlib, hmac, os

def extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()

def cprf(k, info, length):
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = hmac.new(k, t + info + bytes([n]), hashlib.sha256).digest()
        out += t
        n += 1
    return out[:length]

NEXTK, SESSID, REKEY, KEY_A, KEY_B, RESUME = 1, 2, 3, 4, 5, 6
b = bytes

n_a = b([0x11]) * 32
transcript = bytes.fromhex("45032345040123")
init1 = b([0x22]) * 75
init2 = b([0x33]) * 74
es = b([0x44]) * 32
ss0 = extract(n_a, transcript + init1 + init2 + es)
ss1 = cprf(ss0, b([NEXTK]), 32)
mk0 = cprf(ss0, b([REKEY]), 32)
mk1 = cprf(mk0, b([REKEY]), 32)
sn = bytes.fromhex("0102030405060708a1a2a3a4a5a6a7a8")
vals = {
    "ss0": ss0,
    "ss1": ss1,
    "sid0": b([0x23]) + cprf(ss0, b([SESSID]), 32),
    "resume0": cprf(ss0, b([RESUME]), 18),
    "kab0_128": cprf(mk0, b([KEY_A]), 28),
    "kba0_128": cprf(mk0, b([KEY_B]), 28),
    "kab1_256": cprf(mk1, b([KEY_A]), 44),
    "sid1_resumed": b([0xa3]) + cprf(ss1, b([SESSID]) + sn, 32),
    "kba_resumed": cprf(cprf(ss1, b([REKEY]) + sn, 32), b([KEY_B]), 44),
}
here = os.path.dirname(os.path.abspath(__file__))
for name, v in vals.items():
    with open(os.path.join(here, f"kat_{name}.txt"), "w") as f:
        f.write(v.hex())
    print(name, v.hex())
