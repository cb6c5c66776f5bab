"""Staff-only endpoints to upload a CSV import and follow its job."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import import_job_get
from .serializers import ImportJobSerializer, ImportUploadSerializer
from .services import import_job_create


class ImportJobCreateApi(APIView):
    permission_classes = [IsAdminUser]
    # A file upload, unlike the rest of the API, which speaks JSON only.
    parser_classes = [MultiPartParser]

    # Room for the multipart envelope and the `kind` field around the file itself.
    ENVELOPE_BYTES = 64 * 1024

    @extend_schema(request=ImportUploadSerializer, responses={202: ImportJobSerializer})
    def post(self, request):
        self._refuse_oversized(request)
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        job = import_job_create(
            created_by=request.user,
            kind=upload.validated_data["kind"],
            upload=upload.validated_data["file"],
            total_rows=upload.validated_data["total_rows"],
        )
        location = request.build_absolute_uri(f"{job.id}/")
        return Response(
            ImportJobSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )

    def _refuse_oversized(self, request) -> None:
        """Refuse a body that cannot hold an acceptable file before it is read and spooled."""
        limit = settings.STRANGLER_IMPORT_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + self.ENVELOPE_BYTES:
            raise serializers.ValidationError(
                {
                    "file": [
                        f"is part of a {length}-byte upload; an import file may have at most "
                        f"{limit} bytes."
                    ]
                }
            )


class ImportJobDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request, job_id: str):
        return Response(ImportJobSerializer(import_job_get(job_id=job_id)).data)
