"""Password hashing (argon2id via pwdlib, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import Field
from zxcvbn import zxcvbn

from clinicflow.core.settings import Settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
# `format: password` marks a secret in the OpenAPI document (clients mask it); a new one has
# its real bounds there, while the guessability check (zxcvbn) can only be described.
NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        json_schema_extra={"format": "password"},
        description=(
            f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, no composition rules; "
            "a common or easily guessed password is refused (422, `weak_password`)."
        ),
    ),
]
GivenPassword = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH * 4,
        json_schema_extra={"format": "password"},
        description="The account's current password.",
    ),
]
# zxcvbn refuses longer input; the first 72 characters are plenty to judge guessability.
_STRENGTH_WINDOW = 72
_MIN_STRENGTH_SCORE = 2  # zxcvbn 0-4; below 2 is "too guessable" or "very guessable"


# A hash costs ~18 ms of one core at the default cost, ~170 ms at RFC 9106's 64 MiB x 3 over
# 4 lanes: in the threads of the pool below, logins would take the cores from every read in
# flight. One hashing thread per process, at a lower priority (nice 10: about a tenth of a
# contended core, all of an idle one), makes logins queue behind reads instead. Linux keeps
# niceness per thread, and any lane threads argon2 starts inherit it.
_HASHING_NICENESS = 10
T = TypeVar("T")


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASHING_NICENESS)


_hashing = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="argon2", initializer=_lower_priority
)


async def _hashing_thread(work: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing, work, *args)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    valid: bool
    new_hash: str | None  # set when the stored hash used outdated parameters


class PasswordHasher:
    """Argon2id with parameters from settings; old hashes are upgraded on successful login."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int = 1) -> None:
        argon2 = Argon2Hasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)
        self._hash = PasswordHash((argon2,))
        # Verified against when the account does not exist, so an unknown user costs the same.
        self._dummy_hash = self._hash.hash("not-a-real-password-but-same-cost")
        # The least time a failed check takes (`calibrate`); none while all hashes cost alike.
        self.failure_floor = 0.0

    async def hash(self, password: str) -> str:
        return await _hashing_thread(self._hash.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> VerifyResult:
        started = time.perf_counter()
        if stored_hash is None:
            await _hashing_thread(self._hash.verify, password, self._dummy_hash)
            result = VerifyResult(valid=False, new_hash=None)
        else:
            valid, new_hash = await _hashing_thread(
                self._hash.verify_and_update, password, stored_hash
            )
            result = VerifyResult(valid=valid, new_hash=new_hash)
        if not result.valid:
            await asyncio.sleep(self.failure_floor - (time.perf_counter() - started))
        return result

    async def calibrate(self, stored_samples: Iterable[str]) -> None:
        """Make every failed check last as long as one against the costliest hash stored.

        `stored_samples` holds one stored hash per parameter set in use. Hashes move to the
        configured parameters only at each user's next login, so after a change of cost a
        wrong password would answer in the time of the user's old cost while an unknown user
        answers in the new one's: the difference would tell which accounts exist. Failed
        checks are therefore held (asleep, not computing) to the slowest of the sets."""
        samples = {parameters_of(sample): sample for sample in stored_samples}
        samples.setdefault(parameters_of(self._dummy_hash), self._dummy_hash)
        if len(samples) == 1:
            self.failure_floor = 0.0
            return
        self.failure_floor = max(
            [await _hashing_thread(self._time_failed_check, s) for s in samples.values()]
        )

    def _time_failed_check(self, stored_hash: str) -> float:
        slowest = 0.0
        for _ in range(2):
            started = time.perf_counter()
            self._hash.verify("not-the-password", stored_hash)
            slowest = max(slowest, time.perf_counter() - started)
        return slowest


def parameters_of(stored_hash: str) -> str:
    """`$argon2id$v=19$m=19456,t=2,p=1` of a stored argon2 hash."""
    return "$".join(stored_hash.split("$")[:4])


def password_problems(password: str, *, user_inputs: Sequence[str] = ()) -> str | None:
    """Why a new password is refused, or None. Length bounds and guessability only:
    no composition rules (NIST SP 800-63B)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters long."
    result = zxcvbn(password[:_STRENGTH_WINDOW], user_inputs=[s for s in user_inputs if s])
    if result["score"] < _MIN_STRENGTH_SCORE:
        warning = result["feedback"].get("warning") or "It is too easy to guess."
        return f"Password is too common or weak: {warning}".strip()
    return None


def hasher_for(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.password_hash_memory_kib,
        settings.password_hash_time_cost,
        settings.password_hash_parallelism,
    )


@lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    """One hasher per parameter set: building it hashes the dummy password once."""
    return PasswordHasher(memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism)
