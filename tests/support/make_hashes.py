"""Password hashes made by the reference implementations, for tests/imported_hashes.rs.

Usage: make_hashes.py '{"FORMAT": "PASSWORD", ...}' prints {"FORMAT": "HASH", ...}, each hash
made from its password by the library that other systems use, at a low cost (tests only),
and checked with that library's own verifier before it is printed. The formats:

  bcrypt-2a, bcrypt-2b, bcrypt-2y  pyca's bcrypt (PyPI `bcrypt`), cost 4
  argon2id, argon2i                argon2-cffi (the reference C implementation), 8 MiB, t=1
  django                           Django's PBKDF2PasswordHasher, 10,000 iterations
  scrypt                           hashlib.scrypt (OpenSSL), N=2^10, r=8, p=1, in PHC form
  pbkdf2-sha256                    hashlib.pbkdf2_hmac, 10,000 iterations, in the PHC form
                                   RustCrypto's pbkdf2 crate writes ($…$i=N,l=32$…)
"""

import base64
import hashlib
import hmac
import json
import os
import sys

import argon2
import bcrypt
from argon2.low_level import Type, hash_secret, verify_secret
from django.conf import settings

settings.configure()
from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402


def b64(raw: bytes) -> str:
    """PHC's base64: standard alphabet, no padding."""
    return base64.b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def make_bcrypt(password: bytes, prefix: str) -> str:
    # gensalt writes $2a$ or $2b$; a $2y$ salt (PHP's label for the same algorithm) is
    # accepted by hashpw as it is.
    salt = bcrypt.gensalt(rounds=4, prefix=b"2b")
    salt = b"$" + prefix.encode() + salt[3:]
    made = bcrypt.hashpw(password, salt).decode()
    assert made.startswith(f"${prefix}$04$") and bcrypt.checkpw(password, made.encode())
    return made


def make_argon2id(password: bytes) -> str:
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2)
    made = hasher.hash(password)
    assert made.startswith("$argon2id$v=19$m=8192,t=1,p=2$") and hasher.verify(made, password)
    return made


def make_argon2i(password: bytes) -> str:
    made = hash_secret(password, os.urandom(16), time_cost=1, memory_cost=8192,
                       parallelism=2, hash_len=32, type=Type.I)
    assert made.startswith(b"$argon2i$v=19$") and verify_secret(made, password, Type.I)
    return made.decode()


def make_django(password: bytes) -> str:
    hasher = PBKDF2PasswordHasher()
    made = hasher.encode(password.decode(), hasher.salt(), iterations=10_000)
    assert made.startswith("pbkdf2_sha256$10000$") and hasher.verify(password.decode(), made)
    return made


def make_scrypt(password: bytes) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password, salt=salt, n=2**10, r=8, p=1, dklen=32)
    made = f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(digest)}"
    _, _, params, salt_text, digest_text = made.split("$")
    again = hashlib.scrypt(password, salt=unb64(salt_text), n=2**10, r=8, p=1, dklen=32)
    assert params == "ln=10,r=8,p=1" and hmac.compare_digest(again, unb64(digest_text))
    return made


def make_pbkdf2(password: bytes) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password, salt, 10_000, 32)
    made = f"$pbkdf2-sha256$i=10000,l=32${b64(salt)}${b64(digest)}"
    _, _, _, salt_text, digest_text = made.split("$")
    again = hashlib.pbkdf2_hmac("sha256", password, unb64(salt_text), 10_000, 32)
    assert hmac.compare_digest(again, unb64(digest_text))
    return made


MAKERS = {
    "bcrypt-2a": lambda p: make_bcrypt(p, "2a"),
    "bcrypt-2b": lambda p: make_bcrypt(p, "2b"),
    "bcrypt-2y": lambda p: make_bcrypt(p, "2y"),
    "argon2id": make_argon2id,
    "argon2i": make_argon2i,
    "django": make_django,
    "scrypt": make_scrypt,
    "pbkdf2-sha256": make_pbkdf2,
}


def main() -> None:
    wanted = json.loads(sys.argv[1])
    made = {fmt: MAKERS[fmt](password.encode("utf-8")) for fmt, password in wanted.items()}
    print(json.dumps(made))


if __name__ == "__main__":
    main()
