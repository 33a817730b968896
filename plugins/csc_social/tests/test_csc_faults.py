"""Every fault knob of the simulator, and the exact outcome the specification asks for.

Night 1 is a clean full set; night 2 is the delta with the fault. A rejected set is rejected
whole, with its class and a message naming the set, the file and what differs, and applies
once a corrected set arrives; a set still being uploaded is waited for.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.storecheck import stored_records

from bridge.config import parse_config
from bridge.errors import AdapterError
from bridge.model.tables import SyncRun
from bridge.privacy import Pseudonymizer
from bridge.store import open_store
from bridge.sync import run_sync
from bridge.synthetic.generate import generate
from bridge_csc_social.simulator import CscSimulator, Faults, source_settings

SOURCE = "vejle-csc"


class Night:
    """A simulator writing into a drop folder, and a SQLite store synced from it."""

    def __init__(self, tmp_path: Path) -> None:
        truth = generate(seed=630, caseworkers=2, municipality_codes=["630"])
        self.simulator = CscSimulator(truth, tmp_path / "drop", seed=1)
        self.config = parse_config(
            {
                "sources": [
                    {
                        "name": SOURCE,
                        "adapter": "csc_social",
                        "municipality": "630",
                        "settings": source_settings(tmp_path / "drop"),
                    }
                ]
            },
            Path("."),
        )
        self.store = open_store(f"sqlite:///{tmp_path / 'bridge.db'}")
        self.drop = tmp_path / "drop"

    def sync(self) -> SyncRun:
        return run_sync(self.store, self.config, SOURCE)

    def failing_sync(self) -> str:
        with pytest.raises(AdapterError) as raised:
            self.sync()
        return str(raised.value)

    def statuses(self) -> dict[str, str]:
        """Set → status, as a run from the stored cursor reports them now."""
        adapter = self.config.build_adapter(self.config.source(SOURCE))
        with self.store.engine.connect() as conn:
            cursor = conn.execute(text("SELECT cursor FROM sync_state")).scalar()
        with contextlib.suppress(AdapterError):  # a rejection ends the fetch after its report is made
            list(adapter.fetch(cursor))
        return {s.name: s.label for s in adapter.report}  # type: ignore[attr-defined]

    def stored(self, persons: Pseudonymizer) -> bool:
        return stored_records(self.store, SOURCE) == {r.source_ref: r for r in self.simulator.expected_records(persons)}


@pytest.fixture
def night(tmp_path: Path, secret_env: str) -> Iterator[Night]:
    setup = Night(tmp_path)
    setup.simulator.night()
    assert setup.sync().status == "succeeded"
    yield setup
    setup.store.dispose()


def test_a_truncated_file_rejects_the_set_until_a_corrected_one_arrives(night: Night, persons: Pseudonymizer) -> None:
    before = stored_records(night.store, SOURCE)
    name = night.simulator.night(Faults(truncate=True))
    message = night.failing_sync()
    assert re.search(
        rf"{name}/measures\.csv: sha256 is [0-9a-f]{{64}}, the manifest says [0-9a-f]{{64}} \(\d+ records read, "
        r"the manifest's total is \d+\): a truncated or partial upload\?",
        message,
    ), message
    first = night.simulator.plans[0].name
    assert night.statuses() == {first: "skipped_already_applied", name: "rejected:manifest_mismatch"}
    assert stored_records(night.store, SOURCE) == before  # rejected whole: nothing of it applied
    night.simulator.redeliver(name)
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_a_manifest_that_does_not_match_rejects_the_set(night: Night) -> None:
    name = night.simulator.night(Faults(mismatch=True))
    rows = len(night.simulator.plans[-1].case_ids)
    message = night.failing_sync()
    assert f"{name}/cases.csv: {rows} records read, the manifest's total is {rows + 1}" in message
    assert night.statuses()[name] == "rejected:manifest_mismatch"


def test_a_set_delivered_twice_changes_nothing_the_second_time(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(twice=True))
    copy = sorted(p.name for p in night.drop.iterdir())[-1]
    assert copy > name
    run = night.sync()
    images = len(night.simulator.plans[-1].case_ids)
    assert (run.inserted + run.updated, run.unchanged) == (images, images)  # the copy: every image unchanged
    assert night.stored(persons)
    assert night.statuses()[copy] == "skipped_already_applied"


def test_a_stray_bom_on_a_windows_1252_file_rejects_the_set(night: Night) -> None:
    name = night.simulator.night(Faults(stray_bom=True))
    message = night.failing_sync()
    assert re.search(rf"{name}/cases\.csv: bytes [0-9a-f]{{2}} will not decode as UTF-8", message), message
    assert night.statuses()[name] == "rejected:encoding"


def test_a_utf8_file_with_its_bom_is_read_as_utf8(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(utf8=True))
    assert (night.drop / name / "cases.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_bytes_that_will_not_decode_reject_the_set(night: Night) -> None:
    name = night.simulator.night(Faults(undecodable=True))
    message = night.failing_sync()
    assert f"{name}/events.csv: bytes 81 will not decode as Windows-1252" in message
    assert night.statuses()[name] == "rejected:encoding"


def test_line_breaks_and_semicolons_in_quoted_notes_count_once(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(multiline=True))
    data = (night.drop / name / "events.csv").read_bytes()
    assert '"Samtale med barnet; ""hjemme"" og i skolen.\r\nOpfølgning aftalt.\rSe'.encode("cp1252") in data
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_reordered_and_unknown_columns_are_read_by_name(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(reorder=True))
    header = (night.drop / name / "cases.csv").read_bytes().split(b"\r\n")[0]
    assert header.startswith(b"SenestAendret;")
    assert b";EksportKoersel;SagsID" in header
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_empty_values_spelt_quoted_or_as_spaces_are_absent(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(blank=True))
    data = (night.drop / name / "measures.csv").read_bytes()
    assert b';"";' in data
    assert b";   ;" in data
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_header_names_and_values_padded_with_spaces_are_trimmed(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(padded=True))
    lines = (night.drop / name / "cases.csv").read_bytes().split(b"\r\n")
    assert lines[0].startswith(b" SagsID ; CPR ;")
    assert lines[1].startswith(b"  10")
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_columns_keys_and_files_the_format_does_not_know_are_ignored(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(unknown=True))
    folder = night.drop / name
    assert (folder / "events.csv").read_bytes().startswith(b"Systemnoegle;HaendelsesID;")
    assert {"sagsstatistik.csv", "LAESMIG.txt"} <= {p.name for p in folder.iterdir()}
    assert "producer" in (folder / "manifest.json").read_text(encoding="utf-8")
    assert (night.drop / "upload.log").exists()
    assert night.sync().status == "succeeded"
    assert night.stored(persons)
    assert night.statuses()[name] == "skipped_already_applied"


def test_a_file_still_arriving_rejects_the_set_until_it_is_complete(night: Night, persons: Pseudonymizer) -> None:
    name = night.simulator.night(Faults(truncate=True, twice=True))
    copy = sorted(p.name for p in night.drop.iterdir())[-1]
    night.failing_sync()
    assert night.statuses()[copy] == "pending"  # the copy arrived whole, behind the set it copies
    night.simulator.complete(name)
    assert night.sync().status == "succeeded"
    assert night.stored(persons)


def test_a_set_still_being_written_is_waited_for_and_holds_back_later_deltas(
    night: Night, persons: Pseudonymizer
) -> None:
    before = stored_records(night.store, SOURCE)
    uploading = night.simulator.night(Faults(in_progress=True))
    later = night.simulator.night()
    run = night.sync()
    assert (run.status, run.fetched) == ("succeeded", 0)  # not an error: looked at again next run
    assert stored_records(night.store, SOURCE) == before
    statuses = night.statuses()
    assert (statuses[uploading], statuses[later]) == ("skipped_in_progress", "pending")
    night.simulator.finish(uploading)
    assert night.sync().status == "succeeded"
    assert night.stored(persons)
    assert set(night.statuses().values()) == {"skipped_already_applied"}


def test_every_knob_has_a_test() -> None:
    tested = {"truncate", "mismatch", "twice", "stray_bom", "utf8", "undecodable", "multiline", "reorder"}
    tested |= {"blank", "padded", "unknown"}
    assert set(Faults.knobs()) == {*tested, "in_progress"}
