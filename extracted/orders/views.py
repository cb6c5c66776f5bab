"""HTTP views of the orders service: parse, call a service or selector, shape the answer.

The same paths, bodies, statuses and errors as the monolith's `orders.views`; the caller is the
user the proxy vouched for (`service_kit.identity_auth`), known here by id only. Every answer,
a write's included, is read from the serving read model: a write updates it in its own
transaction, so what a POST returns is what the next GET shows (read-your-writes).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .serializers import (
    OrderCreateInputSerializer,
    OrderErrorSerializer,
    OrderListFilterSerializer,
    OrderOutputSerializer,
    ProductSerializer,
    StatusCountsSerializer,
)

ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ERRORS = {
    401: OpenApiResponse(
        OrderErrorSerializer, description="No valid identity signed by the proxy."
    ),
    404: OpenApiResponse(OrderErrorSerializer, description="No such order, or not yours."),
}
CONFLICT = OpenApiResponse(
    OrderErrorSerializer,
    description="The order's status does not allow this (invalid_transition, naming both "
    "states), or it kept changing under concurrent writers (concurrent_update).",
)


class OrderPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class ProductPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class OrderListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    pagination_class = OrderPagination

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListFilterSerializer],
        responses={
            200: OrderOutputSerializer(many=True),
            400: OpenApiResponse(OrderErrorSerializer, description="Unknown status."),
            401: ERRORS[401],
        },
    )
    def get(self, request: Request) -> Response:
        """List the caller's own orders, newest first, optionally of one status."""
        filters = OrderListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list(user_id=request.user.pk, **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        responses={
            201: OrderOutputSerializer,
            400: OpenApiResponse(
                OrderErrorSerializer,
                description="Names each bad field and line: an unknown sku, a client-sent price.",
            ),
            401: ERRORS[401],
            413: OpenApiResponse(OrderErrorSerializer, description="Body too large."),
        },
    )
    def post(self, request: Request) -> Response:
        """Place an order; prices come from the catalogue and the server computes the total."""
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        placed = services.order_place(
            user_id=request.user.pk, items=payload.validated_data["items"]
        )
        order = selectors.order_get(user_id=request.user.pk, order_id=placed.order_id)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[ORDER_ID],
        responses={200: OrderOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, order_id: str) -> Response:
        """Read one of the caller's own orders."""
        order = selectors.order_get(user_id=request.user.pk, order_id=order_id)
        return Response(OrderOutputSerializer(order).data)


class OrderCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        parameters=[ORDER_ID],
        responses={200: OrderOutputSerializer, **ERRORS, 409: CONFLICT},
    )
    def post(self, request: Request, order_id: str) -> Response:
        """Cancel one of the caller's own pending orders."""
        state = services.order_cancel(order_id=order_id, user_id=request.user.pk)
        order = selectors.order_get(user_id=request.user.pk, order_id=state.order_id)
        return Response(OrderOutputSerializer(order).data)


class OrderShipApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="orders_ship",
        request=None,
        parameters=[ORDER_ID],
        responses={
            200: OrderOutputSerializer,
            **ERRORS,
            403: OpenApiResponse(OrderErrorSerializer, description="Staff only."),
            409: CONFLICT,
        },
    )
    def post(self, request: Request, order_id: str) -> Response:
        """Mark a paid order as shipped (staff only)."""
        state = services.order_ship(order_id=order_id)
        order = selectors.order_get(user_id=state.user_id, order_id=state.order_id)
        return Response(OrderOutputSerializer(order).data)


class OrderStatusCountsApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="orders_status_counts",
        responses={
            200: StatusCountsSerializer,
            401: ERRORS[401],
            403: OpenApiResponse(OrderErrorSerializer, description="Staff only."),
        },
    )
    def get(self, request: Request) -> Response:
        """Count every order by status (staff only): {"counts": {status: n}, "total": n}."""
        counts = selectors.order_status_counts()
        return Response({"counts": counts, "total": sum(counts.values())})


class ProductListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = ProductPagination

    @extend_schema(operation_id="products_list", responses={200: ProductSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """List the catalogue, ordered by sku (public)."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.product_list(), request, view=self)
        return paginator.get_paginated_response(ProductSerializer(page, many=True).data)
