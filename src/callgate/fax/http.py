"""API routes of faxes: ``/extension/{extension_id}/fax/`` (received) and
``/extension/{extension_id}/fax_outgoing/`` (jobs).

Deleting a received fax and sending, cancelling and retrying a fax are Call API operations.
``GET …/fax/{uuid}`` answers the PDF itself (``…/fax/{uuid}/info`` its JSON object, as in the
list). A job is created from ``multipart/form-data`` (``file``: a PDF or TIFF, ``dst_num``), read
as it arrives by ``api/files.py`` so that the document streams to disk under its size limit.
Lists are newest first unless ``order=asc``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from callgate.api.files import (
    attachment,
    multipart_request_body,
    receive_upload,
    upload_responses,
)
from callgate.calls.schemas import PageRequestDep
from callgate.common.errors import InvalidInput
from callgate.fax.schemas import FaxJobOut, ReceivedFaxOut
from callgate.fax.service import MAGIC_SIZE, PDF, document_problem
from callgate.policy.http import ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["fax"])

FaxUuid = Annotated[str, Path(max_length=64, description="The received fax's uuid.")]

_SEND_BODY = multipart_request_body(
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The document: a PDF or a TIFF.",
        },
        "dst_num": {
            "type": "string",
            "pattern": r"^\+?[0-9]{1,30}$",
            "description": "The number to send the fax to.",
        },
    },
    ["file", "dst_num"],
)
_PDF: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The fax as a PDF attachment named fax-<uuid>.pdf.",
        "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
    }
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The job's state does not allow this (conflict)."}
}


def _check_document_head(head: bytes) -> None:
    problem = document_problem(head)
    if problem is not None:
        raise InvalidInput(problem, {"file": problem})


# -- received faxes --------------------------------------------------------------------------------


@router.get("/extension/{extension_id}/fax/", openapi_extra=declare(Operation.READ))
def list_received_faxes(
    extension: ExtensionRealmDep, services: ServicesDep, response: Response, paging: PageRequestDep
) -> list[ReceivedFaxOut]:
    """The faxes the extension received."""
    result = services.fax.list_received(
        extension.id, paging.page, paging.per_page, newest_first=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(result.total)
    return [ReceivedFaxOut.of(fax) for fax in result.items]


@router.get(
    "/extension/{extension_id}/fax/{fax_uuid}",
    openapi_extra=declare(Operation.READ),
    response_class=FileResponse,
    responses=_PDF,
)
def download_received_fax(
    extension: ExtensionRealmDep, fax_uuid: FaxUuid, services: ServicesDep
) -> FileResponse:
    """The received fax as a PDF."""
    fax, path = services.fax.received_file(extension.id, fax_uuid)
    return attachment(path, PDF, f"fax-{fax.uuid}.pdf")


@router.get("/extension/{extension_id}/fax/{fax_uuid}/info", openapi_extra=declare(Operation.READ))
def get_received_fax(
    extension: ExtensionRealmDep, fax_uuid: FaxUuid, services: ServicesDep
) -> ReceivedFaxOut:
    return ReceivedFaxOut.of(services.fax.get_received(extension.id, fax_uuid))


@router.delete(
    "/extension/{extension_id}/fax/{fax_uuid}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_received_fax(
    extension: ExtensionRealmDep, fax_uuid: FaxUuid, services: ServicesDep
) -> Response:
    """Delete the received fax and its PDF."""
    services.fax.delete_received(extension.id, fax_uuid)
    return Response(status_code=204)


# -- outgoing jobs ---------------------------------------------------------------------------------


@router.post(
    "/extension/{extension_id}/fax_outgoing/",
    status_code=201,
    openapi_extra={**declare(Operation.CALL_API), **_SEND_BODY},
    responses=upload_responses("The queued fax job."),
)
async def send_fax(
    extension: ExtensionRealmDep, request: Request, services: ServicesDep
) -> FaxJobOut:
    """Queue a fax (multipart/form-data: ``file``, a PDF or TIFF, and ``dst_num``)."""
    fax = services.fax
    plan = await run_in_threadpool(fax.plan_job_upload, extension.id)
    upload = await receive_upload(
        request,
        store=services.files,
        relative=plan.relative,
        file_field="file",
        text_fields=frozenset({"dst_num"}),
        max_bytes=plan.max_bytes,
        too_large=plan.too_large,
        check_head=_check_document_head,
        head_size=MAGIC_SIZE,
    )
    job = await run_in_threadpool(
        lambda: fax.create_job(
            plan,
            extension.id,
            dst_num=upload.fields.get("dst_num"),
            filename=upload.filename or "",
            size=upload.size,
        )
    )
    return FaxJobOut.of(job)


@router.get("/extension/{extension_id}/fax_outgoing/", openapi_extra=declare(Operation.READ))
def list_fax_jobs(
    extension: ExtensionRealmDep, services: ServicesDep, response: Response, paging: PageRequestDep
) -> list[FaxJobOut]:
    """The extension's outgoing fax jobs."""
    result = services.fax.list_jobs(
        extension.id, paging.page, paging.per_page, newest_first=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(result.total)
    return [FaxJobOut.of(job) for job in result.items]


@router.get(
    "/extension/{extension_id}/fax_outgoing/{job_id}", openapi_extra=declare(Operation.READ)
)
def get_fax_job(extension: ExtensionRealmDep, job_id: int, services: ServicesDep) -> FaxJobOut:
    return FaxJobOut.of(services.fax.get_job(extension.id, job_id))


@router.post(
    "/extension/{extension_id}/fax_outgoing/{job_id}/cancel",
    status_code=201,
    openapi_extra=declare(Operation.CALL_API),
    responses=_CONFLICT,
)
def cancel_fax_job(extension: ExtensionRealmDep, job_id: int, services: ServicesDep) -> FaxJobOut:
    """Cancel a queued, dialing or sending job."""
    return FaxJobOut.of(services.fax.cancel(extension.id, job_id))


@router.post(
    "/extension/{extension_id}/fax_outgoing/{job_id}/retry",
    status_code=201,
    openapi_extra=declare(Operation.CALL_API),
    responses=_CONFLICT,
)
def retry_fax_job(extension: ExtensionRealmDep, job_id: int, services: ServicesDep) -> FaxJobOut:
    """Queue a failed or cancelled job again; its attempts start from zero."""
    return FaxJobOut.of(services.fax.retry(extension.id, job_id))
