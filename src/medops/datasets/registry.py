"""Built-in dataset names, the local cache they live in, and ``medops data pull``.

A name resolves to a file in the cache directory (``MEDOPS_CACHE_DIR``, default
``~/.cache/medops``; see ``medops.paths``). Downloads happen only on ``medops data pull`` and
never again once the file is cached. ``MEDOPS_DATA_MIRROR`` replaces the official base URL,
for hospitals that mirror public files on an internal server. A set published inside a zip
archive (HealthBench Professional's ``assets.zip``) is downloaded, its JSONL member extracted,
and the archive dropped; the record keeps both files' sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medops.datasets.cache_records import check_recorded
from medops.datasets.hub import HUB_EXAMS, exam_cache_path
from medops.errors import UserError
from medops.models.spec import MASK, mask_url_credentials, split_url_credentials
from medops.paths import cache_dir

OFFICIAL_HEALTHBENCH_BASE = "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/"
OFFICIAL_HEALTHBENCH_PROFESSIONAL_BASE = (
    "https://openaipublic.blob.core.windows.net/simple-evals/healthbench_professional/"
)


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    filename: str
    base_url: str
    description: str
    # the zip archive published at base_url that holds ``filename`` (None: the file itself is)
    archive: str | None = None

    @property
    def url(self) -> str:
        base = os.environ.get("MEDOPS_DATA_MIRROR") or self.base_url
        return base.rstrip("/") + "/" + (self.archive or self.filename)


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset(
            "healthbench",
            "2025-05-07-06-14-12_oss_eval.jsonl",
            OFFICIAL_HEALTHBENCH_BASE,
            "HealthBench, 5,000 conversations (OpenAI, MIT)",
        ),
        BuiltinDataset(
            "healthbench-hard",
            "hard_2025-05-08-21-00-10.jsonl",
            OFFICIAL_HEALTHBENCH_BASE,
            "HealthBench Hard, 1,000 conversations",
        ),
        BuiltinDataset(
            "healthbench-meta",
            "2025-05-07-06-14-12_oss_meta_eval.jsonl",
            OFFICIAL_HEALTHBENCH_BASE,
            "HealthBench meta-evaluation: physician labels for grader agreement (medops meta-eval)",
        ),
        BuiltinDataset(
            "healthbench-consensus",
            "consensus_2025-05-09-20-00-46.jsonl",
            OFFICIAL_HEALTHBENCH_BASE,
            "HealthBench Consensus, 3,671 conversations with physician-consensus criteria",
        ),
        BuiltinDataset(
            "healthbench-professional",
            "healthbench_professional_eval.jsonl",
            OFFICIAL_HEALTHBENCH_PROFESSIONAL_BASE,
            "HealthBench Professional, 525 clinician tasks: care consult, writing, research (OpenAI, MIT)",
            archive="assets.zip",
        ),
    )
}


# Shipped inside medops: always available, offline.
PACKAGED_DATASETS = {
    "demo": "demo_rubrics.jsonl",  # 12 conversations (English, Korean, Arabic), 46 criteria
}


def packaged_path(name: str) -> Path:
    from importlib.resources import files

    return Path(str(files("medops").joinpath("data", PACKAGED_DATASETS[name])))


def cached_path(name: str) -> Path:
    return cache_dir() / BUILTIN_DATASETS[name].filename


def _manual_placement_hint(entry: BuiltinDataset) -> str:
    what = f", extract {entry.filename} from it and copy that" if entry.archive else " and copy it"
    return (
        f"download {mask_url_credentials(entry.url)} on a machine with access{what} to {cached_path(entry.name)} "
        f"(or pass the file with --data PATH)"
    )


def resolve(name_or_path: str) -> tuple[str, Path]:
    """Return ``(dataset_name, local_path)`` for a packaged or built-in name, or a file path."""
    if name_or_path in PACKAGED_DATASETS:
        return name_or_path, packaged_path(name_or_path)
    if name_or_path in HUB_EXAMS:
        path = exam_cache_path(name_or_path)
        if not path.is_file():
            raise UserError(
                f"exam set '{name_or_path}' is not in the local cache; run `medops data pull "
                f"{name_or_path}` (needs the hub), or offline put the converted JSONL at {path}, "
                "or pass the file with --data PATH"
            )
        check_recorded(name_or_path, path)
        return name_or_path, path
    if name_or_path in BUILTIN_DATASETS:
        path = cached_path(name_or_path)
        if not path.is_file():
            entry = BUILTIN_DATASETS[name_or_path]
            raise UserError(
                f"dataset '{name_or_path}' is not in the local cache; run `medops data pull "
                f"{name_or_path}`, or offline: {_manual_placement_hint(entry)}"
            )
        check_recorded(name_or_path, path)
        return name_or_path, path
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join([*PACKAGED_DATASETS, *BUILTIN_DATASETS])
        raise UserError(f"{name_or_path}: no such file, and not a built-in dataset name ({known})")
    return path.stem, path


@dataclass(frozen=True)
class PulledFile:
    name: str
    path: Path
    size_bytes: int
    sha256: str
    downloaded: bool


def pull(name: str, on_progress: Callable[[int, int | None], None] | None = None) -> PulledFile:
    """Download a built-in dataset into the cache unless it is already there."""
    if name not in BUILTIN_DATASETS:
        raise UserError(f"unknown dataset '{name}'; known: {', '.join(BUILTIN_DATASETS)}")
    entry, target = BUILTIN_DATASETS[name], cached_path(name)
    record = check_recorded(name, target)
    if record is not None:
        return PulledFile(name, target, record["size_bytes"], record["sha256"], downloaded=False)
    if target.is_file():  # placed by hand: describe it, do not fetch it again
        data = target.read_bytes()
        return _write_record(name, entry, target, len(data), hashlib.sha256(data).hexdigest(), False)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if entry.archive is None:
        size, sha256 = _download(name, entry, partial, on_progress)
        os.replace(partial, target)
        return _write_record(name, entry, target, size, sha256, True)
    archive = target.with_name(target.name + ".zip.part")
    try:
        archive_size, archive_sha256 = _download(name, entry, archive, on_progress)
        member, size, sha256 = _extract_member(name, entry, archive, partial)
    finally:
        archive.unlink(missing_ok=True)
    os.replace(partial, target)
    source = {"archive_sha256": archive_sha256, "archive_size_bytes": archive_size, "archive_member": member}
    return _write_record(name, entry, target, size, sha256, True, source)


def _download(
    name: str, entry: BuiltinDataset, partial: Path, on_progress: Callable[[int, int | None], None] | None
) -> tuple[int, str]:
    """Stream ``entry.url`` into ``partial``; ``(size, sha256)``. Nothing is left behind on failure."""
    import httpx  # here, not at import: only a download needs it, and every run imports this module

    digest, size = hashlib.sha256(), 0
    try:
        with httpx.stream("GET", entry.url, follow_redirects=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers["content-length"]) if "content-length" in response.headers else None
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_progress:
                        on_progress(size, total)
    except (httpx.HTTPError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = str(exc)
        for secret in split_url_credentials(entry.url)[2]:  # a mirror URL's credentials
            reason = reason.replace(secret, MASK)
        raise UserError(f"could not download '{name}' ({reason}); offline: {_manual_placement_hint(entry)}") from None
    return size, digest.hexdigest()


def _extract_member(name: str, entry: BuiltinDataset, archive: Path, partial: Path) -> tuple[str, int, str]:
    """Copy the archive's ``entry.filename`` (at any depth, exactly one) into ``partial``;
    ``(member name, size, sha256)`` of what was extracted."""
    where = mask_url_credentials(entry.url)
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            matches = [n for n in names if n == entry.filename] or [
                n for n in names if n.rsplit("/", 1)[-1] == entry.filename
            ]
            if len(matches) != 1:
                shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
                found = f"{len(matches)} files" if matches else "no file"
                raise UserError(
                    f"could not read '{name}': {where} has {found} named {entry.filename} "
                    f"(it holds: {', '.join(matches) if matches else shown or 'nothing'}); "
                    f"offline: {_manual_placement_hint(entry)}"
                )
            digest, size = hashlib.sha256(), 0
            with zf.open(matches[0]) as member, partial.open("wb") as out:
                while chunk := member.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"could not read '{name}': {where} is not a readable zip archive ({exc}); "
            f"offline: {_manual_placement_hint(entry)}"
        ) from None
    except UserError:
        partial.unlink(missing_ok=True)
        raise
    return matches[0], size, digest.hexdigest()


def _write_record(
    name: str,
    entry: BuiltinDataset,
    target: Path,
    size: int,
    sha256: str,
    downloaded: bool,
    source: dict | None = None,
) -> PulledFile:
    facts = {"name": name, "url": mask_url_credentials(entry.url), "size_bytes": size, "sha256": sha256}
    facts.update(source or {})
    target.with_name(target.name + ".medops.json").write_text(json.dumps(facts, indent=2))
    return PulledFile(name, target, size, sha256, downloaded)
