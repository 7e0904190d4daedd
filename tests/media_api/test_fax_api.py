"""Faxes through the API: received faxes (list, download, delete), outgoing jobs (send, list,
state, cancel, retry) with their illegal transitions, bad documents, and who may do what."""

from __future__ import annotations

import pytest

from callgate.fax.models import FaxJob, ReceivedFax
from callgate.services import Services
from tests.api.helpers import assert_error
from tests.media_api.conftest import ActAs
from tests.media_api.media import row_count, stored_files
from tests.support.factories import World


def test_received_fax_list_download_delete(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    first = services.fax.store_received(
        world.ext101.id, [documents["pdf"]], from_number="+74951234567", pages=1
    )
    second = services.fax.store_received(world.ext101.id, [documents["pdf2"]], pages=2)
    api = act_as(world.ext_user)  # a call_api application of the extension's owner
    listed = api.get("/extension/@me/fax/")
    assert listed.status_code == 200 and listed.headers["x-total-count"] == "2"
    assert [item["uuid"] for item in listed.json()] == [second.uuid, first.uuid]
    oldest = api.get("/extension/@me/fax/", params={"order": "asc", "per_page": 1}).json()
    assert oldest == [
        {
            "uuid": first.uuid,
            "extension_id": world.ext101.id,
            "from_number": "+74951234567",
            "pages": 1,
            "size": len(documents["pdf"]),
            "created": oldest[0]["created"],
        }
    ]
    assert api.get(f"/extension/@me/fax/{first.uuid}/info").json() == oldest[0]

    download = api.get(f"/extension/{world.ext101.id}/fax/{first.uuid}")
    assert download.status_code == 200 and download.content == documents["pdf"]
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="fax-{first.uuid}.pdf"'
    )

    # Deleting a received fax is a Call API operation; the file goes with the row.
    assert api.delete(f"/extension/@me/fax/{first.uuid}").status_code == 204
    assert row_count(services, ReceivedFax) == 1 and len(stored_files(services)) == 1
    assert_error(api.get(f"/extension/@me/fax/{first.uuid}"), 404, "not_found")
    assert_error(api.delete(f"/extension/@me/fax/{first.uuid}"), 404, "not_found")

    # A fax is found only under its own extension; another extension is outside this user's realm.
    manager = act_as(world.manager)
    assert_error(manager.get(f"/extension/{world.ext102.id}/fax/{second.uuid}"), 404, "not_found")
    assert_error(api.get(f"/extension/{world.ext102.id}/fax/"), 403, "access_denied")
    reader = act_as(world.reader, "all")
    assert reader.get(f"/extension/{world.ext101.id}/fax/{second.uuid}").status_code == 200
    denied = reader.delete(f"/extension/{world.ext101.id}/fax/{second.uuid}")
    assert_error(denied, 403, "user_access_type_deny")


def test_a_vanished_fax_file_is_a_clean_404(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    fax = services.fax.store_received(world.ext101.id, [documents["pdf"]])
    for path in stored_files(services):
        path.unlink()
    api = act_as(world.manager)
    body = assert_error(api.get(f"/extension/{world.ext101.id}/fax/{fax.uuid}"), 404, "not_found")
    assert "missing" in body["message"]
    assert api.delete(f"/extension/{world.ext101.id}/fax/{fax.uuid}").status_code == 204


def test_fax_job_lifecycle(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    api = act_as(world.manager)  # call_api: sending, cancelling and retrying are Call API
    jobs = f"/extension/{world.ext101.id}/fax_outgoing/"
    created = api.post(
        jobs, data={"dst_num": "+74951234567"}, files={"file": ("Letter.pdf", documents["pdf"])}
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert {k: job[k] for k in ("state", "reason", "attempts", "max_attempts", "pages")} == {
        "state": "queued",
        "reason": "",
        "attempts": 0,
        "max_attempts": 3,
        "pages": 0,
    }
    assert (job["dst_num"], job["document_name"], job["document_type"]) == (
        "+74951234567",
        "Letter.pdf",
        "application/pdf",
    )
    assert job["size"] == len(documents["pdf"]) and job["next_attempt"] is None
    one = f"{jobs}{job['id']}"
    assert api.get(one).json() == job
    assert api.get(jobs).headers["x-total-count"] == "1"

    cancelled = api.post(f"{one}/cancel")
    assert cancelled.status_code == 201 and cancelled.json()["state"] == "cancelled"
    again = assert_error(api.post(f"{one}/cancel"), 409, "conflict")
    assert again["message"] == (
        "A cancelled fax job cannot be cancelled; only a queued, dialing or sending job can."
    )
    retried = api.post(f"{one}/retry")
    assert retried.status_code == 201 and retried.json()["state"] == "queued"
    assert retried.json()["reason"] == ""
    queued = assert_error(api.post(f"{one}/retry"), 409, "conflict")
    assert "A queued fax job cannot be retried" in queued["message"]

    # The sender takes it from here (there is no phone line yet): it fails, is retried by the
    # API with its attempts reset, and is sent; a sent job can be neither cancelled nor retried.
    services.fax.mark_dialing(job["id"])
    services.fax.mark_failed(job["id"], "busy")
    failed = api.get(one).json()
    assert (failed["state"], failed["reason"], failed["attempts"]) == ("failed", "busy", 1)
    assert failed["next_attempt"] is not None
    assert api.post(f"{one}/retry").json()["attempts"] == 0
    services.fax.mark_dialing(job["id"])
    services.fax.mark_sending(job["id"], pages=1)
    services.fax.mark_sent(job["id"], pages_sent=1)
    sent = api.get(one).json()
    assert (sent["state"], sent["pages"], sent["pages_sent"]) == ("sent", 1, 1)
    assert (
        "A sent fax job cannot be cancelled"
        in assert_error(api.post(f"{one}/cancel"), 409, "conflict")["message"]
    )
    assert_error(api.post(f"{one}/retry"), 409, "conflict")
    assert_error(api.post(f"{jobs}999999/cancel"), 404, "not_found")
    assert_error(
        act_as(world.manager).get(f"/extension/{world.ext102.id}/fax_outgoing/{job['id']}"),
        404,
        "not_found",
    )


def test_a_tiff_is_counted_in_pages(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    api = act_as(world.ext_user)
    created = api.post(
        "/extension/@me/fax_outgoing/",
        data={"dst_num": "5551234"},
        files={"file": ("scan.tif", documents["tiff"], "image/tiff")},
    )
    assert created.status_code == 201, created.text
    assert (created.json()["document_type"], created.json()["pages"]) == ("image/tiff", 2)
    path = stored_files(services)[0]
    assert path.read_bytes() == documents["tiff"]


@pytest.mark.parametrize(
    ("fields", "document", "field", "words"),
    [
        ({"dst_num": "555"}, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "file", "neither a PDF nor a TIFF"),
        ({"dst_num": "555"}, b"", "file", "empty"),
        ({"dst_num": "555-12"}, None, "dst_num", "digits"),
        ({"dst_num": "+"}, None, "dst_num", "digits"),
        ({}, None, "dst_num", "required"),
        ({"dst_num": "555", "priority": "high"}, None, "priority", "Unknown field"),
    ],
    ids=["png", "empty", "dash", "plus only", "no dst_num", "unknown field"],
)
def test_bad_fax_requests_write_nothing(
    services: Services,
    world: World,
    act_as: ActAs,
    documents: dict[str, bytes],
    fields: dict[str, str],
    document: bytes | None,
    field: str,
    words: str,
) -> None:
    content = documents["pdf"] if document is None else document
    answer = act_as(world.manager).post(
        f"/extension/{world.ext101.id}/fax_outgoing/",
        data=fields,
        files={"file": ("doc.pdf", content, "application/pdf")},
    )
    body = assert_error(answer, 422, "invalid_input")
    assert field in body["fields"] and words in body["message"], body
    assert row_count(services, FaxJob) == 0 and stored_files(services) == []


def test_fax_size_limit_and_body_type(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    api = act_as(world.manager)
    jobs = f"/extension/{world.ext101.id}/fax_outgoing/"
    services.settings.fax_max_bytes = len(documents["tiff"]) - 1
    answer = api.post(jobs, data={"dst_num": "555"}, files={"file": ("a.tif", documents["tiff"])})
    assert assert_error(answer, 422, "invalid_input")["fields"] == {"file": "too large"}
    json_body = api.post(jobs, json={"dst_num": "555"})
    assert_error(json_body, 415, "unsupported_media_type")
    assert row_count(services, FaxJob) == 0 and stored_files(services) == []


def test_faxes_belong_to_fax_and_phone_extensions(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    fax_ext = services.identity.create_extension(world.client.id, "150", "fax")
    queue = services.identity.create_extension(world.client.id, "160", "queue")
    api = act_as(world.manager)
    sent = api.post(
        f"/extension/{fax_ext.id}/fax_outgoing/",
        data={"dst_num": "555"},
        files={"file": ("a.pdf", documents["pdf"])},
    )
    assert sent.status_code == 201, sent.text
    assert api.get(f"/extension/{fax_ext.id}/fax/").json() == []
    for path in ("fax/", "fax_outgoing/"):
        body = assert_error(api.get(f"/extension/{queue.id}/{path}"), 404, "not_found")
        assert "queue extension" in body["message"]
    refused = api.post(
        f"/extension/{queue.id}/fax_outgoing/",
        data={"dst_num": "555"},
        files={"file": ("a.pdf", documents["pdf"])},
    )
    assert_error(refused, 404, "not_found")
    assert row_count(services, FaxJob) == 1 and len(stored_files(services)) == 1


def test_who_may_send_faxes(
    services: Services, world: World, act_as: ActAs, documents: dict[str, bytes]
) -> None:
    jobs = f"/extension/{world.ext101.id}/fax_outgoing/"
    files = {"file": ("a.pdf", documents["pdf"])}
    reader = act_as(world.reader, "all")
    assert_error(
        reader.post(jobs, data={"dst_num": "555"}, files=files), 403, "user_access_type_deny"
    )
    assert reader.get(jobs).json() == []
    assert_error(
        act_as(world.other_manager).post(jobs, data={"dst_num": "555"}, files=files),
        403,
        "access_denied",
    )
    assert row_count(services, FaxJob) == 0 and stored_files(services) == []
