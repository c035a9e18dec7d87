"""Publishing trained models atomically: a training run writes a fresh release directory, and the model
path (`models/current`) is a symlink switched to it with one rename, so a reader sees either the old
release or the new one, whole, never a mix, whatever instant the run is killed at.

    models/releases/20261201T210500Z-3f2a9c/{content,hybrid,reference.json}
    models/current -> releases/20261201T210500Z-3f2a9c

Readers resolve the link once (ServedModels.load), so a switch in the middle of loading cannot mix releases
either. A model directory from before releases (a plain `models/current/`) is moved into `releases/` the
first time a run publishes over it."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

KEEP = 3  # releases kept: the current one and the newest others (rollback by re-pointing the link)


def releases_of(current: Path) -> Path:
    return current.parent / "releases"


def new_release(current: Path) -> Path:
    """A fresh, empty release directory beside `current` (not yet published)."""
    name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    path = releases_of(current) / name
    path.mkdir(parents=True)
    return path


def publish(current: Path, release: Path, keep: int = KEEP) -> None:
    """Point `current` at `release` (atomically: a new symlink renamed over the old one), then remove
    releases beyond the newest `keep` (never the published one)."""
    releases = releases_of(current)
    link = current.parent / f".{current.name}.{uuid.uuid4().hex[:8]}.tmp"
    link.symlink_to(os.path.relpath(release, current.parent), target_is_directory=True)
    if current.is_dir() and not current.is_symlink():  # the layout from before releases, moved aside once
        current.rename(releases / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-before-releases")
    os.replace(link, current)
    published = release.resolve()
    stale = sorted((p for p in releases.iterdir() if p.is_dir() and p.resolve() != published), reverse=True)
    for old in stale[keep - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
