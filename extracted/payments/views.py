"""HTTP views of the payments service: parse, call a service or selector, shape the answer.

The same paths, bodies, statuses and headers as the monolith's `payments.views`; the caller is
the user the proxy vouched for (`service_kit.identity_auth`), known here by id only.
"""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .idempotency import (
    HEADER,
    MAX_LENGTH,
    REPLAYED_HEADER,
    idempotency_key_from,
    request_fingerprint,
)
from .selectors import payment_get, payment_list
from .serializers import (
    CardDeclinedSerializer,
    PaymentCreateSerializer,
    PaymentErrorSerializer,
    PaymentListQuerySerializer,
    PaymentSerializer,
)
from .services import payment_create, payment_refund

_ERRORS = {
    400: OpenApiResponse(
        PaymentErrorSerializer, description="A bad field or header, named in `fields`."
    ),
    401: OpenApiResponse(
        PaymentErrorSerializer, description="No valid identity signed by the proxy."
    ),
    404: OpenApiResponse(PaymentErrorSerializer, description="No such payment or order of yours."),
}


@extend_schema_view(
    get=extend_schema(
        summary="List your payments",
        parameters=[PaymentListQuerySerializer],
        responses={200: PaymentSerializer(many=True), **_ERRORS},
    ),
)
class PaymentListCreateView(generics.ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        query = PaymentListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return payment_list(user_id=self.request.user.pk, **query.validated_data)

    @extend_schema(
        summary="Pay an order",
        description=(
            "Charge the order's total to the card. The same `Idempotency-Key` with the same body "
            "returns the first answer again (201 or 402, with the `Idempotent-Replayed: true` "
            "header) and never charges twice; with a different body it is a 422. A provider "
            "timeout (504) is not stored, so the same key may be retried."
        ),
        parameters=[
            OpenApiParameter(
                HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description=(
                    f"A unique key per payment attempt, chosen by the client (at most "
                    f"{MAX_LENGTH} printable ASCII characters), scoped to the user."
                ),
            )
        ],
        request=PaymentCreateSerializer,
        responses={
            201: PaymentSerializer,
            402: OpenApiResponse(
                CardDeclinedSerializer,
                description="The card was declined; the failed payment is recorded.",
            ),
            409: OpenApiResponse(PaymentErrorSerializer, description="The order is not pending."),
            422: OpenApiResponse(
                PaymentErrorSerializer, description="The key was used with a different request."
            ),
            503: OpenApiResponse(
                PaymentErrorSerializer,
                description="The order is not known yet and its owner could not be asked.",
            ),
            504: OpenApiResponse(
                PaymentErrorSerializer,
                description="The provider timed out; retry with the same key.",
            ),
            **_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        key = idempotency_key_from(request)
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attempt = payment_create(
            user_id=request.user.pk,
            idempotency_key=key,
            request_fingerprint=request_fingerprint(serializer.validated_data),
            headers=request.headers,
            **serializer.validated_data,
        )
        response = Response(attempt.body, status=attempt.status_code)
        if attempt.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


class PaymentDetailView(APIView):
    @extend_schema(
        summary="Read one of your payments", responses={200: PaymentSerializer, **_ERRORS}
    )
    def get(self, request: Request, payment_id: uuid.UUID) -> Response:
        payment = payment_get(user_id=request.user.pk, payment_id=payment_id)
        return Response(PaymentSerializer(payment).data)


class PaymentRefundView(APIView):
    @extend_schema(
        summary="Refund a payment",
        description="Refund a succeeded payment in full; its paid order becomes refunded.",
        request=None,
        responses={
            200: PaymentSerializer,
            409: OpenApiResponse(
                PaymentErrorSerializer,
                description="The payment did not succeed, or its order is not paid.",
            ),
            502: OpenApiResponse(PaymentErrorSerializer, description="The provider refused."),
            504: OpenApiResponse(PaymentErrorSerializer, description="The provider timed out."),
            **_ERRORS,
        },
    )
    def post(self, request: Request, payment_id: uuid.UUID) -> Response:
        payment = payment_refund(
            user_id=request.user.pk, payment_id=payment_id, headers=request.headers
        )
        return Response(PaymentSerializer(payment).data)
