"""Shapes of the imports API: the upload it accepts and the job it answers with."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from .csvfiles import CsvFileError, csv_check, csv_decode
from .models import ImportJob, ImportKind


class ImportUploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    file = serializers.FileField(allow_empty_file=False)

    def validate_file(self, upload):
        limit = settings.STRANGLER_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise serializers.ValidationError(
                f"is {upload.size} bytes; an import file may have at most {limit} bytes."
            )
        try:
            self._text = csv_decode(upload.read())
        except CsvFileError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return upload

    def validate(self, attrs):
        try:
            attrs["total_rows"] = csv_check(text=self._text, kind=attrs["kind"])
        except CsvFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from None
        return attrs


class ImportJobSerializer(serializers.ModelSerializer):
    created_by = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "file_name",
            "total_rows",
            "processed_rows",
            "imported_count",
            "error_count",
            "errors",
            "detail",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
